"""The PyTorch Lightning integration on a tiny module: lrlab's LionAR and WSD through ``configure_optimizers``
(``interval="step"``), probe records and the loss in the store, exact LR after a checkpoint resume, and the curve
accepted by ``lrlab fit``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from lrlab.cli.app import _OneLineErrors
from lrlab.cli.laws import register
from lrlab.integrations import write_curve
from lrlab.schedules import parse
from lrlab.store import Store

SPEC = "wsd:peak=1e-2,warmup=4,total=24,decay=0.25"
STEPS = 24


@pytest.fixture
def pl(extra):
    extra("lrlab.integrations.lightning")
    return extra("pytorch_lightning")


def module(pl):
    from lrlab.integrations.lightning import configure_optimizers

    class Tiny(pl.LightningModule):
        """A two-layer regression; ``seen`` holds (global_step, LR, loss) of every batch it trained on."""

        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
            self.seen: list[tuple[int, float, float]] = []

        def training_step(self, batch, index):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            lr = self.trainer.optimizers[0].param_groups[0]["lr"]
            self.seen.append((self.trainer.global_step, lr, loss.item()))
            return loss

        def configure_optimizers(self):
            return configure_optimizers(self.parameters(), "lionar", SPEC, weight_decay=0.1)

    return Tiny()


def data():
    x = torch.randn(512, 8, generator=torch.Generator().manual_seed(0))
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x[:, :4].sum(1, keepdim=True)), batch_size=8)


def fit(pl, root, callbacks=(), accumulate=1, ckpt_path=None, checkpoint_every=0, probe=None):
    from lrlab.integrations.lightning import LightningProbeCallback

    probe = probe or LightningProbeCallback(["updates", "rrc"], every=5, store=root / "runs.db")
    model = module(pl)
    saves = (
        [pl.callbacks.ModelCheckpoint(every_n_train_steps=checkpoint_every, save_top_k=-1)] if checkpoint_every else []
    )
    trainer = pl.Trainer(
        max_steps=STEPS,
        accumulate_grad_batches=accumulate,
        callbacks=[probe, *callbacks, *saves],
        default_root_dir=root,
        logger=False,
        enable_checkpointing=bool(checkpoint_every),
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(model, data(), ckpt_path=ckpt_path)
    return model


def run_of(root):
    with Store(root / "runs.db") as store:
        (run,) = store.runs("lightning")
        return run, {n: store.curve(run["id"], n) for n in store.metric_names(run["id"])}


def test_lightning_lr_per_update_is_the_schedules_and_records_land_in_the_store(pl, tmp_path):
    """accumulate_grad_batches=2: 24 updates over 48 batches, update t at lr(t) exactly; train_loss is the mean of
    the update's two batch losses; the probes every 5 updates."""
    model = fit(pl, tmp_path, accumulate=2)
    run, curves = run_of(tmp_path)
    expected = parse(SPEC).values(STEPS)
    assert len(model.seen) == 2 * STEPS
    assert [s for s, _, _ in model.seen] == [t for t in range(STEPS) for _ in range(2)]
    assert [lr for _, lr, _ in model.seen[::2]] == expected.tolist()
    assert curves["lr"][0].tolist() == list(range(STEPS)) and curves["lr"][1].tolist() == expected.tolist()
    per_update = np.array([loss for _, _, loss in model.seen]).reshape(STEPS, 2).mean(axis=1)
    assert np.allclose(curves["train_loss"][1], per_update, rtol=1e-6)
    for name in ("update_rel", "rrc", "rrc/net.0", "rrc/net.2", "angle/net.0.weight/max"):
        assert curves[name][0].tolist() == [0, 5, 10, 15, 20], name
        assert np.all(np.isfinite(curves[name][1])) and np.all(curves[name][1] > 0), name
    assert run["status"] == "done" and run["meta"]["accumulate_grad_batches"] == 2


