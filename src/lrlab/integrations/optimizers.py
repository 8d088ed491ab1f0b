"""An lrlab optimizer and schedule as the pair a training framework takes (``Trainer(optimizers=...)``, a
LightningModule's ``configure_optimizers``, or a plain loop).

The scheduler is :class:`lrlab.schedules.torch.ScheduleLR`: its step unit is one optimizer update (after gradient
accumulation), the unit in which the Hugging Face Trainer and Lightning (``interval="step"``) step a scheduler, so
update ``t`` runs at ``lr(t)`` of the spec. Its whole state is the step count, so a framework checkpoint restores
the exact LR.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from lrlab.errors import InputError, clip
from lrlab.optim import OPTIMIZERS
from lrlab.schedules import Schedule, Tabulated, load
from lrlab.schedules.torch import ScheduleLR


def optimizer_and_schedule(
    params: Iterable[Any], optimizer: str, schedule: str | Schedule, **options: Any
) -> tuple[torch.optim.Optimizer, ScheduleLR]:
    """``(optimizer, scheduler)``: lrlab's ``optimizer`` (a name of :data:`lrlab.optim.OPTIMIZERS`) over ``params``
    with ``options`` (e.g. ``weight_decay=0.1, beta=0.98``), its LR set by ``schedule`` (a spec such as
    ``"wsd:peak=1e-3,warmup=20,total=200"``, a ``step,lr`` CSV, or a :class:`Schedule`) at every update.

    Example::

        opt, sched = optimizer_and_schedule(model.parameters(), "lionar", "wsd:peak=1e-3,warmup=20,total=200",
                                            weight_decay=0.1)
        trainer = transformers.Trainer(model, args, train_dataset=data, optimizers=(opt, sched))
    """
    if optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {clip(optimizer)!r} (available: {', '.join(OPTIMIZERS)})", "optimizer")
    sched = schedule if isinstance(schedule, Schedule) else load(schedule)
    try:  # ScheduleLR sets every group's LR to lr(0) at once; the lr given here is never used
        opt = OPTIMIZERS[optimizer](params, lr=float(sched(0)), **options)
    except (TypeError, ValueError) as exc:
        given = ", ".join(sorted(options)) or "none given"
        raise InputError(f"options ({given}) for {optimizer}: {clip(exc, 160)}", "options") from None
    return opt, ScheduleLR(opt, sched)


def check_covers(scheduler: Any, steps: int) -> None:
    """Refuse a :class:`ScheduleLR` whose schedule ends before a run of ``steps`` updates (other schedulers pass).

    Both frameworks also step the scheduler after the last update, so a ``step,lr`` table needs ``steps + 1`` rows.
    """
    for s in getattr(scheduler, "schedules", []) if isinstance(scheduler, ScheduleLR) else []:
        needed = steps + 1 if isinstance(s, Tabulated) else steps
        if s.total is not None and s.total < needed:
            raise InputError(
                f"the schedule {clip(s)} covers {s.total} steps but the run takes {steps} updates"
                + (
                    " (a step,lr table needs one row more: the LR is set after the last update too)"
                    if needed > steps
                    else ""
                ),
                "schedule",
            )
