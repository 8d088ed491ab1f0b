"""A study's runs as a flat table: CSV always, Parquet when pyarrow is installed (``pip install 'lrlab[parquet]'``).

Columns: run, status, attempts, every cell key (the sweep's axes), then every final metric; a run without a value
for a column leaves it empty. The rows are written atomically.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lrlab.errors import InputError
from lrlab.files import atomic_write
from lrlab.store.db import Store

FORMATS = (".csv", ".parquet")


def columns(rows: list[dict]) -> list[str]:
    """Every key of the rows, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def export(store: Store, study: str, path: str | Path) -> int:
    """Write the study's table to ``path`` (.csv or .parquet); returns the number of runs written."""
    path = Path(path)
    rows = store.table(study)
    cols = columns(rows)
    if path.suffix.lower() == ".csv":
        with atomic_write(path) as fh:
            writer = csv.DictWriter(fh, fieldnames=cols, restval="")
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix.lower() == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError("Parquet export needs pyarrow: pip install 'lrlab[parquet]'", "path") from None
        table = pa.Table.from_pylist(_typed(rows, cols))
        with atomic_write(path, "wb") as fh:
            pq.write_table(table, fh)
    else:
        raise InputError(f"{path}: unknown format {path.suffix!r}; use one of {', '.join(FORMATS)}", "path")
    return len(rows)


def _typed(rows: list[dict], cols: list[str]) -> list[dict]:
    """Rows whose every column holds one type, as Parquet needs: ints mixed with floats become floats, any other
    mix (free-form optimizer options such as 1 and "auto") becomes text."""
    kinds = {c: {type(r[c]) for r in rows if r.get(c) is not None} for c in cols}

    def cast(column: str, value):
        if value is None or len(kinds[column]) <= 1:
            return value
        return float(value) if kinds[column] <= {int, float} else str(value)

    return [{c: cast(c, row.get(c)) for c in cols} for row in rows]
