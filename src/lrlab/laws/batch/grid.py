"""LR x batch-size grids: the loss of runs at several (learning rate, batch size) cells, read from a CSV.

One row a run (or a run at one step count): columns ``lr``, ``batch_size``, ``loss`` and, optional, ``steps``,
``tokens``, ``seq_len``, ``n`` (model parameters N), ``d`` (training tokens D), ``status``, plus any columns
named as groups (``--group optimizer``: one grid a value). Header names are case-insensitive.

A diverged run is a cell whose loss is ``nan``/``inf`` or whose status is ``diverged``: it counts as +infinity
(never best, never dropped). A row whose status says it has no result (:data:`UNFINISHED`: ``failed``,
``running``, ...) is a missing cell whatever its loss: counted and reported, not fitted. Another status than
those, :data:`FINISHED` (``done``, ``finished``, ...) or ``diverged`` is refused. The batch unit (sequences or
tokens) is the caller's to state; the laws only need it to be one unit throughout.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lrlab.errors import InputError, clip
from lrlab.tables import csv_columns

REQUIRED = ("lr", "batch_size", "loss")
OPTIONAL = ("steps", "tokens", "seq_len", "n", "d", "status")
UNITS = ("sequences", "tokens")
DIVERGED = "diverged"
FINISHED = ("", "done", "finished", "completed", "success", "ok")  # a result, read from the loss
UNFINISHED = ("failed", "crashed", "killed", "running", "pending", "interrupted", "cancelled", "canceled")
MAX_BATCH = 1e12  # batch sizes in tokens of the largest published runs are ~1e8
MAX_GROUPS = 1000


@dataclass(frozen=True)
class Grid:
    """Cells of one LR x batch-size sweep. ``loss`` is +inf for a diverged run; ``steps`` (and ``n``, ``d``) are
    NaN where the file has none. ``missing`` counts rows without a loss that did not diverge."""

    lr: np.ndarray
    batch_size: np.ndarray
    loss: np.ndarray
    steps: np.ndarray
    n: np.ndarray = field(default_factory=lambda: np.array([]))
    d: np.ndarray = field(default_factory=lambda: np.array([]))
    missing: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        size = len(self.lr)
        for key in ("batch_size", "loss", "steps"):
            if len(getattr(self, key)) != size:
                raise InputError(f"{len(getattr(self, key))} values where lr has {size}", key)
        for key in ("n", "d"):
            if len(getattr(self, key)) == 0:
                object.__setattr__(self, key, np.full(size, np.nan))
        if size == 0:
            raise InputError(f"{self.label}no cells with a loss")
        positive(self.lr, "lr")
        positive(self.batch_size, "batch_size")
        if np.any(np.isnan(self.loss)) or np.any(self.loss == -np.inf):
            raise InputError("loss must be finite or +inf (a diverged run)", "loss")

    @property
    def label(self) -> str:
        return f"{self.name}: " if self.name else ""

    @property
    def batch_sizes(self) -> np.ndarray:
        return np.unique(self.batch_size)

    @property
    def diverged(self) -> int:
        return int(np.sum(np.isinf(self.loss)))

    def at_batch(self, batch_size: float) -> tuple[np.ndarray, np.ndarray]:
        """(lr, loss) of the cells at one batch size."""
        keep = self.batch_size == batch_size
        return self.lr[keep], self.loss[keep]

    def _select(self, keep: np.ndarray) -> Grid:
        return Grid(
            self.lr[keep], self.batch_size[keep], self.loss[keep], self.steps[keep], self.n[keep], self.d[keep],
            self.missing, self.name,
        )  # fmt: skip

    def cells(self) -> Iterator[tuple[float, np.ndarray]]:
        """Each (lr, batch size) cell's batch size and row mask (its seeds and records), by LR then batch size."""
        for lr, b in sorted(set(zip(self.lr.tolist(), self.batch_size.tolist(), strict=True))):
            yield b, (self.lr == lr) & (self.batch_size == b)

    def final(self) -> Grid:
        """The last record of each (lr, batch size) cell: the rows at the cell's largest step count (all rows of a
        cell without step counts)."""
        keep = np.ones(len(self.lr), dtype=bool)
        for _, cell in self.cells():
            steps = self.steps[cell]
            if np.any(np.isfinite(steps)):
                keep[cell] = steps == np.nanmax(steps)
        return self._select(keep)

    def at_steps(self, steps: float) -> Grid:
        """The records at one step count (the grid as it stood at that step of training)."""
        keep = self.steps == steps
        if not np.any(keep):
            raise InputError(f"{self.label}no records at step {steps:g}", "steps")
        return self._select(keep)

    def step_counts(self, min_batch_sizes: int = 3) -> list[float]:
        """Step counts recorded at ``min_batch_sizes`` or more batch sizes, ascending: the points in training at
        which a batch-size law can be refitted."""
        counts = []
        for s in np.unique(self.steps[np.isfinite(self.steps)]):
            if len(np.unique(self.batch_size[self.steps == s])) >= min_batch_sizes:
                counts.append(float(s))
        return counts


def positive(values, param: str) -> np.ndarray:
    """``values`` as a float array, every one finite and > 0 (a learning rate, a batch size, a step count), else
    an :class:`InputError` naming ``param``."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"must be numbers, got {clip(values, 60)!r}", param) from None
    bad = ~(np.isfinite(arr) & (arr > 0))
    if np.any(bad):
        raise InputError(f"must be finite and > 0, got {arr[bad].flat[0]:g}", param)
    return arr


def check_level(level) -> float:
    """An interval's level: a probability strictly between 0 and 1."""
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise InputError(f"must be a probability strictly between 0 and 1, got {level!r}", "level")
    return float(level)