def test_lightning_resume_from_a_checkpoint_continues_at_the_exact_lr(pl, tmp_path):
    """Stopped after update 12 and resumed from Lightning's checkpoint, every update runs at the LR of the
    uninterrupted run, and the store holds each update once."""
    whole = fit(pl, tmp_path / "whole")

    class StopAt12(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 12:
                trainer.should_stop = True

    first = fit(pl, tmp_path / "split", [StopAt12()], checkpoint_every=12)
    run, _ = run_of(tmp_path / "split")
    assert run["status"] == "interrupted" and run["final"]["steps_done"] == 12
    (ckpt,) = (tmp_path / "split").rglob("*step=12.ckpt")
    second = fit(pl, tmp_path / "split", ckpt_path=ckpt)
    lrs = [lr for _, lr, _ in first.seen + second.seen]
    assert [s for s, _, _ in first.seen + second.seen] == list(range(STEPS))
    assert lrs == [lr for _, lr, _ in whole.seen] == parse(SPEC).values(STEPS).tolist()
    run, curves = run_of(tmp_path / "split")
    assert run["status"] == "done" and run["attempts"] == 2
    assert curves["lr"][0].tolist() == list(range(STEPS)) and curves["lr"][1].tolist() == lrs


def test_lightning_curve_is_accepted_by_lrlab_fit(pl, tmp_path):
    fit(pl, tmp_path)
    run, _ = run_of(tmp_path)
    write_curve(tmp_path / "runs.db", tmp_path / "pl.csv", run_id=run["id"])
    app = typer.Typer(cls=_OneLineErrors)
    register(app)
    out = tmp_path / "fit.json"
    result = CliRunner().invoke(app, ["fit", str(tmp_path / "pl.csv"), "--law", "momentum", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "momentum fitted" in result.output


def test_lightning_a_failing_step_records_the_run_failed_with_the_updates_before(pl, tmp_path):
    from lrlab.integrations.lightning import LightningProbeCallback

    model = module(pl)
    step = model.training_step

    def failing(batch, batch_idx):
        if model.trainer.global_step == 5:
            raise RuntimeError("boom")
        return step(batch, batch_idx)

    model.training_step = failing
    trainer = _trainer(pl, tmp_path, LightningProbeCallback(["updates"], store=tmp_path / "runs.db"), max_steps=STEPS)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(model, data())
    run, curves = run_of(tmp_path)
    assert run["status"] == "failed" and run["final"]["steps_done"] == 5
    assert curves["lr"][0].tolist() == list(range(5))


def _mse(net, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(net(x), y)


def test_lightning_gns_and_sharpness_equal_a_direct_computation(pl, tmp_path):
    """gns (two batches an update; training_step calls a submodule, so the batches' starts come from the
    callback, not a forward hook) and sharpness at update 0 equal the noise-scale estimates from each batch's own
    gradient and the top Hessian eigenvalue of the first batch's loss, computed directly on the initial weights."""
    from lrlab.integrations.lightning import LightningProbeCallback
    from lrlab.probes import noise_scale_estimates
    from lrlab.probes.sharpness import sharpness

    probe = LightningProbeCallback(
        {"gns": 1, "sharpness": 5},
        store=tmp_path / "runs.db",
        sharpness_loss=lambda module, batch: _mse(module.net, batch),
    )
    fit(pl, tmp_path, accumulate=2, probe=probe)
    reference = module(pl).net
    params = list(reference.parameters())
    first, second = list(data())[:2]  # update 0's batches (the loader does not shuffle)
    grads = [torch.cat([g.flatten() for g in torch.autograd.grad(_mse(reference, b), params)]) for b in (first, second)]
    mean = (grads[0] + grads[1]) / 2
    g2, trace = noise_scale_estimates(sum(float(g @ g) for g in grads) / 2, float(mean @ mean), 8, 16)
    top, _ = sharpness(lambda: _mse(reference, first), params)
    _, curves = run_of(tmp_path)
    assert curves["gns/grad_sq"][0].tolist() == list(range(STEPS))
    assert curves["gns/grad_sq"][1][0] == pytest.approx(g2, rel=1e-4)
    assert curves["gns/trace"][1][0] == pytest.approx(trace, rel=1e-4)
    assert curves["sharpness"][0].tolist() == [0, 5, 10, 15, 20]
    assert curves["sharpness"][1][0] == pytest.approx(top, rel=1e-4)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda cb: cb(["sharpness"]), "sharpness_loss: the sharpness probe needs sharpness_loss"),
        (lambda cb: cb({"gns": 1}).on_train_start(_Accumulating(1), None), "accumulate_grad_batches >= 2"),
    ],
)
def test_lightning_bad_probe_setups_are_one_line_input_errors(pl, make, message):
    from lrlab.errors import InputError
    from lrlab.integrations.lightning import LightningProbeCallback

    with pytest.raises(InputError, match=message):
        make(LightningProbeCallback)


class _Accumulating:
    """What on_train_start reads of a trainer."""

    def __init__(self, accumulate):
        self.accumulate_grad_batches, self.lr_scheduler_configs, self.estimated_stepping_batches = accumulate, [], 10
        self.global_step, self.is_global_zero, self.default_root_dir = 0, True, "."


def _trainer(pl, root, callback, **options):
    return pl.Trainer(
        callbacks=[callback],
        default_root_dir=root,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        **options,
    )


def test_lightning_skipped_batches_and_validation_metrics_are_recorded(pl, tmp_path):
    """A training_step that returns None skips its batch (Lightning's way): the update's train_loss is the mean of
    the other batch; what validation logs joins the row of the update before it."""
    from lrlab.integrations.lightning import LightningProbeCallback

    model = module(pl)
    step = model.training_step
    model.training_step = lambda batch, batch_idx: None if batch_idx % 4 == 1 else step(batch, batch_idx)

    def validation_step(batch, batch_idx):
        model.log("val_loss", _mse(model.net, batch))

    model.validation_step = validation_step
    callback = LightningProbeCallback(["updates"], store=tmp_path / "runs.db")
    trainer = _trainer(
        pl,
        tmp_path,
        callback,
        max_steps=STEPS,
        accumulate_grad_batches=2,
        val_check_interval=16,
        num_sanity_val_steps=0,
        limit_val_batches=2,
    )
    trainer.fit(model, data(), data())
    run, curves = run_of(tmp_path)
    assert run["status"] == "done"
    per_update = [np.mean([loss for s, _, loss in model.seen if s == t]) for t in range(STEPS)]
    assert len(model.seen) == 36  # batch 4k + 1 never ran: updates 0, 2, 4, ... trained on one batch
    assert np.allclose(curves["train_loss"][1], per_update, rtol=1e-6)
    assert curves["val_loss"][0].tolist() == [7, 15, 23]  # after batches 16, 32, 48: updates 8, 16, 24 done
    assert np.all(np.isfinite(curves["val_loss"][1]))


def test_lightning_refuses_a_schedule_shorter_than_an_epoch_run(pl, tmp_path):
    """Trained by epochs (no max_steps), the run's update count comes from Lightning's estimate: 64 updates
    against a 24-step schedule is refused before training."""
    from lrlab.errors import InputError
    from lrlab.integrations.lightning import LightningProbeCallback

    trainer = _trainer(pl, tmp_path, LightningProbeCallback(["updates"], store=tmp_path / "runs.db"), max_epochs=1)
    with pytest.raises(InputError, match="covers 24 steps but the run takes 64 updates"):
        trainer.fit(module(pl), data())


@pytest.mark.parametrize(("interval", "checkpoint_every"), [(3, 0), (4, 2)])
def test_lightning_validation_inside_an_update_or_after_a_checkpoint_reaches_its_row(
    pl, tmp_path, interval, checkpoint_every
):
    """Validation every 3 batches (inside every other 2-batch update) or right after a step checkpoint flushed the
    row: its val_loss still lands at the last update done before it (the store merges the late value)."""
    from lrlab.integrations.lightning import LightningProbeCallback

    model = module(pl)
    model.validation_step = lambda batch, batch_idx: model.log("val_loss", _mse(model.net, batch))
    saves = [pl.callbacks.ModelCheckpoint(every_n_train_steps=checkpoint_every)] if checkpoint_every else []
    trainer = _trainer(
        pl,
        tmp_path,
        LightningProbeCallback(["updates"], store=tmp_path / "runs.db"),
        max_steps=STEPS,
        accumulate_grad_batches=2,
        val_check_interval=interval,
        num_sanity_val_steps=0,
        limit_val_batches=1,
    )
    trainer.callbacks.extend(saves)
    trainer.fit(model, data(), data())
    _, curves = run_of(tmp_path)
    expected = sorted({b // 2 - 1 for b in range(interval, 2 * STEPS + 1, interval)})
    assert curves["val_loss"][0].tolist() == expected
    assert curves["train_loss"][0].tolist() == list(range(STEPS))
    assert bool(list(tmp_path.rglob("*.ckpt"))) == bool(checkpoint_every)  # the flush before validation happened
