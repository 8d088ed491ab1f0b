"""Best LR vs batch size: the surge law, the SGD noise-scale law and a plain power law, fitted in log space.

With y = log eps_opt and t = log B, each form is an offset plus a linear part in its linear parameters:

- ``surge`` (Li et al. 2024, arXiv:2405.14578), Adam-style optimizers:
  eps_opt(B) = eps_max / (0.5 (sqrt(B_noise/B) + sqrt(B/B_noise))), i.e. y = a - log cosh((t - u) / 2);
  it rises like sqrt(B) below B_noise, peaks at B = B_noise and falls like 1/sqrt(B) above.
- ``sgd`` (McCandlish et al. 2018, arXiv:1812.06162): eps_opt(B) = eps_max / (1 + B_noise/B)^alpha,
  y = a - alpha softplus(u - t); alpha = 1 by default (the paper's SGD result) or fitted.
- ``power``: eps_opt(B) = c B^k, y = a + k t; the sqrt (k = 1/2) and linear (k = 1) scaling rules are its cases.

(a = log eps_max or log c, u = log B_noise.) A fit minimises sum_i w_i (y_i - f(t_i))^2 with w_i = 1/sd_i^2 from
each batch size's optimum (:mod:`lrlab.laws.batch.optimum`, floored at :data:`MIN_LOG_SD` so no point rules
alone): the linear parameters in closed form for each u on a scan of log B_noise over the measured batch sizes
widened :data:`B_NOISE_SPAN` times each way, then refined. A B_noise pinned at either end of that scan is a
bound (``b_noise_bound``): the peak lies beyond the measured batch sizes.

Intervals come from a parametric bootstrap over the per-batch optima: each replicate draws
y*_i = f(t_i) + N(0, s^2 sd_i^2) with s^2 = max(1, chi^2 / dof) (so a misfit widens the band), refits, and takes
the replicates' percentiles of every parameter and prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar

from lrlab.errors import InputError, clip
from lrlab.laws.batch.grid import check_level
from lrlab.laws.batch.optimum import Optimum

FORMS = ("surge", "sgd", "power")
MIN_LOG_SD = 0.02  # 2 % in LR: no optimum is trusted more (synthetic grids: 0.05 over-covers, 1.00 at 95 %)
B_NOISE_SPAN = 100.0
SCAN_POINTS = 401
N_BOOT = 400
TAIL_REPLICATES = 10  # replicates beyond each end of an interval, at least: level 0.99 draws 2000
CHUNK = 500  # replicates solved at once: (CHUNK, SCAN_POINTS, batch sizes) floats
MAX_LEVEL = 0.99
MAX_ALPHA = 8.0
MIN_ALPHA = 0.05


@dataclass(frozen=True)
class Form:
    """A law's shape. ``alpha`` (sgd only): the exponent, or None to fit it."""

    name: str
    alpha: float | None = 1.0

    def __post_init__(self) -> None:
        if self.name not in FORMS:
            raise InputError(f"must be one of {', '.join(FORMS)} or auto, got {clip(self.name, 40)!r}", "law")
        if (
            self.name == "sgd"
            and self.alpha is not None
            and not (math.isfinite(self.alpha) and 0 < self.alpha <= MAX_ALPHA)
        ):
            raise InputError(f"must lie in (0, {MAX_ALPHA:g}] or be fitted, got {self.alpha}", "alpha")

    @property
    def has_peak_scale(self) -> bool:
        return self.name != "power"

    @property
    def n_params(self) -> int:
        return 2 + (self.name == "sgd" and self.alpha is None)

    def basis(self, t: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(offset, columns) with shapes (U, n) and (U, n, k): y ~ offset + columns @ beta for each u."""
        t, u = np.asarray(t, dtype=float)[None, :], np.atleast_1d(np.asarray(u, dtype=float))[:, None]
        ones = np.ones(np.broadcast_shapes(t.shape, u.shape))
        if self.name == "surge":
            return -_log_cosh((t - u) / 2), ones[..., None]
        if self.name == "power":
            return 0 * ones, np.stack([ones, t * ones], axis=-1)
        soft = np.logaddexp(0.0, u - t)
        if self.alpha is None:
            return 0 * ones, np.stack([ones, -soft], axis=-1)
        return -self.alpha * soft, ones[..., None]


def _log_cosh(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    return ax + np.log1p(np.exp(-2 * ax)) - math.log(2)


@dataclass(frozen=True)
class BatchFit:
    """A fitted batch-size law. ``params``: eps_max (or c), b_noise, alpha, k, as the form has them;
    ``intervals`` their bootstrap intervals; ``optima`` the per-batch optima (those with ``is_value`` fitted)."""

    form: Form
    params: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    optima: list[Optimum]
    chi2: float
    dof: int
    b_noise_bound: str | None  # "low" / "high": B_noise pinned at the end of the scan
    level: float
    replicates: np.ndarray = field(repr=False)  # (R, 1 + k): (u, beta...) per bootstrap replicate, for predictions
    theta: np.ndarray = field(repr=False)
    notes: tuple[str, ...] = ()  # what a reader must know: a B_noise beyond the grid, alpha at its limit

    @property
    def law(self) -> str:
        return self.form.name

    def best_lr(self, batch_size) -> np.ndarray:
        """The law's best LR at ``batch_size`` (any shape)."""
        b = np.asarray(batch_size, dtype=float)
        return np.exp(_predict(self.form, self.theta[None, :], np.log(b.ravel()))[0]).reshape(b.shape)

    def band(self, batch_size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(best LR, lo, hi) at ``batch_size``: the fit and the bootstrap percentile band at the fit's level."""
        b = np.asarray(batch_size, dtype=float)
        if np.any(~np.isfinite(b) | (b <= 0)):
            raise InputError("must be finite and > 0", "batch_size")
        t = np.log(b.ravel())
        pred = self.best_lr(b.ravel())
        reps = np.exp(_predict(self.form, self.replicates, t))
        tail = 50 * (1 - self.level)
        lo, hi = np.percentile(reps, [tail, 100 - tail], axis=0)
        return pred.reshape(b.shape), np.minimum(lo, pred).reshape(b.shape), np.maximum(hi, pred).reshape(b.shape)


def _predict(form: Form, theta: np.ndarray, t: np.ndarray) -> np.ndarray:
    """log best LR for every row of theta = (u, beta...) at log batch sizes t: shape (R, len(t))."""
    offset, cols = form.basis(t, theta[:, 0])
    return offset + np.einsum("rnk,rk->rn", cols, theta[:, 1:])


def fit_form(form: Form, optima: list[Optimum], level: float = 0.95, n_boot: int = N_BOOT, seed: int = 0) -> BatchFit:
    """Fit ``form`` to the optima that are values (not grid-edge bounds); see the module docstring."""
    level = check_level(level)
    if level > MAX_LEVEL:
        raise InputError(f"must be at most {MAX_LEVEL}: the bootstrap's tails would be too thin, got {level}", "level")
    if not 0 <= n_boot <= 100_000:
        raise InputError(f"must lie in [0, 100000], got {n_boot}", "n_boot")
    points = [o for o in optima if o.is_value]
    sizes = sorted({o.batch_size for o in points})
    if len(sizes) < 2:
        edges = [f"{o.batch_size:g} ({'every LR diverged' if math.isinf(o.loss) else o.at_grid_edge})"
                 for o in optima if o.at_grid_edge]  # fmt: skip
        why = f"; at the grid's edge: {', '.join(edges)} (widen the LR range there)" if edges else ""
        raise InputError(f"needs best LRs at 2 or more batch sizes, got {len(sizes)}{why}", "batch_size")
    t = np.log([o.batch_size for o in points])
    y = np.log([o.best_lr for o in points])
    w = 1 / np.maximum([o.log_sd for o in points], MIN_LOG_SD) ** 2
    scan = _scan(form, t)
    theta = _refine(form, t, y, w, scan, _solve(form, t, y[None, :], w, scan)[0][0])
    fitted = _predict(form, theta[None, :], t)[0]
    chi2 = float(np.sum(w * (y - fitted) ** 2))
    dof = len(points) - form.n_params
    scale = math.sqrt(max(1.0, chi2 / dof)) if dof > 0 else 1.0
    if n_boot and level > 0.95:  # wider intervals need more replicates beyond their ends
        n_boot = max(n_boot, math.ceil(2 * TAIL_REPLICATES / (1 - level)))
    draws = fitted + np.random.default_rng(seed).standard_normal((n_boot, len(points))) * scale / np.sqrt(w)
    chunks = [_solve(form, t, draws[i : i + CHUNK], w, scan)[0] for i in range(0, n_boot, CHUNK)]
    replicates = np.concatenate(chunks) if chunks else theta[None, :]
    notes = []
    bound = None
    if form.has_peak_scale:
        bound = "low" if theta[0] <= scan[0] + 1e-9 else "high" if theta[0] >= scan[-1] - 1e-9 else None
        if bound:
            notes.append(f"B_noise sits at the {bound} end of the scan: the peak lies beyond the measured batch "
                         "sizes; read it as a bound")  # fmt: skip
    if form.name == "sgd" and form.alpha is None and not MIN_ALPHA * (1 + 1e-6) < theta[2] < MAX_ALPHA * (1 - 1e-6):
        limit = MAX_ALPHA if theta[2] > 1 else MIN_ALPHA
        notes.append(f"alpha reached its limit {limit:g}: the data want a bend the sgd form does not have")
    params, intervals = _named(form, theta, replicates, level, scan)
    return BatchFit(form, params, intervals, list(optima), chi2, dof, bound, level, replicates, theta, tuple(notes))


def _scan(form: Form, t: np.ndarray) -> np.ndarray:
    if not form.has_peak_scale:
        return np.zeros(1)
    span = math.log(B_NOISE_SPAN)
    return np.linspace(t.min() - span, t.max() + span, SCAN_POINTS)


def _linear(form: Form, t: np.ndarray, y: np.ndarray, w: np.ndarray, offset: np.ndarray, cols: np.ndarray):
    """Closed-form linear parameters for rows of y (R, n) at each u of the basis ((U, n), (U, n, k)); returns
    beta (R, U, k) and the weighted residual sum of squares (R, U)."""
    return _wls(form, y[:, None, :], w, offset[None], cols[None])


def _linear_rows(form: Form, y: np.ndarray, w: np.ndarray, offset: np.ndarray, cols: np.ndarray):
    """As :func:`_linear` with one basis a row of y: offset (R, n), cols (R, n, k); returns (R, k) and (R,)."""
    beta, wrss = _wls(form, y[:, None, :], w, offset[:, None, :], cols[:, None])
    return beta[:, 0], wrss[:, 0]


def _wls(form: Form, y: np.ndarray, w: np.ndarray, offset: np.ndarray, cols: np.ndarray):
    """Weighted least squares y ~ offset + cols @ beta over broadcast leading axes (y, offset: (.., n); cols:
    (.., n, k)). A fitted sgd alpha outside [MIN_ALPHA, MAX_ALPHA] is held at the nearer limit and the scale
    refitted: the constrained optimum of a quadratic in (a, alpha)."""
    weighted = cols * w[:, None]
    gram = np.swapaxes(weighted, -1, -2) @ cols
    target = y - offset
    beta = np.linalg.solve(gram, np.swapaxes(weighted, -1, -2) @ target[..., None])[..., 0]
    beta = np.broadcast_to(beta, (*np.broadcast_shapes(target.shape[:-1], beta.shape[:-1]), beta.shape[-1])).copy()
    if form.name == "sgd" and form.alpha is None:
        alpha = np.clip(beta[..., 1], MIN_ALPHA, MAX_ALPHA)
        beta[..., 0] = ((target - alpha[..., None] * cols[..., 1]) @ w) / w.sum()
        beta[..., 1] = alpha
    resid = target - (cols @ beta[..., None])[..., 0]
    return beta, (resid * resid) @ w


def _solve(form: Form, t: np.ndarray, y: np.ndarray, w: np.ndarray, scan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best (u, beta) for every row of y (R, n): the best point of the scan, moved to the vertex of a
    parabola through it and its neighbours' residuals (the scan's step is ~3 % in B_noise), with the linear
    parameters in closed form there; returns theta (R, 1 + k) and the weighted residual sum of squares (R,)."""
    beta, wrss = _linear(form, t, y, w, *form.basis(t, scan))
    rows = np.arange(len(y))
    best = np.argmin(wrss, axis=1)
    u = scan[best]
    if len(scan) > 2:
        inner = np.clip(best, 1, len(scan) - 2)
        left, mid, right = (wrss[rows, inner + d] for d in (-1, 0, 1))
        curve = left - 2 * mid + right
        with np.errstate(invalid="ignore", divide="ignore"):
            shift = np.where((best == inner) & (curve > 0) & np.isfinite(curve), 0.5 * (left - right) / curve, 0.0)
        u = u + np.clip(shift, -1, 1) * (scan[1] - scan[0])
    offset, cols = form.basis(t, u)  # one basis a row
    beta_u, wrss_u = _linear_rows(form, y, w, offset, cols)
    better = wrss_u <= wrss[rows, best]
    theta = np.where(better[:, None], np.column_stack([u, beta_u]), np.column_stack([scan[best], beta[rows, best]]))
    return theta, np.where(better, wrss_u, wrss[rows, best])


def _refine(form: Form, t: np.ndarray, y: np.ndarray, w: np.ndarray, scan: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Polish the point estimate's u to 1e-6 between the scan's neighbours of the best point."""
    if len(scan) == 1:
        return theta
    step = scan[1] - scan[0]
    lo, hi = max(theta[0] - step, scan[0]), min(theta[0] + step, scan[-1])

    def wrss(u: float) -> float:
        return float(_linear(form, t, y[None, :], w, *form.basis(t, np.array([u])))[1][0, 0])

    res = minimize_scalar(wrss, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    if not (np.isfinite(res.fun) and res.fun <= wrss(theta[0])):
        return theta
    beta = _linear(form, t, y[None, :], w, *form.basis(t, np.array([res.x])))[0][0, 0]
    return np.concatenate([[res.x], beta])


def _named(form: Form, theta: np.ndarray, reps: np.ndarray, level: float, scan: np.ndarray) -> tuple[dict, dict]:
    tail = 50 * (1 - level)

    def interval(values: np.ndarray) -> tuple[float, float]:
        lo, hi = np.percentile(values, [tail, 100 - tail], method="inverted_cdf")  # no inf - inf interpolation
        return float(lo), float(hi)

    names: dict[str, tuple[float, np.ndarray]] = {}
    if form.name == "power":
        names["c"] = (math.exp(theta[1]), np.exp(reps[:, 1]))
        names["k"] = (float(theta[2]), reps[:, 2])
    else:
        names["eps_max"] = (math.exp(theta[1]), np.exp(reps[:, 1]))
        # a replicate at the end of the scan says "beyond the batch sizes": 0 or inf, not 100 x the largest
        b_noise = np.where(
            reps[:, 0] >= scan[-1] - 1e-9, np.inf, np.where(reps[:, 0] <= scan[0] + 1e-9, 0, np.exp(reps[:, 0]))
        )
        names["b_noise"] = (math.exp(theta[0]), b_noise)
        if form.name == "sgd":
            fitted = form.alpha is None
            names["alpha"] = (float(theta[2]) if fitted else form.alpha, reps[:, 2] if fitted else None)
    params = {k: v for k, (v, _) in names.items()}
    intervals = {k: interval(r) if r is not None else (v, v) for k, (v, r) in names.items()}
    return params, intervals
