"""Choosing a batch-size law by leave-one-batch-size-out error, and the whole fit of one LR x batch-size grid.

The protocol (fixed before any test grid was looked at, in the spirit of ``lrlab fit --law auto``): for every
batch size whose best LR is a value, fit the form on the other batch sizes' optima and predict this one; a form's
``cv_error`` is the mean |log predicted - log observed| best LR (0.1 ~ 10 %). ``auto`` takes the form with the
lowest error, ties going to the order of :data:`CANDIDATES`; with too few batch sizes to cross-validate any form
(fewer than 3 values) it takes the surge law, the form for the Adam-style optimizers lrlab trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lrlab.errors import InputError
from lrlab.laws.batch.forms import BatchFit, Form, fit_form
from lrlab.laws.batch.grid import Grid
from lrlab.laws.batch.optimum import Optimum, locate_all
from lrlab.laws.batch.steps import StepsFit

CANDIDATES = ("surge", "sgd", "power")
LAWS = ("auto", *CANDIDATES)
DEFAULT = "surge"


def cv_error(form: Form, optima: list[Optimum]) -> float | None:
    """Mean |log error| of each held-out batch size's best LR, fitted on the others; None when fewer than
    ``form.n_params + 1`` batch sizes have values (a held-out fit needs at least as many points as parameters)."""
    points = [o for o in optima if o.is_value]
    sizes = sorted({o.batch_size for o in points})
    if len(sizes) < form.n_params + 1:
        return None
    errors = []
    for b in sizes:
        rest = [o for o in points if o.batch_size != b]
        fit = fit_form(form, rest, n_boot=0)
        held = [o for o in points if o.batch_size == b]
        errors += [abs(math.log(fit.best_lr(b)) - math.log(o.best_lr)) for o in held]
    return float(np.mean(errors))


@dataclass(frozen=True)
class GridFit:
    """One grid's analysis: the per-batch optima, every candidate's fit and cv error, the chosen law (``law``),
    and the loss noise used for the intervals."""

    name: str
    law: str
    fits: dict[str, BatchFit]
    cv_errors: dict[str, float | None]
    loss_noise: float
    requested: str
    grid: Grid

    @property
    def fit(self) -> BatchFit:
        """The chosen law's fit."""
        return self.fits[self.law]

    @property
    def notes(self) -> list[str]:
        """What a reader must know about the chosen fit: its own notes, and batch sizes whose grid-edge bound the
        law contradicts (it predicts a best LR inside the grid where the grid says beyond)."""
        out = list(self.fit.notes)
        for o in self.optima:
            if o.at_grid_edge not in ("low", "high"):
                continue
            pred = float(self.fit.best_lr(o.batch_size))
            lo, hi = o.interval
            if (o.at_grid_edge == "high" and pred < lo) or (o.at_grid_edge == "low" and pred > hi):
                where = "above" if o.at_grid_edge == "high" else "below"
                out.append(f"at batch size {o.batch_size:g} the grid puts the best LR {where} {o.best_lr:.3g} but "
                           f"the {self.law} law predicts {pred:.3g}")  # fmt: skip
        return out

    @property
    def measured(self) -> tuple[float, float]:
        """The smallest and largest batch size with cells."""
        return float(self.grid.batch_sizes.min()), float(self.grid.batch_sizes.max())

    @property
    def optima(self) -> list[Optimum]:
        return self.fit.optima

    def expected_loss(self, batch_size: float) -> float | None:
        """The loss at the best LR for ``batch_size``: the per-batch minima interpolated linearly in log B, None
        outside the measured batch sizes (not extrapolated)."""
        points = sorted((o.batch_size, o.loss) for o in self.optima if math.isfinite(o.loss))
        b = np.array([p[0] for p in points])
        if not len(b) or not b[0] <= batch_size <= b[-1]:
            return None
        return float(np.interp(math.log(batch_size), np.log(b), [p[1] for p in points]))


