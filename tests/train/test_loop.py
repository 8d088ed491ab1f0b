"""The training loop: determinism, exact resume, divergence, interruption, failures, callbacks, accumulation."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
import torch

import lrlab.train.loop
from lrlab.errors import InputError
from lrlab.train import Callback, Trainer, train
from lrlab.train.checkpoint import list_checkpoints
from lrlab.train.corpus import load_data


def losses(rows: list[dict]) -> list[float]:
    return [r["train_loss"] for r in rows]


def test_same_seed_same_curve_and_other_seed_differs(tmp_path, fast_config, read_metrics):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        assert train(fast_config(f"seed={seed}"), tmp_path / name).status == "done"
    a, b, c = (read_metrics(tmp_path / n) for n in "abc")
    assert losses(a) == losses(b)
    assert [r["val_loss"] for r in a if "val_loss" in r] == [r["val_loss"] for r in b if "val_loss" in r]
    assert losses(a) != losses(c)


def test_rows_follow_the_step_convention(tmp_path, fast_config, read_metrics):
    cfg = fast_config("steps=7", "eval_every=3")
    train(cfg, tmp_path)
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == list(range(7))
    # lr(t) of the constant spec with warmup 2: peak*(t+1)/2 for t < 2
    assert [r["lr"] for r in rows[:3]] == pytest.approx([1.5e-3, 3e-3, 3e-3])
    assert [r["step"] for r in rows if "val_loss" in r] == [2, 5, 6]  # every 3 steps and the last
    assert rows[-1]["tokens"] == 7 * cfg.tokens_per_step
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["status"] == "done" and run["steps_done"] == 7
    assert run["config"]["steps"] == 7 and run["meta"]["torch_version"] == torch.__version__
    assert len(run["meta"]["code_version"]) == 12
    # what the numbers depend on beyond the config: threads, CPU kernel path, the data's fingerprint
    meta = run["meta"]
    assert meta["threads"] == torch.get_num_threads() and meta["cpu_capability"] and meta["cpu_model"]
    assert meta["data_fingerprint"] == load_data(cfg.data).fingerprint()


@pytest.mark.parametrize("length", ["steps=7", "steps=none", "tokens=800"])  # 7 steps each (128 tokens a step)
def test_a_step_lr_table_with_exactly_steps_rows_trains_to_the_end(tmp_path, fast_config, read_metrics, length):
    """No update follows the last, so the LR after it is never asked for: a table of one row per step is enough,
    whether the run's length is given, taken from the table, or from a token budget."""
    table = tmp_path / "lr.csv"
    table.write_text("step,lr\n" + "".join(f"{t},{1e-3 * (7 - t) / 7!r}\n" for t in range(7)))
    extra = ["steps=none"] if length.startswith("tokens") else []
    result = train(fast_config(*extra, length, f"schedule='{table}'"), tmp_path / "run")
    assert result.status == "done" and result.steps_done == 7
    assert [r["lr"] for r in read_metrics(tmp_path / "run")] == pytest.approx([1e-3 * (7 - t) / 7 for t in range(7)])


def test_a_finished_run_resumed_with_more_steps_keeps_every_lr_on_the_schedule(tmp_path, fast_config, read_metrics):
    """The final checkpoint counts every update, so a longer resumed run trains step t at lr(t) (a decaying
    schedule shows an off-by-one at once)."""
    schedule = "schedule='linear:peak=1e-3,total=8,final=0'"
    train(fast_config("steps=4", schedule), tmp_path / "split")
    result = train(fast_config("steps=8", schedule), tmp_path / "split", resume=True)
    assert result.status == "done" and result.steps_done == 8
    want = [1e-3 * (8 - t) / 8 for t in range(8)]
    assert [r["lr"] for r in read_metrics(tmp_path / "split")] == pytest.approx(want)


def test_threads_apply_for_the_run_only(tmp_path, fast_config):
    """config.threads sets torch's thread count while the run trains, and the caller's count comes back."""
    before = torch.get_num_threads()
    seen = []
    probe = type("Probe", (), {"after_step": lambda self, ctx: seen.append(torch.get_num_threads())})()
    other = 2 if before == 1 else 1
    Trainer(fast_config("steps=2", f"threads={other}"), callbacks=[probe]).run()
    assert seen == [other, other] and torch.get_num_threads() == before
    run = train(fast_config("steps=1", f"threads={other}"), tmp_path)
    assert run.status == "done" and json.loads((tmp_path / "run.json").read_text())["meta"]["threads"] == other


