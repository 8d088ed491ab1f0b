"""Attach an lrlab schedule to any torch optimizer as a ``torch.optim.lr_scheduler.LRScheduler``.

Usage (call ``scheduler.step()`` once per optimizer update, after ``optimizer.step()``; with gradient
accumulation that is once per accumulated batch, never per micro-batch)::

    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = ScheduleLR(opt, parse("cosine:peak=1e-3,warmup=100,total=1000,final=1e-4"))
    for batch in batches:
        loss(batch).backward(); opt.step(); opt.zero_grad(); sched.step()

At any time ``sched.last_epoch`` is the number of updates done, i.e. the step t of the next update, and every
param group's LR is lr(t). The scheduler's only state is that count: ``state_dict()`` holds two integers (no
lambdas, no pickled objects), and ``load_state_dict()`` into a freshly built optimizer and scheduler sets the
exact LR of the resumed step at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrlab.errors import InputError
from lrlab.schedules.base import Schedule


class ScheduleLR(LRScheduler):
    """Sets each param group's LR from a schedule at the current optimizer step.

    Args:
        optimizer: any ``torch.optim.Optimizer``.
        schedule: one schedule for every group, or a sequence with one per param group.
        mode: ``"absolute"``: group LR = schedule(t) (the spec's ``peak`` is the LR itself);
            ``"multiplier"``: group LR = initial group LR x schedule(t) (write the spec with ``peak=1``), which
            keeps per-group LRs (e.g. embeddings at a different LR) in their ratios.
        last_epoch: torch's resume argument; prefer ``load_state_dict``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedule: Schedule | Sequence[Schedule],
        mode: Literal["absolute", "multiplier"] = "absolute",
        last_epoch: int = -1,
    ) -> None:
        if mode not in ("absolute", "multiplier"):
            raise InputError(f"mode={mode!r} must be 'absolute' or 'multiplier'")
        groups = len(optimizer.param_groups)
        schedules = list(schedule) if isinstance(schedule, Sequence) else [schedule] * groups
        if len(schedules) != groups:
            raise InputError(f"got {len(schedules)} schedules for {groups} param groups")
        self.schedules = schedules
        self.mode = mode
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        t = self.last_epoch
        if self.mode == "absolute":
            return [s(t) for s in self.schedules]
        return [base * s(t) for base, s in zip(self.base_lrs, self.schedules, strict=True)]

    def advance(self) -> None:
        """Count one update without setting the next LR: after a run's last update, where lr(t) is never used
        (and a step,lr table of exactly t rows has no value). ``state_dict()`` then counts every update, so a
        resume with more steps continues at lr(t)."""
        self.last_epoch += 1
        self._step_count += 1

    # torch's deprecated ``step(epoch)`` path asks for a closed form; a pure schedule is one.
    _get_closed_form_lr = get_lr

    def state_dict(self) -> dict[str, int]:
        """``{"last_epoch": t, "_step_count": n}``: the step is the whole state (safe for weights_only loads)."""
        return {"last_epoch": self.last_epoch, "_step_count": self._step_count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the step and set every group's LR to lr(step) right away."""
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict.get("_step_count", self.last_epoch + 1))
        self.base_lrs = [group["initial_lr"] for group in self.optimizer.param_groups]
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            if isinstance(group["lr"], Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._last_lr = [
            lr.clone() if isinstance(lr, Tensor) else lr for lr in (g["lr"] for g in self.optimizer.param_groups)
        ]
