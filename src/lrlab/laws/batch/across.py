"""Across scale: the best (LR, batch size) of each group of runs (a model size N at a token budget D), and the
power laws eta_opt(N, D) and B_opt(D) fitted over the groups (:mod:`lrlab.laws.batch.scale`).

Within a group (one grid), the best batch size B_opt is located like a best LR (:func:`locate` in log B) from
the loss at each batch size's best LR (the per-batch minima of :func:`fit_grid`, only where that best LR is a
value: at a grid-edge bound the loss is only an upper bound): the batch size a fixed token budget is best spent
at. eta_opt is the group's batch-size law at B_opt when B_opt is a value, else the best LR at the batch size with
the lowest loss; an eta_opt that is a grid-edge bound is reported but not fitted. A group's N and D are the
grid's ``n`` and ``d`` columns, one value each (D may vary by up to :data:`D_TOLERANCE` across a group: token
budgets rounded to whole steps).

Protocols differ: Step Law (arXiv:2503.04715) reads eta_opt and B_opt from the lowest final loss over the
(LR, B) plane at fixed N and D, as here; DeepSeek LLM (arXiv:2401.02954) fits both in compute C.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lrlab.errors import InputError
from lrlab.laws.batch.grid import Grid
from lrlab.laws.batch.optimum import Optimum, locate, locate_all
from lrlab.laws.batch.scale import PowerFit, fit_power, published
from lrlab.laws.batch.select import GridFit, fit_grid

D_TOLERANCE = 1.1
MAX_CORRELATION = 0.99  # |corr(log x_i, log x_j)| over the groups beyond which two features are fitted as one


@dataclass(frozen=True)
class GroupOptimum:
    """One group's scale and its best (LR, batch size). ``batch`` is None with a single batch size."""

    name: str
    n: float
    d: float
    best_lr: float
    batch: Optimum | None
    fit: GridFit | None
    lr_is_bound: bool = False

    @property
    def best_batch(self) -> float | None:
        return self.batch.best_lr if self.batch is not None and self.batch.is_value else None


@dataclass(frozen=True)
class AcrossScale:
    """The groups' optima, the fitted laws (None where the groups do not vary in a needed feature), and the
    published laws evaluated at each group."""

    groups: list[GroupOptimum]
    lr_law: PowerFit | None
    batch_law: PowerFit | None
    published: list[list[dict]]
    notes: list[str]


def group_optimum(grid: Grid, law: str = "auto", loss_noise: float | None = None) -> GroupOptimum:
    """The best (LR, batch size) of one group's grid (its final records)."""
    final = grid.final()
    n, d = _one(final.n, "n", grid), _one(final.d, "d", grid)
    if len(final.batch_sizes) == 1:
        (opt,), _ = locate_all(final, loss_noise)
        return GroupOptimum(grid.name, n, d, opt.best_lr, None, None, not opt.is_value)
    g = fit_grid(final, law, loss_noise=loss_noise, n_boot=100)
    values = [o for o in g.optima if o.is_value]
    batch = locate([o.batch_size for o in values], [o.loss for o in values], loss_noise=loss_noise) if values else None
    if batch is not None and batch.is_value:
        return GroupOptimum(grid.name, n, d, float(g.fit.best_lr(batch.best_lr)), batch, g)
    lowest = min(g.optima, key=lambda o: o.loss)
    return GroupOptimum(grid.name, n, d, lowest.best_lr, batch, g, not lowest.is_value)


def fit_across(grids: list[Grid], law: str = "auto", loss_noise: float | None = None) -> AcrossScale:
    """Each grid's optimum, then eta_opt = c N^a D^b and B_opt = c D^k over the groups (features that take one
    value across the groups are left out, with a note)."""
    if len(grids) < 2:
        raise InputError(f"needs 2 or more groups (model sizes or budgets), got {len(grids)}", "group")
    notes: list[str] = []
    groups = []
    for grid in grids:
        try:
            groups.append(group_optimum(grid, law, loss_noise))
        except InputError as exc:  # one group's bad grid leaves the others' laws standing
            if exc.param not in (None, "loss", "batch_size"):
                raise  # a bad option, not a bad group
            notes.append(f"left out: {exc.message if grid.name in exc.message else f'{grid.name}: {exc.message}'}")
    if len(groups) < 2:
        raise InputError(f"needs 2 or more groups that can be fitted, got {len(groups)}: {'; '.join(notes)}", "group")
    bound_lr = [g.name for g in groups if g.lr_is_bound]
    if bound_lr:
        notes.append(f"eta_opt at the edge of the LR grid (a bound, not fitted): {', '.join(bound_lr)}")
    lr_law = _law("eta_opt", [(g, g.best_lr) for g in groups if not g.lr_is_bound], ("n", "d"), notes)
    with_batch = [(g, g.best_batch) for g in groups if g.best_batch is not None]
    bounds = [g.name for g in groups if g.batch is not None and not g.batch.is_value]
    if bounds:
        notes.append(f"B_opt at the edge of the batch sizes (a bound, not fitted): {', '.join(bounds)}")
    batch_law = _law("B_opt", with_batch, ("d",), notes)
    rows = [published(N=_finite(g.n), D=_finite(g.d)) for g in groups]
    return AcrossScale(groups, lr_law, batch_law, rows, notes)


def _law(target: str, points: list[tuple[GroupOptimum, float]], features: tuple[str, ...], notes) -> PowerFit | None:
    values = {f: np.array([getattr(g, f) for g, _ in points]) for f in features}
    used = {f.upper(): v for f, v in values.items() if np.all(np.isfinite(v)) and len(np.unique(v)) > 1}
    skipped = [f.upper() for f in features if f.upper() not in used]
    if skipped:
        notes.append(f"{target}: {', '.join(skipped)} left out (missing or one value across the groups)")
    if not used or len(points) < len(used) + 2:
        notes.append(f"{target}: not fitted ({len(points)} groups for {len(used)} varying features)")
        return None
    y, names = [y for _, y in points], [g.name for g, _ in points]
    if len(used) > 1:
        logs = np.log(np.array(list(used.values())))
        corr = np.corrcoef(logs)
        worst = float(np.max(np.abs(corr - np.eye(len(used)))))
        if worst > MAX_CORRELATION:  # e.g. D = 20 N: the exponents trade off and the fit says nothing about each
            first = next(iter(used))
            notes.append(f"{target}: {', '.join(used)} move together across the groups (log correlation "
                         f"{worst:.4f}); fitted in {first} alone")  # fmt: skip
            used = {first: used[first]}
    return fit_power(target, y, used, groups=names)


def _one(values: np.ndarray, column: str, grid: Grid) -> float:
    """The group's one value of ``column`` (NaN when absent); a spread beyond D_TOLERANCE is an error."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return math.nan
    if finite.max() > D_TOLERANCE * finite.min():
        raise InputError(
            f"{grid.label}{column} varies within the group ({finite.min():g} to {finite.max():g}); "
            f"group by it too", "group",
        )  # fmt: skip
    return float(np.median(finite))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