def test_resume_reproduces_the_uninterrupted_run_exactly(tmp_path, fast_config, read_metrics):
    train(fast_config("steps=8"), tmp_path / "straight")
    train(fast_config("steps=3"), tmp_path / "split")
    result = train(fast_config("steps=8"), tmp_path / "split", resume=True)
    assert result.status == "done" and result.steps_done == 8
    straight, split = read_metrics(tmp_path / "straight"), read_metrics(tmp_path / "split")
    assert [r["step"] for r in split] == list(range(8))
    assert losses(split) == losses(straight)  # exact, not approximate
    assert [r["lr"] for r in split] == [r["lr"] for r in straight]


def test_resume_drops_rows_logged_after_the_last_checkpoint(tmp_path, fast_config, read_metrics):
    train(fast_config("steps=5", "ckpt_every=2", "keep_last=5"), tmp_path)
    list_checkpoints(tmp_path / "checkpoints")[-1].unlink()  # as if killed after logging steps 4 and 5,
    with open(tmp_path / "metrics.jsonl", "a") as f:  # and in the middle of writing the next row
        f.write('{"step": 5, "lr": 0.0')
    assert list_checkpoints(tmp_path / "checkpoints")[-1].name == "ckpt-00000004.pt"
    train(fast_config("steps=6"), tmp_path, resume=True)
    train(fast_config("steps=6"), tmp_path / "straight")
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == list(range(6))
    assert losses(rows) == losses(read_metrics(tmp_path / "straight"))


def test_keep_last_checkpoints(tmp_path, fast_config):
    train(fast_config("steps=6", "ckpt_every=1", "keep_last=2"), tmp_path)
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["ckpt-00000005.pt", "ckpt-00000006.pt"]


def test_huge_lr_diverges_and_is_recorded(tmp_path, fast_config, read_metrics):
    result = train(fast_config("steps=50", "schedule='constant:peak=1e3'"), tmp_path)
    assert result.status == "diverged"
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["status"] == "diverged" and run["diverged_at"] == result.diverged_at == run["steps_done"]
    rows = read_metrics(tmp_path)
    assert rows[-1]["step"] == result.diverged_at < 50
    last = rows[-1]["train_loss"]
    assert last is None or last > 3.0 * rows[0]["train_loss"]  # null stands for NaN/inf in JSON


def test_loss_above_factor_of_initial_counts_as_divergence(tmp_path, fast_config):
    class Inflate(Callback):
        def on_step_start(self, ctx):  # scale the output layer so the loss blows up at step 2
            if ctx.step == 2:
                with torch.no_grad():
                    ctx.model.lm_head.weight.mul_(500.0)

    result = train(fast_config("divergence_factor=2.0"), tmp_path, callbacks=[Inflate()])
    assert (result.status, result.diverged_at, result.steps_done) == ("diverged", 2, 2)


def test_sigint_stops_after_the_step_with_a_checkpoint(tmp_path, fast_config, read_metrics):
    class CtrlC(Callback):
        def on_step_start(self, ctx):
            if ctx.step == 2:
                os.kill(os.getpid(), signal.SIGINT)

    previous = signal.getsignal(signal.SIGINT)
    result = train(fast_config("steps=20"), tmp_path, callbacks=[CtrlC()])
    assert signal.getsignal(signal.SIGINT) is previous  # handler restored
    assert (result.status, result.steps_done) == ("interrupted", 3)
    assert list_checkpoints(tmp_path / "checkpoints")[-1].name == "ckpt-00000003.pt"
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "interrupted"
    assert [r["step"] for r in read_metrics(tmp_path)] == [0, 1, 2]