def load_grids(
    path: str | Path, group: list[str] | tuple[str, ...] = (), unit: str = "sequences", empty: dict | None = None
) -> dict[tuple, Grid]:
    """Read an LR x batch-size CSV into one :class:`Grid` per value of the ``group`` columns (``()`` keys the whole
    file when there are none). ``unit`` is the batch unit, ``sequences`` or ``tokens``; with ``tokens`` and a
    ``seq_len`` column a batch size in sequences is converted (batch_size x seq_len); without one the batch sizes
    are taken as tokens already, and a file with ``seq_len`` on some rows only is refused. ``d`` (training tokens)
    falls back on ``tokens`` where a row has no ``d``. ``empty``, when given, collects the groups with no cell
    (name -> missing cells) instead of refusing the file, as long as one group has cells."""
    if unit not in UNITS:
        raise InputError(f"must be one of {', '.join(UNITS)}, got {clip(unit, 40)!r}", "unit")
    group = tuple(g.strip().lower() for g in group)
    for g in group:
        if g in REQUIRED:
            raise InputError(f"'{g}' is a grid column, not a group", "group")
    rows: dict[tuple, list[tuple]] = {}
    missing: dict[tuple, int] = {}
    with_seq_len: set[bool] = set()
    path = Path(path)
    for where, row in csv_columns(path, (*REQUIRED, *group), OPTIONAL):
        key = tuple(row[g].strip() for g in group)
        for g, value in zip(group, key, strict=True):
            if not value:
                raise InputError(f"{where}: empty '{g}' (a group column)")
        if key not in rows and len(rows) >= MAX_GROUPS:
            raise InputError(f"{path}: more than {MAX_GROUPS} groups")
        rows.setdefault(key, [])
        status = row.get("status", "").strip().lower()
        loss_text = row["loss"].strip()
        lr, batch = number_field(row["lr"], "lr", where), number_field(row["batch_size"], "batch_size", where)
        if not (lr > 0 and math.isfinite(lr)):
            raise InputError(f"{where}: lr must be finite and > 0, got {row['lr'].strip()[:40]!r}")
        if not (0 < batch <= MAX_BATCH):
            raise InputError(
                f"{where}: batch_size must lie in (0, {MAX_BATCH:.0e}], got {row['batch_size'].strip()[:40]!r}"
            )
        if unit == "tokens":
            with_seq_len.add(bool(row.get("seq_len", "").strip()))
            if len(with_seq_len) > 1:
                raise InputError(
                    f"{where}: seq_len is given on some rows only: for batch sizes in tokens give it on all or none"
                )
            if row.get("seq_len", "").strip():
                batch *= positive_field(row["seq_len"], "seq_len", where)
        if status in UNFINISHED:  # no result, whatever the loss column says
            missing[key] = missing.get(key, 0) + 1
            continue
        if status not in (*FINISHED, DIVERGED):
            known = ", ".join(s for s in (*FINISHED, DIVERGED, *UNFINISHED) if s)
            raise InputError(f"{where}: unknown status {clip(status, 40)!r} (one of {known})")
        if not loss_text and status != DIVERGED:
            raise InputError(f"{where}: empty loss; write nan for a diverged run or give it a status column")
        loss = math.inf if status == DIVERGED or not loss_text else number_field(loss_text, "loss", where)
        if loss == -math.inf:
            raise InputError(f"{where}: loss is -inf")
        if not math.isfinite(loss):
            loss = math.inf
        extra = [_optional(row.get(c, ""), c, where) for c in ("steps", "n", "d")]
        if math.isnan(extra[2]):
            extra[2] = _optional(row.get("tokens", ""), "tokens", where)
        if math.isfinite(extra[0]) and extra[0] < 0:
            raise InputError(f"{where}: steps must be >= 0, got {row['steps'].strip()[:40]!r}")
        rows[key].append((lr, batch, loss, *extra))
    if not rows:
        raise InputError(f"{path}: no rows")
    grids = {}
    for key, cells in rows.items():
        name = ", ".join(f"{g}={v}" for g, v in zip(group, key, strict=True))
        if not cells:
            if empty is None or not any(rows.values()):
                raise InputError(
                    f"{path}: {name or 'the file'} has no cell with a loss ({missing.get(key, 0)} missing)"
                )
            empty[name] = missing.get(key, 0)
            continue
        lr, batch, loss, steps, n, d = (np.array(c, dtype=float) for c in zip(*cells, strict=True))
        grids[key] = Grid(lr, batch, loss, steps, n, d, missing.get(key, 0), name)
    return grids


def number_field(text: str, column: str, where: str) -> float:
    """One CSV field as a float; ``where`` (PATH:LINE) and ``column`` name it in the error."""
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{where}: {column} must be a number, got {clip(text.strip(), 40)!r}") from None


def positive_field(text: str, column: str, where: str) -> float:
    """One CSV field as a float that is finite and > 0 (a batch size, a step count, a sequence length)."""
    value = number_field(text, column, where)
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{where}: {column} must be finite and > 0, got {clip(text.strip(), 40)}")
    return value


def _optional(text: str, column: str, where: str) -> float:
    """An optional numeric column: NaN when empty; N and D must be positive when given."""
    text = text.strip()
    if not text:
        return math.nan
    value = number_field(text, column, where)
    if not math.isfinite(value) or (column != "steps" and value <= 0):
        raise InputError(
            f"{where}: {column} must be finite{' and > 0' if column != 'steps' else ''}, got {text[:40]!r}"
        )
    return value
