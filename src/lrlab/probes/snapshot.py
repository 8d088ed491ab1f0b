"""Save and restore a model and its optimizer in memory, so LR searches leave training exactly where it was."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def restored(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Run the body, then put the weights, optimizer state and param-group settings (LRs) back as they were."""
    model_state = copy.deepcopy(model.state_dict())
    opt_state = copy.deepcopy(optimizer.state_dict())
    try:
        yield
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(opt_state)


def set_lr(optimizer: torch.optim.Optimizer, lr: float, ratios: list[float]) -> None:
    """Set group i's LR to ``lr * ratios[i]`` (ratios keep per-group LRs in proportion)."""
    for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
        group["lr"] = lr * ratio


def group_ratios(optimizer: torch.optim.Optimizer) -> list[float]:
    """Each group's LR over the first group's (all 1.0 when the first LR is 0)."""
    first = float(optimizer.param_groups[0]["lr"])
    return [float(g["lr"]) / first if first > 0 else 1.0 for g in optimizer.param_groups]
