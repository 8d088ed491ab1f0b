"""The momentum (annealing) law of Tissue, Wang, Wang (2024), and its model-size form.

    L(s) = L0 + A S1(s)^-alpha - C S2(s)
    S1(s) = sum_{i<=s} eta_i,   m_i = lambda m_{i-1} + (eta_{i-1} - eta_i),   S2(s) = sum_{i<=s} m_i

Warmup (the steps before the LR first reaches its peak) is selectable:

- ``warmup="peak"`` (the paper): warmup steps count at the peak LR in S1.
- ``warmup="area"`` (the multi-power law's S_W): S1 counts the LR actually used during warmup (for a linear
  warmup from 0 that is about half the peak per step).

In both, the LR during warmup is taken as flat at the peak for S2, so warmup's rising LR adds no annealing.
``lam`` is fixed (0.999 by default) or fitted (``lam=None``, within [0.9, 0.99999]).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lrlab.errors import InputError
from lrlab.laws.areas import annealing_area, flat_warmup, forward_area
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
