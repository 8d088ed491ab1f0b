"""The Hugging Face Trainer integration on a tiny GPT-2 built from a config (no download): LionAR with a WSD
schedule at the Trainer's step unit, lrlab probe records and the loss curve in the store, exact LR on resume, and
the recorded curve accepted by ``lrlab fit``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from lrlab.cli.app import _OneLineErrors
from lrlab.cli.laws import register
from lrlab.errors import InputError
from lrlab.integrations import write_curve
from lrlab.schedules import parse
from lrlab.store import Store

SPEC = "wsd:peak=3e-3,warmup=4,total=24,decay=0.25"
STEPS = 24


class Tokens(torch.utils.data.Dataset):
    """Random tokens from the first 16 of 256 ids (the model learns their frequencies: the loss falls)."""

    def __init__(self, rows: int = 256, seq: int = 32) -> None:
        self.x = torch.randint(0, 16, (rows, seq), generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.x[i], "labels": self.x[i]}


@pytest.fixture
def hf(extra, monkeypatch):
    extra("accelerate")
    transformers = extra("transformers")
    # pytest puts tests/ on sys.path, so tests/datasets/ passes for Hugging Face's `datasets` package there
    monkeypatch.setattr("transformers.trainer.is_datasets_available", lambda: False)
    return transformers


def tiny_gpt2(hf, dropout=0.1):
    """About 250k parameters, random init."""
    torch.manual_seed(0)
    config = hf.GPT2Config(
        vocab_size=256,
        n_positions=32,
        n_embd=96,
        n_layer=2,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
    )
    return hf.GPT2LMHeadModel(config)


def hf_trainer(hf, out, model, trainer_options=None, **options):
    """A Trainer of ``model`` on :class:`Tokens` with lrlab's LionAR and the WSD ``SPEC`` (``options`` override the
    TrainingArguments below; ``trainer_options`` go to the Trainer)."""
    from lrlab.integrations.optimizers import optimizer_and_schedule

    opt, sched = optimizer_and_schedule(model.parameters(), "lionar", SPEC, weight_decay=0.1)
    defaults = dict(max_steps=STEPS, per_device_train_batch_size=4, logging_steps=1, save_strategy="no", seed=0)
    args = hf.TrainingArguments(
        output_dir=str(out), report_to=[], use_cpu=True, disable_tqdm=True, **{**defaults, **options}
    )
    return hf.Trainer(
        model=model, args=args, train_dataset=Tokens(), optimizers=(opt, sched), **(trainer_options or {})
    )


def train(
    hf,
    out,
    callbacks,
    max_steps=STEPS,
    accumulate=1,
    resume=False,
    save_steps=0,
    on_model=None,
    probes=("updates", "rrc"),
    dropout=0.1,
):
    from lrlab.integrations.hf import HFProbeCallback

    model = tiny_gpt2(hf, dropout)
    if on_model is not None:
        on_model(model)
    trainer = hf_trainer(
        hf,
        out,
        model,
        max_steps=max_steps,
        gradient_accumulation_steps=accumulate,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,
    )
    probe = HFProbeCallback(probes, every=5, store=out / "runs.db")
    for cb in [probe, *callbacks]:
        trainer.add_callback(cb)
    trainer.train(resume_from_checkpoint=resume or None)
    return model, probe


def run_of(out):
    with Store(out / "runs.db") as store:
        (run,) = store.runs("transformers")
        return run, {n: store.curve(run["id"], n) for n in store.metric_names(run["id"])}


def logged(hf):
    class Logs(hf.TrainerCallback):
        def __init__(self):
            self.rows = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if "loss" in logs:
                self.rows.append((state.global_step, logs["loss"], logs["learning_rate"]))

    return Logs()


def test_hf_lr_per_update_is_the_schedules_and_records_land_in_the_store(hf, tmp_path):
    """gradient_accumulation_steps=2: one row and one schedule step per optimizer update (24), not per micro-batch
    (48 forward passes); the LR of update t is lr(t) exactly, the Trainer's own logged loss and LR are the rows'."""
    logs = logged(hf)
    forwards = []
    train(
        hf,
        tmp_path,
        [logs],
        accumulate=2,
        on_model=lambda m: m.register_forward_pre_hook(lambda mod, args: forwards.append(1)),
    )
    run, curves = run_of(tmp_path)
    expected = parse(SPEC).values(STEPS)
    steps, lr = curves["lr"]
    assert steps.tolist() == list(range(STEPS))
    assert lr.tolist() == expected.tolist()
    assert [s for s, _, _ in logs.rows] == list(range(1, STEPS + 1))  # the Trainer counts updates too
    assert np.allclose([r for _, _, r in logs.rows], expected, rtol=0, atol=0)
    assert curves["train_loss"][1].tolist() == [loss for _, loss, _ in logs.rows]
    assert curves["train_loss"][1][-1] < curves["train_loss"][1][0] - 0.5  # it learned something
    for name in ("update_rel", "rrc", "rrc/lm_head", "angle/transformer.h.0.attn.c_attn.weight/mean"):
        assert curves[name][0].tolist() == [0, 5, 10, 15, 20], name
        assert np.all(np.isfinite(curves[name][1])) and np.all(curves[name][1] > 0), name
    assert run["status"] == "done" and run["final"]["steps_done"] == STEPS
    assert run["meta"]["gradient_accumulation_steps"] == 2
    assert len(forwards) == 2 * STEPS  # micro-batches


def test_hf_resume_from_a_checkpoint_continues_at_the_exact_lr(hf, tmp_path):
    """An uninterrupted run and one stopped at update 12 and resumed from its checkpoint run every update at the
    same LR (the scheduler's state is its step), and the store holds each update once."""
    whole, split = logged(hf), logged(hf)
    train(hf, tmp_path / "whole", [whole])

    class StopAt12(hf.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 12:
                control.should_training_stop = True

    train(hf, tmp_path / "split", [split, StopAt12()], save_steps=12)
    run, _ = run_of(tmp_path / "split")
    assert run["status"] == "interrupted" and run["final"]["steps_done"] == 12
    assert (tmp_path / "split" / "checkpoint-12").is_dir()
    train(hf, tmp_path / "split", [split], resume=True)
    run, curves = run_of(tmp_path / "split")
    assert run["status"] == "done" and run["attempts"] == 2
    assert [s for s, _, _ in split.rows] == list(range(1, STEPS + 1))
    assert [r for _, _, r in split.rows] == [r for _, _, r in whole.rows] == parse(SPEC).values(STEPS).tolist()
    assert curves["lr"][0].tolist() == list(range(STEPS))
    assert curves["lr"][1].tolist() == parse(SPEC).values(STEPS).tolist()


def test_hf_curve_is_accepted_by_lrlab_fit(hf, tmp_path):
    probe = train(hf, tmp_path, [])[1]
    run, _ = run_of(tmp_path)
    assert probe.recorder.run_id == run["id"]
    side = write_curve(tmp_path / "runs.db", tmp_path / "hf.csv", run_id=probe.recorder.run_id)
    assert side.name == "hf.lr.csv"
    app = typer.Typer(cls=_OneLineErrors)
    register(app)
    fit = tmp_path / "fit.json"
    result = CliRunner().invoke(app, ["fit", str(tmp_path / "hf.csv"), "--law", "momentum", "--out", str(fit)])
    assert result.exit_code == 0, result.output
    assert fit.is_file() and "momentum fitted" in result.output


def test_hf_refuses_a_schedule_shorter_than_the_run(hf, tmp_path):
    with pytest.raises(InputError, match="covers 24 steps but the run takes 30 updates"):
        train(hf, tmp_path, [], max_steps=30)


def test_hf_gns_and_sharpness_equal_a_direct_computation(hf, tmp_path):
    """gns (two micro-batches an update, the Trainer clipping at max_grad_norm=1 before its hook) and sharpness at
    update 0 equal B_simple from each micro-batch's own gradient and the top Hessian eigenvalue of the first
    micro-batch's mean loss, computed directly on the initial weights (no dropout)."""
    from lrlab.probes import noise_scale_estimates
    from lrlab.probes.sharpness import sharpness

    inputs = []

    def keep(module, args, kwargs):
        if len(inputs) < 2:  # update 0's two micro-batches, as the Trainer passes them
            inputs.append({k: v.clone() for k, v in kwargs.items() if k in ("input_ids", "labels")})

    train(
        hf,
        tmp_path,
        [],
        max_steps=8,
        accumulate=2,
        on_model=lambda m: m.register_forward_pre_hook(keep, with_kwargs=True),
        probes={"gns": 1, "sharpness": 4, "updates": 4},
        dropout=0.0,
    )
    reference = tiny_gpt2(hf, 0.0)
    params = list(reference.parameters())
    grads = [torch.cat([g.flatten() for g in torch.autograd.grad(reference(**x).loss, params)]) for x in inputs]
    mean = (grads[0] + grads[1]) / 2
    g2, trace = noise_scale_estimates(sum(float(g @ g) for g in grads) / 2, float(mean @ mean), 4, 8)
    top, _ = sharpness(lambda: reference(**inputs[0]).loss, params)
    _, curves = run_of(tmp_path)
    assert curves["gns/grad_sq"][0].tolist() == list(range(8))
    assert curves["gns"][1][0] == pytest.approx(trace / g2, rel=1e-3)
    # both estimates carry the Trainer's loss scale (its num_items_in_batch counts the labels before the shift
    # by one token: 256 where 248 are predicted), so only their ratio, B_simple, is scale-free
    scale = curves["gns/grad_sq"][1][0] / g2
    assert curves["gns/trace"][1][0] / trace == pytest.approx(scale, rel=1e-3)
    assert scale == pytest.approx(1, abs=0.1)
    assert curves["sharpness"][0].tolist() == [0, 4]
    assert curves["sharpness"][1][0] == pytest.approx(top, rel=1e-3)
    assert curves["grad_norm"][1][0] > 1  # the Trainer clipped update 0: the hooks saw the raw gradients


def test_hf_gns_without_accumulation_is_one_line_input_error(hf, tmp_path):
    with pytest.raises(InputError, match="gns probe needs gradient_accumulation_steps >= 2"):
        train(hf, tmp_path, [], probes=["gns"])


def test_hf_a_step_that_raises_inside_the_context_is_recorded_failed_without_hooks_left(hf, tmp_path):
    """The Trainer calls no callback when a step raises: with the callback as a context manager the run is
    recorded failed with the updates before, and no probe hook stays on the model."""
    from lrlab.integrations.hf import HFProbeCallback

    model = tiny_gpt2(hf)
    calls = []

    def failing(module, args):
        calls.append(1)
        if len(calls) == 8:  # update 3's second micro-batch
            raise RuntimeError("boom")

    mine = model.transformer.h[0].register_forward_pre_hook(failing)
    trainer = hf_trainer(hf, tmp_path, model, gradient_accumulation_steps=2)
    with (
        pytest.raises(RuntimeError, match="boom"),
        HFProbeCallback({"gns": 1, "rrc": 1}, store=tmp_path / "runs.db") as probes,
    ):
        trainer.add_callback(probes)
        trainer.train()
    mine.remove()
    run, curves = run_of(tmp_path)
    assert run["status"] == "failed" and curves["lr"][0].tolist() == [0, 1, 2]
    assert curves["gns/trace"][0].tolist() == [0, 1, 2]
    hooked = [m for m in model.modules() if m._forward_pre_hooks]
    assert hooked == [] and all(not p._post_accumulate_grad_hooks for p in model.parameters())


def test_hf_evaluation_metrics_land_as_val_keys_and_non_numbers_are_skipped(hf, tmp_path):
    """eval_loss and a compute_metrics scalar land as val_loss / val_acc on the update they follow; a list-valued
    metric and the timings are not kept (and do not stop training)."""
    from lrlab.integrations.hf import HFProbeCallback

    trainer = hf_trainer(
        hf,
        tmp_path,
        tiny_gpt2(hf),
        {"eval_dataset": Tokens(rows=8), "compute_metrics": lambda p: {"acc": 0.5, "per_class": [0.1, 0.2]}},
        per_device_eval_batch_size=4,
        eval_strategy="steps",
        eval_steps=12,
    )
    trainer.add_callback(HFProbeCallback(["updates"], store=tmp_path / "runs.db"))
    trainer.train()
    run, curves = run_of(tmp_path)
    assert run["status"] == "done"
    assert curves["val_loss"][0].tolist() == [11, 23] and curves["val_acc"][1].tolist() == [0.5, 0.5]
    assert not [name for name in curves if "per_class" in name or "runtime" in name or "per_second" in name]
