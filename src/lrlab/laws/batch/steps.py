"""The noise scale B_noise from the steps that runs at several batch sizes took to reach one target loss.

McCandlish et al. 2018, "An Empirical Model of Large-Batch Training" (arXiv:1812.06162), eq. 2.11: the optimizer
steps S and the examples E = S B that a run at batch size B needs to reach a fixed loss trade off as

    (S / S_min - 1) (E / E_min - 1) = 1,     equivalently     S(B) = S_min + E_min / B = S_min (1 + B_noise / B),

with S_min the fewest steps (B -> infinity), E_min the fewest examples (B -> 0) and B_noise = E_min / S_min,
the critical batch size: at B = B_noise a run takes 2 S_min steps and 2 E_min examples. Rearranged,
1 / S = 1 / S_min - B_noise / E, a straight line in 1 / E (the usual plot; :attr:`StepsFit.linear_b_noise`).

Units: S in optimizer steps; B in whatever batch unit the caller uses (sequences or tokens), B_noise in that
unit, E_min in batch units x steps (sequences or tokens). Multiply by the sequence length to go from sequences
to tokens.

Fit. A step count is a measured time to a target: its error is a fraction of it (seeds, the log interval of the
loss, the target's crossing), so the fit minimises sum_i (log S_i - log S(B_i))^2 with
:func:`scipy.optimize.least_squares`. Parameters: a = log S(ref), the steps at the reference batch ref (the
geometric mean of the batch sizes), and v = (E_min / ref) / S(ref) in [0, 1], the share of those steps that the
gradient noise costs, so that

    log S(B) = a + log((1 - v) + v ref / B),   S_min = e^a (1 - v),   E_min = e^a v ref,   B_noise = ref v / (1 - v).

Both ends are ordinary bounds: v = 0 is E_min = 0 (steps that do not fall with B: ``at_bound``, no noise
scale), v = 1 is S_min = 0 (steps that fall as 1/B over the whole range, no saturation measured: reported as
``b_noise = inf``, ``s_min = 0`` and the E_min of S = E_min / B). a enters linearly, so at each v its best value
is a closed form (the mean of log S_i - log((1 - v) + v ref / B_i)): the profile behind the intervals below.
The fit starts from the straight-line fit of 1/S on 1/E (ordinary least squares, rows unweighted) and from the
best point of a coarse grid over log B_noise, and keeps the best optimum (an end of [0, 1] unless the interior
is better by more than rounding).

Intervals: profile likelihood with the F threshold (the likelihood ratio for normal errors in log S of unknown
variance). The joint region is {(a, v): RSS(a, v) <= RSS_min (1 + t^2 / (n - 2))}, t the two-sided ``level``
quantile of Student's t with n - 2 degrees of freedom (n rows); each quantity's interval is its range over that
region (the profile interval: the values whose best fit stays under the threshold). RSS is quadratic in a at
fixed v, so the region is a one-dimensional scan over v (in log B_noise). The threshold is exact for a linear
model; on synthetic tables with 5-9 batch sizes and 2-10% noise the intervals covered the true S_min, E_min and
B_noise in 93-97% of replicates at level 0.95, with B_noise inside the batch sizes (tests/laws/test_batch_steps.py
measures this case) and with B_noise up to 4x beyond the smallest or largest batch (measured once, 300
replicates each). No resampling: the intervals are deterministic, and a bootstrap over 5-9 rows mostly
resamples the same few batch sizes. An interval is the connected part of the region around the estimate; an
end at 0 or inf means that the data do not bound it on that side.

Repeated batch sizes (seeds) are rows like any other; a noise-free table gives zero-width intervals.

Example::

    fit = fit_steps([64, 128, 256, 512, 1024], [46000, 23000, 13282, 7000, 3840])
    fit.b_noise, fit.intervals["b_noise"], fit.steps_at(2048)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import brentq, least_squares, minimize_scalar
from scipy.special import expit
from scipy.stats import t as student_t

from lrlab.errors import InputError, clip
from lrlab.laws.batch.grid import check_level, positive, positive_field
from lrlab.tables import csv_columns

MAX_VALUE = 1e15  # steps or a batch size beyond any run: 1e15 x 1e15 examples is still a float
MAX_ROWS = 100_000  # a table of runs: thousands at most; more is a mistake (a per-step log)
MIN_BATCH_SIZES = 3
_U_MAX = 60.0  # the scans over log(B_noise / ref) stop at +-60 (e^60 ~ 1e26); the ends v = 0, 1 are exact points
_DECADE = math.log(10.0)
_GRID = 129  # points of the scan over log B_noise for the extremes of S_min and E_min
_CHUNK = 1 << 22  # elements of one (b values x batch sizes) block of the scans


@dataclass(frozen=True)
class StepsFit:
    """S(B) = S_min + E_min / B fitted to steps at several batch sizes (see the module docstring).

    ``batch_size`` and ``steps`` are the inputs sorted by batch size (stable: seeds keep their order);
    ``log_residuals`` = log S_obs - log S_fit, in that order. ``s_min`` in steps, ``b_noise`` in batch units,
    ``e_min`` = S_min B_noise in batch units x steps. ``intervals`` maps ``"s_min"``, ``"e_min"`` and
    ``"b_noise"`` to (lo, hi) at ``level``. ``linear_b_noise`` and ``linear_s_min`` are the straight-line fit of
    1/S on 1/E = 1/(S B) (slope -B_noise, intercept 1/S_min; NaN when its intercept is not positive), for
    comparison. ``at_bound``: E_min is pinned at 0 (the steps do not fall with B): there is no noise scale.
    Steps that fall as 1/B over every batch size give ``b_noise = inf`` and ``s_min = 0`` (no saturation seen);
    an interval end of 0 or inf says that the data do not bound that side.
    """

    batch_size: np.ndarray
    steps: np.ndarray
    s_min: float
    e_min: float
    b_noise: float
    intervals: dict[str, tuple[float, float]]
    log_residuals: np.ndarray
    linear_b_noise: float
    linear_s_min: float
    at_bound: bool
    level: float

    def steps_at(self, batch_size) -> np.ndarray:
        """S_min + E_min / B at each batch size (same unit as the fit), vectorized."""
        b = positive(batch_size, "batch_size")
        return self.s_min + self.e_min / b

    def examples_at(self, batch_size) -> np.ndarray:
        """E = S(B) B, the examples (batch units x steps) to the target at each batch size."""
        b = positive(batch_size, "batch_size")
        return self.s_min * b + self.e_min


def _inputs(batch_size, steps) -> tuple[np.ndarray, np.ndarray]:
    b = positive(batch_size, "batch_size")
    s = positive(steps, "steps")
    if b.ndim != 1 or s.ndim != 1:
        raise InputError("batch_size and steps must be one-dimensional", "batch_size" if b.ndim != 1 else "steps")
    if len(b) != len(s):
        raise InputError(f"{len(s)} values where batch_size has {len(b)}", "steps")
    if len(b) > MAX_ROWS:
        raise InputError(f"{len(b):,} rows, more than the limit of {MAX_ROWS:,}", "batch_size")
    for values, name in ((b, "batch_size"), (s, "steps")):
        if np.any(values > MAX_VALUE):  # b x S (examples) must stay a float, and 1/E above 0
            raise InputError(f"must be at most {MAX_VALUE:.0e}, got {values.max():g}", name)
    distinct = len(np.unique(b))
    if distinct < MIN_BATCH_SIZES:
        raise InputError(f"needs steps at {MIN_BATCH_SIZES} or more batch sizes, got {distinct}", "batch_size")
    order = np.argsort(b, kind="stable")
    return b[order], s[order]


class _Profile:
    """RSS(a, v) = sum_i (y_i - a - log((1 - v) + v ref / B_i))^2 over rows, on the distinct batch sizes.

    ``w0`` = 1 - v and ``w1`` = v are passed separately (both exact near v = 0 and v = 1). At fixed v the best a
    is ``abar`` and RSS(a, v) = RSS_prof(v) + n (a - abar)^2.
    """

    def __init__(self, b: np.ndarray, y: np.ndarray):
        self.sizes, index, counts = np.unique(b, return_inverse=True, return_counts=True)
        self.ref = math.exp(float(np.mean(np.log(self.sizes))))
        self.w = counts.astype(np.float64)
        self.n = float(len(y))
        self.ybar = np.bincount(index, weights=y) / self.w
        self.ss0 = float(np.sum((y - self.ybar[index]) ** 2))

    def at(self, w0, w1) -> tuple[np.ndarray, np.ndarray]:
        """(abar, RSS_prof) at each (1 - v, v)."""
        w0, w1 = np.atleast_1d(np.asarray(w0, dtype=np.float64)), np.atleast_1d(np.asarray(w1, dtype=np.float64))
        abar, rss = np.empty_like(w0), np.empty_like(w0)
        step = max(1, _CHUNK // len(self.sizes))
        for i in range(0, len(w0), step):
            r = self.ybar - np.log(w0[i : i + step, None] + w1[i : i + step, None] * (self.ref / self.sizes))
            a = (r @ self.w) / self.n
            abar[i : i + step] = a
            rss[i : i + step] = self.ss0 + ((r - a[:, None]) ** 2) @ self.w
        return abar, rss

    def at_logit(self, u) -> tuple[np.ndarray, np.ndarray]:
        """(abar, RSS_prof) at v = expit(u), i.e. B_noise = ref e^u."""
        u = np.asarray(u, dtype=np.float64)
        return self.at(expit(-u), expit(u))

    def rss(self, v: float) -> float:
        return float(self.at(1.0 - v, v)[1][0])


def _linear(b: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """(B_noise, S_min) of the ordinary least-squares line 1/S = 1/S_min - B_noise / E, E = S B."""
    x, y = 1.0 / (s * b), 1.0 / s
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if sxx <= 0:
        return math.nan, math.nan
    slope = float(dx @ (y - y.mean())) / sxx
    intercept = float(y.mean() - slope * x.mean())
    return -slope, (1.0 / intercept if intercept > 0 else math.nan)


def fit_steps(batch_size, steps, level: float = 0.95) -> StepsFit:
    """Fit S(B) = S_min + E_min / B to steps-to-target at several batch sizes (see the module docstring).

    Args:
        batch_size: one value a run, finite and > 0, in one unit (sequences or tokens); 3 or more distinct
            values; repeats (seeds) allowed; at most :data:`MAX_ROWS` rows.
        steps: the optimizer steps that run took to reach the target loss, finite and > 0.
        level: the probability of the intervals (default 0.95).

    Returns:
        a :class:`StepsFit`. Raises :class:`InputError` (``batch_size``, ``steps`` or ``level``) on bad input.
    """
    level = check_level(level)
    b, s = _inputs(batch_size, steps)
    y = np.log(s)
    prof = _Profile(b, y)
    ref = prof.ref
    lin_b, lin_s = _linear(b, s)

    grid = np.linspace(-_U_MAX / 4, _U_MAX / 4, 49)  # B_noise from ref e^-15 to ref e^15
    starts = [float(expit(grid[int(np.argmin(prof.at_logit(grid)[1]))]))]
    if math.isfinite(lin_b) and lin_b > 0:
        starts.insert(0, lin_b / (lin_b + ref))  # the straight-line fit first
    ratio = ref / b

    def resid(x):
        return y - x[0] - np.log((1.0 - x[1]) + x[1] * ratio)

    def jac(x):
        return np.stack([-np.ones_like(b), -(ratio - 1.0) / ((1.0 - x[1]) + x[1] * ratio)], axis=1)

    best_v, best_rss = 0.0, prof.rss(0.0)
    for v in (1.0, *starts):
        if v < 1.0:
            x0 = [float(prof.at(1.0 - v, v)[0][0]), min(max(v, 1e-12), 1.0 - 1e-12)]
            res = least_squares(
                resid, x0, jac=jac, bounds=([-np.inf, 0.0], [np.inf, 1.0]), method="trf",
                ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=500,
            )  # fmt: skip
            v = float(res.x[1])
        rss = prof.rss(v)
        if rss < best_rss * (1 - 1e-10):  # an end (0, then 1) is kept unless the interior is really better
            best_v, best_rss = v, rss
    a = float(prof.at(1.0 - best_v, best_v)[0][0])  # log S(ref)
    s_min, e_min = math.exp(a) * (1.0 - best_v), math.exp(a) * best_v * ref
    b_noise = math.inf if best_v == 1.0 else ref * best_v / (1.0 - best_v)
    fitted = a + np.log((1.0 - best_v) + best_v * ratio)
    dof = len(b) - 2
    tq = float(student_t.ppf(0.5 + level / 2, dof))
    thresh = best_rss * (1.0 + tq * tq / dof)
    intervals = _intervals(prof, best_v, best_rss, thresh, s_min, e_min, b_noise)
    return StepsFit(
        batch_size=b, steps=s, s_min=s_min, e_min=e_min, b_noise=b_noise, intervals=intervals,
        log_residuals=y - fitted, linear_b_noise=lin_b, linear_s_min=lin_s, at_bound=best_v == 0.0, level=level,
    )  # fmt: skip


def _intervals(prof: _Profile, v_hat, rss_min, thresh, s_min, e_min, b_noise) -> dict[str, tuple[float, float]]:
    """Profile intervals of b_noise, s_min and e_min: their ranges over {RSS <= thresh} (module docstring)."""
    if not thresh > rss_min:  # a noise-free fit: the region is the estimate
        return {"s_min": (s_min, s_min), "e_min": (e_min, e_min), "b_noise": (b_noise, b_noise)}
    ref = prof.ref

    def excess(u: float) -> float:  # RSS_prof - thresh at v = expit(u)
        return float(prof.at_logit(u)[1][0]) - thresh

    # the ends of the v interval: an end of [0, 1] if it is inside, else step out by decades of B_noise from the
    # estimate until the profile crosses the threshold, then brentq
    u_hat = min(max(math.log(v_hat / (1.0 - v_hat)), -_U_MAX), _U_MAX) if 0 < v_hat < 1 else _U_MAX * (2 * v_hat - 1)
    ends = []
    for direction, end in ((-1.0, 0.0), (1.0, 1.0)):
        if v_hat == end or prof.rss(end) <= thresh:
            ends.append(None)  # unbounded on this side
            continue
        u = u_hat
        while abs(u + direction * _DECADE) <= _U_MAX and excess(u + direction * _DECADE) <= 0:
            u += direction * _DECADE
        ends.append(_root(excess, *sorted((u, u + direction * _DECADE))) if excess(u_hat) < 0 else u_hat)
    u_lo, u_hi = ends
    b_lo = 0.0 if u_lo is None else ref * math.exp(u_lo)
    b_hi = math.inf if u_hi is None else ref * math.exp(u_hi)

    # S_min and E_min: extremes of log S(ref) + log(1 - v) (or + log(v ref)) -+ half over the v interval
    lo, hi = -_U_MAX if u_lo is None else u_lo, _U_MAX if u_hi is None else u_hi
    grid_u = np.linspace(lo, hi, _GRID) if hi > lo else np.array([lo])

    def values(u: np.ndarray, kind: str, sign: float) -> np.ndarray:
        abar, rss = prof.at_logit(u)
        half = np.sqrt(np.maximum(thresh - rss, 0.0) / prof.n)
        # log(1 - v) = -log(1 + e^u), log v = -log(1 + e^-u)
        base = abar - np.logaddexp(0.0, u) if kind == "s_min" else abar - np.logaddexp(0.0, -u) + math.log(ref)
        return base + sign * half

    def extreme(kind: str, sign: float) -> float:
        vals = values(grid_u, kind, sign)
        k = int(np.argmax(sign * vals))
        best = float(vals[k])
        if len(grid_u) > 1:
            left, right = grid_u[max(k - 1, 0)], grid_u[min(k + 1, len(grid_u) - 1)]
            res = minimize_scalar(
                lambda u: -sign * float(values(np.array([u]), kind, sign)[0]), bounds=(left, right),
                method="bounded", options={"xatol": 1e-10},
            )  # fmt: skip
            found = -sign * float(res.fun)  # the refined extreme value
            if res.success and sign * found > sign * best:
                best = found
        return best

    def at_end(v: float) -> tuple[float, float]:  # (abar, half) at v = 0 or 1, which the logit grid only nears
        abar, rss = prof.at(1.0 - v, v)
        return float(abar[0]), math.sqrt(max(thresh - float(rss[0]), 0.0) / prof.n)

    s_lo, s_hi = extreme("s_min", -1.0), extreme("s_min", 1.0)
    e_lo, e_hi = extreme("e_min", -1.0), extreme("e_min", 1.0)
    if u_lo is None:  # v = 0 is in the region: E_min = 0 there, and its S_min range counts
        a0, half0 = at_end(0.0)
        s_lo, s_hi = min(s_lo, a0 - half0), max(s_hi, a0 + half0)
    if u_hi is None:  # v = 1 (B_noise = inf): S_min = 0 there, and its E_min range counts
        a1, half1 = at_end(1.0)
        e_lo, e_hi = min(e_lo, a1 + math.log(ref) - half1), max(e_hi, a1 + math.log(ref) + half1)
    out = {
        "s_min": (0.0 if u_hi is None else math.exp(s_lo), math.exp(s_hi)),
        "e_min": (0.0 if u_lo is None else math.exp(e_lo), math.exp(e_hi)),
        "b_noise": (b_lo, b_hi),
    }
    # the estimate lies in its own interval (guards the grid's resolution at a zero-width region)
    for key, value in (("s_min", s_min), ("e_min", e_min), ("b_noise", b_noise)):
        lo_k, hi_k = out[key]
        out[key] = (min(lo_k, value), max(hi_k, value))
    return out


def _root(fun, lo: float, hi: float) -> float:
    """The crossing of ``fun`` between ``lo`` and ``hi`` (brentq); the end where ``fun`` is nearer 0 if both have
    one sign (the search met its limit first)."""
    f_lo, f_hi = fun(lo), fun(hi)
    if f_lo * f_hi > 0:
        return lo if abs(f_lo) < abs(f_hi) else hi
    return brentq(fun, lo, hi, xtol=1e-12)


def load_steps(
    path: str | Path, group: list[str] | None = None
) -> dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]]:
    """Steps to a target loss from a CSV: columns ``batch_size``, ``steps`` and the ``group`` columns.

    One row a run; other columns (``target_loss``, ``seq_len``, notes) are ignored. Header names are
    case-insensitive. Returns ``{key: (batch_size, steps)}`` in file order, ``key`` the tuple of the row's group
    values (``()`` without groups), keys in the order they first appear. A value that is not a number, a value
    that is not finite and > 0, or an empty group value is an :class:`InputError` naming ``PATH:LINE``.
    """
    path = Path(path)
    group = [] if group is None else list(group)
    names = []
    for g in group:
        if not isinstance(g, str) or not g.strip():
            raise InputError(f"group columns must be non-empty names, got {clip(g, 60)!r}", "group")
        name = g.strip().lower()
        if name in ("batch_size", "steps") or name in names:
            raise InputError(f"group column {g!r} is {'repeated' if name in names else 'a data column'}", "group")
        names.append(name)
    rows: dict[tuple[str, ...], tuple[list[float], list[float]]] = {}
    for where, row in csv_columns(path, ("batch_size", "steps", *names)):
        values = [positive_field(row[col], col, where) for col in ("batch_size", "steps")]
        key = []
        for col in names:
            text = row[col].strip()
            if not text:
                raise InputError(f"{where}: no value in group column {col!r}")
            key.append(text)
        bs, st = rows.setdefault(tuple(key), ([], []))
        bs.append(values[0])
        st.append(values[1])
    if not rows:
        raise InputError(f"{path}: no rows; expected one row a run with batch_size,steps")
    return {k: (np.array(bs), np.array(st)) for k, (bs, st) in rows.items()}