def test_error_inside_the_loop_is_recorded_as_failed(tmp_path, fast_config, read_metrics):
    class Boom(Callback):
        def after_step(self, ctx):
            if ctx.step == 1:
                raise RuntimeError("probe broke")

    with pytest.raises(RuntimeError, match="probe broke"):
        train(fast_config(), tmp_path, callbacks=[Boom()])
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["status"] == "failed" and "probe broke" in run["error"] and run["steps_done"] == 1
    assert [r["step"] for r in read_metrics(tmp_path)] == [0]  # what was recorded stays


def test_callbacks_see_the_documented_order_and_can_log(tmp_path, fast_config, read_metrics):
    seen = []

    class Probe:  # duck-typed: no base class needed, missing hooks are skipped
        def on_step_start(self, ctx):
            seen.append(("start", ctx.step, ctx.loss))

        def after_backward(self, ctx):
            grads = [p.grad for p in ctx.model.parameters()]
            seen.append(("backward", ctx.step, all(g is not None for g in grads)))

        def after_step(self, ctx):
            ctx.log({"probe_lr": ctx.lr, "rows": sum(len(x) for x, _ in ctx.batch)})

    train(fast_config("steps=2"), tmp_path, callbacks=[Probe()])
    assert seen == [("start", 0, None), ("backward", 0, True), ("start", 1, None), ("backward", 1, True)]
    rows = read_metrics(tmp_path)
    assert [r["probe_lr"] for r in rows] == [r["lr"] for r in rows]
    assert [r["rows"] for r in rows] == [4, 4]


def test_gradient_accumulation_matches_the_full_batch(tmp_path, fast_config, read_metrics):
    train(fast_config("grad_accum=1"), tmp_path / "one")
    train(fast_config("grad_accum=2"), tmp_path / "two")
    one, two = losses(read_metrics(tmp_path / "one")), losses(read_metrics(tmp_path / "two"))
    assert two == pytest.approx(one, rel=1e-5)


def test_token_budget_sets_the_steps(fast_config):
    cfg = fast_config("steps=none", "tokens=300")  # 128 tokens per step -> ceil(300 / 128) = 3 steps
    assert Trainer(cfg).total_steps == 3 and cfg.tokens_per_step == 128


@pytest.mark.parametrize("decay_embeddings", [False, True])
def test_weight_decay_groups(fast_config, decay_embeddings):
    """Matrices always decay, the embeddings only with decay_embeddings, biases and norm gains never; checked on
    the built optimizer's groups against the model's own tensors, by identity."""
    flag = str(decay_embeddings).lower()
    trainer = Trainer(fast_config(f"decay_embeddings={flag}", "model.bias=true", "model.qk_norm=true"))
    model = trainer.model
    decay_of = {}  # id(tensor) -> weight decay of the one group that holds it
    for g in trainer.optimizer.param_groups:
        for p in g["params"]:
            assert id(p) not in decay_of, "a tensor in two groups"
            decay_of[id(p)] = g["weight_decay"]
    assert set(decay_of) == {id(p) for p in model.parameters()}  # every parameter optimized, once
    assert model.lm_head.weight is model.wte.weight  # tied: one tensor, one decision
    embeddings = [model.wte.weight, model.wpe.weight]
    matrices = [m.weight for b in model.blocks for m in (b.attn.c_attn, b.attn.c_proj, b.mlp.c_fc, b.mlp.c_proj)]
    gains_and_biases = [
        t
        for m in model.modules()
        if isinstance(m, (torch.nn.LayerNorm, torch.nn.Linear)) and m is not model.lm_head
        for t in ((m.bias,) if isinstance(m, torch.nn.Linear) else (m.weight, m.bias))
    ]
    assert len(matrices) == 4 * 2 and len(gains_and_biases) == 4 * 2 + (4 * 2 + 1) * 2  # 2 layers, qk-norm on
    wd = trainer.cfg.weight_decay
    assert wd > 0
    assert [decay_of[id(p)] for p in matrices] == [wd] * len(matrices)
    assert [decay_of[id(p)] for p in embeddings] == [wd if decay_embeddings else 0.0] * 2
    assert [decay_of[id(p)] for p in gains_and_biases] == [0.0] * len(gains_and_biases)


