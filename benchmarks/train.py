"""Throughput of the training lab vs a plain PyTorch loop over the same model and batch shape.

Baseline (``plain_loop``): the obvious loop a person writes by hand: nanoGPT-style random windows from the same
token array, forward, backward, ``AdamW.step()``, ``zero_grad``; no schedule, clipping, logging or checkpoints.
Candidate: ``lrlab train --preset tiny`` (a :class:`Trainer` with every default: schedule, grad clipping, JSONL
metrics, evaluation every 50 steps, checkpoint at the end).

The machine is shared, so the two are measured *paired*: a callback runs one baseline step (on its own model)
at the start of every lab step, timing it; the lab step's time is from the end of that baseline step to the
start of the next lab step, so it covers everything the harness does (batch sampling, clipping, schedule,
logging, evaluation). Each lab step and its baseline step see the same load. Reported: the ratio of median
step times and of summed step times (after ``--warmup`` steps), and tokens/s of every preset from its median
step time.

    python benchmarks/train.py [--steps 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numpy as np
import torch

from lrlab.train import PRESETS, Trainer, load_config, load_data
from lrlab.train.model import GPT


class PlainLoop:
    """The baseline: the obvious hand-written training step, one call per step."""

    def __init__(self, preset: str, batch_size: int, seq_len: int) -> None:
        self.data = load_data("stdlib").train  # the lab's corpus, a uint16 memmap
        self.b, self.t = batch_size, seq_len
        torch.manual_seed(0)
        self.model = GPT(load_config(flags={"model.preset": preset}).gpt_config(256))
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3, weight_decay=0.1)

    def step(self) -> None:
        ix = torch.randint(len(self.data) - self.t - 1, (self.b,)).tolist()
        x = torch.stack([torch.from_numpy(self.data[i : i + self.t].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(self.data[i + 1 : i + 1 + self.t].astype(np.int64)) for i in ix])
        loss = self.model(x, y)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)


class PairedClock:
    """Times each lab step, and (with a baseline) one baseline step run at the start of each lab step."""

    def __init__(self, baseline: PlainLoop | None = None) -> None:
        self.baseline = baseline
        self.lab: list[float] = []
        self.plain: list[float] = []
        self._mark: float | None = None

    def on_step_start(self, ctx) -> None:
        now = time.perf_counter()
        if self._mark is not None:
            self.lab.append(now - self._mark)
        if self.baseline is not None:
            self.baseline.step()
            self._mark = time.perf_counter()
            self.plain.append(self._mark - now)
        else:
            self._mark = now

    def on_train_end(self, ctx) -> None:  # the last step, its logging and the final checkpoint
        self.lab.append(time.perf_counter() - self._mark)


def measure(preset: str, steps: int, out: str, with_baseline: bool) -> PairedClock:
    cfg = load_config(flags={"model.preset": preset, "steps": steps})
    clock = PairedClock(PlainLoop(preset, cfg.batch_size, cfg.seq_len) if with_baseline else None)
    Trainer(cfg, out_dir=out, callbacks=[clock]).run()
    return clock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="lab steps for the tiny comparison")
    ap.add_argument("--warmup", type=int, default=10, help="steps left out of every measurement")
    ap.add_argument("--preset-steps", type=int, default=12, help="steps per preset for the per-preset table")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tiny = measure("tiny", args.steps, f"{tmp}/tiny", with_baseline=True)
        clocks = {p: measure(p, args.preset_steps, f"{tmp}/{p}", False) for p in PRESETS if p != "tiny"}
    clocks = {"tiny": tiny, **clocks}
    w = args.warmup
    lab, plain = tiny.lab[w:], tiny.plain[w:]
    ratio = statistics.median(plain) / statistics.median(lab)
    ratio_sum = sum(plain) / sum(lab)
    tokens_per_step = load_config().tokens_per_step
    per_preset = {p: tokens_per_step / statistics.median(c.lab[min(w, len(c.lab) // 2) :]) for p, c in clocks.items()}
    if args.json:
        print(
            json.dumps({"tiny_vs_plain_loop": ratio, "tiny_vs_plain_loop_sum": ratio_sum, "tokens_per_s": per_preset})
        )
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; the machine is shared with other jobs")
    print(f"tiny, {len(lab)} paired steps of {tokens_per_step} tokens:")
    print(f"  plain loop (baseline): median {statistics.median(plain) * 1e3:.2f} ms/step")
    print(f"  lrlab Trainer:         median {statistics.median(lab) * 1e3:.2f} ms/step")
    print(f"tiny_vs_plain_loop = {ratio:.3f} (median step times; {ratio_sum:.3f} from summed times; >= 0.95 wanted)")
    for p, v in per_preset.items():
        print(f"  {p:<7} {v:>10,.0f} tokens/s (median step)")


if __name__ == "__main__":
    main()
