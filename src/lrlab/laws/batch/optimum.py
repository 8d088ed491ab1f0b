"""The best learning rate at one batch size, from the losses of a grid of LRs.

In x = log(lr) the loss near its minimum is a smooth curve around the best cell x_j. :func:`locate` fits a
polynomial in dx = x - x_j by least squares: a cubic through the five LRs x_{j-2}..x_{j+2} when they are all
finite, else a parabola through x_{j-1}, x_j, x_{j+1}, L(x) ~ a + b dx + c dx^2, whose vertex is

    x* = x_j - b / (2 c),     L* = a - b^2 / (4 c);

the cubic's x* is the root of its derivative with positive curvature between x_j's neighbours (the nearest to
x_j). A cubic, not a five-point parabola, because loss-vs-LR curves are asymmetric (steeper towards divergence)
and a parabola over a wide window then puts the optimum too low (:data:`WINDOWS`).

The standard deviation of x* follows from the delta method: the coefficients' covariance sigma^2 (X^T X)^-1, and
d x*/d theta from the implicit function theorem on L'(x*) = 0, with sigma the loss noise. :func:`locate_all`
pools sigma^2 over every batch size's residuals (sum of squared residuals / sum of degrees of freedom), because
one batch size rarely has enough cells to estimate it alone; the interval is clipped to the fitted window.

Diverged cells count as +infinity: several seeds at one LR are averaged, and one diverged seed makes the mean
+infinity. The best cell at the lowest or highest LR tried is a bound, not a value (``at_grid_edge``): it is
reported, never fitted as if it were an optimum. A best cell whose neighbour diverged is bracketed but has no
parabola: its value is the cell itself, its interval the two neighbours (``method = "cell"``). This follows the
protocol of Li et al. 2024 (arXiv:2405.14578): the best LR per batch size, then the law across batch sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import polynomial as P

from lrlab.errors import InputError
from lrlab.laws.batch.grid import Grid, check_level

Z95 = 1.959963984540054
# (half-width in grid points, degree): a cubic through five LRs, else a parabola through three. On synthetic
# loss(log LR) curves with a cubic asymmetry (steeper towards divergence, as real ones are), a parabola through
# five LRs a factor 2 apart put the optimum 15-27 % low, through three 4-6 % low, the cubic < 0.5 % off, at an
# rms error no larger than the three-point parabola's (docs/batch.md).
WINDOWS = ((2, 3), (1, 2))
SAME_LR = 0.01  # LRs whose logs differ by less (1 %) are one LR: seeds logged at different precision


@dataclass(frozen=True)
class Optimum:
    """The best LR at one batch size. ``interval`` is the (level) interval of the best LR; ``log_sd`` the
    standard deviation of log(best LR), NaN when the value is a bound. ``at_grid_edge`` is ``"low"`` or
    ``"high"`` when the best cell is the lowest or highest LR tried (``"low"`` too when every LR diverged),
    ``"single"`` when the batch size has one LR, else None. ``loss`` is the fitted curve's
    minimum (the best cell's loss for a bound or a bracketed cell)."""

    batch_size: float
    best_lr: float
    interval: tuple[float, float]
    log_sd: float
    at_grid_edge: str | None
    loss: float
    method: str  # "cubic", "parabola" or "cell"
    n_cells: int
    n_diverged: int

    @property
    def is_value(self) -> bool:
        """True when the best LR is located inside the grid (usable by a law fit)."""
        return self.at_grid_edge is None and math.isfinite(self.log_sd)


@dataclass(frozen=True)
class _Local:
    """One batch size's parabola before the noise is known: the vertex, and what its variance needs."""

    x_star: float
    loss: float
    grad: np.ndarray  # d x* / d (polynomial coefficients)
    xtx_inv: np.ndarray
    rss: float
    dof: int
    window: tuple[float, float]


def locate_all(grid: Grid, loss_noise: float | None = None, level: float = 0.95) -> tuple[list[Optimum], float]:
    """The best LR at every batch size of ``grid``, ascending, and the loss noise sigma used for the intervals:
    ``loss_noise`` when given, else pooled from the parabolas' residuals (NaN when no batch size has more cells
    than parameters; then intervals are the bracket between the neighbouring LRs)."""
    if loss_noise is not None and not (math.isfinite(loss_noise) and loss_noise > 0):
        raise InputError(f"must be finite and > 0, got {loss_noise}", "loss_noise")
    z = _z(level)
    locals_ = {}
    for b in grid.batch_sizes:
        try:
            locals_[b] = _local(*grid.at_batch(b))
        except InputError as exc:
            raise InputError(f"{grid.label}batch size {b:g}: {exc.message}") from None
    fitted = [loc for loc, _ in locals_.values() if loc is not None]
    dof = sum(loc.dof for loc in fitted)
    sigma = (
        loss_noise if loss_noise is not None else (math.sqrt(sum(loc.rss for loc in fitted) / dof) if dof else math.nan)
    )
    return [_optimum(float(b), loc, cell, sigma, z) for b, (loc, cell) in locals_.items()], sigma


def locate(lr, loss, loss_noise: float | None = None, level: float = 0.95, batch_size: float = math.nan) -> Optimum:
    """The best LR of one batch size's cells (``lr``, ``loss``; +inf or NaN loss: diverged), its noise estimated
    from this batch size's residuals alone unless ``loss_noise`` is given."""
    lr, loss = np.asarray(lr, dtype=float), np.asarray(loss, dtype=float)
    loss = np.where(np.isnan(loss), np.inf, loss)
    grid = Grid(lr, np.full(len(lr), 1.0 if math.isnan(batch_size) else batch_size), loss, np.full(len(lr), np.nan))
    return locate_all(grid, loss_noise, level)[0][0]


def _z(level: float) -> float:
    level = check_level(level)
    if level == 0.95:
        return Z95
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def _cell(lr: np.ndarray, loss: np.ndarray) -> dict:
    """The distinct LRs (log; LRs within :data:`SAME_LR` of each other are one, e.g. one LR logged to 3 and to 5
    digits), their mean losses (inf if any seed diverged) and the best one's index (None: all diverged)."""
    x = np.log(lr)
    order = np.argsort(x)
    label = np.empty(len(x), dtype=int)
    first, count = -np.inf, -1
    for i in order:  # a new LR where a cell lies more than SAME_LR above the first cell of the current one
        if x[i] - first > SAME_LR:
            first, count = x[i], count + 1
        label[i] = count
    starts = range(count + 1)
    ux = np.array([x[label == i].mean() for i in starts])
    x = ux[label]  # every cell at its LR's centre: the polynomial sees one LR, not two a hair apart
    means = np.array([np.mean(loss[label == i]) for i in starts])
    j = int(np.argmin(means)) if np.any(np.isfinite(means)) else None
    return {"ux": ux, "means": means, "j": j, "x": x, "n": len(lr), "diverged": int(np.sum(np.isinf(loss)))}


def _local(lr: np.ndarray, loss: np.ndarray) -> tuple[_Local | None, dict]:
    cell = _cell(lr, loss)
    ux, means, j = cell["ux"], cell["means"], cell["j"]
    if j is None or j == 0 or j == len(ux) - 1 or not (np.isfinite(means[j - 1]) and np.isfinite(means[j + 1])):
        return None, cell
    for half, degree in WINDOWS:
        lo, hi = j - half, j + half
        if lo < 0 or hi >= len(ux) or not np.all(np.isfinite(means[lo : hi + 1])):
            continue
        fit = _polynomial(cell["x"], loss, ux, j, lo, hi, degree)
        if fit is not None:
            return fit, cell
    return None, cell


def _polynomial(
    x: np.ndarray, loss: np.ndarray, ux: np.ndarray, j: int, lo: int, hi: int, degree: int
) -> _Local | None:
    """Least-squares polynomial in dx = x - x_j through the cells of ux[lo..hi]; its local minimum between the
    neighbours of x_j, or None when it has none there."""
    keep = (x >= ux[lo]) & (x <= ux[hi])
    dx, y = x[keep] - ux[j], loss[keep]
    design = dx[:, None] ** np.arange(degree + 1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    slope = P.polyder(coef)
    roots = _stationary(slope)
    bend = P.polyval(roots, P.polyder(slope))
    inside = roots[(bend > 0) & (roots >= ux[j - 1] - ux[j]) & (roots <= ux[j + 1] - ux[j])]
    if not len(inside):
        return None
    shift = float(inside[np.argmin(np.abs(inside))])
    # implicit function theorem on slope(x*; theta) = 0: d x*/d theta_k = -k x*^(k-1) / slope'(x*)
    k = np.arange(degree + 1)
    grad = -(k * np.where(k > 0, shift ** np.maximum(k - 1, 0), 0.0)) / float(P.polyval(shift, P.polyder(slope)))
    resid = y - design @ coef
    return _Local(
        ux[j] + shift, float(P.polyval(shift, coef)), grad, np.linalg.pinv(design.T @ design), float(resid @ resid),
        len(y) - degree - 1, (float(ux[lo]), float(ux[hi])),
    )  # fmt: skip


def _stationary(slope: np.ndarray) -> np.ndarray:
    """Real roots of a linear or quadratic ``slope`` (ascending coefficients), by the cancellation-free formula:
    numpy's companion-matrix roots lose the near-linear root when the cubic term is ~0."""
    c0, c1, c2 = (*slope, 0.0, 0.0)[:3]
    disc = c1 * c1 - 4 * c2 * c0
    if disc < 0:
        return np.array([])
    q = -0.5 * (c1 + math.copysign(math.sqrt(disc), c1))
    roots = ([q / c2] if c2 else []) + ([c0 / q] if q else [])
    return np.array(roots, dtype=float)


def _optimum(batch: float, loc: _Local | None, cell: dict, sigma: float, z: float) -> Optimum:
    ux, means, j = cell["ux"], cell["means"], cell["j"]
    counts = {"n_cells": cell["n"], "n_diverged": cell["diverged"]}
    if j is None:  # even the lowest LR diverged: the best LR lies below the grid
        return Optimum(batch, math.exp(ux[0]), (0.0, math.exp(ux[0])), math.nan, "low", math.inf, "cell", **counts)
    if loc is None:
        edge = "single" if len(ux) == 1 else "low" if j == 0 else "high" if j == len(ux) - 1 else None
        if edge is not None:
            lo = -math.inf if j == 0 else (ux[j - 1] + ux[j]) / 2
            hi = math.inf if j == len(ux) - 1 else (ux[j + 1] + ux[j]) / 2
            return Optimum(batch, math.exp(ux[j]), (math.exp(lo), math.exp(hi)), math.nan, edge, float(means[j]),
                           "cell", **counts)  # fmt: skip
        # bracketed by a diverged neighbour: the 95 % half-width is half the bracket, whatever the level asked
        sd = (ux[j + 1] - ux[j - 1]) / (2 * Z95)
        return Optimum(batch, math.exp(ux[j]), (math.exp(ux[j - 1]), math.exp(ux[j + 1])), sd, None, float(means[j]),
                       "cell", **counts)  # fmt: skip
    width = loc.window[1] - loc.window[0]
    if math.isfinite(sigma):
        # huge noise: the optimum is anywhere in the window, no wider (sd of a uniform over it)
        sd = min(sigma * math.sqrt(max(float(loc.grad @ loc.xtx_inv @ loc.grad), 0.0)), width / math.sqrt(12))
        lo, hi = max(loc.x_star - z * sd, loc.window[0]), min(loc.x_star + z * sd, loc.window[1])
    else:  # no noise estimate: the bracket between the neighbours
        lo, hi = ux[j - 1], ux[j + 1]
        sd = (hi - lo) / (2 * Z95)
    method = "cubic" if len(loc.grad) == 4 else "parabola"
    return Optimum(batch, math.exp(loc.x_star), (math.exp(lo), math.exp(hi)), sd, None, loc.loss, method, **counts)