@pytest.mark.parametrize("name", ["torch-adamw", "adamw", "giadamw", "lion", "liona", "lionar"])
def test_every_optimizer_learns_and_resumes_exactly(name, tmp_path, fast_config, read_metrics):
    # Lion's sign updates need a smaller LR; LionAR keeps row norms fixed, so its logits grow only through gains
    peak = {"lion": "3e-4", "liona": "3e-4", "lionar": "1e-2"}.get(name, "3e-3")
    cfg = [f"optimizer={name}", f"schedule='constant:peak={peak},warmup=2'", "eval_every=100"]
    train(fast_config(*cfg, "steps=30"), tmp_path / "straight")
    curve = losses(read_metrics(tmp_path / "straight"))
    assert sum(curve[-5:]) / 5 < curve[0] - 0.3  # from ~ln(256) = 5.5 nats: learning
    train(fast_config(*cfg, "steps=3"), tmp_path / "split")
    train(fast_config(*cfg, "steps=6"), tmp_path / "split", resume=True)
    assert losses(read_metrics(tmp_path / "split")) == curve[:6]


def test_resume_into_a_different_model_is_an_input_error(tmp_path, fast_config):
    train(fast_config("steps=2"), tmp_path)
    with pytest.raises(InputError, match="does not fit this config"):
        train(fast_config("steps=4", "model.n_layer=3"), tmp_path, resume=True)
    with pytest.raises(InputError, match="no checkpoint"):
        train(fast_config("steps=4"), tmp_path / "empty", resume=True)


def test_resume_with_another_batch_size_or_seed_is_an_input_error(tmp_path, fast_config):
    """The same model and optimizer would load, but the batches would not continue the run's stream."""
    base = fast_config("steps=2")
    train(base, tmp_path)
    with pytest.raises(InputError, match=rf"batch_size \({base.batch_size} -> {2 * base.batch_size}\)"):
        train(fast_config("steps=4", f"batch_size={2 * base.batch_size}"), tmp_path, resume=True)
    with pytest.raises(InputError, match=r"seed \(0 -> 5\)"):
        train(fast_config("steps=4", "seed=5"), tmp_path, resume=True)


def test_a_resume_keeps_the_validation_set(tmp_path, fast_config):
    """Compared as the set it is: (batches, sequences, seed), whichever keys say so."""
    train(fast_config("steps=2", "eval_batch_size=8"), tmp_path)
    with pytest.raises(
        InputError, match=re.escape("validation set (batches, sequences, seed: (1, 8, 0) -> (1, 4, 0))")
    ):
        train(fast_config("steps=4"), tmp_path, resume=True)
    with pytest.raises(InputError, match=re.escape("(1, 8, 0) -> (1, 8, 3)")):
        train(fast_config("steps=4", "eval_batch_size=8", "eval_seed=3"), tmp_path, resume=True)
    with pytest.raises(InputError, match=re.escape("(1, 8, 0) -> (2, 8, 0)")):
        train(fast_config("steps=4", "eval_batch_size=8", "eval_batches=2"), tmp_path, resume=True)
    assert train(fast_config("steps=3", "eval_batch_size=8", "eval_seed=0"), tmp_path, resume=True).steps_done == 3


def test_a_checkpoint_from_before_the_validation_keys_resumes_on_its_own_validation_set(tmp_path, fast_config):
    train(fast_config("steps=2"), tmp_path)
    (path,) = list_checkpoints(tmp_path / "checkpoints")[-1:]
    saved = torch.load(path, weights_only=True)
    for key in ("eval_batch_size", "eval_seed"):
        del saved["config"][key]
    torch.save(saved, path)
    with pytest.raises(InputError, match=re.escape("(1, 4, 0) -> (1, 8, 9)")):
        train(fast_config("steps=4", "eval_batch_size=8", "eval_seed=9"), tmp_path, resume=True)
    assert train(fast_config("steps=3", "eval_batch_size=4"), tmp_path, resume=True).steps_done == 3  # the same set


