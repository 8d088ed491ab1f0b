"""The multi-power law of Luo et al. (2025):

    L(s) = L0 + A (S1(s) + S_W)^-alpha - B sum_{p<k<=s} (eta_{k-1} - eta_k) G(eta_k^-gamma S_k(s))
    S_k(s) = sum_{k<=i<=s} eta_i,   G(x) = 1 - (C x + 1)^-beta

``p`` is the peak index (end of warmup). S1 + S_W is taken as the whole area ``sum_{i<=s} eta_i``, i.e. S_W is
the LR actually spent in warmup (0.5 eta_max W for a linear warmup from 0, as in the paper, up to one step).

:class:`QAreaExpLaw` below is lrlab's variant (an LR-power progress area and an exponential drop kernel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrlab.laws.areas import BinnedLossDrop, forward_area, mpl_loss_drop, peak_index
from lrlab.laws.law import Law, Param


@dataclass(frozen=True)
class _Feats:
    area: np.ndarray
    drop: Any  # (c, beta, gamma) -> LD / B at the steps


class MultiPowerLaw(Law):
    """Seven parameters: L0, A, alpha, B, C, beta, gamma (LR in its raw units, e.g. 3e-4)."""

    name = "mpl"

    @property
    def params(self) -> tuple[Param, ...]:
        return (
            Param("L0", 0.0, 50.0, scale="linear"),
            Param("A", 1e-8, 1e4),
            Param("alpha", 1e-3, 5.0),
            Param("B", 1e-6, 1e8),
            Param("C", 1e-4, 1e4),
            Param("beta", 1e-3, 5.0),
            Param("gamma", 0.0, 1.5, scale="linear"),
        )

    @property
    def linear(self) -> tuple[str, ...]:
        return ("L0", "A", "B")

    def grid(self) -> list[dict[str, float]]:
        return [
            {"alpha": a, "C": c, "beta": b, "gamma": g}
            for a in (0.3, 0.5, 0.7)
            for c in (0.5, 2.0, 8.0)
            for b in (0.3, 0.6, 1.0)
            for g in (0.3, 0.6)
        ]

    def prepare(self, lr, steps, n_params=None, exact=True) -> _Feats:
        if exact:
            return _Feats(forward_area(lr)[steps], lambda c, b, g: mpl_loss_drop(lr, steps, c, b, g))
        return _Feats(forward_area(lr)[steps], BinnedLossDrop(lr, steps))

    def terms(self, theta, f: _Feats) -> dict[str, np.ndarray]:
        return {
            "L0": np.ones_like(f.area),
            "A": f.area ** -theta["alpha"],
            "B": -f.drop(theta["C"], theta["beta"], theta["gamma"]),
        }


@dataclass(frozen=True)
class _QFeats:
    base: _Feats
    ratio: np.ndarray  # lr / peak LR, every step
    peak: float
    steps: np.ndarray


class QAreaExpLaw(MultiPowerLaw):
    """lrlab's variant of the multi-power law (seven parameters), two changes:

        L(s) = L0 + A Sq(s)^-alpha - B sum_{p<k<=s} (eta_{k-1} - eta_k) (1 - exp(-C eta_k^-gamma S_k(s)))
        Sq(s) = eta_max sum_{i<=s} (eta_i / eta_max)^q

    1. Progress area with an exponent q (fitted, 0.2..3): with q < 1 a step at a lower LR advances the
       power-law term by more than its LR share (q = 1 is the MPL's S1 + S_W).
    2. An exponential loss-drop kernel, the beta -> inf limit of the MPL's 1 - (1 + C x / beta)^-beta. Fitted on
       24K-step curves, the MPL's own kernel drifts to beta -> 0, a logarithmic drop that never saturates and
       over-predicts the drop of long, slow decays; the exponential kernel saturates.
    Either change alone does not help on every model size; together they do (docs/laws.md has the numbers).
    """

    name = "mpl-qexp"

    @property
    def params(self) -> tuple[Param, ...]:
        base = tuple(p for p in super().params if p.name not in ("beta", "C"))
        return (*base, Param("C", 1e-10, 1e4), Param("q", 0.2, 3.0, scale="linear"))

    def grid(self) -> list[dict[str, float]]:
        return [
            {"alpha": a, "C": c, "gamma": g, "q": q}
            for a in (0.3, 0.5, 0.7)
            for c in (0.01, 0.1, 1.0, 10.0)
            for g in (0.0, 0.3, 0.6, 0.9)
            for q in (0.7, 1.0)
        ]

    def prepare(self, lr, steps, n_params=None, exact=True) -> _QFeats:
        lr = np.asarray(lr, dtype=np.float64)
        peak = float(lr[peak_index(lr)])
        return _QFeats(super().prepare(lr, steps, n_params, exact), lr / peak, peak, np.asarray(steps))

    def terms(self, theta, f: _QFeats) -> dict[str, np.ndarray]:
        area = f.peak * np.cumsum(f.ratio ** theta["q"])[f.steps]
        return {
            "L0": np.ones_like(area),
            "A": area ** -theta["alpha"],
            "B": -f.base.drop(theta["C"], math.inf, theta["gamma"]),
        }
