"""Loss curves and where their learning rate comes from.

A curve is the loss at some optimizer steps (often sparse: every k steps) plus the LR of *every* step from 0,
because the laws integrate the LR step by step. Each curve's LR comes from, in order of precedence:

1. an explicit schedule (a spec or a ``step,lr`` CSV, e.g. ``--schedule`` once per curve);
2. a sidecar file ``NAME.lr.csv`` (``step,lr`` for every step from 0) next to ``NAME.csv`` / ``NAME.jsonl``;
3. the curve's own ``lr`` column, only when it is dense (steps exactly 0, 1, 2, ...).

A sparse ``lr`` column without 1 or 2 is an error: the LR between logged steps is never interpolated.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from lrlab.errors import InputError, clip
from lrlab.files import check_size, require_file
from lrlab.schedules import Schedule, Tabulated, load
from lrlab.schedules.base import MAX_DENSE_STEPS, MAX_STEP
from lrlab.tables import MAX_ROWS, csv_columns

MAX_CURVE_BYTES = 256 << 20  # a curve file is parsed into Python objects first (~10x its size in memory)


@dataclass(frozen=True)
class Curve:
    """One observed loss curve: ``loss[j]`` after update ``steps[j]``; ``lr[t]`` for every step 0..len-1."""

    name: str
    steps: np.ndarray
    loss: np.ndarray
    lr: np.ndarray
    schedule: str = ""
    n_params: float | None = None
    source: str = ""  # the file it came from, for error messages (the name is the file's stem)

    @property
    def where(self) -> str:
        return self.source or self.name

    def __post_init__(self) -> None:
        validate_points(self.steps, self.loss, self.where)
        if len(self.lr) <= int(self.steps[-1]):
            raise InputError(
                f"{self.where}: the schedule covers {len(self.lr)} steps but the curve runs to step {self.steps[-1]}"
            )
        if not np.all(np.isfinite(self.lr)) or np.any(self.lr < 0):
            raise InputError(f"{self.where}: learning rates must be finite and >= 0")
        if self.lr[: int(self.steps[0]) + 1].sum() <= 0:
            raise InputError(
                f"{self.where}: the loss at step {int(self.steps[0])} comes before any learning rate (the LR area is 0"
                " there); drop the records before the first update with LR > 0"
            )

    def records(self, keep: np.ndarray) -> Curve:
        """The curve with only the records ``keep`` selects (a boolean mask or increasing indices); the LR of every
        step is kept."""
        return replace(self, steps=self.steps[keep], loss=self.loss[keep])

    def smoothed(self, window: int) -> Curve:
        """Mean loss over blocks of ``window`` consecutive records, each placed at its middle record's step.

        For noisy per-step training losses: it shrinks the noise by about sqrt(window) and the fit's cost
        by ``window``; keep the window short next to the LR's changes (the law is evaluated at one step).
        """
        if window <= 1:
            return self
        n = len(self.steps) // window * window
        if n == 0:
            raise InputError(f"{self.where}: smoothing window {window} exceeds the {len(self.steps)} records")
        loss = self.loss[:n].reshape(-1, window).mean(axis=1)
        steps = self.steps[:n].reshape(-1, window)[:, window // 2]
        return replace(self, steps=steps, loss=loss)


def validate_points(steps: np.ndarray, loss: np.ndarray, where: str) -> None:
    """Steps strictly increasing integers >= 0, losses finite and > 0; else a one-line InputError."""
    if len(steps) == 0:
        raise InputError(f"{where}: no loss records")
    if np.any(steps < 0):
        raise InputError(f"{where}: negative step {int(steps[steps < 0][0])}")
    back = np.flatnonzero(np.diff(steps) <= 0)
    if back.size:
        i = back[0] + 1
        kind = "duplicate" if steps[i] == steps[i - 1] else "unsorted"
        raise InputError(f"{where}: {kind} step {int(steps[i])} (record {i + 1}); steps must increase")
    bad = np.flatnonzero(~np.isfinite(loss) | (loss <= 0))
    if bad.size:
        raise InputError(f"{where}: loss {loss[bad[0]]} at step {int(steps[bad[0]])} must be finite and > 0")


def schedule_lr(schedule: Schedule, last_step: int, where: str) -> np.ndarray:
    """LR of steps 0..last_step from a schedule; a bounded schedule must cover the curve's last step."""
    if last_step >= MAX_DENSE_STEPS:
        raise InputError(f"{where}: the curve runs to step {last_step}, past lrlab's limit of {MAX_DENSE_STEPS:,}")
    if schedule.total is not None and schedule.total <= last_step:
        raise InputError(
            f"{where}: the schedule {schedule} covers {schedule.total} steps but the curve runs to step {last_step}"
        )
    return schedule.values(last_step + 1)


