"""Hyperparameter power laws across scale, fitted in log space, and the published ones to compare with.

A hyperparameter y (the best peak LR eta_opt, the best batch size B_opt) measured at several scales (model size
N, training tokens D, compute C) is fitted as

    y = c prod_k x_k^a_k,     i.e.     log y = log c + sum_k a_k log x_k,

by ordinary least squares on log y (the errors of a located optimum are multiplicative: a fraction of it).
For example eta_opt(N, D) = c N^a D^b (Step Law's form), B_opt(D) = c D^k, or either in compute alone.
Units are the caller's: c carries them (y's unit / prod x_k's units^a_k), so fit and predict in one set.

Intervals are t-based at ``level`` with n - p degrees of freedom (p = 1 + the number of features):
a_k +- t se(a_k), and exp(log c +- t se(log c)) for c, from the covariance s^2 (X^T X)^-1 with
s^2 = RSS / (n - p). ``logo_error`` is the mean |log y - log y_pred| over rows, each predicted by the fit
without its group (leave one group out: e.g. a model size; each row its own group when ``groups`` is None):
how far the law errs on a scale it has not seen.

Published laws (:data:`PUBLISHED`, :func:`published`), as their papers state them:

- Step Law, Li et al. 2025, "Predictable Scale: Part I" (arXiv:2503.04715): eta_opt = 1.79 N^-0.713 D^0.307
  and B_opt = 0.58 D^0.571, N non-embedding parameters, D training tokens, B_opt in tokens; AdamW, their final
  LR fixed at 1e-5.
- DeepSeek LLM, Bi et al. 2024 (arXiv:2401.02954): eta_opt = 0.3118 C^-0.1250 and B_opt = 0.2920 C^0.3271,
  C the compute in FLOPs (their C = M D, M the non-embedding FLOPs per token, attention included), B_opt in
  tokens.

Verification (at the time of writing): the coefficients and exponents above were checked against secondary
sources that quote the papers (several independent write-ups and tables, and an optimal-hyperparameter
calculator for DeepSeek's, agree on every number), not against the papers' own text, which was not at hand.
The unit conventions (N without embeddings, B in tokens, C = M D) are as those sources state them; the Step Law
authors' public fitting code (github step-law/steplaw, code/fit_tool.py) also counts the batch in tokens
(sequences x sequence length) and D in tokens. Not verified: the exact definition of M in DeepSeek's paper.

Example::

    fit = fit_power("lr", lr_opt, {"N": n_params, "D": tokens}, groups=model_names)
    fit.exponents["N"], fit.intervals["N"], fit.predict(N=1e9, D=2e10), fit.logo_error
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import t as student_t

from lrlab.errors import InputError, clip
from lrlab.laws.batch.grid import check_level, positive

MAX_ROWS = 100_000  # a table of located optima: hundreds at most
MAX_FEATURES = 8


@dataclass(frozen=True)
class PowerFit:
    """y = coef prod_k x_k^exponents[k], fitted in log space (see the module docstring).

    ``intervals`` maps ``"coef"`` and each feature name to (lo, hi) at ``level`` (t-based);
    ``log_residuals`` = log y - log y_fit in the input order; ``logo_error`` is the leave-one-group-out mean
    |log error| (None when there are fewer than 3 groups, or a fold without its group cannot be fitted); ``n`` the
    number of rows.
    """

    target: str
    features: tuple[str, ...]
    coef: float
    exponents: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    log_residuals: np.ndarray
    logo_error: float | None
    n: int
    level: float = 0.95
    cov: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)  # of (log c, a_1, ...)

    def predict(self, **features) -> np.ndarray:
        """coef prod_k x_k^a_k at the given features (every fitted one, by name; arrays broadcast)."""
        missing = [f for f in self.features if f not in features]
        extra = [f for f in features if f not in self.features]
        if missing or extra:
            wrong = ", ".join([*(f"missing {f}" for f in missing), *(f"unknown {f}" for f in extra)])
            raise InputError(f"predict needs exactly the fitted features {', '.join(self.features)}: {wrong}")
        log_y = math.log(self.coef)
        for name in self.features:
            log_y = log_y + self.exponents[name] * np.log(positive(features[name], name))
        return np.exp(log_y)


def _design(y, features: dict, groups) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray | None]:
    if not isinstance(features, dict) or not features:
        raise InputError("needs at least one feature, e.g. {'N': n_params}", "features")
    if len(features) > MAX_FEATURES:
        raise InputError(f"{len(features)} features, more than the limit of {MAX_FEATURES}", "features")
    names = tuple(features)
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(f"feature names must be identifiers (N, D, C), got {clip(name, 40)!r}", "features")
    y = positive(y, "y")
    if y.ndim != 1:
        raise InputError("must be one-dimensional", "y")
    if len(y) > MAX_ROWS:
        raise InputError(f"{len(y):,} rows, more than the limit of {MAX_ROWS:,}", "y")
    cols = []
    for name in names:
        x = positive(features[name], name)
        if x.ndim != 1 or len(x) != len(y):
            raise InputError(f"{x.size} values where y has {len(y)}", name)
        logx = np.log(x)
        if np.ptp(logx) <= 1e-12 * max(1.0, float(np.max(np.abs(logx)))):
            raise InputError(f"{name} takes one value: its exponent cannot be fitted", name)
        cols.append(logx)
    p = len(names) + 1
    if len(y) < p + 1:
        raise InputError(
            f"{p} parameters (coef and {len(names)} exponent{'s' if len(names) > 1 else ''}) need at least {p + 1} "
            f"rows for intervals, got {len(y)}",
            "y",
        )
    x = np.column_stack([np.ones(len(y)), *cols])
    if np.linalg.matrix_rank(x) < p:
        raise InputError(
            f"the features {', '.join(names)} are linearly dependent in log space (e.g. C = 6 N D beside N and D): "
            "drop one",
            "features",
        )
    g = None
    if groups is not None:
        g = np.asarray(groups)
        if g.ndim != 1 or len(g) != len(y):
            raise InputError(f"{g.size} group labels where y has {len(y)}", "groups")
    return x, np.log(y), names, g


def _lstsq(x: np.ndarray, log_y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(x, log_y, rcond=None)[0]


def _logo(x: np.ndarray, log_y: np.ndarray, groups: np.ndarray | None) -> float | None:
    """Mean |log error| of each row predicted by the fit on the other groups (None if not computable)."""
    labels = np.arange(len(log_y)) if groups is None else groups
    unique = list(dict.fromkeys(labels.tolist()))
    if len(unique) < 3:
        return None
    errors = np.empty(len(log_y))
    for label in unique:
        out = labels == label
        keep = ~out
        if keep.sum() < x.shape[1] or np.linalg.matrix_rank(x[keep]) < x.shape[1]:
            return None
        errors[out] = np.abs(log_y[out] - x[out] @ _lstsq(x[keep], log_y[keep]))
    return float(errors.mean())


def fit_power(target: str, y, features: dict[str, np.ndarray], groups=None, level: float = 0.95) -> PowerFit:
    """Fit y = c prod_k x_k^a_k by least squares on log y (see the module docstring).

    Args:
        target: the name of y (``"lr"``, ``"batch_size"``), kept for reports.
        y: the measured hyperparameter at each row, finite and > 0.
        features: name -> values, one a row, finite and > 0 (e.g. ``{"N": ..., "D": ...}``); each must vary.
        groups: one label a row for the leave-one-group-out error (e.g. the model size); None: each row.
        level: the probability of the intervals (default 0.95).

    Needs at least len(features) + 2 rows (one degree of freedom for the intervals). Raises
    :class:`InputError` naming ``y``, the feature, ``features``, ``groups`` or ``level``.
    """
    if not isinstance(target, str) or not target.strip():
        raise InputError(f"must name the fitted quantity, got {clip(target, 40)!r}", "target")
    level = check_level(level)
    x, log_y, names, g = _design(y, features, groups)
    beta = _lstsq(x, log_y)
    resid = log_y - x @ beta
    n, p = x.shape
    dof = n - p
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.inv(x.T @ x)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    tq = float(student_t.ppf(0.5 + level / 2, dof))
    intervals = {"coef": (math.exp(beta[0] - tq * se[0]), math.exp(beta[0] + tq * se[0]))}
    for k, name in enumerate(names, start=1):
        intervals[name] = (float(beta[k] - tq * se[k]), float(beta[k] + tq * se[k]))
    return PowerFit(
        target=target, features=names, coef=math.exp(beta[0]),
        exponents={name: float(beta[k]) for k, name in enumerate(names, start=1)}, intervals=intervals,
        log_residuals=resid, logo_error=_logo(x, log_y, g), n=n, level=level, cov=cov,
    )  # fmt: skip


@dataclass(frozen=True)
class PublishedLaw:
    """One published power law y = coef prod_k x_k^exponents[k] (``target`` is ``eta_opt`` or ``B_opt``)."""

    name: str
    target: str
    coef: float
    exponents: dict[str, float]
    formula: str
    units: str
    reference: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(self.exponents)

    def __call__(self, **inputs) -> np.ndarray:
        """The law at the given inputs (exactly its own, by name; arrays broadcast)."""
        if set(inputs) != set(self.exponents):
            raise InputError(f"{self.name} {self.target} takes {', '.join(self.exponents)}, got {', '.join(inputs)}")
        out = np.asarray(self.coef, dtype=np.float64)
        for name, a in self.exponents.items():
            out = out * positive(inputs[name], name) ** a
        return out


_STEP = "Li et al. 2025, Predictable Scale: Part I (Step Law), arXiv:2503.04715"
_DEEPSEEK = "Bi et al. 2024, DeepSeek LLM, arXiv:2401.02954"
PUBLISHED: dict[str, PublishedLaw] = {
    "step-law/eta_opt": PublishedLaw(
        "Step Law", "eta_opt", 1.79, {"N": -0.713, "D": 0.307}, "eta_opt = 1.79 N^-0.713 D^0.307",
        "peak LR (AdamW); N non-embedding parameters, D training tokens", _STEP,
    ),
    "step-law/B_opt": PublishedLaw(
        "Step Law", "B_opt", 0.58, {"D": 0.571}, "B_opt = 0.58 D^0.571", "tokens a batch; D training tokens", _STEP,
    ),
    "deepseek/eta_opt": PublishedLaw(
        "DeepSeek LLM", "eta_opt", 0.3118, {"C": -0.1250}, "eta_opt = 0.3118 C^-0.1250",
        "peak LR (AdamW); C compute in FLOPs (non-embedding FLOPs per token x tokens)", _DEEPSEEK,
    ),
    "deepseek/B_opt": PublishedLaw(
        "DeepSeek LLM", "B_opt", 0.2920, {"C": 0.3271}, "B_opt = 0.2920 C^0.3271",
        "tokens a batch; C compute in FLOPs (non-embedding FLOPs per token x tokens)", _DEEPSEEK,
    ),
}  # fmt: skip


def _scalar(value, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InputError(f"must be a number, got {value!r}", name)
    arr = positive(value, name)
    if arr.ndim != 0:
        raise InputError("must be one number", name)
    return float(arr)


def published(N=None, D=None, C=None) -> list[dict]:
    """Every published law's eta_opt and B_opt where its inputs are given (:data:`PUBLISHED`).

    ``N``: non-embedding parameters; ``D``: training tokens; ``C``: training compute in FLOPs. When ``C`` is not
    given but ``N`` and ``D`` are, C = 6 N D: an approximation of DeepSeek's C = M D (M the non-embedding FLOPs
    per token, which adds attention's FLOPs to 6 N; close when the context is short next to the width).

    Returns one dict a law (name, reference, ``eta_opt`` and ``B_opt``, each a float or None when an input is
    missing, their ``formulas`` and ``units``, and the ``inputs`` used, with ``C_from`` "given" or "6 N D");
    laws with neither value are left out.
    """
    values: dict[str, float | None] = {"N": _scalar(N, "N"), "D": _scalar(D, "D"), "C": _scalar(C, "C")}
    c_from = "given" if values["C"] is not None else None
    if values["C"] is None and values["N"] is not None and values["D"] is not None:
        values["C"], c_from = 6.0 * values["N"] * values["D"], "6 N D"
    out: list[dict] = []
    by_name: dict[str, dict] = {}
    for law in PUBLISHED.values():
        row = by_name.get(law.name)
        if row is None:
            row = {"name": law.name, "reference": law.reference, "eta_opt": None, "B_opt": None, "formulas": {},
                   "units": {}, "inputs": {}}  # fmt: skip
            by_name[law.name] = row
        row["formulas"][law.target] = law.formula
        row["units"][law.target] = law.units
        if all(values[k] is not None for k in law.inputs):
            row[law.target] = float(law(**{k: values[k] for k in law.inputs}))
            row["inputs"].update({k: values[k] for k in law.inputs})
            if "C" in law.inputs:
                row["inputs"]["C_from"] = c_from
    for row in by_name.values():
        if row["eta_opt"] is not None or row["B_opt"] is not None:
            out.append(row)
    return out
