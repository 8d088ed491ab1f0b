"""How the best LR and B_noise move as training proceeds, from a grid with records at several step counts.

Two views, both from the same runs:

- by step count: the batch-size law refitted on the grid as it stood after s updates (every step count recorded
  at 3 or more batch sizes), giving eps_max(s) and B_noise(s) from the law's peak;
- by target loss: for each target L, the fewest steps S(B) any LR needed to reach L at each batch size, then
  B_noise(L) from steps vs examples, S = S_min + E_min / B (McCandlish et al. 2018, arXiv:1812.06162). Li et al.
  2024 (arXiv:2405.14578) read the surge the same way: B_noise grows as the loss falls.

Steps to a target are interpolated linearly between records; a batch size whose fastest run was already below
the target at its first record is left out (its steps are only a bound). The McCandlish relation is derived at
a fixed LR; runs with a decaying schedule reach a target at a step that also depends on the schedule, so read
B_noise(L) from such runs as a trend, not as the paper's quantity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lrlab.errors import InputError
from lrlab.laws.batch.grid import Grid
from lrlab.laws.batch.select import GridFit, fit_grid
from lrlab.laws.batch.steps import StepsFit, fit_steps

N_TARGETS = 4
MIN_BATCH_SIZES = 3
MAX_REFITS = 12  # step counts refitted: every one up to this many, else this many spread evenly in log steps


@dataclass(frozen=True)
class AtStep:
    """The law refitted on the grid after ``steps`` updates (``error``: why it could not be)."""

    steps: float
    fit: GridFit | None
    error: str | None = None


@dataclass(frozen=True)
class AtTarget:
    """B_noise from the steps each batch size needed to reach ``target`` (``error``: why it could not be)."""

    target: float
    batch_size: np.ndarray
    steps: np.ndarray
    fit: StepsFit | None
    error: str | None = None


def steps_to_target(grid: Grid, target: float) -> tuple[np.ndarray, np.ndarray]:
    """(batch sizes, steps): for each batch size, the fewest steps any LR of ``grid`` needed to reach a loss
    <= ``target``, interpolated linearly between records. Batch sizes where no run reached it are left out, and
    so are those whose fastest run was already below it at its first record (only a bound on the steps)."""
    best: dict[float, tuple[float, bool]] = {}
    for b, cell in grid.cells():
        cell &= np.isfinite(grid.steps)
        order = np.argsort(grid.steps[cell])
        s, loss = grid.steps[cell][order], grid.loss[cell][order]
        hit = np.flatnonzero(loss <= target)
        if not len(hit):
            continue
        i = hit[0]
        censored = i == 0 or not np.isfinite(loss[i - 1])
        at = s[i] if censored else float(np.interp(target, [loss[i], loss[i - 1]], [s[i], s[i - 1]]))
        if b not in best or at < best[b][0]:
            best[b] = (float(at), bool(censored))
    sizes = sorted(b for b, (_, censored) in best.items() if not censored)
    return np.array(sizes), np.array([best[b][0] for b in sizes])


def default_targets(grid: Grid, count: int = N_TARGETS) -> np.ndarray:
    """``count`` target losses, evenly spaced, that every batch size reaches after its first record: from the
    lowest loss any batch size's fastest run had at its first record (exclusive: higher targets are reached before
    anything is recorded) down to the highest of the per-batch-size best final losses."""
    final = grid.final()
    low = max(np.min(final.at_batch(b)[1]) for b in final.batch_sizes)
    firsts: dict[float, float] = {}  # batch size -> lowest loss of any of its runs at that run's first record
    for b, cell in grid.cells():
        cell &= np.isfinite(grid.steps)
        if np.any(cell):
            first = grid.loss[cell][np.argmin(grid.steps[cell])]
            firsts[b] = min(firsts.get(b, math.inf), float(first))
    high = min(firsts.values(), default=low)
    if not math.isfinite(low) or high <= low:
        return np.array([low]) if math.isfinite(low) else np.array([])
    return np.linspace(high, low, count + 1)[1:]


def over_training(
    grid: Grid,
    law: str = "auto",
    alpha: float | None = 1.0,
    loss_noise: float | None = None,
    targets=None,
    n_boot: int = 200,
) -> tuple[list[AtStep], list[AtTarget]]:
    """The law at every step count recorded at 3+ batch sizes (at most :data:`MAX_REFITS` of them), and B_noise
    at each target loss (``targets``: :func:`default_targets` when None)."""
    if not np.any(np.isfinite(grid.steps)):
        raise InputError(f"{grid.label}over training needs a steps column (records at several step counts)", "steps")
    by_step = []
    counts = grid.step_counts(MIN_BATCH_SIZES)
    if len(counts) > MAX_REFITS:  # the recorded step counts nearest to MAX_REFITS points evenly spaced in log steps
        logs = np.log(np.maximum(counts, 1))
        pick = {int(np.argmin(np.abs(logs - v))) for v in np.linspace(logs[0], logs[-1], MAX_REFITS)}
        counts = [counts[i] for i in sorted(pick)]
    for s in counts:
        try:
            by_step.append(AtStep(s, fit_grid(grid.at_steps(s), law, alpha, loss_noise, n_boot=n_boot)))
        except InputError as exc:
            by_step.append(AtStep(s, None, exc.message))
    targets = default_targets(grid) if targets is None else np.asarray(targets, dtype=float)
    by_target = []
    for target in targets.tolist():
        sizes, steps = steps_to_target(grid, target)
        try:
            by_target.append(AtTarget(target, sizes, steps, fit_steps(sizes, steps)))
        except InputError as exc:
            by_target.append(AtTarget(target, sizes, steps, None, exc.message))
    return by_step, by_target
