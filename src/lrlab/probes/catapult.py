"""Catapult search for the critical initial LR (Kalra & Barkeshli 2024, arXiv:2406.09405) and a warmup from it.

From the initial weights, a trial at LR eta takes ``k`` optimizer steps on a fixed batch; it is a catapult when
the loss after any of those steps rises above the starting loss. eta doubles (``grow``) from ``lr_start`` until the
first catapult, then a geometric binary search between the last stable and the first catapulting LR narrows the
critical eta_c to a relative width ``rel_tol``. Weights and optimizer state are restored before every trial and
at the end. On a quadratic with top curvature lambda and SGD, eta_c = 2 / lambda.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from lrlab.errors import InputError
from lrlab.probes.snapshot import group_ratios, restored, set_lr
from lrlab.schedules.families import Warmed


class NoCatapult(InputError):
    """The search ended without a bracket: no LR tried catapulted, or the first one already did (a result about
    the model, unlike a bad argument)."""


@dataclass(frozen=True)
class Trial:
    lr: float
    start_loss: float
    losses: tuple[float, ...]  # after each of the k steps
    catapult: bool


@dataclass(frozen=True)
class CatapultResult:
    eta_c: float  # geometric mean of the bracketing stable and catapulting LRs
    stable_lr: float  # largest LR tried without a catapult
    catapult_lr: float  # smallest LR tried with one
    trials: tuple[Trial, ...]


def catapult_search(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[], torch.Tensor],
    lr_start: float = 1e-6,
    k: int = 1,
    grow: float = 2.0,
    rel_tol: float = 0.05,
    max_trials: int = 40,
) -> CatapultResult:
    """Find eta_c for ``optimizer`` (its per-group LR ratios are kept; LR = eta x ratio) on ``loss_fn``'s batch."""
    if lr_start <= 0 or grow <= 1 or k < 1 or rel_tol <= 0 or max_trials < 1:
        raise InputError("catapult search needs lr_start > 0, grow > 1, k >= 1, rel_tol > 0 and max_trials >= 1")
    ratios = group_ratios(optimizer)
    trials: list[Trial] = []

    def trial(lr: float) -> bool:
        with restored(model, optimizer):
            set_lr(optimizer, lr, ratios)
            with torch.no_grad():
                start = loss_fn().item()
            losses = []
            for _ in range(k):
                optimizer.zero_grad(set_to_none=True)
                loss_fn().backward()
                optimizer.step()
                with torch.no_grad():
                    losses.append(loss_fn().item())
            optimizer.zero_grad(set_to_none=True)
        hit = any(not math.isfinite(x) or x > start for x in losses)
        trials.append(Trial(lr, start, tuple(losses), hit))
        return hit

    lo, hi = 0.0, lr_start
    while not trial(hi):
        lo, hi = hi, hi * grow
        if len(trials) >= max_trials:
            raise NoCatapult(f"no catapult up to lr={hi / grow:.3g} in {max_trials} trials; raise lr_start")
    if lo == 0.0:
        raise NoCatapult(f"lr_start={lr_start:g} already catapults; start lower")
    while hi / lo > 1 + rel_tol and len(trials) < max_trials:
        mid = math.sqrt(lo * hi)
        if trial(mid):
            hi = mid
        else:
            lo = mid
    return CatapultResult(math.sqrt(lo * hi), lo, hi, tuple(trials))


def catapult_warmup(schedule: Warmed, eta_c: float, fraction: float = 1.0) -> Warmed:
    """``schedule`` warmed up from eta_init = fraction x eta_c instead of from ``init``.

    The returned schedule uses ``warmup_offset=0``, so update 0 runs at eta_init exactly (never above the
    measured critical LR when fraction <= 1). Its warmup is W' = ceil(W (1 - eta_init / peak)) steps: for a
    linear warmup that keeps the original slope peak / W, the warmup shortening by the share of the peak that
    eta_init already covers; eta_init >= peak removes the warmup.
    """
    if fraction <= 0 or eta_c <= 0:
        raise InputError("catapult_warmup needs eta_c > 0 and fraction > 0")
    start = fraction * eta_c
    if start >= schedule.peak or schedule.warmup == 0:
        return replace(schedule, warmup=0, init=0.0)
    steps = max(math.ceil(schedule.warmup * (1 - start / schedule.peak)), 1)
    return replace(schedule, warmup=steps, init=start, warmup_offset=0)
