"""Fit any law to one or more curves, score it, and predict with an uncertainty band.

Objective: sum over all observed points of Huber_delta(log y - log L(s; theta)) (delta = 1e-3 by default), as
in both papers. Two searches, both deterministic (``method``; each law has a default ``fit_method``):

"lbfgs" (every law but ``mpl``), to convergence:
1. a coarse grid over the law's non-linear parameters; at each grid point the linear ones (L0, A, B or C) are
   solved by least squares on the losses (variable projection), giving a scored starting point;
2. L-BFGS-B (scipy) from the best few distinct starts (stopping once two reach the same best optimum), in a
   space where positive parameters are logged and every parameter is boxed; the objective is divided by its
   value at residuals of size delta so that it is O(1) (raw Huber sums of ~1e-4 fall under L-BFGS-B's gradient
   tolerance and stop it at its start); the fit uses the law's fast quadrature (``exact=False``);

"adam" (``mpl``'s default): the multi-power-law authors' procedure, re-implemented (see :func:`_adam`):
a simpler law fitted first, then AdamW stopped early. Its result is *not* the objective's optimum: on the
public curves the early stop extrapolates better than the optimum (docs/laws.md has the numbers).

Either way the result is scored with the exact law: R^2, PredE = mean |pred - y| / y, WorstE = max |pred - y| / y.

Fit window (``from_step``): only the points at steps >= ``from_step`` enter the objective; the LR of every
step from 0 still enters the law. The default, ``"auto"``, is :func:`default_from_step`: the warmup and the
steep transient after it (up to two more warmup lengths, at most 5% of training) are left out, but never
more than half of any curve's points. The window is recorded in ``Fit.info["from_step"]``.

Uncertainty: a Gauss-Newton covariance of the (transformed) parameters, Sigma = s^2 (J^T J)^+, with J the
Jacobian of the log residuals and s^2 their mean square. The predicted band at step s is
exp(log L +- 1.96 sqrt(g^T Sigma g + s^2 + m^2)), g = d log L / d theta: parameter uncertainty, the residual
scatter, and ``model_error`` m, the law's own error when it extrapolates (0 from :func:`fit`; the pilots-only
protocol of :mod:`lrlab.laws.select` measures it). Residuals of a loss curve are correlated, so without m the
band covers far too little of a held-out curve.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from lrlab.errors import InputError
from lrlab.laws.areas import peak_index
from lrlab.laws.curves import Curve
from lrlab.laws.law import Law
from lrlab.schedules import parse as parse_schedule

_STARTS = 4
_ADAM_STEPS = 200
_ADAM_PATIENCE = 20
_LBFGS = {"maxiter": 3000, "ftol": 1e-12, "gtol": 1e-8}
_Z95 = 1.959964
# The default window leaves out the warmup and the transient after it: up to TRANSIENT_WARMUPS more warmup
# lengths, at most TRANSIENT_SHARE of the longest curve (chosen on the development set, docs/laws.md)
TRANSIENT_WARMUPS = 2
TRANSIENT_SHARE = 0.05


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss: r^2 / 2 inside |r| <= delta, delta (|r| - delta / 2) outside."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def curve_metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """R^2 on the loss, PredE (mean relative error) and WorstE (max relative error), as fractions."""
    rel = np.abs(pred - y) / y
    ss = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((pred - y) ** 2)) / ss if ss > 0 else float("nan")
    return {"prede": float(rel.mean()), "worste": float(rel.max()), "r2": r2}


class _Space:
    """Maps theta (dict of named values) <-> z, the vector the optimizer moves (see :class:`Param` scales)."""

    def __init__(self, law: Law):
        self.law = law
        self.scales = [p.scale for p in law.params]
        ends = [sorted((self._fwd(p.lo, p.scale), self._fwd(p.hi, p.scale))) for p in law.params]
        self.bounds = [tuple(e) for e in ends]

    @staticmethod
    def _fwd(v: float, scale: str) -> float:
        if scale == "log":
            return float(np.log(max(v, 1e-300)))
        if scale == "log1m":
            return float(np.log(max(1.0 - v, 1e-300)))
        return float(v)

    @staticmethod
    def _back(z: float, scale: str) -> float:
        if scale == "log":
            return float(np.exp(z))
        if scale == "log1m":
            return float(1.0 - np.exp(z))
        return float(z)

    def to_z(self, theta: dict[str, float]) -> np.ndarray:
        z = [self._fwd(theta[n], s) for n, s in zip(self.law.names, self.scales, strict=True)]
        lo, hi = np.array(self.bounds).T
        return np.clip(np.array(z), lo, hi)

    def to_theta(self, z: np.ndarray) -> dict[str, float]:
        """theta from z, clipped into each parameter's [lo, hi] (exp(log(lo)) can round to just below lo, and a
        saved fit is refused if a parameter lies outside its bounds)."""
        back = (self._back(v, s) for v, s in zip(z, self.scales, strict=True))
        return {p.name: min(max(v, p.lo), p.hi) for p, v in zip(self.law.params, back, strict=True)}


@dataclass
class Fit:
    """A fitted law: parameters, their covariance (in the fit's transformed space) and per-curve scores."""

    law: Law
    theta: dict[str, float]
    cov: np.ndarray
    resid_std: float
    huber_delta: float
    curves: dict[str, dict[str, float]] = field(default_factory=dict)
    objective: float = float("nan")
    seconds: float = float("nan")
    info: dict[str, Any] = field(default_factory=dict)
    model_error: float = 0.0  # largest log error on held-out pilot points (lrlab.laws.select), or 0

    def predict(self, lr: np.ndarray, steps: np.ndarray, n_params: float | None = None) -> np.ndarray:
        """Predicted loss at ``steps`` for the per-step LR ``lr`` (exact law)."""
        return self.law.predict(self.theta, lr, steps, n_params)

    def band(self, lr: np.ndarray, steps: np.ndarray, n_params: float | None = None):
        """(pred, lo, hi): the prediction and its approximate 95% band (see the module docstring).

        A schedule for which the law predicts a loss that is not finite and positive lies outside what the fit
        can describe (e.g. far larger LRs than it was fitted on): an :class:`InputError`, never such a number.
        """
        lr = np.asarray(lr, dtype=np.float64)
        steps = np.asarray(steps, dtype=np.int64)
        pred = self.predict(lr, steps, n_params)
        bad = np.flatnonzero(~np.isfinite(pred) | (pred <= 0))
        if bad.size:
            raise InputError(
                f"the fitted {self.law.name} law predicts loss {pred[bad[0]]:.4g} at step {int(steps[bad[0]])} for this"
                f" schedule: it is outside what the fit describes (fitted at peak LR {self.info.get('peak_lr', '?')})",
                "schedule",
            )
        space = _Space(self.law)
        feats = self.law.prepare(lr, steps, n_params, False)
        z = space.to_z(self.theta)
        with np.errstate(all="ignore"):  # a band that overflows is infinite, not a warning
            grad = _jacobian(lambda zz: np.log(np.maximum(self.law.evaluate(space.to_theta(zz), feats), 1e-300)), z)
            var = np.einsum("ij,jk,ik->i", grad, self.cov, grad) + self.resid_std**2 + self.model_error**2
            half = _Z95 * np.sqrt(np.maximum(var, 0.0))
            return pred, pred * np.exp(-half), pred * np.exp(half)


def _jacobian(fun, z: np.ndarray) -> np.ndarray:
    """Central finite differences of a vector function, (n_out, n_params)."""
    cols = []
    for i in range(len(z)):
        h = 1e-5 * max(1.0, abs(z[i]))
        up, dn = z.copy(), z.copy()
        up[i] += h
        dn[i] -= h
        cols.append((fun(up) - fun(dn)) / (2 * h))
    return np.stack(cols, axis=1)


def fit(
    law: Law,
    curves: list[Curve],
    huber_delta: float = 1e-3,
    method: str | None = None,
    start: dict[str, float] | None = None,
    from_step: int | str = "auto",
) -> Fit:
    """Fit ``law`` to ``curves`` (see the module docstring). Deterministic.

    ``method``: "lbfgs" (grid + L-BFGS-B to convergence) or "adam" (early-stopped AdamW from the law's
    ``adam_start``); ``None`` takes the law's ``fit_method``. ``start``: every parameter of the law, a point to
    start from: "adam" starts there instead of fitting ``adam_start``; "lbfgs" tries it before the grid's seeds.
    ``from_step``: fit the points at steps >= this (an int, 0 for all) or ``"auto"`` (:func:`default_from_step`).
    """
    if not curves:
        raise InputError("fit needs at least one curve")
    window = default_from_step(curves) if from_step == "auto" else check_from_step(from_step)
    curves = [fit_window(c, window) for c in curves]
    method = law.fit_method if method is None else method
    if method not in ("lbfgs", "adam"):
        raise InputError(f"unknown fit method {method!r}; choose lbfgs or adam", "method")
    if method == "adam" and not law.adam_rates:
        raise InputError(f"law {law.name!r} has no adam fit (it has no start for it); use lbfgs", "method")
    if start is not None:
        _check_start(law, start)
    records = sum(len(c.steps) for c in curves)
    if records <= len(law.names):
        raise InputError(
            f"{law.name} has {len(law.names)} parameters; fitting it needs more than {len(law.names)} loss records, "
            f"got {records} in {', '.join(c.where for c in curves)}",
            "curves",
        )
    t0 = time.perf_counter()
    fast = [law.prepare(c.lr, c.steps, c.n_params, False) for c in curves]
    y = np.concatenate([c.loss for c in curves])
    log_y = np.log(y)
    space = _Space(law)

    def predict_all(theta, feats) -> np.ndarray:
        return np.concatenate([law.evaluate(theta, f) for f in feats])

    def huber_sum(theta) -> float:
        pred = predict_all(theta, fast)
        if not np.all(np.isfinite(pred)) or np.any(pred <= 0):
            return math.inf
        return float(huber(log_y - np.log(pred), huber_delta).sum())

    steps_taken = None
    if method == "adam":
        seed = _adam_seed(law, curves, huber_delta) if start is None else start
        theta, steps_taken = _adam(law, seed, huber_sum)
    else:
        first = [] if start is None else [space.to_z(start)]
        theta = space.to_theta(_lbfgs(law, fast, y, space, huber_sum, 0.5 * huber_delta**2 * len(y), first))

    resid = lambda zz: log_y - np.log(np.maximum(predict_all(space.to_theta(zz), fast), 1e-300))  # noqa: E731
    z = space.to_z(theta)
    r = resid(z)
    jac = _jacobian(resid, z)
    s2 = float(np.mean(r**2))
    cov = s2 * np.linalg.pinv(jac.T @ jac)
    out = Fit(law, theta, cov, float(np.sqrt(s2)), huber_delta, objective=huber_sum(theta))
    for c in curves:
        out.curves[c.name] = curve_metrics(out.predict(c.lr, c.steps, c.n_params), c.loss)
    out.info = training_info(curves) | {"method": method, "from_step": window}
    if steps_taken is not None:
        out.info["adam_steps"] = steps_taken
    out.seconds = time.perf_counter() - t0
    return out


def default_from_step(curves: list[Curve]) -> int:
    """The default fit window's first step, ``max(W, min(3 W, T / 20))``: W is the longest warmup among
    ``curves`` (a curve's warmup ends at its peak index), T the longest curve's last step. The loss right after
    a short warmup still falls faster than any law here describes; this leaves out two more warmup lengths of
    it, but never more than 5% of training. Lowered where needed so that every curve keeps half its points.
    """
    warm = max(peak_index(c.lr) for c in curves)
    longest = max(int(c.steps[-1]) for c in curves)
    transient = min((1 + TRANSIENT_WARMUPS) * warm, math.ceil(TRANSIENT_SHARE * longest))
    keep_half = min(int(c.steps[(len(c.steps) - 1) // 2]) for c in curves)
    return int(min(max(warm, transient), keep_half))


def check_from_step(from_step) -> int:
    """A fit window's first step: a whole number >= 0 (or the caller's ``"auto"``)."""
    if isinstance(from_step, bool) or not isinstance(from_step, int | np.integer) or from_step < 0:
        raise InputError(f"from_step must be a whole number of steps >= 0 or 'auto', got {from_step!r}", "from_step")
    return int(from_step)


def fit_window(c: Curve, from_step: int) -> Curve:
    """``c`` with only its points at steps >= ``from_step`` (its LR untouched); none left is an InputError."""
    keep = c.steps >= from_step
    if not keep.any():
        raise InputError(
            f"{c.where}: no loss record at step >= {from_step} (its last is at step {int(c.steps[-1])}); "
            "lower the fit window's first step",
            "from_step",
        )
    if keep.all():
        return c
    return c.records(keep)


def _check_start(law: Law, start: dict[str, float]) -> None:
    """``start`` names every parameter of ``law`` and nothing else, each finite and within its bounds."""
    missing, extra = set(law.names) - set(start), set(start) - set(law.names)
    if missing or extra:
        wrong = ", ".join([*(f"missing {n}" for n in sorted(missing)), *(f"unknown {n}" for n in sorted(extra))])
        raise InputError(f"start must give exactly the parameters of {law.name} ({', '.join(law.names)}): {wrong}")
    for p in law.params:
        value = start[p.name]
        if not (math.isfinite(value) and p.lo <= value <= p.hi):
            raise InputError(f"start {p.name} = {value!r} is outside [{p.lo:g}, {p.hi:g}]")


def _lbfgs(law: Law, fast: list, y: np.ndarray, space: _Space, huber_sum, scale: float, first: list) -> np.ndarray:
    """``first`` seeds (as z) and grid seeds, then L-BFGS-B to convergence from the best few; the best optimum.

    The objective is divided by ``scale`` (its value at residuals of size delta) so that it is O(1) for
    L-BFGS-B's absolute tolerances (see the module docstring).
    """

    def objective(z: np.ndarray) -> float:
        return min(huber_sum(space.to_theta(z)) / scale, 1e6)

    best = None
    found: list[float] = []
    seeds = first + _seeds(law, fast, y, space, objective)
    if not seeds:
        raise InputError(f"{law.name}: the law is not finite at any starting point on these curves; check their LRs")
    for z0 in seeds:
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf in the finite differences: not the user's
            res = minimize(objective, z0, method="L-BFGS-B", bounds=space.bounds, options=_LBFGS)
        if best is None or res.fun < best.fun:
            best = res
        if any(abs(res.fun - f) <= 1e-6 * abs(res.fun) for f in found) and best.fun >= res.fun - 1e-12:
            break  # two starts reached the same best optimum: more starts would only cost time
        found.append(res.fun)
    return best.x


def _adam_seed(law: Law, curves: list[Curve], huber_delta: float) -> dict[str, float]:
    """Step 1 of the authors' procedure: the simpler law of ``law.adam_start()`` fitted (grid + L-BFGS-B),
    completed with the given values of the other parameters."""
    start_law, rest = law.adam_start()
    return fit(start_law, curves, huber_delta, method="lbfgs", from_step=0).theta | rest  # curves: windowed


def _adam(law: Law, seed: dict[str, float], huber_sum) -> tuple[dict[str, float], int]:
    """Step 2 of the multi-power-law authors' fitting procedure (Luo et al. 2025, their public code),
    re-implemented: AdamW on the raw parameters from ``seed`` (betas 0.9 / 0.999, eps 1e-8, decoupled weight
    decay 0.01), step size per parameter from ``law.adam_rates``, gradient of the Huber sum by central
    differences, at most ``_ADAM_STEPS`` steps.

    Bookkeeping as in their loop, which evaluates the objective, steps, then records: it stops once more than
    ``_ADAM_PATIENCE`` steps have run and the last ``_ADAM_PATIENCE`` evaluations found no new minimum, and it
    returns the parameters *after* the step taken from the point with the lowest objective (one step past
    it). From their logged seed this stops at their logged step and reproduces their logged final parameters
    to 1e-4 (tests); keeping the lowest point itself lands 0.3-0.4% away. That kept point was never evaluated:
    if it turns out invalid (an infinite objective), the lowest evaluated point is returned instead.
    Returns the parameters and the number of objective evaluations (the authors' logged "step" + 1).

    Stopping early keeps the kernel near its start: on the public curves this extrapolates better than the
    converged optimum of the same objective (docs/laws.md), i.e. the early stop acts as a regularizer.
    """
    names = law.names
    lo = np.array([p.lo for p in law.params])
    hi = np.array([p.hi for p in law.params])
    rate = np.array([law.adam_rates[n] for n in names])
    p = np.clip([seed[n] for n in names], lo, hi)

    def loss(v: np.ndarray) -> float:
        return huber_sum(dict(zip(names, v, strict=True)))

    m = np.zeros_like(p)
    v = np.zeros_like(p)
    best, best_p, lowest_p, stall = math.inf, p.copy(), p.copy(), 0
    for t in range(1, _ADAM_STEPS + 1):
        f = loss(p)
        if f < best:
            lowest_p, stall = p.copy(), 0
        else:
            stall += 1
        if t > _ADAM_PATIENCE + 1 and stall >= _ADAM_PATIENCE:
            break
        g = _gradient(loss, p)
        if not np.all(np.isfinite(g)):
            break  # a step left the law's valid region (a non-positive prediction): keep what was recorded
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        p = p * (1 - 0.01 * rate) - rate * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        p = np.clip(p, lo, hi)
        if f < best:
            best, best_p = f, p.copy()
    if not math.isfinite(loss(best_p)):
        best_p = lowest_p
    return dict(zip(names, (float(x) for x in best_p), strict=True)), t


def _gradient(fun, p: np.ndarray) -> np.ndarray:
    """Central finite differences of a scalar function, relative steps 1e-6."""
    g = np.zeros_like(p)
    for i in range(len(p)):
        h = 1e-6 * max(1.0, abs(p[i]))
        up, dn = p.copy(), p.copy()
        up[i] += h
        dn[i] -= h
        g[i] = (fun(up) - fun(dn)) / (2 * h)
    return g


def training_info(curves: list[Curve]) -> dict[str, Any]:
    """What a saved fit remembers about its data: each curve's schedule, and the first one's warmup and peak.

    The warmup length is the first curve's spec ``warmup`` when its schedule is a family spec; otherwise it is
    read off the LR as (peak index + 1), lrlab's default convention lr(W - 1) = peak.
    """
    p = peak_index(curves[0].lr)
    return {
        "curves": {c.name: c.schedule for c in curves},
        "warmup": _spec_warmup(curves[0].schedule, p + 1 if p > 0 else 0),
        "peak_lr": float(curves[0].lr[p]),
    }


def _spec_warmup(schedule: str, fallback: int) -> int:
    """``warmup`` of a family spec (a CSV path, "lr column" or a composite spec has none: ``fallback``)."""
    try:
        warmup = getattr(parse_schedule(schedule), "warmup", None)
    except InputError:
        return fallback
    return fallback if warmup is None else int(warmup)


def _seeds(law: Law, feats: list, y: np.ndarray, space: _Space, objective) -> list[np.ndarray]:
    """Grid over the non-linear parameters with least-squares linear ones; the best distinct few, as z."""
    scored = []
    for point in law.grid():
        theta = {n: 1.0 for n in law.names} | point
        cols = [law.terms(theta, f) for f in feats]
        x = np.stack([np.concatenate([c[n] for c in cols]) for n in law.linear], axis=1)
        if not np.all(np.isfinite(x)):
            continue
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        theta |= dict(zip(law.linear, (float(v) for v in coef), strict=True))
        z = space.to_z(theta)
        scored.append((objective(z), tuple(z)))
    scored.sort()
    seeds: list[np.ndarray] = []
    for _, z in scored:
        if all(np.max(np.abs(np.array(z) - s)) > 1e-6 for s in seeds):
            seeds.append(np.array(z))
        if len(seeds) == _STARTS:
            break
    return seeds
