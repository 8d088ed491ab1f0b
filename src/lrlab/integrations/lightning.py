"""lrlab probes, records and schedules in PyTorch Lightning (``pip install 'lrlab[lightning]'``).

    class Model(pl.LightningModule):
        def configure_optimizers(self):
            return configure_optimizers(self.parameters(), "lionar", "wsd:peak=1e-3,warmup=20,total=200",
                                        weight_decay=0.1)

    pl.Trainer(max_steps=200, callbacks=[LightningProbeCallback(store="runs.db")]).fit(Model(), data)

:func:`configure_optimizers` returns the optimizer with lrlab's ``ScheduleLR`` at ``interval="step"``: Lightning
steps it once per optimizer update (after ``accumulate_grad_batches`` batches), so update ``t`` runs at ``lr(t)``,
and a Lightning checkpoint holds the scheduler's step, so ``fit(..., ckpt_path=...)`` resumes at the exact LR.

Each update ``t`` (``trainer.global_step`` before it) is one row: the LR it ran at, the probe values and
``train_loss``, the mean over its batches of the ``loss`` that ``training_step`` returned. ``gns`` (with
``accumulate_grad_batches >= 2``) takes each batch's start from ``on_train_batch_start``; ``sharpness`` needs
``sharpness_loss(module, batch) -> loss`` (Lightning's ``training_step`` may log and return a dict, so the
callback does not call it). Hooks: ``on_train_batch_start`` (each batch; the first of an update starts its probes),
``on_before_optimizer_step`` (its gradients are complete, before Lightning clips them),
``on_train_batch_end`` (once ``global_step`` has advanced: the update is applied), ``on_save_checkpoint`` (rows
flushed first), ``on_train_end`` and ``on_exception`` (the run's status: done, interrupted or failed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from lrlab.errors import InputError
from lrlab.integrations.optimizers import check_covers, optimizer_and_schedule
from lrlab.integrations.recorder import DEFAULT, RESERVED, ProbeRecorder


def configure_optimizers(params: Iterable[Any], optimizer: str, schedule: Any, **options: Any) -> dict[str, Any]:
    """What ``LightningModule.configure_optimizers`` returns: lrlab's ``optimizer`` over ``params`` with
    ``options``, and ``ScheduleLR(schedule)`` stepped after every optimizer update."""
    opt, sched = optimizer_and_schedule(params, optimizer, schedule, **options)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}


class LightningProbeCallback(pl.Callback):
    """Runs lrlab probes (``updates``, ``rrc``, ``gns``, ``sharpness``) every ``every`` updates and records every
    update's row.

    ``probes`` (names, or names to cadences), ``out_dir``, ``store``, ``study``, ``config``, ``sink``: as
    :class:`lrlab.integrations.ProbeRecorder`; without ``config`` the store's run is named by the trainer's
    ``default_root_dir``. ``sharpness_loss(module, batch)``: the loss of a batch as ``training_step`` computes it,
    for ``sharpness`` (required with it).
    """

    def __init__(
        self,
        probes: Any = DEFAULT,
        every: int = 10,
        *,
        out_dir: str | Path | None = None,
        store: Any = None,
        study: str = "lightning",
        config: dict[str, Any] | None = None,
        sink: Any = None,
        sharpness_loss: Callable[[pl.LightningModule, Any], Any] | None = None,
    ) -> None:
        self.recorder = ProbeRecorder(
            probes, every, out_dir=out_dir, store=store, study=study, config=config, sink=sink
        )
        if "sharpness" in self.recorder.names and sharpness_loss is None:
            raise InputError("the sharpness probe needs sharpness_loss=(module, batch) -> loss", "sharpness_loss")
        self.sharpness_loss = sharpness_loss
        self._losses: list[torch.Tensor] = []
        self._before_validation: dict[str, Any] = {}

    def on_train_start(self, trainer, pl_module):
        updates = trainer.estimated_stepping_batches  # min(max_steps, epochs x updates an epoch); -1 or inf: unknown
        for config in trainer.lr_scheduler_configs:
            if 0 <= updates < math.inf:
                check_covers(config.scheduler, int(updates))
        self.recorder = self.recorder.begin(
            trainer.global_step,
            integration="lightning",
            main_process=trainer.is_global_zero,
            accumulation=("accumulate_grad_batches", trainer.accumulate_grad_batches),
            config={"root_dir": str(Path(trainer.default_root_dir).resolve())},
        )

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.recorder.current is None:  # the first batch of an update
            step = trainer.global_step
            wanted = self.sharpness_loss is not None and self.recorder.active("sharpness", step)
            self.recorder.start_step(
                pl_module,
                trainer.optimizers[0],
                step,
                micro_batches=trainer.accumulate_grad_batches,
                loss_fn=(lambda: self.sharpness_loss(pl_module, batch)) if wanted else None,
                reports_micro_batches=True,
            )
        self.recorder.micro_batch(batch)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.recorder.backward_done()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # a skipped batch (training_step returned None) or manual optimization without "loss" hands back no loss
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor):  # divided by accumulate_grad_batches; read once an update (no sync)
            self._losses.append(loss.detach() * trainer.accumulate_grad_batches)
        ctx = self.recorder.current
        if ctx is not None and trainer.global_step > ctx.step:  # this batch ended the update
            mean = torch.stack(self._losses).float().mean().item() if self._losses else None
            self._losses = []
            self.recorder.end_step(mean)

    def on_validation_start(self, trainer, pl_module):
        self._before_validation = dict(trainer.callback_metrics)

    def on_validation_end(self, trainer, pl_module):
        """What validation logged (``self.log("val_loss", ...)``) joins the row of the last update before it."""
        before = self._before_validation
        values = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if before.get(k) is not v and k not in RESERVED and isinstance(v, torch.Tensor) and v.numel() == 1
        }
        self.recorder.log(trainer.global_step - 1, values)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        self.recorder.flush()

    def on_exception(self, trainer, pl_module, exception):
        self.recorder.close("interrupted" if isinstance(exception, KeyboardInterrupt) else "failed")

    def on_train_end(self, trainer, pl_module):
        finished = trainer.max_steps < 0 or trainer.global_step >= trainer.max_steps
        self.recorder.close("done" if finished else "interrupted")
