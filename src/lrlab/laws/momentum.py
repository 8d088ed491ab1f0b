"""The momentum (annealing) law of Tissue, Wang, Wang (2024), and its model-size form.

    L(s) = L0 + A S1(s)^-alpha - C S2(s)
    S1(s) = sum_{i<=s} eta_i,   m_i = lambda m_{i-1} + (eta_{i-1} - eta_i),   S2(s) = sum_{i<=s} m_i

Warmup (the steps before the LR first reaches its peak) is selectable:

- ``warmup="peak"`` (the paper): warmup steps count at the peak LR in S1.
- ``warmup="area"`` (the multi-power law's S_W): S1 counts the LR actually used during warmup (for a linear
  warmup from 0 that is about half the peak per step).

In both, the LR during warmup is taken as flat at the peak for S2, so warmup's rising LR adds no annealing.
``lam`` is fixed (0.999 by default) or fitted (``lam=None``, within [0.9, 0.99999]).

:class:`MomentumFloorLaw` below is lrlab's form of the same law that carries a fit across peak LRs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lrlab.errors import InputError
from lrlab.laws.areas import annealing_area, flat_warmup, forward_area, recent_lr
from lrlab.laws.law import Law, Param

_WARMUPS = ("peak", "area")


@dataclass(frozen=True)
class _Feats:
    s1: np.ndarray
    flat_lr: np.ndarray
    steps: np.ndarray
    s2: np.ndarray | None  # precomputed when lambda is fixed
    n: float | None


class MomentumLaw(Law):
    """L = L0 + A S1^-alpha - C S2 (S1, S2 in LR x steps; L in the loss's own units)."""

    name = "momentum"

    def __init__(self, lam: float | None = 0.999, warmup: str = "peak"):
        if warmup not in _WARMUPS:
            raise InputError(f"momentum law: warmup must be one of {_WARMUPS}, got {warmup!r}", "warmup")
        if lam is not None and not (isinstance(lam, int | float) and 0.0 <= lam < 1.0):
            raise InputError(f"momentum law: lambda must lie in [0, 1) or be fitted (None), got {lam!r}", "lam")
        self.lam = lam
        self.warmup = warmup

    def options(self) -> dict[str, Any]:
        return {"lam": self.lam, "warmup": self.warmup}

    @property
    def params(self) -> tuple[Param, ...]:
        base = (
            Param("L0", 0.0, 50.0, scale="linear"),
            Param("A", 1e-8, 1e4),
            Param("alpha", 1e-3, 5.0),
            Param("C", 1e-8, 1e8),
        )
        return base + ((Param("lam", 0.9, 0.99999, scale="log1m"),) if self.lam is None else ())

    @property
    def linear(self) -> tuple[str, ...]:
        return ("L0", "A", "C")

    def grid(self) -> list[dict[str, float]]:
        lams = [0.99, 0.995, 0.999, 0.9995] if self.lam is None else [None]
        return [{"alpha": a} | ({"lam": lam} if lam is not None else {}) for a in (0.2, 0.4, 0.6, 0.9) for lam in lams]

    def prepare(self, lr, steps, n_params=None, exact=True) -> _Feats:
        flat = flat_warmup(lr)
        s1 = forward_area(flat if self.warmup == "peak" else lr)[steps]
        s2 = None if self.lam is None else annealing_area(flat, self.lam)[steps]
        return _Feats(s1, flat, np.asarray(steps), s2, n_params)

    def _s2(self, theta, f: _Feats) -> np.ndarray:
        return f.s2 if f.s2 is not None else annealing_area(f.flat_lr, theta["lam"])[f.steps]

    def terms(self, theta, f: _Feats) -> dict[str, np.ndarray]:
        return {"L0": np.ones_like(f.s1), "A": f.s1 ** -theta["alpha"], "C": -self._s2(theta, f)}


class MomentumSizeLaw(MomentumLaw):
    """Across model sizes: L = L0 + A S1^-alpha + B n^-beta - C S2 n^gamma, n = N / 1e9 (billions of params).

    Every curve must carry its parameter count N.
    """

    name = "momentum-size"

    @property
    def params(self) -> tuple[Param, ...]:
        return (
            *super().params,
            Param("B", 1e-8, 1e4),
            Param("beta", 1e-3, 3.0),
            Param("gamma", -3.0, 3.0, scale="linear"),
        )

    @property
    def linear(self) -> tuple[str, ...]:
        return ("L0", "A", "B", "C")

    def grid(self) -> list[dict[str, float]]:
        return [g | {"beta": b, "gamma": c} for g in super().grid() for b in (0.2, 0.5) for c in (-0.3, 0.0, 0.3)]

    def prepare(self, lr, steps, n_params=None, exact=True) -> _Feats:
        if n_params is None or not n_params > 0:
            raise InputError("momentum-size law: every curve needs its model size (n_params > 0)")
        return super().prepare(lr, steps, n_params / 1e9, exact)

    def terms(self, theta, f: _Feats) -> dict[str, np.ndarray]:
        cols = super().terms(theta, f)
        cols["B"] = np.full_like(f.s1, f.n ** -theta["beta"])
        cols["C"] = cols["C"] * f.n ** theta["gamma"]
        return cols


@dataclass(frozen=True)
class _FloorFeats:
    flat_lr: np.ndarray
    steps: np.ndarray


class MomentumFloorLaw(Law):
    """The momentum law with an absolute LR floor (lrlab's; six parameters):

        L(s) = L0 + A Sq(s)^-alpha + D v_s
        Sq(s) = eta_ref sum_{i<=s} (eta_i / eta_ref)^q,   v_s = lam v_{s-1} + (1 - lam) eta_s   (v_{-1} = eta_0)

    with the warmup flat at the peak (as ``warmup="peak"``), eta_ref = 1e-3 (it only sets A's scale).

    Why: the momentum law's annealing term is, exactly, ``-C S2(s) = -C (eta_peak - v_s) / (1 - lam)``
    (:func:`lrlab.laws.areas.recent_lr`), i.e. ``D v_s`` plus a constant ``-D eta_peak`` *per curve*. Across
    curves of different peak LRs that constant says a run at twice the LR ends at the same floor; here the
    floor is ``D v_s`` for every curve, the loss an LR holds the model above (the SGD-noise level, which
    scales with the LR). The exponent ``q`` (0.2..3) lets a step's progress scale as ``eta^q`` rather than
    ``eta``, so that two peak LRs need not advance the power-law term in proportion. At one peak LR the law is
    the momentum law with lambda fitted, up to ``q``. ``lam`` is fitted in [0.9, 0.99999] (``lam=None``,
    default) or fixed. Chosen on the development protocols (docs/laws.md, "Curves nobody tuned on").
    """

    name = "momentum-floor"
    ETA_REF = 1e-3

    def __init__(self, lam: float | None = None):
        if lam is not None and not (isinstance(lam, int | float) and 0.0 <= lam < 1.0):
            raise InputError(f"momentum-floor law: lambda must lie in [0, 1) or be fitted (None), got {lam!r}", "lam")
        self.lam = lam

    def options(self) -> dict[str, Any]:
        return {"lam": self.lam}

    @property
    def params(self) -> tuple[Param, ...]:
        lam = (Param("lam", 0.9, 0.99999, scale="log1m"),) if self.lam is None else ()
        return (
            Param("L0", 0.0, 50.0, scale="linear"),
            Param("A", 1e-8, 1e4),
            Param("alpha", 1e-3, 5.0),
            Param("D", 1e-8, 1e8),
            *lam,
            Param("q", 0.2, 3.0, scale="linear"),
        )

    @property
    def linear(self) -> tuple[str, ...]:
        return ("L0", "A", "D")

    def grid(self) -> list[dict[str, float]]:
        lams = [0.99, 0.995, 0.999, 0.9995] if self.lam is None else [None]
        return [
            {"alpha": a, "q": q} | ({"lam": lam} if lam is not None else {})
            for a in (0.2, 0.4, 0.6, 0.9)
            for lam in lams
            for q in (0.7, 1.0, 1.3)
        ]

    def prepare(self, lr, steps, n_params=None, exact=True) -> _FloorFeats:
        return _FloorFeats(flat_warmup(lr), np.asarray(steps))

    def terms(self, theta, f: _FloorFeats) -> dict[str, np.ndarray]:
        lam = theta["lam"] if self.lam is None else self.lam
        area = self.ETA_REF * np.cumsum((f.flat_lr / self.ETA_REF) ** theta["q"])[f.steps]
        return {"L0": np.ones_like(area), "A": area ** -theta["alpha"], "D": recent_lr(f.flat_lr, lam)[f.steps]}
