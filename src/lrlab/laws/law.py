"""What every loss-curve law provides, so that one fitter, one predictor and one JSON format serve them all.

A law is a formula ``L(s; theta)`` of the per-step LR ``lr`` (see :mod:`lrlab.laws.areas` for the step
conventions). ``prepare`` turns a schedule and the observed steps into features that do not depend on theta
(areas, prefix sums), so that ``evaluate`` is cheap inside the optimizer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class Param:
    """One fitted parameter and the space the optimizer moves it in, within [lo, hi]:
    ``"log"`` (log value, needs lo > 0), ``"linear"``, or ``"log1m"`` (log(1 - value), for a decay factor near 1).
    """

    name: str
    lo: float
    hi: float
    scale: str = "log"


class Law(ABC):
    """A loss-curve law. Subclasses set ``name`` and implement the abstract methods."""

    name: ClassVar[str]
    # How ``fitting.fit`` searches by default: "lbfgs" (grid + L-BFGS-B to convergence) or "adam" (the
    # multi-power-law authors' procedure: a start from ``adam_start``, then early-stopped Adam, see fitting.py)
    fit_method: ClassVar[str] = "lbfgs"
    adam_rates: ClassVar[dict[str, float]] = {}  # Adam's step size per parameter (raw units), for "adam"

    @property
    @abstractmethod
    def params(self) -> tuple[Param, ...]:
        """The fitted parameters, in the order of theta."""

    @property
    @abstractmethod
    def linear(self) -> tuple[str, ...]:
        """Parameters the prediction is linear in (solved by least squares to seed the fit)."""

    @abstractmethod
    def grid(self) -> list[dict[str, float]]:
        """Values of the non-linear parameters to seed the fit from (a coarse deterministic grid)."""

    @abstractmethod
    def prepare(self, lr: np.ndarray, steps: np.ndarray, n_params: float | None, exact: bool) -> Any:
        """Theta-independent features of one curve. ``exact=False`` may use a documented fast quadrature."""

    @abstractmethod
    def terms(self, theta: dict[str, float], feats: Any) -> dict[str, np.ndarray]:
        """The columns that multiply each linear parameter (the prediction is their weighted sum)."""

    def adam_start(self) -> tuple[Law, dict[str, float]]:
        """For ``fit_method = "adam"``: a simpler law fitted first (its parameters seed this one) and the values
        of the remaining parameters."""
        raise NotImplementedError(f"law {self.name!r} has no Adam start")

    def options(self) -> dict[str, Any]:
        """Constructor arguments, saved with a fit so that loading rebuilds the same law."""
        return {}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def evaluate(self, theta: dict[str, float], feats: Any) -> np.ndarray:
        """Predicted loss at the prepared steps. Overflow and invalid values are not warned about: they come back
        as inf or NaN, which the fitter scores as invalid and predictions refuse."""
        with np.errstate(all="ignore"):
            cols = self.terms(theta, feats)
            return sum(theta[name] * col for name, col in cols.items())

    def predict(self, theta: dict[str, float], lr: np.ndarray, steps: np.ndarray, n_params=None) -> np.ndarray:
        """Predicted loss at ``steps`` for the schedule ``lr`` (exact evaluation)."""
        return self.evaluate(theta, self.prepare(np.asarray(lr, float), np.asarray(steps), n_params, True))