def read_records(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(steps, loss, lr or None) from a CSV with header ``step,loss[,lr,...]`` or a JSONL of objects.

    ``lr`` is None when no record has an LR, and NaN in the records that lack one."""
    require_file(path, "curve")
    try:
        check_size(path, "curve", MAX_CURVE_BYTES)
        rows = _jsonl_rows(path) if path.suffix.lower() == ".jsonl" else _csv_rows(path)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text (expected CSV or JSONL)") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if not rows:
        raise InputError(f"{path}: no loss records")
    steps = np.array([r[0] for r in rows], dtype=np.int64)
    loss = np.array([r[1] for r in rows], dtype=np.float64)
    lrs = [r[2] for r in rows]
    lr = None if all(v is None for v in lrs) else np.array([np.nan if v is None else v for v in lrs])
    validate_points(steps, loss, str(path))
    return steps, loss, lr


def _number(value) -> float:
    """A JSON number or CSV text as a float; booleans (JSON true/false) are not numbers here."""
    if isinstance(value, bool):
        raise TypeError
    return float(value)


def _record(where: str, step, loss, lr) -> tuple[int, float, float | None]:
    try:
        s = _number(step)
        if not math.isfinite(s) or s != int(s) or abs(s) >= MAX_STEP:
            raise ValueError
        return int(s), _number(loss), None if lr is None or lr == "" else _number(lr)
    except (TypeError, ValueError, OverflowError):
        got = f"step={clip(step, 30)!r} loss={clip(loss, 30)!r}"
        raise InputError(f"{where}: expected an integer step and numbers, got {got}") from None


def _csv_rows(path: Path) -> list[tuple[int, float, float | None]]:
    return [
        _record(where, row["step"], row["loss"], row.get("lr"))
        for where, row in csv_columns(path, ("step", "loss"), optional=("lr",))
    ]


def _jsonl_rows(path: Path) -> list[tuple[int, float, float | None]]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            if len(out) >= MAX_ROWS:
                raise InputError(f"{path}: more than {MAX_ROWS:,} records (lrlab's limit for one curve)")
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{line}: not JSON ({exc.msg})") from None
            except RecursionError:
                raise InputError(f"{path}:{line}: JSON nested too deeply") from None
            if not isinstance(obj, dict) or "step" not in obj or "loss" not in obj:
                raise InputError(f"{path}:{line}: expected an object with keys 'step' and 'loss'")
            out.append(_record(f"{path}:{line}", obj["step"], obj["loss"], obj.get("lr")))
    return out


def sidecar_path(path: Path) -> Path:
    """``NAME.lr.csv`` next to ``NAME.csv`` or ``NAME.jsonl``."""
    return path.with_name(path.stem + ".lr.csv")


def load_curve(path: str | Path, schedule: str | None = None, n_params: float | None = None) -> Curve:
    """Read a curve file and attach its per-step LR by the precedence rules of this module."""
    path = Path(path)
    steps, loss, lr_col = read_records(path)
    last = int(steps[-1])
    where = str(path)
    if schedule is not None:
        sched = load(schedule)
        return Curve(path.stem, steps, loss, schedule_lr(sched, last, where), str(sched), n_params, where)
    side = sidecar_path(path)
    if side.is_file():
        return Curve(path.stem, steps, loss, schedule_lr(load(side), last, where), str(side), n_params, where)
    if lr_col is None:
        raise InputError(f"{path}: no LR: give its schedule, a sidecar {side.name} or an lr column")
    if np.isnan(lr_col).any():
        gap = int(steps[np.flatnonzero(np.isnan(lr_col))[0]])
        raise InputError(
            f"{path}: the lr column has no value at step {gap}; fill it, or give its schedule or a sidecar {side.name}"
        )
    if not np.array_equal(steps, np.arange(len(steps))):
        raise InputError(
            f"{path}: the lr column is sparse (steps {steps[0]}, {steps[1] if len(steps) > 1 else ''}...); "
            f"the LR of every step is needed: give its schedule or a sidecar {side.name}"
        )
    return Curve(path.stem, steps, loss, schedule_lr(Tabulated(lr_col), last, where), "lr column", n_params, where)


def load_curves(paths: list[str], schedules: list[str] | None = None) -> list[Curve]:
    """Load several curves; ``schedules``, when given, pairs with ``paths`` one to one."""
    if schedules and len(schedules) != len(paths):
        raise InputError(f"got {len(schedules)} for {len(paths)} curves; give one per curve or none", "schedules")
    return [load_curve(p, schedules[i] if schedules else None) for i, p in enumerate(paths)]
