"""LR range test (Smith 2017, arXiv:1506.01186; as in torch-lr-finder and fastai's lr_find), state restored after.

Step i of n trains one batch at lr_i = lr_min (lr_max / lr_min)^(i / (n - 1)) and records that batch's loss.
The loss is smoothed with a bias-corrected EMA (``smooth``), and the sweep stops early once the smoothed loss
exceeds ``diverge`` x its best value (or is not finite). Suggestions, on the smoothed curve:

- ``steepest``: the LR where the loss falls fastest per unit of log LR (min of the gradient), ignoring the
  first ``skip_start`` and last ``skip_end`` points;
- ``valley``: within the longest run of consecutive decreases of the smoothed loss, the LR two thirds of the way
  down the run (late enough to be fast, before the minimum where divergence starts).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from rich.progress import Progress

from lrlab.errors import InputError
from lrlab.probes.snapshot import group_ratios, restored, set_lr


@dataclass(frozen=True)
class RangeTestResult:
    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    stopped_early: bool
    suggestions: dict[str, float]


def suggest(lrs: np.ndarray, smoothed: np.ndarray, skip_start: int = 5, skip_end: int = 3) -> dict[str, float]:
    """The ``steepest`` and ``valley`` suggestions for a smoothed range-test curve (see the module docstring)."""
    out: dict[str, float] = {}
    inner = slice(skip_start, len(lrs) - skip_end)
    if len(lrs[inner]) >= 3:
        slope = np.gradient(smoothed[inner], np.log(lrs[inner]))
        out["steepest"] = float(lrs[inner][int(np.argmin(slope))])
    down = np.diff(smoothed) < 0
    best_len, best_start, run = 0, 0, 0
    for i, d in enumerate(down):
        run = run + 1 if d else 0
        if run > best_len:
            best_len, best_start = run, i - run + 1
    if best_len:
        out["valley"] = float(lrs[best_start + round(2 * best_len / 3)])
    return out


def lr_range_test(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[int], torch.Tensor],
    lr_min: float = 1e-7,
    lr_max: float = 1.0,
    steps: int = 100,
    smooth: float = 0.95,
    diverge: float = 4.0,
    progress: bool = False,
) -> RangeTestResult:
    """Run the sweep; ``loss_fn(i)`` returns the loss of batch i (with grad). Weights and optimizer come back."""
    if not 0 < lr_min < lr_max or steps < 2 or not 0 <= smooth < 1 or diverge <= 1:
        raise InputError("range test needs 0 < lr_min < lr_max, steps >= 2, 0 <= smooth < 1 and diverge > 1")
    lrs = lr_min * (lr_max / lr_min) ** (np.arange(steps) / (steps - 1))
    ratios = group_ratios(optimizer)
    losses: list[float] = []
    smoothed: list[float] = []
    avg, best, stopped = 0.0, math.inf, False
    with restored(model, optimizer), Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("LR range test", total=steps)
        for i, lr in enumerate(lrs):
            set_lr(optimizer, float(lr), ratios)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(i)
            loss.backward()
            optimizer.step()
            value = loss.item()
            avg = smooth * avg + (1 - smooth) * value
            s = avg / (1 - smooth ** (i + 1))
            losses.append(value)
            smoothed.append(s)
            bar.advance(task)
            if not math.isfinite(s) or s > diverge * best:
                stopped = True
                break
            best = min(best, s)
        optimizer.zero_grad(set_to_none=True)
    n = len(losses)
    sm = np.array(smoothed)
    keep = n - 1 if stopped else n  # the point that tripped the stop is not part of the usable curve
    return RangeTestResult(lrs[:n], np.array(losses), sm, stopped, suggest(lrs[:keep], sm[:keep]))
