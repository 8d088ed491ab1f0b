"""The multi-power law of Luo et al. (2025):

    L(s) = L0 + A (S1(s) + S_W)^-alpha - B sum_{k0<=k<=s} (eta_{k-1} - eta_k) G(eta_k^-gamma S_k(s))
    S_k(s) = sum_{k<=i<=s} eta_i,   G(x) = 1 - (C x + 1)^-beta

S1 + S_W is taken as the whole area ``sum_{i<=s} eta_i``, i.e. S_W is the LR actually spent in warmup
(0.5 eta_max W for a linear warmup from 0, as in the paper, up to one step). The loss-drop sum starts at
``k0 = 1`` by default, as in the authors' code: the warmup's rising LR enters it as negative drops (their logged
parameters reproduce their logged errors only this way); ``warmup="skip"`` starts it after the peak ``p``
(``k0 = p + 1``), as the paper's formula is written.

:class:`QAreaExpLaw` below is lrlab's variant (an LR-power progress area and an exponential drop kernel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lrlab.errors import InputError
from lrlab.laws.areas import BinnedLossDrop, forward_area, mpl_loss_drop, peak_index
from lrlab.laws.law import Law, Param

_WARMUPS = ("count", "skip")


@dataclass(frozen=True)
class _Feats:
    area: np.ndarray
    drop: Any  # (c, beta, gamma) -> LD / B at the steps (an array for SaturatedDropLaw)


class SaturatedDropLaw(Law):
    """The multi-power law with a loss drop that is complete at once (G = 1), measured from the peak LR:

        L(s) = L0 + A (sum_{i<=s} eta_i)^-alpha - B (eta_max - eta_s)

    Four parameters (L0, A, alpha, B). It seeds the multi-power law's Adam fit, as in the authors' code.
    """

    name = "mpl-saturated"

    @property
    def params(self) -> tuple[Param, ...]:
        return tuple(p for p in MultiPowerLaw().params if p.name in ("L0", "A", "alpha", "B"))

    @property
    def linear(self) -> tuple[str, ...]:
        return ("L0", "A", "B")

    def grid(self) -> list[dict[str, float]]:
        return [{"alpha": a} for a in (0.2, 0.3, 0.4, 0.5, 0.6, 0.8)]

    def prepare(self, lr, steps, n_params=None, exact=True) -> _Feats:
        lr = np.asarray(lr, dtype=np.float64)
        return _Feats(forward_area(lr)[steps], lr.max() - lr[steps])

    def terms(self, theta, f: _Feats) -> dict[str, np.ndarray]:
        return {"L0": np.ones_like(f.area), "A": f.area ** -theta["alpha"], "B": -f.drop}


class MultiPowerLaw(Law):
    """Seven parameters: L0, A, alpha, B, C, beta, gamma (LR in its raw units, e.g. 3e-4).

    ``warmup="count"`` (default, the authors' code): the warmup's rising LR enters the loss-drop sum as negative
    drops; ``warmup="skip"``: the sum starts after the peak, as the paper's formula reads.
    Fitted by default as the authors do (``fit_method = "adam"``): :class:`SaturatedDropLaw` first, then
    early-stopped AdamW from C = 1, beta = 0.5, gamma = 0.5 with step sizes 0.05 (L0, A, B, C) and 0.005
    (alpha, beta, gamma) in raw units.
    """

    name = "mpl"
    fit_method = "adam"
    adam_rates: ClassVar[dict[str, float]] = {
        "L0": 5e-2,
        "A": 5e-2,
        "B": 5e-2,
        "C": 5e-2,
        "alpha": 5e-3,
        "beta": 5e-3,
        "gamma": 5e-3,
    }

    def adam_start(self) -> tuple[Law, dict[str, float]]:
        return SaturatedDropLaw(), {"C": 1.0, "beta": 0.5, "gamma": 0.5}

    def __init__(self, warmup: str = "count"):
        if warmup not in _WARMUPS:
            raise InputError(f"{self.name}: warmup must be one of {_WARMUPS}, got {warmup!r}", "warmup")
        self.warmup = warmup

    def options(self) -> dict[str, Any]:
        return {"warmup": self.warmup}

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
            w = self.warmup == "count"
            return _Feats(forward_area(lr)[steps], lambda c, b, g: mpl_loss_drop(lr, steps, c, b, g, w))
        return _Feats(forward_area(lr)[steps], BinnedLossDrop(lr, steps, self.warmup == "count"))

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
    """lrlab's variant of the multi-power law (six parameters by default), three changes:

        L(s) = L0 + A Sq(s)^-alpha - B sum_{p<k<=s} (eta_{k-1} - eta_k) (1 - exp(-C eta_k^-gamma S_k(s)))
        Sq(s) = eta_max sum_{i<=s} (eta_i / eta_max)^q

    fitted to convergence (grid + L-BFGS-B), the warmup's rises counted in the loss-drop sum as in ``mpl``
    (``warmup="count"``, chosen over "skip" by the train-only selection protocol in docs/laws.md).

    1. Progress area with an exponent q (fitted, 0.2..3): with q < 1 a step at a lower LR advances the
       power-law term by more than its LR share (q = 1 is the MPL's S1 + S_W).
    2. An exponential loss-drop kernel, the beta -> inf limit of the MPL's 1 - (1 + C x / beta)^-beta. Fitted on
       24K-step curves, the MPL's own kernel drifts to beta -> 0, a logarithmic drop that never saturates and
       over-predicts the drop of long, slow decays; the exponential kernel saturates.
    3. ``gamma = 0`` by default: after an LR drop the loss relaxes over a fixed LR area S_k(s) (units 1 / C),
       whatever the new LR, i.e. in the "time" eta x steps of the SDE picture of SGD. ``gamma=None`` fits it
       (0..1.5, seven parameters; the MPL's eta_k^-gamma).
    docs/laws.md has the numbers, and how the form was chosen.
    """

    name = "mpl-qexp"
    fit_method = "lbfgs"
    adam_rates: ClassVar[dict[str, float]] = {}  # no Adam fit: its step sizes are tuned to the MPL's kernel

    def __init__(self, warmup: str = "count", gamma: float | None = 0.0):
        super().__init__(warmup)
        if gamma is not None and not (isinstance(gamma, int | float) and 0.0 <= gamma <= 1.5):
            raise InputError(f"mpl-qexp: gamma must be in [0, 1.5] or None (fitted), got {gamma!r}", "gamma")
        self.gamma = gamma

    def options(self) -> dict[str, Any]:
        return super().options() | {"gamma": self.gamma}

    @property
    def params(self) -> tuple[Param, ...]:
        dropped = ("beta", "C") if self.gamma is None else ("beta", "C", "gamma")
        base = tuple(p for p in super().params if p.name not in dropped)
        return (*base, Param("C", 1e-10, 1e6), Param("q", 0.2, 3.0, scale="linear"))

    def grid(self) -> list[dict[str, float]]:
        if self.gamma is not None:  # C in 1 / LR area: saturation after ~1 / (C eta) steps at LR eta
            return [
                {"alpha": a, "C": c, "q": q} for a in (0.3, 0.5, 0.7) for c in (1.0, 10.0, 100.0) for q in (0.7, 1.0)
            ]
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
        gamma = theta["gamma"] if self.gamma is None else self.gamma
        return {
            "L0": np.ones_like(area),
            "A": area ** -theta["alpha"],
            "B": -f.base.drop(theta["C"], math.inf, gamma),
        }
