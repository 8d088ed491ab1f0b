"""Reading user CSV files by column name, with one-line errors that name the file and line.

Shared by the schedule loader (``step,lr``) and the loss-curve loaders (``step,loss[,lr]``); it sits beside
``errors.py`` below every package, so any of them may use it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from lrlab.errors import InputError
from lrlab.files import require_file

MAX_ROWS = 10_000_000  # a per-step table of the longest run lrlab evaluates (see schedules.base.MAX_DENSE_STEPS)


def csv_columns(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Iterator[tuple[str, dict]]:
    """Yield ``(where, {column: text})`` for every non-blank data row; ``where`` is ``"PATH:LINE"``.

    The header is matched case-insensitively; other columns are ignored. Rows are streamed, never all held at
    once. A missing or non-regular file, a file that is not UTF-8 text, an empty file, a header without the
    ``required`` columns, a row with the wrong number of fields, a malformed CSV line (a NUL byte, a field over
    the csv module's size limit) or more than :data:`MAX_ROWS` rows is an :class:`InputError`.
    """
    require_file(path, "table")
    line, reader = 1, None
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheet exports start with a BOM
            reader = csv.reader(fh)
            first = next(reader, None)
            if first is None:
                raise InputError(f"{path}: empty file; expected a header {','.join(required)} and one row per record")
            header = [h.strip().lower() for h in first]
            missing = [c for c in required if c not in header]
            if missing:
                wanted = " and ".join(f"'{c}'" for c in required)
                raise InputError(f"{path}:1: header must name columns {wanted}, got {','.join(first)[:200]}")
            index = {c: header.index(c) for c in (*required, *optional) if c in header}
            for line, row in enumerate(reader, start=2):
                if line > MAX_ROWS + 1:
                    raise InputError(f"{path}: more than {MAX_ROWS:,} rows (lrlab's limit for one table)")
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise InputError(f"{path}:{line}: {len(row)} fields where the header has {len(header)}")
                yield f"{path}:{line}", {c: row[i] for c, i in index.items()}
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}:{line}: not UTF-8 text (expected CSV)") from None
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num if reader else line}: malformed CSV ({exc})") from None
