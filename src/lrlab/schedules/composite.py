"""Schedules built from other schedules or from data: join at step boundaries, cycles with re-warmup, tables."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from lrlab.errors import InputError
from lrlab.schedules.base import Schedule
from lrlab.schedules.numbers import format_value

MAX_CYCLES = 10_000  # each cycle adds its phase boundaries to key_steps(); restarts are never this many


@dataclass(frozen=True)
class Join(Schedule):
    """Piece k runs from boundary b_k (b_0 = 0) and sees the step relative to it: lr(t) = piece_k(t - b_k).

    Spec form: ``A | @1000 B | @5000 C`` (B starts at step 1000, C at 5000). A piece used past its own ``total``
    holds its final LR until the next boundary.
    """

    pieces: tuple[Schedule, ...]
    boundaries: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "pieces", tuple(self.pieces))
        object.__setattr__(self, "boundaries", tuple(int(b) for b in self.boundaries))
        if len(self.pieces) < 2 or len(self.boundaries) != len(self.pieces) - 1:
            raise InputError("join needs n >= 2 pieces and n - 1 boundaries")
        starts = (0, *self.boundaries)
        if any(a >= b for a, b in pairwise(starts)):
            raise InputError(f"join boundaries {list(self.boundaries)} must be increasing and > 0")
        if any(isinstance(p, Join) for p in self.pieces):
            raise InputError("join pieces cannot be joins themselves; list all pieces in one join")

    @property
    def starts(self) -> tuple[int, ...]:
        return (0, *self.boundaries)

    @property
    def total(self) -> int | None:
        last = self.pieces[-1].total
        return None if last is None else self.boundaries[-1] + last

    def _lr(self, t: np.ndarray) -> np.ndarray:
        out = np.empty(t.shape, dtype=np.float64)
        which = np.searchsorted(np.asarray(self.boundaries), t, side="right")
        for k, (piece, start) in enumerate(zip(self.pieces, self.starts, strict=True)):
            mask = which == k
            if mask.any():
                out[mask] = piece(t[mask] - start)
        return out

    def key_steps(self) -> list[int]:
        steps = {s + k for piece, s in zip(self.pieces, self.starts, strict=True) for k in piece.key_steps()}
        return sorted(steps)

    def __str__(self) -> str:
        parts = [str(self.pieces[0])] + [f"@{b} {p}" for b, p in zip(self.boundaries, self.pieces[1:], strict=True)]
        return " | ".join(parts)


@dataclass(frozen=True)
class Cyclic(Schedule):
    """``cycles`` repeats of ``base`` (warmup included: each cycle re-warms), cycle k scaled by ``gain``^k.

    lr(t) = gain^k base(t - k P) with P = base.total and k = min(t // P, cycles - 1); after the last cycle the
    LR holds that cycle's final value. Spec form: add ``cycles=N`` (and ``cycle_gain=g``) to any bounded piece.
    """

    base: Schedule
    cycles: int
    gain: float = 1.0

    def __post_init__(self) -> None:
        if self.base.total is None:
            raise InputError("cycles need a bounded schedule (one with total) to repeat")
        if isinstance(self.base, (Cyclic, Join)):
            raise InputError("cycles repeat one schedule family, not a join or another cycle")
        if not 1 <= self.cycles <= MAX_CYCLES:
            raise InputError(f"cycles={self.cycles} must lie in [1, {MAX_CYCLES}]")
        if not 0 < self.gain <= 1:
            raise InputError(f"cycle_gain={self.gain} must lie in (0, 1]")

    @property
    def total(self) -> int:
        return self.cycles * self.base.total

    def _lr(self, t: np.ndarray) -> np.ndarray:
        period = self.base.total
        k = np.minimum(t // period, self.cycles - 1)
        return self.gain ** k.astype(np.float64) * self.base(t - k * period)

    def key_steps(self) -> list[int]:
        period = self.base.total
        return sorted({k * period + s for k in range(self.cycles) for s in self.base.key_steps()})

    def __str__(self) -> str:
        gain = "" if self.gain == 1.0 else f",cycle_gain={format_value(self.gain)}"
        return f"{self.base},cycles={self.cycles}{gain}"


class Tabulated(Schedule):
    """A schedule given as data: lr(t) = lr[t] for t in 0..len(lr)-1, e.g. loaded from a ``step,lr`` CSV.

    Steps past the table are a user error (the LR there is unknown), so they raise :class:`InputError`.
    ``str()`` is the source file's path when it came from one (``load(str(s)) == s``).
    """

    def __init__(self, lr: np.ndarray | list[float], source: str | None = None) -> None:
        arr = np.array(lr, dtype=np.float64).reshape(-1)
        if arr.size == 0:
            raise InputError("a tabulated schedule needs at least one step")
        bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
        if bad.size:
            raise InputError(f"tabulated LR at step {bad[0]} is {arr[bad[0]]}; LRs must be finite and >= 0")
        arr.setflags(write=False)
        self.lr = arr
        self.source = source

    @property
    def total(self) -> int:
        return int(self.lr.size)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        if t.size and t.max() >= self.lr.size:
            raise InputError(f"step {int(t.max())} is past the tabulated schedule's {self.lr.size} steps")
        return self.lr[t]

    def key_steps(self) -> list[int]:
        return [0, self.total - 1]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tabulated) and np.array_equal(self.lr, other.lr)

    __hash__ = None  # mutable-looking contents: equality by value, not hashable

    def __str__(self) -> str:
        return self.source if self.source is not None else f"<table of {self.lr.size} steps>"

    def __repr__(self) -> str:
        return f"Tabulated({self.lr.size} steps, source={self.source!r})"
