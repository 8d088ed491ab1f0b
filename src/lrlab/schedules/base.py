"""The schedule protocol: an immutable map from the optimizer step to the learning rate.

Step convention (every lrlab schedule): ``t`` is the 0-based count of optimizer updates already done, and
``lr(t)`` is the learning rate used by update ``t``. With gradient accumulation, ``t`` counts optimizer updates,
never micro-batches. Schedules are pure: evaluating one has no observable side effects and keeps no step counter
(one step at a time, a schedule keeps a cache of nearby values; see ``Schedule._one``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import overload

import numpy as np

from lrlab.errors import InputError

#: Steps are exact integers in float64 below this (spec values, ``--at`` steps).
MAX_STEP = 2**53
#: The most steps lrlab evaluates as one dense per-step array (80 MB of float64): longer than any real run, short
#: enough that a typo such as ``--steps 1e10`` is refused instead of allocating tens of gigabytes.
MAX_DENSE_STEPS = 10_000_000
#: Steps per block of the per-step memo (:meth:`Schedule._one`).
BLOCK = 1024


def as_steps(step: int | np.ndarray | list[int]) -> np.ndarray:
    """Validate ``step`` as non-negative integers and return them as an int64 array (0-d for a scalar)."""
    arr = np.asarray(step)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr)):
            raise InputError("schedule steps must be whole numbers (optimizer updates), got a fractional step")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise InputError(f"schedule steps must be integers, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise InputError(f"schedule steps must be >= 0, got {int(arr.min())}")
    return arr.astype(np.int64, copy=False)


def check_dense_steps(n: int, param: str = "steps") -> int:
    """``n`` as a number of steps lrlab may evaluate densely: 0 <= n <= :data:`MAX_DENSE_STEPS`."""
    if not 0 <= n <= MAX_DENSE_STEPS:
        raise InputError(f"{n} steps is outside [0, {MAX_DENSE_STEPS:,}] (lrlab's limit for per-step arrays)", param)
    return n


class Schedule(ABC):
    """A learning-rate schedule ``lr(t)``, vectorized over numpy arrays of steps.

    Subclasses implement :meth:`_lr` on a validated int64 array. ``str(schedule)`` is its one-line spec (see
    :mod:`lrlab.schedules.spec`) wherever one exists, and ``parse(str(s)) == s``.
    """

    @overload
    def __call__(self, step: int) -> float: ...
    @overload
    def __call__(self, step: np.ndarray | list[int]) -> np.ndarray: ...

    def __call__(self, step):
        if type(step) is int and 0 <= step < MAX_STEP:  # one step at a time, as a scheduler asks: the block memo
            return self._one(step)
        t = as_steps(step)
        lr = self._lr(np.atleast_1d(t))
        return float(lr[0]) if t.ndim == 0 else lr.reshape(t.shape)

    def _one(self, t: int) -> float:
        """lr(t) from a memo of the block of :data:`BLOCK` steps around ``t``, computed by the vectorized path
        (so the same float64 values). A scheduler walks the steps in order, so one block is kept: the memo costs
        a list lookup on 1023 steps of 1024 and about 32 KB, and it is a cache only (no field: equality, ``str``
        and pickles are the fields'). A block that cannot be evaluated whole (a table ends inside it) is
        remembered as such, and its steps are evaluated one at a time, with the error, if any, naming ``t``."""
        start = t - t % BLOCK
        memo = self.__dict__.get("_block")
        if memo is None or memo[0] != start:
            stop = start + BLOCK
            total = getattr(self, "total", None)
            if total is not None and start < total < stop:  # a table may end there: stop the block at its end
                stop = total
            try:
                values = self._lr(np.arange(start, stop, dtype=np.int64)).tolist()
            except InputError:  # e.g. a table inside a Join ends within the block
                values = []
            memo = (start, values)
            object.__setattr__(self, "_block", memo)  # frozen dataclasses too: a cache, not state
        values = memo[1]
        i = t - start
        return values[i] if i < len(values) else float(self._lr(np.array([t], dtype=np.int64))[0])

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_block"}  # the memo is not pickled or copied

    @abstractmethod
    def _lr(self, t: np.ndarray) -> np.ndarray:
        """float64 learning rates for a 1-d int64 array of valid steps."""

    #: Number of optimizer updates the schedule is designed for, or None when it is unbounded. Families hold it
    #: as a dataclass field, composites derive it as a property.
    total: int | None

    def key_steps(self) -> list[int]:
        """Steps where a phase starts or ends (for tables and plot markers), sorted."""
        return [0]

    def values(self, n: int) -> np.ndarray:
        """The learning rates of updates 0..n-1 as a float64 array."""
        check_dense_steps(n)
        return self._lr(np.arange(n, dtype=np.int64))
