"""Reading user CSV files by column name, with one-line errors that name the file and line.

Shared by the schedule loader (``step,lr``) and the loss-curve loaders (``step,loss[,lr]``); it sits beside
``errors.py`` below every package, so any of them may use it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from lrlab.errors import InputError


def csv_columns(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Iterator[tuple[str, dict]]:
    """Yield ``(where, {column: text})`` for every non-blank data row; ``where`` is ``"PATH:LINE"``.

    The header is matched case-insensitively; other columns are ignored. A missing file, an empty file, a header
    without the ``required`` columns or a row with the wrong number of fields is an :class:`InputError`.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheet exports start with a BOM
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (expected CSV)") from None
    if not rows:
        raise InputError(f"{path}: empty file; expected a header {','.join(required)} and one row per record")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in required if c not in header]
    if missing:
        wanted = " and ".join(f"'{c}'" for c in required)
        raise InputError(f"{path}:1: header must name columns {wanted}, got {','.join(rows[0])}")
    index = {c: header.index(c) for c in (*required, *optional) if c in header}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(f"{path}:{line}: {len(row)} fields where the header has {len(header)}")
        yield f"{path}:{line}", {c: row[i] for c, i in index.items()}
