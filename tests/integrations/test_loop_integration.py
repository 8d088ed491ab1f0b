"""lrlab.integrations in your own loop: optimizer_and_schedule, the ProbeRecorder's step context into the store
and metrics.jsonl, write_curve into ``lrlab fit``, and the one-line errors for bad input."""

from __future__ import annotations

import json

import pytest
import torch
import typer
from typer.testing import CliRunner

from lrlab.cli.app import _OneLineErrors
from lrlab.cli.laws import register
from lrlab.errors import InputError
from lrlab.integrations import ProbeRecorder, optimizer_and_schedule, write_curve
from lrlab.integrations.optimizers import check_covers
from lrlab.probes import noise_scale_estimates
from lrlab.probes.sharpness import sharpness
from lrlab.schedules import parse
from lrlab.store import Store
from lrlab.train.metrics import MemorySink

SPEC = "wsd:peak=1e-2,warmup=3,total=30,decay=0.3"


def tiny():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))


def own_loop(recorder, steps=30, fail_at=None):
    """The README's five lines, on one regression batch (a smooth loss curve)."""
    model = tiny()
    opt, sched = optimizer_and_schedule(model.parameters(), "lionar", SPEC, weight_decay=0.1)
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    with recorder as probes:
        for step in range(steps):
            with probes.step(model, opt, step) as ctx:
                if step == fail_at:
                    raise RuntimeError("boom")
                loss = torch.nn.functional.mse_loss(model(x), x[:, :4].sum(1, keepdim=True))
                loss.backward()
                opt.step()
                sched.step()
                opt.zero_grad()
                ctx.loss = loss.item()


def test_own_loop_records_the_schedule_probes_and_loss_in_the_store_and_jsonl(tmp_path):
    db = tmp_path / "runs.db"
    own_loop(ProbeRecorder(["updates", "rrc"], every=10, out_dir=tmp_path, store=db, study="mine", config={"a": 1}))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(30))
    assert [r["lr"] for r in rows] == parse(SPEC).values(30).tolist()
    assert [r["step"] for r in rows if "rrc/0" in r] == [0, 10, 20]
    assert all(r["update_rel"] > 0 for r in rows if "update_rel" in r)
    with Store(db) as store:
        (run,) = store.runs("mine")
        steps, loss = store.curve(run["id"], "train_loss")
        assert steps.tolist() == list(range(30)) and loss.tolist() == [r["train_loss"] for r in rows]
        assert run["status"] == "done" and run["final"]["final_train_loss"] == rows[-1]["train_loss"]
    write_curve(tmp_path / "metrics.jsonl", tmp_path / "own.csv")
    app = typer.Typer(cls=_OneLineErrors)
    register(app)
    result = CliRunner().invoke(
        app, ["fit", str(tmp_path / "own.csv"), "--law", "momentum", "--out", str(tmp_path / "f.json")]
    )
    assert result.exit_code == 0, result.output


