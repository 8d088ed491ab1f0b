"""A trainer metrics sink that writes a run's records into the run store, in batched transactions.

Rows are buffered and written every ``flush_rows`` rows or ``flush_seconds`` seconds, whichever comes first, and
at the end: one transaction a batch, never a commit per row. A crash loses at most the unflushed rows of the
steps after the last flush; a resumed run drops its rows from the resume step on and logs them again, so the
store never holds a step twice.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lrlab.store.db import Store

FLUSH_ROWS = 500
FLUSH_SECONDS = 2.0


class StoreSink:
    """Records of one run into a store: ``open`` marks it running, ``log`` buffers rows, ``close`` flushes them and
    records the outcome (status, final metrics, error).

    The run is ``run_id``, or (with ``study`` and ``config``) the study's run with that config, added when the run
    opens its records: a run refused before its first step writes nothing to the store, not even the file.
    """

    def __init__(
        self,
        store: Store | str | Path,
        run_id: int | None = None,
        *,
        study: str | None = None,
        config: dict | None = None,
        flush_rows: int = FLUSH_ROWS,
        flush_seconds: float = FLUSH_SECONDS,
        claimed: bool = False,
    ) -> None:
        if run_id is None and (study is None or config is None):
            raise ValueError("StoreSink needs a run_id, or a study and a config")
        self._store = store
        self.run_id, self.study, self.config = run_id, study, config
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self.claimed = claimed  # the caller already counted this attempt (a sweep worker claims before training)
        self._rows: list[dict[str, Any]] = []
        self._last = time.monotonic()

    @property
    def store(self) -> Store:
        if not isinstance(self._store, Store):
            self._store = Store(self._store)
        return self._store

    def open(self, meta: dict[str, Any], start_step: int) -> None:
        if self.run_id is None:
            self.run_id = self.store.add_run(self.store.study(self.study), self.config)
        self._rows = []
        self.store.truncate(self.run_id, start_step)
        if self.claimed:
            self.store.set_meta(self.run_id, meta.get("meta", meta))
        else:
            self.store.claim(self.run_id, meta.get("meta", meta))

    def log(self, row: dict[str, Any]) -> None:
        self._rows.append(dict(row))
        if len(self._rows) >= self.flush_rows or time.monotonic() - self._last >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows (the trainer calls this before each checkpoint, so a run resumed from that
        checkpoint finds every earlier row stored)."""
        self.store.log_metrics(self.run_id, self._rows)
        self._rows = []
        self._last = time.monotonic()

    def close(self, result: dict[str, Any]) -> None:
        self.flush()
        record_outcome(self.store, self.run_id, result)


def record_outcome(store: Store, run_id: int, result: dict[str, Any]) -> None:
    """A trainer's closing record (status, steps done, final losses, error and traceback) as the run's outcome."""
    final = {k: v for k, v in result.items() if k not in ("status", "error", "traceback")}
    error = result.get("error")
    if result.get("traceback"):
        error = f"{error}\n{result['traceback']}"
    store.finish_run(run_id, result.get("status", "failed"), final, error)