def fit_grid(
    grid: Grid,
    law: str = "auto",
    alpha: float | None = 1.0,
    loss_noise: float | None = None,
    level: float = 0.95,
    n_boot: int = 400,
) -> GridFit:
    """Locate the best LR at each batch size of ``grid``, fit and cross-validate every candidate form, and choose
    ``law`` (``auto``: the lowest cv error). ``alpha`` is the sgd form's exponent (None: fitted)."""
    if law not in LAWS:
        raise InputError(f"must be one of {', '.join(LAWS)}, got {law!r}", "law")
    if len(grid.batch_sizes) < 2:
        raise InputError(f"{grid.label}needs cells at 2 or more batch sizes, got {len(grid.batch_sizes)}", "batch_size")
    if not np.any(np.isfinite(grid.loss)):
        raise InputError(f"{grid.label}every cell diverged ({len(grid.loss)} cells)", "loss")
    optima, sigma = locate_all(grid, loss_noise, level)
    forms = {name: Form(name, alpha if name == "sgd" else 1.0) for name in CANDIDATES}
    errors = {name: cv_error(form, optima) for name, form in forms.items()}
    chosen = law
    if law == "auto":
        scored = {k: v for k, v in errors.items() if v is not None}
        chosen = min(scored, key=lambda k: (scored[k], CANDIDATES.index(k))) if scored else DEFAULT
    try:
        fits = {name: fit_form(form, optima, level, n_boot) for name, form in forms.items()}
    except InputError as exc:
        raise InputError(f"{grid.label}{exc.message}", exc.param) from None
    return GridFit(grid.name, chosen, fits, errors, sigma, law, grid)


def summary(g: GridFit, predict=()) -> dict:
    """The JSON object of one grid: law, params, intervals, per-batch optima, predictions, cv errors."""
    predict = [float(b) for b in predict]
    pred, lo, hi = g.fit.band(predict) if predict else ([], [], [])
    return {
        "law": g.law,
        "params": g.fit.params,
        "intervals": g.fit.intervals,
        "b_noise_bound": g.fit.b_noise_bound,
        "loss_noise": g.loss_noise,
        "per_batch": [
            {
                "batch_size": o.batch_size,
                "best_lr": o.best_lr,
                "interval": o.interval,
                "at_grid_edge": o.at_grid_edge,
                "loss": o.loss,
                "method": o.method,
                "cells": o.n_cells,
                "diverged": o.n_diverged,
            }
            for o in g.optima
        ],
        "predicted": [
            {
                "batch_size": b,
                "best_lr": float(p),
                "interval": (float(a), float(c)),
                "loss": g.expected_loss(b),
                "extrapolated": not g.measured[0] <= b <= g.measured[1],
            }
            for b, p, a, c in zip(predict, pred, lo, hi, strict=True)
        ],
        "notes": g.notes,
        "cv_error": g.cv_errors,
        "missing_cells": g.grid.missing,
    }


def b_noise_views(g: GridFit, steps: StepsFit | None = None, gns: float | None = None) -> dict:
    """B_noise three ways, side by side: the surge law's peak, steps vs examples to a target loss, the gns probe
    (B_simple); ``spread`` is the largest over the smallest of the finite ones (1: they agree)."""
    surge = g.fits.get("surge")
    views: dict = {
        "surge_peak": None if surge is None else {
            "value": surge.params["b_noise"], "interval": surge.intervals["b_noise"], "bound": surge.b_noise_bound,
        },
        "steps_to_target": None if steps is None else {
            "value": steps.b_noise, "interval": steps.intervals["b_noise"], "at_bound": steps.at_bound,
        },
        "gns": gns,
    }  # fmt: skip
    values = [v["value"] for v in (views["surge_peak"], views["steps_to_target"]) if v and not v.get("bound")]
    values += [gns] if gns is not None else []
    values = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    views["spread"] = max(values) / min(values) if len(values) >= 2 else None
    return views
