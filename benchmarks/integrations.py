"""Step-time overhead of lrlab's integration callbacks, against the same training loop without them.

Baselines, each measured in the same round as its callback runs (rounds alternate, so machine noise hits all):
- ``hf_every10`` / ``hf_every1``: the Hugging Face Trainer on a tiny GPT-2 (GPT2Config, ~0.25M parameters, random
  init, random tokens, batch 8 x 64, lrlab AdamW with a ScheduleLR) with ``HFProbeCallback(["updates", "rrc"])``
  at cadence 10 and 1, recording every update into a run store, vs the same Trainer without the callback;
- ``lightning_every10`` / ``lightning_every1``: PyTorch Lightning on lrlab's tiny GPT (0.13M, same batch) with
  ``LightningProbeCallback``, vs the same Lightning loop without it;
- ``hf_gns1`` / ``lightning_gns1``: the ``gns`` probe at every update, with 2 micro-batches of 8 x 64 an update
  (gradient accumulation), vs the same accumulating loop without the callback.

Every run trains ``--steps`` updates from scratch; a clock callback (in both runs) takes the time at each update's
start; the run's step time is the median over updates 2.. (update 0 warms up caches). A first, uncounted run of
each framework warms up imports and caches. Printed: median over rounds of (median step time with the callback /
without), each round's ratio, and the ratio of each configuration's fastest round.

    python benchmarks/integrations.py [--steps 60] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lrlab.integrations import optimizer_and_schedule

SPEC = "wsd:peak=1e-3,warmup=10,total=10000,decay=0.2"
BATCH, SEQ, VOCAB = 8, 64, 256


def median_step(starts: list[float]) -> float:
    return statistics.median(b - a for a, b in itertools.pairwise(starts[2:]))


def random_tokens(rows: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (rows, SEQ), generator=torch.Generator().manual_seed(0))


#: configuration -> (the callback's probes and cadences, micro-batches an update); None: no callback
SETUPS: dict[str, tuple[dict[str, int] | None, int]] = {
    "bare": (None, 1),
    "every10": ({"updates": 10, "rrc": 10}, 1),
    "every1": ({"updates": 1, "rrc": 1}, 1),
    "bare_accum2": (None, 2),
    "gns1": ({"gns": 1}, 2),
}
#: each measured configuration and the bare loop it is set against
CASES = {"every10": "bare", "every1": "bare", "gns1": "bare_accum2"}


def hf_step_seconds(steps: int, setup: str, out: Path) -> float:
    """Median update time of the HF Trainer in configuration ``setup`` (:data:`SETUPS`)."""
    import transformers

    from lrlab.integrations.hf import HFProbeCallback

    class Clock(transformers.TrainerCallback):
        def __init__(self) -> None:
            self.starts: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.starts.append(time.perf_counter())

    class Tokens(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.x = random_tokens(BATCH * accumulate * (steps + 1))

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            return {"input_ids": self.x[i], "labels": self.x[i]}

    probes, accumulate = SETUPS[setup]
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=SEQ, n_embd=96, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0
    )
    model = transformers.GPT2LMHeadModel(config)
    args = transformers.TrainingArguments(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=BATCH,
        gradient_accumulation_steps=accumulate,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    clock = Clock()
    callbacks = [clock] if probes is None else [HFProbeCallback(probes, store=out / "runs.db"), clock]
    optimizers = optimizer_and_schedule(model.parameters(), "adamw", SPEC, weight_decay=0.1)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Tokens(), optimizers=optimizers)
    trainer.remove_callback(transformers.PrinterCallback)  # its log lines would interleave with --json
    for callback in callbacks:
        trainer.add_callback(callback)
    trainer.train()
    return median_step(clock.starts)


def lightning_step_seconds(steps: int, setup: str, out: Path) -> float:
    """Median update time of Lightning in configuration ``setup`` (:data:`SETUPS`)."""
    import pytorch_lightning as pl

    from lrlab.integrations.lightning import LightningProbeCallback, configure_optimizers
    from lrlab.train.model import GPT, preset_config

    class Clock(pl.Callback):
        def __init__(self) -> None:
            self.starts: list[float] = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx % accumulate == 0:  # an update's first batch
                self.starts.append(time.perf_counter())

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.gpt = GPT(preset_config("tiny", vocab_size=VOCAB, block_size=SEQ))

        def training_step(self, batch, index):
            return self.gpt(batch[0][:, :-1], batch[0][:, 1:])

        def configure_optimizers(self):
            return configure_optimizers(self.parameters(), "adamw", SPEC, weight_decay=0.1)

    probes, accumulate = SETUPS[setup]
    tokens = random_tokens(BATCH * accumulate * (steps + 1))
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(tokens), BATCH)
    clock = Clock()
    callbacks = [clock] if probes is None else [LightningProbeCallback(probes, store=out / "runs.db"), clock]
    trainer = pl.Trainer(
        max_steps=steps,
        accumulate_grad_batches=accumulate,
        callbacks=callbacks,
        default_root_dir=out,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Module(), data)
    return median_step(clock.starts)


FRAMEWORKS = {"hf": hf_step_seconds, "lightning": lightning_step_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {}  # "<framework>_<setup>" -> each round's median step time
    with tempfile.TemporaryDirectory() as tmp:  # a first, uncounted run of each: imports, caches, allocator
        for name, run in FRAMEWORKS.items():
            run(args.steps, "every1", Path(tmp) / name)
    for _ in range(args.rounds):
        for name, run in FRAMEWORKS.items():
            with tempfile.TemporaryDirectory() as tmp:
                for setup in SETUPS:
                    seconds.setdefault(f"{name}_{setup}", []).append(run(args.steps, setup, Path(tmp) / setup))
    cases = {
        f"{name}_{case}": (f"{name}_{case}", f"{name}_{bare}") for name in FRAMEWORKS for case, bare in CASES.items()
    }
    per_round = {case: [a / b for a, b in zip(seconds[w], seconds[o], strict=True)] for case, (w, o) in cases.items()}
    result = {
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "rounds": args.rounds,
        **{f"{name}_bare_step_ms": 1e3 * statistics.median(seconds[f"{name}_bare"]) for name in FRAMEWORKS},
        **{case: statistics.median(r) for case, r in per_round.items()},
        # the ratio of each configuration's fastest round: less exposed to a neighbour's load than a median
        **{f"{case}_best": min(seconds[w]) / min(seconds[o]) for case, (w, o) in cases.items()},
        "per_round": per_round,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name in FRAMEWORKS:
        print(f"{name}: bare loop median step {result[f'{name}_bare_step_ms']:.2f} ms")
    for case, r in per_round.items():
        rounds = ", ".join(f"{x:.3f}" for x in r)
        print(
            f"{case}: {result[case]:.3f}x the bare loop (median of rounds: {rounds}); "
            f"fastest rounds {result[f'{case}_best']:.3f}x"
        )


if __name__ == "__main__":
    main()