def test_a_loop_that_raises_is_recorded_failed_with_its_rows(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        own_loop(ProbeRecorder(["updates"], store=tmp_path / "runs.db", config={"b": 2}), fail_at=7)
    with Store(tmp_path / "runs.db") as store:
        (run,) = store.runs("integrations")
        assert run["status"] == "failed"
        assert store.curve(run["id"], "lr")[0].tolist() == list(range(7))


def _start(recorder, **needs):
    model = tiny()
    return recorder.start_step(model, torch.optim.SGD(model.parameters(), lr=0.1), 0, **needs)


def _unannounced_backward():
    """A loop that asks for gns but steps the optimizer without calling backward_done()."""
    recorder = ProbeRecorder(["gns"], sink=MemorySink())
    ctx = _start(recorder, micro_batches=2)
    for x in torch.randn(2, 4, 8).unbind():
        (ctx.model(x).sum() / 2).backward()
    recorder.end_step(1.0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ProbeRecorder(["nope"]), "probes: unknown probe 'nope' \\(available: updates, rrc, gns, sharpness\\)"),
        (lambda: ProbeRecorder(every=0), "every=0 must be >= 1"),
        (lambda: ProbeRecorder("updates"), "probes: a list of names or a dict of names to cadences"),
        (lambda: ProbeRecorder(["rrc", "rrc"]), "probes: probe 'rrc' is named twice"),
        (lambda: ProbeRecorder([["gns"]]), "probes: unknown probe \\['gns'\\]"),
        (lambda: ProbeRecorder({"updates": "5"}), "probes: the cadence of 'updates' must be a whole number"),
        (lambda: ProbeRecorder({"updates": 2.5}), "probes: the cadence of 'updates' must be a whole number"),
        (lambda: ProbeRecorder({"updates": 10, "rrc": 0}), "every=0 must be >= 1"),
        (lambda: _start(ProbeRecorder(["sharpness"], sink=MemorySink())), "loss_fn: the sharpness probe needs loss_fn"),
        (lambda: _start(ProbeRecorder(["gns"], sink=MemorySink())), "micro_batches: the gns probe needs micro_batches"),
        (lambda: _unannounced_backward(), "backward_done: the gns probe needs backward_done\\(\\)"),
        (lambda: ProbeRecorder(store="x.db").open(0), "config: a run in the store needs a config"),
        (lambda: optimizer_and_schedule(tiny().parameters(), "sgd", SPEC), "optimizer: unknown optimizer 'sgd'"),
        (lambda: optimizer_and_schedule(tiny().parameters(), "lion", "wsd:peak=-1"), "peak"),
        (lambda: optimizer_and_schedule(tiny().parameters(), "lion", SPEC, bogus=1), "options: options \\(bogus\\)"),
        (lambda: check_covers(optimizer_and_schedule(tiny().parameters(), "lion", SPEC)[1], 31), "covers 30 steps"),
        (lambda: write_curve("nothing.db", "c.csv", run_id=1), "records"),
        (lambda: (Store("r.db").close(), write_curve("r.db", "c.csv"))[1], "run_id: a run in the store is named by"),
        (lambda: (Store("r.db").close(), write_curve("r.db", "c.csv", run_id=7))[1], "no train_loss records"),
    ],
)
def test_bad_input_is_one_line_input_error(tmp_path, monkeypatch, make, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


def test_a_table_schedule_needs_a_row_past_the_last_update(tmp_path):
    (tmp_path / "lr.csv").write_text("step,lr\n" + "".join(f"{t},0.001\n" for t in range(10)))
    _, sched = optimizer_and_schedule(tiny().parameters(), "adamw", str(tmp_path / "lr.csv"))
    check_covers(sched, 9)
    with pytest.raises(InputError, match="needs one row more"):
        check_covers(sched, 10)


def test_write_curve_refuses_a_run_without_every_updates_lr(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 0, "lr": 1e-3, "train_loss": 3}\n{"step": 2, "lr": 1e-3}\n')
    with pytest.raises(InputError, match="not recorded at every update"):
        write_curve(tmp_path / "metrics.jsonl", tmp_path / "c.csv")


def test_the_docs_five_line_recipe_runs_and_records(tmp_path, monkeypatch):
    """The own-loop block of docs/integrations.md and of the README (the same lines), run as written on a tiny
    model."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "integrations.md").read_text()
    recipe = text.split("## Your own loop", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert recipe in (root / "README.md").read_text()
    assert len(recipe.strip().splitlines()) == 6  # the import and five lines
    monkeypatch.chdir(tmp_path)
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))

    def train_step(model, opt, sched, batch):
        loss = torch.nn.functional.mse_loss(model(batch[0]), batch[1])
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        return loss.item()

    names = {"model": tiny(), "batches": [(x, x[:, :4].sum(1, keepdim=True))] * 12, "train_step": train_step}
    exec(recipe, names)
    with Store(tmp_path / "runs.db") as store:
        (run,) = store.runs("mine")
        assert run["status"] == "done" and store.curve(run["id"], "train_loss")[0].tolist() == list(range(12))
        assert store.curve(run["id"], "rrc")[0].tolist() == [0, 10]


def test_own_loop_gns_and_sharpness_equal_a_direct_computation(tmp_path):
    """gns and sharpness in your own loop (two micro-batches an update, clipped before backward_done): at update
    0 (the EMAs hold one value) they equal the noise-scale estimates from each micro-batch's own gradient and the
    top Hessian eigenvalue of the first micro-batch's loss, computed directly on the initial weights."""
    micro = [torch.randn(16, 8, generator=torch.Generator().manual_seed(i)) for i in range(2)]

    def loss_of(model, x):
        return torch.nn.functional.mse_loss(model(x), x[:, :4].sum(1, keepdim=True))

    reference = tiny()
    grads = [
        torch.cat([g.flatten() for g in torch.autograd.grad(loss_of(reference, x), reference.parameters())])
        for x in micro
    ]
    small_sq = sum(float(g @ g) for g in grads) / 2
    mean = (grads[0] + grads[1]) / 2
    g2, trace = noise_scale_estimates(small_sq, float(mean @ mean), 16, 32)
    top, _ = sharpness(lambda: loss_of(reference, micro[0]), list(reference.parameters()))

    model = tiny()
    opt, sched = optimizer_and_schedule(model.parameters(), "adamw", SPEC)
    sink = MemorySink()
    with ProbeRecorder({"gns": 1, "sharpness": 5}, sink=sink) as probes:
        for step in range(6):
            with probes.step(model, opt, step, micro_batches=2, loss_fn=lambda: loss_of(model, micro[0])) as ctx:
                losses = []
                for x in micro:  # each micro-batch's forward after the one before's backward
                    losses.append(loss_of(model, x) / 2)
                    losses[-1].backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1e-3)  # gns reads the raw gradients anyway
                probes.backward_done()
                opt.step()
                sched.step()
                opt.zero_grad()
                ctx.loss = sum(x.item() for x in losses)
    rows = {r["step"]: r for r in sink.rows}
    assert rows[0]["gns/grad_sq"] == pytest.approx(g2, rel=1e-4)
    assert rows[0]["gns/trace"] == pytest.approx(trace, rel=1e-4)
    assert rows[0]["sharpness"] == pytest.approx(top, rel=1e-5)
    assert [t for t in rows if "sharpness" in rows[t]] == [0, 5]
    assert [t for t in rows if "gns/trace" in rows[t]] == list(range(6))
    assert "sharpness/adam" in rows[5] and "sharpness/adam" not in rows[0]  # Adam's state exists after update 0
