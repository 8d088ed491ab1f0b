"""Choose a schedule by minimizing a fitted law's predicted final loss L(T - 1) for T total steps.

Families (all share the warmup: ``warmup`` steps linear from 0 to ``peak``, as lrlab schedules do):

- ``wsd``: the best decay share (fraction of T, 0.01..1) for each decay shape (linear, cosine, 1-sqrt, and exp
  when the final LR is > 0): a grid of 60 shares, refined by a bounded scalar search;
- ``cosine``: the best final LR as a ratio of the peak (0..1), same search;
- ``free``: any non-increasing LR after warmup. The LR at K = 24 knots (denser towards the end, where the
  schedule bends) is parametrized by ratios r_i in [0, 1], lr(knot_i) = peak * r_1 ... r_i, so every vector in the
  box is monotone; steps between knots interpolate linearly. L-BFGS-B from the best WSD and from cosine-to-0.

The baseline every result is compared with is cosine to 10% of the peak (``BASELINE_FINAL_RATIO``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from lrlab.errors import InputError, clip
from lrlab.laws.fitting import Fit
from lrlab.schedules import WSD, Cosine, Schedule, Tabulated
from lrlab.schedules.base import check_dense_steps

BASELINE_FINAL_RATIO = 0.1
WSD_SHAPES = ("linear", "cosine", "1-sqrt", "exp")
FREE_KNOTS = 24
FAMILIES = ("wsd", "cosine", "free")


@dataclass
class Choice:
    """One optimized schedule and its predicted final loss, with the cosine baseline for comparison."""

    family: str
    schedule: Schedule
    loss: float
    baseline: Schedule
    baseline_loss: float
    detail: dict

    @property
    def gain(self) -> float:
        """Predicted final-loss improvement over the baseline (positive = better), in loss units."""
        return self.baseline_loss - self.loss

    def to_dict(self) -> dict:
        return {
            "family": self.family,
            "schedule": str(self.schedule),
            "final_loss": self.loss,
            "baseline": str(self.baseline),
            "baseline_loss": self.baseline_loss,
            "gain": self.gain,
            "gain_relative": self.gain / self.baseline_loss,
            **self.detail,
        }


class _Target:
    """Predicted final loss of a schedule (array or object) under a fit; ``inf`` where the law gives no valid
    loss (not finite, or <= 0), so that a search never prefers a schedule the law cannot describe."""

    def __init__(self, fit: Fit, total: int, n_params: float | None):
        self.fit, self.total, self.n_params = fit, total, n_params
        self.last = np.array([total - 1])

    def __call__(self, lr: np.ndarray | Schedule) -> float:
        values = lr.values(self.total) if isinstance(lr, Schedule) else lr
        loss = float(self.fit.predict(values, self.last, self.n_params)[0])
        return loss if math.isfinite(loss) and loss > 0 else math.inf


def _valid(loss: float, what: str, peak: float, fit: Fit) -> float:
    """``loss`` if the law predicted a valid one for ``what``, else an InputError saying what was asked of it."""
    if math.isinf(loss):
        fitted = fit.info.get("peak_lr")
        at = f"; the fit's curves peaked at {fitted:.3g}" if isinstance(fitted, int | float) else ""
        raise InputError(
            f"the fitted law predicts no valid final loss for {what} (peak LR {peak:.3g}{at}): the request lies "
            "outside what the fit describes",
            "peak",
        )
    return loss


def _check(total: int, peak: float, warmup: int, final: float) -> None:
    if not (math.isfinite(peak) and peak > 0):
        raise InputError(f"must be finite and > 0, got {peak}", "peak")
    if warmup < 0:
        raise InputError(f"must be >= 0, got {warmup}", "warmup")
    if total <= warmup + 2:
        raise InputError(f"{total} must exceed the warmup ({warmup}) by more than 2 steps", "total")
    check_dense_steps(total, "total")
    if not 0 <= final < peak:
        raise InputError(f"final LR {final} must lie in [0, peak={peak})", "final")


def _best_scalar(f, lo: float, hi: float, n: int = 60) -> tuple[float, float]:
    """Minimize f on [lo, hi]: grid of n points, then a bounded Brent search around the best cell."""
    xs = np.linspace(lo, hi, n)
    ys = [f(x) for x in xs]
    i = int(np.argmin(ys))
    a, b = xs[max(i - 1, 0)], xs[min(i + 1, n - 1)]
    res = minimize_scalar(f, bounds=(a, b), method="bounded", options={"xatol": 1e-4 * (hi - lo)})
    return (float(res.x), float(res.fun)) if res.fun < ys[i] else (float(xs[i]), float(ys[i]))


def baseline(total: int, peak: float, warmup: int) -> Cosine:
    return Cosine(peak=peak, warmup=warmup, total=total, final_ratio=BASELINE_FINAL_RATIO)


def optimize_wsd(fit: Fit, total: int, peak: float, warmup: int, final: float = 0.0, n_params=None) -> Choice:
    """Best WSD decay share for every decay shape; returns the best overall, every shape in ``detail``."""
    _check(total, peak, warmup, final)
    target = _Target(fit, total, n_params)
    lo, hi = 2.0 / total, (total - warmup) / total
    per_shape = {}
    for shape in WSD_SHAPES:
        if shape == "exp" and final <= 0:
            continue

        def sched(d: float, shape=shape) -> WSD:
            steps = int(min(max(round(d * total), 1), total - warmup))
            return WSD(peak=peak, warmup=warmup, total=total, decay_steps=steps, shape=shape, final=final)

        d, loss = _best_scalar(lambda d, sched=sched: target(sched(d)), lo, hi)
        per_shape[shape] = (sched(d), loss)
    shape = min(per_shape, key=lambda s: per_shape[s][1])
    best, loss = per_shape[shape]
    detail = {
        "decay_share": best.decay_length / total,
        "shape": shape,
        "shapes": {s: {"schedule": str(v[0]), "final_loss": v[1]} for s, v in per_shape.items()},
    }
    base = baseline(total, peak, warmup)
    loss = _valid(loss, "any WSD schedule", peak, fit)
    return Choice("wsd", best, loss, base, _valid(target(base), "the cosine baseline", peak, fit), detail)


def optimize_cosine(fit: Fit, total: int, peak: float, warmup: int, n_params=None) -> Choice:
    """Best final LR (as a ratio of the peak) for a cosine decay over the whole run."""
    _check(total, peak, warmup, 0.0)
    target = _Target(fit, total, n_params)

    def sched(r: float) -> Cosine:
        return Cosine(peak=peak, warmup=warmup, total=total, final_ratio=float(np.clip(r, 0.0, 1.0)))

    r, loss = _best_scalar(lambda r: target(sched(r)), 0.0, 1.0)
    base = baseline(total, peak, warmup)
    loss = _valid(loss, "any cosine schedule", peak, fit)
    base_loss = _valid(target(base), "the cosine baseline", peak, fit)
    return Choice("cosine", sched(r), loss, base, base_loss, {"final_ratio": r})


def knot_steps(total: int, warmup: int, knots: int = FREE_KNOTS) -> np.ndarray:
    """Knot positions from the warmup's end to the last step, spaced as 1 - (1 - u)^2 (denser at the end)."""
    u = np.linspace(0.0, 1.0, knots + 1)
    return warmup + (total - 1 - warmup) * (1.0 - (1.0 - u) ** 2)


