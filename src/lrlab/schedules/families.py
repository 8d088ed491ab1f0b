"""Schedule families: a warmup followed by one decay law. Each is a frozen dataclass whose fields are its spec keys.

Warmup (every family): for t < W = ``warmup``, lr(t) = warmup_shape(x) from ``init`` to ``peak`` with
x = (t + warmup_offset) / W. The default ``warmup_offset=1`` gives lr(t) = peak (t + 1) / W for linear warmup,
so the first update is not wasted at LR 0 and update W - 1 runs at the peak; ``warmup_offset=0`` gives the
transformers/timm convention lr(t) = peak t / W (update 0 at ``init``). Decay phases run from step
``warmup`` to step ``total`` and reach ``final`` exactly at t = ``total``: the last update of a ``total``-update run
(t = total - 1) runs just above ``final``, mirroring the warmup convention, and lr(t >= total) = final, which is the
LR a continued run starts from.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from itertools import pairwise
from typing import ClassVar

import numpy as np

from lrlab.errors import InputError
from lrlab.schedules.base import Schedule
from lrlab.schedules.numbers import format_value
from lrlab.schedules.shapes import DECAY_SHAPES, WARMUP_SHAPES, check_choice, decay_lr, warmup_lr


@dataclass(frozen=True, kw_only=True)
class Warmed(Schedule):
    """Base of every family: the warmup fields and their validation. Subclasses define :meth:`_after`."""

    peak: float
    warmup: int = 0
    warmup_shape: str = "linear"
    init: float = 0.0
    warmup_offset: int = 1
    total: int | None = None  # optional for unbounded families: the planned run length, for tables and plots

    def __post_init__(self) -> None:
        _check(
            self.total is None or self.total > self.warmup,
            f"total={self.total} must exceed warmup={self.warmup}",
        )
        _check(self.peak >= 0 and math.isfinite(self.peak), f"peak={self.peak} must be finite and >= 0")
        _check(self.warmup >= 0, f"warmup={self.warmup} must be >= 0")
        _check(0 <= self.init <= self.peak, f"init={self.init} must lie in [0, peak={self.peak}]")
        _check(self.warmup_offset in (0, 1), f"warmup_offset={self.warmup_offset} must be 0 or 1")
        check_choice("warmup_shape", self.warmup_shape, WARMUP_SHAPES)
        if self.warmup_shape == "exp" and self.warmup:
            _check(self.init > 0, "warmup_shape=exp needs init > 0 (a geometric ramp cannot start at 0)")

    def _lr(self, t: np.ndarray) -> np.ndarray:
        out = np.empty(t.shape, dtype=np.float64)
        warm = t < self.warmup
        if warm.any():
            x = (t[warm] + self.warmup_offset) / self.warmup
            out[warm] = warmup_lr(x, self.warmup_shape, self.init, self.peak)
        rest = ~warm
        out[rest] = self._after(t[rest])
        return out

    def _after(self, t: np.ndarray) -> np.ndarray:
        """LR for steps t >= warmup."""
        raise NotImplementedError

    def key_steps(self) -> list[int]:
        steps = {0, self.warmup} | ({self.warmup - 1} if self.warmup else set())
        return sorted(steps | ({self.total - 1, self.total} if self.total is not None else set()))

    def __str__(self) -> str:
        """The spec: the family name, then required keys and every key that differs from its default."""
        items = [
            f"{f.name}={format_value(getattr(self, f.name))}"
            for f in fields(self)
            if f.default is MISSING or getattr(self, f.name) != f.default
        ]
        return f"{FAMILY_NAMES[type(self)]}:{','.join(items)}"


@dataclass(frozen=True, kw_only=True)
class Decaying(Warmed):
    """A family that decays from ``peak`` at ``warmup`` to ``final`` at ``total`` (``final_ratio`` x peak instead)."""

    final: float | None = None
    final_ratio: float | None = None

    def __post_init__(self) -> None:
        _check(self.total is not None, f"{FAMILY_NAMES[type(self)]} needs total (the step where the decay ends)")
        super().__post_init__()
        _check(self.final is None or self.final_ratio is None, "give final or final_ratio, not both")
        _check(0 <= self.end_lr <= self.peak, f"final LR {self.end_lr} must lie in [0, peak={self.peak}]")

    @property
    def end_lr(self) -> float:
        """The final LR in absolute units: ``final``, else ``final_ratio * peak``, else 0."""
        if self.final is not None:
            return self.final
        return self.final_ratio * self.peak if self.final_ratio is not None else 0.0

    #: the decay shape (see :func:`lrlab.schedules.shapes.decay_lr`); ``power`` only matters for "poly"
    decay_shape: ClassVar[str]
    power: ClassVar[float] = 1.0

    def _remaining(self, t: np.ndarray, start: int) -> np.ndarray:
        """q = (total - t) / (total - start), clipped to [0, 1]."""
        return np.clip((self.total - t) / (self.total - start), 0.0, 1.0)

    def _after(self, t: np.ndarray) -> np.ndarray:
        return decay_lr(self._remaining(t, self.warmup), self.decay_shape, self.peak, self.end_lr, self.power)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)


@dataclass(frozen=True, kw_only=True)
class Constant(Warmed):
    """lr(t) = peak after warmup."""

    def _after(self, t: np.ndarray) -> np.ndarray:
        return np.full(t.shape, self.peak)


@dataclass(frozen=True, kw_only=True)
class Cosine(Decaying):
    """Half-cosine from peak at ``warmup`` to final at ``total``: final + (peak - final) (1 + cos(pi p)) / 2."""

    decay_shape = "cosine"


@dataclass(frozen=True, kw_only=True)
class Linear(Decaying):
    """Straight line from peak at ``warmup`` to final at ``total``."""

    decay_shape = "linear"


@dataclass(frozen=True, kw_only=True)
class OneMinusSqrt(Decaying):
    """final + (peak - final) (1 - sqrt(p)), p the elapsed fraction of the decay (Hägele et al. 2024)."""

    decay_shape = "1-sqrt"


@dataclass(frozen=True, kw_only=True)
class Polynomial(Decaying):
    """final + (peak - final) (1 - p)^power; power=1 is linear."""

    decay_shape = "poly"
    power: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.power > 0, f"power={self.power} must be > 0")


@dataclass(frozen=True, kw_only=True)
class Exponential(Warmed):
    """Geometric decay: peak (final/peak)^p from ``warmup`` to ``total``, or peak gamma^(t - warmup) (unbounded)."""

    final: float | None = None
    gamma: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gamma is not None:
            _check(self.final is None, "exp takes gamma (per-step factor) or final (with total), not both")
            _check(0 < self.gamma <= 1, f"gamma={self.gamma} must lie in (0, 1]")
        else:
            _check(self.total is not None and self.final is not None, "exp needs gamma, or total and final")
            _check(0 < self.final <= self.peak, f"final={self.final} must lie in (0, peak] for a geometric decay")

    def _after(self, t: np.ndarray) -> np.ndarray:
        if self.gamma is not None:
            return self.peak * self.gamma ** (t - self.warmup).astype(np.float64)
        q = np.clip((self.total - t) / (self.total - self.warmup), 0.0, 1.0)
        return decay_lr(q, "exp", self.peak, self.final)


@dataclass(frozen=True, kw_only=True)
class InverseSqrt(Warmed):
    """lr(t) = peak sqrt(timescale / (t - warmup + timescale)) after warmup; ``timescale`` defaults to ``warmup``."""

    timescale: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.timescale is not None or self.warmup > 0, "invsqrt needs timescale when warmup=0")
        _check(self.timescale is None or self.timescale > 0, f"timescale={self.timescale} must be > 0")

    def _after(self, t: np.ndarray) -> np.ndarray:
        tau = self.timescale if self.timescale is not None else self.warmup
        return self.peak / np.sqrt((t - self.warmup + tau) / tau)


@dataclass(frozen=True, kw_only=True)
class Step(Warmed):
    """lr(t) = peak gamma^floor(t / every) after warmup (t counts from 0, warmup included, like torch StepLR)."""

    every: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.every > 0, f"every={self.every} must be > 0")
        _check(0 < self.gamma <= 1, f"gamma={self.gamma} must lie in (0, 1]")

    def _after(self, t: np.ndarray) -> np.ndarray:
        return self.peak * self.gamma ** (t // self.every).astype(np.float64)


@dataclass(frozen=True, kw_only=True)
class MultiStep(Warmed):
    """lr(t) = peak gamma^(number of milestones <= t) after warmup (absolute steps, like torch MultiStepLR)."""

    milestones: tuple[int, ...] = ()
    gamma: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        _check(len(self.milestones) > 0, "multistep needs milestones, e.g. milestones=3000/6000")
        _check(self.milestones[0] > 0, f"milestones must be > 0, got {self.milestones[0]}")
        _check(
            all(a < b for a, b in pairwise(self.milestones)),
            f"milestones={'/'.join(map(str, self.milestones))} must be strictly increasing",
        )
        _check(0 < self.gamma <= 1, f"gamma={self.gamma} must lie in (0, 1]")

    def _after(self, t: np.ndarray) -> np.ndarray:
        drops = np.searchsorted(np.asarray(self.milestones), t, side="right")
        return self.peak * self.gamma ** drops.astype(np.float64)

    def key_steps(self) -> list[int]:
        return sorted(set(super().key_steps()) | set(self.milestones))


@dataclass(frozen=True, kw_only=True)
class WSD(Decaying):
    """Warmup-stable-decay: peak from ``warmup`` until the decay starts, then ``shape`` down to final at ``total``.

    The decay covers the last D = ``decay_steps`` updates, or D = floor(decay * total + 0.5) (halves round up)
    when given as a share ``decay`` of ``total`` (the stable length is derived, never spelled out). Decay starts
    at S = total - D; it must not overlap the warmup (S >= warmup). ``power`` applies to ``shape=poly`` only.
    """

    decay: float | None = None
    decay_steps: int | None = None
    shape: str = "linear"
    power: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(
            (self.decay is None) != (self.decay_steps is None),
            "wsd needs exactly one of decay or decay_steps",
        )
        _check(self.decay is None or 0 < self.decay <= 1, f"decay={self.decay} must lie in (0, 1]")
        check_choice("shape", self.shape, DECAY_SHAPES)
        _check(self.decay_length >= 1, f"the decay phase is empty (decay length {self.decay_length})")
        _check(
            self.decay_start >= self.warmup,
            f"decay starts at step {self.decay_start}, inside the warmup (warmup={self.warmup})",
        )
        if self.shape == "exp":
            _check(self.end_lr > 0, "shape=exp needs final > 0 (a geometric decay cannot reach 0)")
        _check(self.power > 0, f"power={self.power} must be > 0")
        _check(self.power == 1.0 or self.shape == "poly", f"power={self.power} needs shape=poly")

    @property
    def decay_length(self) -> int:
        """D: the number of updates in the decay phase."""
        return self.decay_steps if self.decay_steps is not None else math.floor(self.decay * self.total + 0.5)

    @property
    def decay_start(self) -> int:
        """S = total - D: the first step of the decay phase (its LR is still the peak)."""
        return self.total - self.decay_length

    def _after(self, t: np.ndarray) -> np.ndarray:
        q = self._remaining(t, self.decay_start)
        return decay_lr(q, self.shape, self.peak, self.end_lr, self.power)

    def key_steps(self) -> list[int]:
        return sorted(set(super().key_steps()) | {self.decay_start})


FAMILIES: dict[str, type[Warmed]] = {
    "constant": Constant,
    "cosine": Cosine,
    "linear": Linear,
    "1-sqrt": OneMinusSqrt,
    "poly": Polynomial,
    "exp": Exponential,
    "invsqrt": InverseSqrt,
    "step": Step,
    "multistep": MultiStep,
    "wsd": WSD,
}
FAMILY_NAMES: dict[type[Warmed], str] = {cls: name for name, cls in FAMILIES.items()}
