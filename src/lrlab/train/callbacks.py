"""The callback interface that probes plug into, and the lookup of probes named in a config.

A callback is any object with some of the methods of :class:`Callback` (missing ones are skipped); each gets
the :class:`StepContext` of the current step. Order within optimizer step ``t``:

1. ``on_step_start``: before the forward passes of step ``t`` (``ctx.loss`` is None).
   ``on_micro_batch``: only in loops that report their micro-batches (``ctx.reports_micro_batches``, as
   lrlab.integrations' Lightning callback does): before each micro-batch's forward pass, its inputs in
   ``ctx.micro_batch``. lrlab's trainer does not call it (probes hook the model's forward instead).
2. ``after_backward``: the gradients of the whole step are in ``p.grad`` (all micro-batches accumulated and,
   under DDP, averaged over processes), not yet clipped; ``ctx.loss`` is the step's mean train loss.
3. ``after_step``: the optimizer has applied update ``t`` with learning rate ``ctx.lr``; gradients are still set.

``on_train_start`` and ``on_train_end`` frame the run (``ctx.step`` is the first step, then the steps done).
``ctx.log({...})`` adds keys to step ``t``'s metrics row, so probe values land in the same sink as the loss.
Callbacks run on every process; log from ``ctx.rank == 0`` only to avoid duplicates (other ranks' rows are
discarded anyway).

A config names probes in ``probes = ["name", ...]``; each is built as ``lrlab.probes.PROBES[name](every=K)``
with K the config's ``probe_every``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lrlab.errors import InputError
from lrlab.probes import PROBES

HOOKS = ("on_train_start", "on_step_start", "on_micro_batch", "after_backward", "after_step", "on_train_end")


@dataclass
class StepContext:
    model: nn.Module  # the bare model (never the DDP wrapper)
    optimizer: torch.optim.Optimizer
    step: int  # 0-based optimizer step
    lr: float  # learning rate of update ``step``
    batch: list[tuple[torch.Tensor, torch.Tensor]]  # this process's micro-batches (inputs, targets)
    rank: int = 0
    world_size: int = 1
    loss: float | None = None
    row: dict[str, Any] = field(default_factory=dict)
    # For loops that do not hand over their micro-batches (lrlab.integrations); lrlab's trainer leaves them unset.
    micro_batches: int | None = None  # the step's number of micro-batches when ``batch`` is empty
    loss_fn: Callable[[], torch.Tensor] | None = None  # the first micro-batch's loss at the current weights
    grads_changed_before_after_backward: bool = False  # e.g. clipped: raw gradients only in the last pass's hooks
    reports_micro_batches: bool = False  # the loop calls ``on_micro_batch`` (the model's forward may not run)
    micro_batch: Any = None  # the inputs of the micro-batch starting, at ``on_micro_batch``

    @property
    def accumulation(self) -> int:
        """Micro-batches in this step."""
        return self.micro_batches if self.micro_batches is not None else len(self.batch)

    def first_loss(self) -> torch.Tensor:
        """The loss of the step's first micro-batch at the current weights (a fresh forward pass)."""
        if self.loss_fn is not None:
            return self.loss_fn()
        x, y = self.batch[0][:2]
        return self.model(x, y)

    def log(self, metrics: dict[str, Any]) -> None:
        """Add ``metrics`` to this step's metrics row."""
        self.row.update(metrics)


class Callback:
    """Base class with every hook a no-op; subclass and override what you need."""

    def on_train_start(self, ctx: StepContext) -> None: ...
    def on_step_start(self, ctx: StepContext) -> None: ...
    def on_micro_batch(self, ctx: StepContext) -> None: ...
    def after_backward(self, ctx: StepContext) -> None: ...
    def after_step(self, ctx: StepContext) -> None: ...
    def on_train_end(self, ctx: StepContext) -> None: ...


class Hooks:
    """Dispatches each hook to the callbacks that define it (bound once, so a step pays nothing extra)."""

    def __init__(self, callbacks: list[Any]) -> None:
        self._bound = {h: [getattr(c, h) for c in callbacks if hasattr(c, h)] for h in HOOKS}

    def __call__(self, hook: str, ctx: StepContext) -> None:
        for fn in self._bound[hook]:
            fn(ctx)


def resolve_probes(names: list[str] | dict[str, int], every: int = 10) -> list[Any]:
    """Callbacks for the probe names of a config, from ``lrlab.probes.PROBES``, each run every ``every`` steps
    (or, for a dict of names, every ``names[name]`` steps).

    Probes that run forward passes of their own (sharpness) come last, whatever the order asked for: their
    passes must not reach the forward hooks that others (gns, rrc) keep until their own ``after_backward``."""
    unknown = [n for n in names if n not in PROBES]
    if unknown:
        raise InputError(f"config: unknown probe {unknown[0]!r} (available: {', '.join(PROBES)})")
    cadence = names if isinstance(names, dict) else dict.fromkeys(names, every)
    return sorted((PROBES[n](every=k) for n, k in cadence.items()), key=lambda p: p.runs_forward_passes)