def free_lr(ratios: np.ndarray, total: int, peak: float, warmup: int) -> np.ndarray:
    """Per-step LR of the free-form family: linear warmup, then knots at peak * cumprod(ratios)."""
    t = np.arange(total)
    knots = knot_steps(total, warmup, len(ratios))
    levels = peak * np.concatenate([[1.0], np.cumprod(ratios)])
    lr = np.interp(t, knots, levels)
    if warmup:
        lr[:warmup] = peak * (t[:warmup] + 1) / warmup
    return lr


def _ratios_of(lr: np.ndarray, total: int, warmup: int) -> np.ndarray:
    """Knot ratios that best reproduce a non-increasing schedule (to start the free search from it)."""
    levels = np.interp(knot_steps(total, warmup), np.arange(total), lr)
    levels = np.maximum(np.minimum.accumulate(levels), levels[0] * 1e-6)
    return np.clip(levels[1:] / levels[:-1], 0.0, 1.0)


def optimize_free(fit: Fit, total: int, peak: float, warmup: int, n_params=None) -> Choice:
    """Best non-increasing schedule after warmup (see the module docstring)."""
    _check(total, peak, warmup, 0.0)
    target = _Target(fit, total, n_params)
    seeds = [
        optimize_wsd(fit, total, peak, warmup, 0.0, n_params).schedule.values(total),
        Cosine(peak=peak, warmup=warmup, total=total).values(total),
    ]
    best = None
    for seed in seeds:
        # an infinite loss at a probed point makes L-BFGS-B's finite differences inf - inf: the optimizer steps
        # away from it, and numpy's "invalid value" warning would only alarm the user
        with np.errstate(invalid="ignore", over="ignore"):
            res = minimize(
                lambda r: target(free_lr(r, total, peak, warmup)),
                _ratios_of(seed, total, warmup),
                method="L-BFGS-B",
                bounds=[(0.0, 1.0)] * FREE_KNOTS,
            )
        if best is None or res.fun < best.fun:
            best = res
    lr = free_lr(best.x, total, peak, warmup)
    base = baseline(total, peak, warmup)
    knots = knot_steps(total, warmup)
    detail = {"knots": [round(float(k)) for k in knots], "knot_lr": np.interp(knots, np.arange(total), lr).tolist()}
    loss = _valid(float(best.fun), "any free-form schedule", peak, fit)
    return Choice("free", Tabulated(lr), loss, base, _valid(target(base), "the cosine baseline", peak, fit), detail)


def optimize(fit: Fit, family: str, total: int, peak: float, warmup: int, n_params=None) -> Choice:
    """The best schedule of ``family`` (one of :data:`FAMILIES`) for ``total`` steps at ``peak`` LR."""
    if family == "wsd":
        return optimize_wsd(fit, total, peak, warmup, 0.0, n_params)
    if family == "cosine":
        return optimize_cosine(fit, total, peak, warmup, n_params)
    if family == "free":
        return optimize_free(fit, total, peak, warmup, n_params)
    raise InputError(f"must be one of {', '.join(FAMILIES)}, got {clip(family)!r}", "family")
