"""What every probe shares: a cadence, and the trainer-callback shape it plugs into.

A probe is a trainer callback (see ``lrlab.train.callbacks``): it receives a step context with ``model``,
``optimizer``, ``step``, ``lr``, ``batch`` (the step's micro-batches), ``loss`` and ``log(dict)``. Probes run only
at steps where ``step % every == 0``, never touch the global RNG, gradients or weights, so a run with probes
follows exactly the same curve as one without.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from lrlab.errors import InputError


class Probe:
    """Base class: ``every`` is the cadence in optimizer steps; ``name`` is the key used in configs and the CLI."""

    name: ClassVar[str]
    runs_forward_passes: ClassVar[bool] = False  # calls the model itself (then it runs after the other probes)

    def __init__(self, every: int = 10) -> None:
        if every < 1:
            raise InputError(f"probe {self.name!r}: every={every} must be >= 1")
        self.every = every
        self._handles: list[Any] = []  # torch hook handles registered for the current probe step

    def active(self, step: int) -> bool:
        return step % self.every == 0

    def remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def on_train_end(self, ctx: Any) -> None:
        self.remove_hooks()  # a run that stopped mid-step (divergence) must not leave hooks behind


def matrices(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """Trainable parameters with ndim >= 2 (weights whose rows are neurons), each once (tied weights dedup)."""
    return [(n, p) for n, p in model.named_parameters() if p.ndim >= 2 and p.requires_grad]


def log_rank0(ctx: Any, values: dict[str, float]) -> None:
    """Add ``values`` to the step's metrics row on rank 0 (other ranks' rows are not recorded)."""
    if getattr(ctx, "rank", 0) == 0:
        ctx.log(values)
