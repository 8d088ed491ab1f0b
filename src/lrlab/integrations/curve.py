"""A run's loss curve as the files ``lrlab fit`` reads: ``NAME.csv`` (``step,loss``) and ``NAME.lr.csv`` (the LR
of every update from 0, the sidecar ``lrlab fit`` finds on its own).

``lrlab fit`` reads curve files, not the store, so a run recorded through an integration is written out first::

    write_curve("runs.db", "run.csv", run_id=1)     # or write_curve("out/metrics.jsonl", "run.csv")
    # then: lrlab fit run.csv --out fit.json

Each row's ``lr`` is the LR its update ran at, so the sidecar is the schedule the run really had; the loss is the
rows' ``train_loss`` (``metric=`` another, e.g. ``val_loss``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lrlab.errors import InputError
from lrlab.files import atomic_write, read_text, require_file
from lrlab.laws.curves import MAX_CURVE_BYTES, sidecar_path
from lrlab.schedules import Tabulated, write_csv
from lrlab.store import Store


def write_curve(
    records: str | Path | Store, path: str | Path, run_id: int | None = None, metric: str = "train_loss"
) -> Path:
    """Write ``metric`` of a run (a store with ``run_id``, or a ``metrics.jsonl``) to ``path`` and its LR sidecar.

    Returns the path of the sidecar."""
    steps_lr, lr, steps, loss = _read(records, run_id, metric)
    if not np.array_equal(steps_lr, np.arange(len(steps_lr))):
        raise InputError(f"{records}: the LR is not recorded at every update from 0, so lrlab fit cannot integrate it")
    if len(steps) == 0:
        raise InputError(f"{records}: no {metric} records")
    path = Path(path)
    with atomic_write(path) as fh:
        fh.write("step,loss\n")
        fh.writelines(f"{s},{v!r}\n" for s, v in zip(steps.tolist(), loss.tolist(), strict=True) if np.isfinite(v))
    side = sidecar_path(path)
    write_csv(Tabulated(lr), side, len(lr))
    return side


def _read(records, run_id, metric) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps with an LR, their LRs, steps with ``metric``, its values)."""
    if not isinstance(records, Store):
        require_file(Path(records), "records")  # opening a missing store would create an empty one
        if Path(records).suffix.lower() == ".jsonl":
            return _read_jsonl(Path(records), metric)
    if run_id is None:
        raise InputError("a run in the store is named by its id", "run_id")
    store = records if isinstance(records, Store) else Store(records)
    try:
        return (*store.curve(run_id, "lr"), *store.curve(run_id, metric))
    finally:
        if store is not records:
            store.close()


def _read_jsonl(path: Path, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    try:
        rows = [json.loads(line) for line in read_text(path, "records", MAX_CURVE_BYTES).splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    columns = []
    for key in ("lr", metric):
        kept = [r for r in rows if isinstance(r, dict) and r.get(key) is not None]
        columns += [np.array([r["step"] for r in kept], dtype=np.int64), np.array([r[key] for r in kept], dtype=float)]
    return tuple(columns)
