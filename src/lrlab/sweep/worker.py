"""One sweep run in a worker: train a cell's config, resuming from its checkpoints when a previous attempt left
some, and record it in the run store (locally) or hand its records back (Ray, where the driver writes).

A local worker watches its parent: if the sweep driver dies (killed, or its terminal closed), the worker stops
after the current step the way SIGTERM stops a run (checkpoint, status "interrupted"), so no orphan keeps
training, and the next ``lrlab sweep`` of the study continues the run from that checkpoint.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrlab.errors import InputError
from lrlab.store.db import Store
from lrlab.store.sink import StoreSink
from lrlab.train.checkpoint import list_checkpoints
from lrlab.train.config import config_from_dict
from lrlab.train.loop import Trainer
from lrlab.train.metrics import MetricsSink


@dataclass(frozen=True)
class Task:
    """What a worker needs to run one cell (plain data: it crosses process and machine boundaries)."""

    run_id: int
    config: dict[str, Any]
    run_dir: str
    threads: int


class _ParentWatch:
    """Stops the run like SIGTERM once the driver that started this worker is gone.

    The worker's OS parent is the forkserver, which outlives the driver while any worker runs, so the watch is the
    driver's own liveness pipe (``multiprocessing.parent_process()``), closed by the OS when the driver dies."""

    def __init__(self) -> None:
        self.parent = multiprocessing.parent_process()

    def on_step_start(self, ctx: Any) -> None:
        if self.parent is not None and not self.parent.is_alive():
            os.kill(os.getpid(), signal.SIGTERM)


class _Stopped(BaseException):
    """SIGTERM before the trainer installed its own handler (the driver stopping a worker that is starting)."""


def _stop(signum: int, frame: Any) -> None:
    raise _Stopped


def _train(task: Task, sink: MetricsSink, callbacks: list[Any]) -> str:
    """Run the task's config into ``sink`` (resuming from the run folder's checkpoints); returns the status."""
    cfg = config_from_dict(task.config)
    cfg.threads = task.threads
    folder = Path(task.run_dir)
    resume = bool(list_checkpoints(folder / "checkpoints"))
    trainer = Trainer(cfg, folder, resume=resume, overwrite=not resume, sink=sink, callbacks=callbacks)
    return trainer.run().status


def run_local(task: Task, store_path: str) -> None:
    """A local worker process: train the task and write it to the store itself."""
    # until the trainer installs its own handlers, Ctrl-C is the driver's to handle (it stops workers with SIGTERM),
    # and a SIGTERM leaves the run interrupted, not failed
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    store = Store(store_path)
    try:
        store.claim(task.run_id)  # an attempt from here on, even one that fails before its first step
        _train(task, StoreSink(store, task.run_id, claimed=True), [_ParentWatch()])
        if store.run(task.run_id)["status"] == "running":  # stopped during its first step: the trainer kept nothing
            store.finish_run(task.run_id, "interrupted", error="stopped before its first step was done")
    except _Stopped:
        if store.run(task.run_id)["status"] == "running":
            store.finish_run(task.run_id, "interrupted", error="stopped before its first step")
    except Exception as exc:  # recorded, and the sweep goes on; the trainer has recorded it if it had started
        if store.run(task.run_id)["status"] == "running":  # the trainer failed before its first step
            store.finish_run(task.run_id, "failed", error=_error(exc))
    finally:
        store.close()


class _Collect:
    """A sink that keeps the records for the driver, and reports progress to it (Ray)."""

    def __init__(self, report: Any = None, run_id: int = 0) -> None:
        self.meta: dict[str, Any] = {}
        self.start = 0
        self.rows: list[dict[str, Any]] = []
        self.result: dict[str, Any] = {}
        self.report, self.run_id = report, run_id

    def open(self, meta: dict[str, Any], start_step: int) -> None:
        self.meta, self.start = meta, start_step

    def log(self, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))
        if self.report is not None and len(self.rows) % 10 == 0:
            self.report.update.remote(self.run_id, row["step"], row.get("train_loss"))

    def flush(self) -> None:
        pass  # the driver writes the rows when the task returns

    def close(self, result: dict[str, Any]) -> None:
        self.result = dict(result)


def run_collected(task: Task, report: Any = None) -> dict[str, Any]:
    """A Ray task: train and return the records (meta, start step, rows, result) for the driver to write."""
    sink = _Collect(report, task.run_id)
    try:
        _train(task, sink, [])
    except Exception as exc:
        if not sink.result:
            sink.result = {"status": "failed", "steps_done": sink.start, "error": _error(exc)}
    return {"meta": sink.meta, "start": sink.start, "rows": sink.rows, "result": sink.result}


def _error(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
    return text.strip() or type(exc).__name__
