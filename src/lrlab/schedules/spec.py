"""The one-line schedule spec: parse it, and load a schedule from a spec or a ``step,lr`` CSV file.

Grammar (whitespace around ``|`` and after ``@N`` is ignored)::

    spec   := piece ( "|" "@" STEP piece )*          pieces joined at absolute steps (see Join)
    piece  := FAMILY ":" key "=" value ( "," key "=" value )*
    value  := number | word | number ( "/" number )*  (lists, e.g. milestones=3000/6000)

FAMILY is one of constant, cosine, linear, 1-sqrt, poly, exp, invsqrt, step, multistep, wsd; its keys are the
fields of the family's class (peak, warmup, warmup_shape, init, warmup_offset, total, final, ...). Any bounded
piece also takes ``cycles=N`` and ``cycle_gain=g`` (see Cyclic). Examples::

    constant:peak=1e-3,warmup=100
    cosine:peak=1e-3,warmup=100,total=1000,final=1e-4
    wsd:peak=1e-3,warmup=100,total=1000,decay=0.2,shape=linear,final=0
    cosine:peak=1e-3,warmup=50,total=500,cycles=4,cycle_gain=0.5
    cosine:peak=1e-3,warmup=100,total=1000 | @1000 constant:peak=1e-5
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import MISSING, Field, fields
from pathlib import Path

import numpy as np

from lrlab.errors import InputError, clip
from lrlab.files import atomic_write
from lrlab.schedules.base import MAX_STEP, Schedule
from lrlab.schedules.composite import Cyclic, Join, Tabulated
from lrlab.schedules.families import FAMILIES
from lrlab.tables import csv_columns

_CYCLE_KEYS = {"cycles": int, "cycle_gain": float}
_BOUNDARY = re.compile(r"@\s*(\S+?)\s+")


class SpecError(InputError):
    """A malformed spec; the message names the bad token and its 0-based character position."""

    def __init__(self, spec: str, pos: int, token: str, why: str) -> None:
        super().__init__(f"bad schedule spec at position {pos} ({clip(token)!r}): {why}  [spec: {clip(spec, 200)}]")
        self.pos = pos
        self.token = token


def parse(spec: str) -> Schedule:
    """Parse a one-line spec into a schedule; ``parse(str(s)) == s`` for every schedule with a spec."""
    if not spec.strip():
        raise SpecError(spec, 0, spec, "empty spec; expected e.g. 'cosine:peak=1e-3,warmup=100,total=1000'")
    pieces, boundaries, pos = [], [], 0
    for k, chunk in enumerate(spec.split("|")):
        start = pos + len(chunk) - len(chunk.lstrip())
        body = chunk.strip()
        if k > 0:
            match = _BOUNDARY.match(body + " ")
            if not match:
                raise SpecError(
                    spec,
                    start,
                    body.split()[0] if body else body,
                    "a joined piece starts with '@STEP ', e.g. '| @1000 constant:...'",
                )
            boundaries.append(_to_int(spec, start + 1, match.group(1), "boundary"))
            start += match.end()
            body = (body + " ")[match.end() :].strip()
        pieces.append(_parse_piece(spec, start, body))
        pos += len(chunk) + 1
    if len(pieces) == 1:
        return pieces[0]
    try:
        return Join(tuple(pieces), tuple(boundaries))
    except InputError as exc:
        raise SpecError(spec, 0, spec, str(exc)) from None


def _parse_piece(spec: str, start: int, body: str) -> Schedule:
    name, colon, rest = body.partition(":")
    family = FAMILIES.get(name.strip())
    if family is None:
        raise SpecError(spec, start, name, f"unknown schedule family; expected one of {', '.join(FAMILIES)}")
    if not colon or not rest.strip():
        raise SpecError(spec, start, body, f"'{name}' needs parameters, e.g. '{name}:peak=1e-3,...'")
    hints = typing.get_type_hints(family)
    kinds = {f.name: _field_kind(hints[f.name]) for f in fields(family)}
    kwargs: dict[str, object] = {}
    cycle: dict[str, object] = {}
    pos = start + len(name) + 1
    for item in rest.split(","):
        key_pos = pos + len(item) - len(item.lstrip())
        key, eq, value = (s.strip() for s in item.partition("="))
        pos += len(item) + 1
        if not eq or not value:
            raise SpecError(spec, key_pos, item.strip(), "expected key=value")
        target = cycle if key in _CYCLE_KEYS else kwargs
        if key in kwargs or key in cycle:
            raise SpecError(spec, key_pos, key, "key given twice")
        kind = _CYCLE_KEYS.get(key) or kinds.get(key)
        if kind is None:
            raise SpecError(spec, key_pos, key, f"unknown key for {name}; expected one of {', '.join(kinds)}")
        target[key] = _convert(spec, key_pos + len(key) + 1, value, kind, key)
    missing = [f.name for f in fields(family) if _required(f) and f.name not in kwargs]
    if missing:
        raise SpecError(spec, start, name, f"missing required key {', '.join(missing)}")
    try:
        piece = family(**kwargs)
        return Cyclic(piece, cycle["cycles"], cycle.get("cycle_gain", 1.0)) if cycle else piece
    except KeyError:
        raise SpecError(spec, start, body, "cycle_gain needs cycles=N") from None
    except InputError as exc:
        raise SpecError(spec, start, name, str(exc)) from None


def _required(f: Field) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _field_kind(hint: object) -> type:
    """The scalar type a dataclass field holds: int, float, str or tuple (of ints)."""
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_origin(hint) or hint


def _convert(spec: str, pos: int, text: str, kind: type, key: str) -> object:
    if kind is int:
        return _to_int(spec, pos, text, key)
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            raise SpecError(spec, pos, text, f"{key} expects a number") from None
        if not np.isfinite(value):
            raise SpecError(spec, pos, text, f"{key} must be finite")
        return value
    if kind is tuple:
        return tuple(_to_int(spec, pos, part, key) for part in text.split("/"))
    return text


def _to_int(spec: str, pos: int, text: str, key: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise SpecError(spec, pos, text, f"{key} expects a whole number of steps") from None
    if not np.isfinite(value) or value != int(value) or abs(value) >= MAX_STEP:
        raise SpecError(spec, pos, text, f"{key} expects a whole number of steps below 2**53")
    return int(value)


def load(spec_or_path: str | Path) -> Schedule:
    """A schedule from a spec, or from a CSV file with columns ``step,lr`` listing every step from 0.

    A string is treated as a file when it ends in ``.csv`` or names an existing file.
    """
    text = str(spec_or_path)
    path = Path(text)
    if text.lower().endswith(".csv") or (":" not in text and _is_file(path)):
        return read_csv(path)
    return parse(text)


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for text that cannot be a path at all (too long, a NUL byte)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def read_csv(path: Path) -> Tabulated:
    """Read a ``step,lr`` CSV (header required, other columns ignored) into a :class:`Tabulated` schedule."""
    lrs: list[float] = []
    for where, row in csv_columns(path, ("step", "lr")):
        try:
            step, lr = int(row["step"]), float(row["lr"])
        except ValueError:
            got = clip(f"{row['step']},{row['lr']}")
            raise InputError(f"{where}: expected an integer step and a number lr, got {got}") from None
        if step != len(lrs):
            raise InputError(f"{where}: step {step} where {len(lrs)} was expected; list every step from 0")
        lrs.append(lr)
    if not lrs:
        raise InputError(f"{path}: no rows; expected one row per step from 0")
    try:
        return Tabulated(np.asarray(lrs), source=str(path))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def write_csv(schedule: Schedule, path: Path, steps: int) -> None:
    """Write lr(0..steps-1) as a ``step,lr`` CSV that :func:`load` reads back exactly (atomically)."""
    lrs = schedule.values(steps)
    with atomic_write(path) as fh:
        fh.write("step,lr\n")
        fh.writelines(f"{t},{lr!r}\n" for t, lr in enumerate(lrs.tolist()))
