"""Where a run's records go: a small sink interface and its JSON-lines implementation.

A sink receives the run's metadata once (``open``), one row per optimizer step (``log``: a flat dict with at
least ``step``, ``lr`` and ``train_loss``; ``val_loss`` on evaluation steps), a ``flush`` before each checkpoint
(rows before a checkpoint must survive a crash after it) and the outcome (``close``). The run store's
``StoreSink`` has the same four methods.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from lrlab.files import json_ready, make_dirs, write_json, write_text


class MetricsSink(Protocol):
    def open(self, meta: dict[str, Any], start_step: int) -> None:
        """Start (``start_step == 0``) or resume a run; rows of steps >= ``start_step`` are dropped."""

    def log(self, row: dict[str, Any]) -> None:
        """Record one step's metrics."""

    def flush(self) -> None:
        """Make every row logged so far durable (before a checkpoint: a resume must find them)."""

    def close(self, result: dict[str, Any]) -> None:
        """Record the outcome: ``status`` (done, diverged, failed, interrupted), ``steps_done`` and details."""


class NullSink:
    """Records nothing: for runs without an output folder and for processes other than rank 0."""

    def open(self, meta: dict[str, Any], start_step: int) -> None:
        pass

    def log(self, row: dict[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self, result: dict[str, Any]) -> None:
        pass


class TeeSink:
    """Sends every record to several sinks (e.g. ``metrics.jsonl`` and the run store), in order."""

    def __init__(self, sinks: list[MetricsSink]) -> None:
        self.sinks = list(sinks)

    def open(self, meta: dict[str, Any], start_step: int) -> None:
        for sink in self.sinks:
            sink.open(meta, start_step)

    def log(self, row: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.log(row)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()

    def close(self, result: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.close(result)


class MemorySink:
    """Keeps the records in memory (``meta``, ``rows``, ``result``): for studies and tests that read a run back
    without files."""

    def __init__(self) -> None:
        self.meta: dict[str, Any] = {}
        self.rows: list[dict[str, Any]] = []
        self.result: dict[str, Any] | None = None

    def open(self, meta: dict[str, Any], start_step: int) -> None:
        self.meta = meta
        self.rows = [r for r in self.rows if r["step"] < start_step]

    def log(self, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))

    def flush(self) -> None:
        pass

    def close(self, result: dict[str, Any]) -> None:
        self.result = result


def _step_of(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


class JsonlSink:
    """``DIR/metrics.jsonl`` (one JSON object per step, flushed as written) and ``DIR/run.json``."""

    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir)
        self.metrics_path = self.dir / "metrics.jsonl"
        self.run_path = self.dir / "run.json"
        self._file = None
        self._meta: dict[str, Any] = {}

    def open(self, meta: dict[str, Any], start_step: int) -> None:
        make_dirs(self.dir)
        self._meta = meta
        kept = ""
        if start_step > 0 and self.metrics_path.exists():
            # A run killed after its last checkpoint logged steps that the resumed run will redo, and a kill
            # during a write can leave a torn last line: keep only whole rows before start_step.
            kept = "".join(
                line
                for line in self.metrics_path.read_text(errors="replace").splitlines(keepends=True)
                if line.endswith("\n") and (step := _step_of(line)) is not None and step < start_step
            )
        write_text(self.metrics_path, kept)
        self._file = open(self.metrics_path, "a", buffering=1)  # line-buffered: a crash loses no full row
        write_json(self.run_path, {"status": "running", "steps_done": start_step, **meta})

    def log(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(json_ready(row), allow_nan=False) + "\n")  # a diverged loss is null

    def flush(self) -> None:
        self._file.flush()

    def close(self, result: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        write_json(self.run_path, {**result, **self._meta})