def test_eval_batch_size_and_eval_seed_fix_the_validation_set(fast_config):
    """By default the validation batches are drawn at the run's batch size and seed; with eval_batch_size and
    eval_seed set, runs of another batch size or seed score the same weights on the same sequences."""
    own = Trainer(fast_config("batch_size=8", "eval_batches=2"))
    weights = own.model.state_dict()

    def scored(*overrides: str) -> float:
        trainer = Trainer(fast_config("eval_batches=2", *overrides))
        trainer.model.load_state_dict(weights)
        return trainer.evaluate()

    assert scored("batch_size=4", "eval_batch_size=8") == pytest.approx(own.evaluate(), rel=1e-6)
    assert scored("batch_size=4", "eval_batch_size=8", "seed=7", "eval_seed=0") == pytest.approx(
        own.evaluate(), rel=1e-6
    )
    assert scored("batch_size=4") != pytest.approx(own.evaluate(), rel=1e-4)  # other sequences
    assert scored("batch_size=8", "seed=7") != pytest.approx(own.evaluate(), rel=1e-4)
    # micro-batches cut the validation batches too
    assert scored("batch_size=4", "eval_batch_size=8", "grad_accum=2") == pytest.approx(own.evaluate(), rel=1e-6)


def test_resume_accepts_the_same_data_file_by_another_path(tmp_path, fast_config, text_file, monkeypatch):
    train(fast_config("steps=2"), tmp_path / "run")
    monkeypatch.chdir(Path(text_file).parent)
    result = train(fast_config("steps=3", f"data='./{Path(text_file).name}'"), tmp_path / "run", resume=True)
    assert result.status == "done" and result.steps_done == 3


class _DoubleCtrlC(Callback):
    """Ctrl-C at the start of step 1, and again once update 1 is applied."""

    def on_step_start(self, ctx):
        if ctx.step == 1:
            os.kill(os.getpid(), signal.SIGINT)

    def after_step(self, ctx):
        if ctx.step == 1:
            os.kill(os.getpid(), signal.SIGINT)


def test_a_repeated_ctrl_c_within_a_second_is_the_same_request(tmp_path, fast_config):
    result = train(fast_config("steps=20"), tmp_path, callbacks=[_DoubleCtrlC()])
    assert (result.status, result.steps_done) == ("interrupted", 2)
    assert list_checkpoints(tmp_path / "checkpoints")[-1].name == "ckpt-00000002.pt"


def test_a_later_second_ctrl_c_aborts_at_once_and_is_recorded(tmp_path, fast_config, monkeypatch):
    monkeypatch.setattr(lrlab.train.loop._StopSignal, "repeat_window_s", 0.0)  # every repeat counts as later
    with pytest.raises(KeyboardInterrupt):
        train(fast_config("steps=20"), tmp_path, callbacks=[_DoubleCtrlC()])
    run = json.loads((tmp_path / "run.json").read_text())
    assert (run["status"], run["steps_done"]) == ("interrupted", 1)
    assert not (tmp_path / "checkpoints").exists()


def test_probes_log_under_their_names_and_never_change_training(tmp_path, fast_config, read_metrics):
    train(fast_config("grad_accum=2"), tmp_path / "plain")
    probes = "probes=['updates', 'rrc', 'gns', 'sharpness']"
    train(fast_config("grad_accum=2", probes, "probe_every=2"), tmp_path / "probed")
    plain, probed = read_metrics(tmp_path / "plain"), read_metrics(tmp_path / "probed")
    assert losses(plain) == losses(probed)
    assert [r.get("val_loss") for r in plain] == [r.get("val_loss") for r in probed]
    first, second = probed[0], probed[1]
    for key in ("update_norm", "update_rel", "rrc", "gns/trace", "sharpness", "sharpness/lr_x"):
        assert key in first and key not in second
    assert any(k.startswith("rrc/blocks.0.") for k in first)
    assert any(k.startswith("angle/") and k.endswith("/max") for k in first)
    assert "sharpness/adam" in probed[2]  # from the second probe step on, Adam's state exists
    with pytest.raises(InputError, match="unknown probe 'nope' \\(available: updates, rrc, gns, sharpness\\)"):
        Trainer(fast_config("probes=['nope']"))


def test_each_checkpoint_is_written_once(tmp_path, fast_config, monkeypatch):
    saved = []
    real = lrlab.train.loop.save_checkpoint
    monkeypatch.setattr(
        lrlab.train.loop, "save_checkpoint", lambda d, step, *a: saved.append(step) or real(d, step, *a)
    )
    train(fast_config("steps=6", "ckpt_every=3"), tmp_path)
    assert saved == [3, 6]
