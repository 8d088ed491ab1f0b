"""Run a study: add its cells to the store, run the ones not finished on an executor, show progress, summarize.

Re-running a study is safe and idempotent: its runs are found by config hash; done and diverged runs are skipped;
pending, interrupted and stale running ones (whose process is gone) run again, from their last checkpoint when
they have one; failed ones run again while their failures are within the study's ``retries``. A resumed run drops
its metric rows from the resume step on before logging them again, so no step is ever stored twice.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrlab.errors import InputError
from lrlab.schedules import load as load_schedule
from lrlab.store.db import FINISHED, Store, config_hash
from lrlab.sweep.study import Study
from lrlab.sweep.worker import Task
from lrlab.train.checkpoint import checkpoint_step, list_checkpoints
from lrlab.train.config import config_from_dict

EXECUTORS = ("local", "ray")
POLL_S = 0.25
STALE_WAIT_S = 30.0  # how long a re-run waits for a previous attempt's process (an orphan stopping) to exit


@dataclass
class Plan:
    """What a sweep will do: the runs of the study in the store, and which of them it runs now."""

    study_id: int
    runs: list[dict[str, Any]]
    todo: list[dict[str, Any]]
    skipped: list[dict[str, Any]]  # failed runs out of retries, and runs still running elsewhere


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """torch threads for each of ``workers`` so that workers x threads <= cores."""
    return max(1, cores() // workers)


def check_options(executor: str, workers: int, gpus: float, address: str | None = None) -> None:
    """The executor's options, checked before anything is created."""
    if executor not in EXECUTORS:
        raise InputError(f"must be one of {', '.join(EXECUTORS)}, got {executor!r}", "executor")
    if not 1 <= workers <= 1024:
        raise InputError(f"must lie in [1, 1024], got {workers}", "workers")
    if not (math.isfinite(gpus) and gpus >= 0):
        raise InputError(f"must be a finite number >= 0, got {gpus}", "gpus")
    if gpus and executor != "ray":
        raise InputError("GPUs per run are a Ray resource; the local executor runs each config's device", "gpus")
    if address and executor != "ray":
        raise InputError("a cluster address is for the ray executor only", "address")


def plan(study: Study, store: Store) -> Plan:
    """Add the study's cells to the store (idempotent) and choose the runs to execute now."""
    sid = store.study(study.name, study.spec())
    ids = [store.add_run(sid, cell.config.to_dict(), cell.values) for cell in study.cells]
    runs = [store.run(i) for i in ids]
    todo, skipped = [], []
    for run in runs:
        status = run["status"]
        if status in FINISHED:
            continue
        if status == "failed" and run["failures"] > study.retries:
            skipped.append(run)
        elif status == "running" and _alive_elsewhere(run):
            skipped.append(run)
        else:
            todo.append(run)
    return Plan(sid, runs, todo, skipped)


def _alive_elsewhere(run: dict[str, Any]) -> bool:
    """A run recorded running by another live process on this host (after a short wait for it to stop)."""
    if run["host"] != socket.gethostname() or not run["pid"] or run["pid"] == os.getpid():
        return False
    deadline = time.monotonic() + STALE_WAIT_S
    while _pid_alive(run["pid"]):
        if time.monotonic() > deadline:
            return True
        time.sleep(POLL_S)
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_dir(runs_root: Path, study: str, run: dict[str, Any]) -> Path:
    """Where a run keeps its checkpoints: ``RUNS_ROOT/STUDY/RUN_ID-CONFIG_HASH``. The hash keeps a new store's
    run 1 (ids restart in a new file) from resuming an old store's run 1 of another config."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study)
    return runs_root / safe / f"{run['id']}-{config_hash(run['config'])}"


def _drop_unrecorded(store: Store, run: dict[str, Any], folder: Path) -> None:
    """Start a run afresh when the store lacks the rows its last checkpoint stands on (a Ray task cancelled
    before it handed them back, or a store deleted and created anew): resuming would leave a gap in its curves.
    The checkpoint after ``k`` steps needs the train loss of steps 0..k-1 (logged every step)."""
    ckpts = list_checkpoints(folder / "checkpoints")
    if not ckpts:
        return
    last = store.latest([run["id"]]).get(run["id"], (-1, None))[0]
    if last < checkpoint_step(ckpts[-1]) - 1:
        shutil.rmtree(folder)


class Listener:
    """What the driver tells a progress display."""

    def planned(self, todo: int) -> None: ...
    def started(self, run: dict[str, Any], total_steps: int) -> None: ...
    def progress(self, live: dict[int, tuple[int, Any]]) -> None: ...
    def finished(self, run: dict[str, Any]) -> None: ...


def execute(
    study: Study,
    store: Store,
    executor: str = "local",
    workers: int = 2,
    runs_root: Path | None = None,
    address: str | None = None,
    gpus: float = 0.0,
    listener: Listener | None = None,
    pool_factory: Callable[..., Any] | None = None,
) -> Plan:
    """Run the study's unfinished runs, ``workers`` at a time; returns the plan it ran (the store has the rest).

    Ctrl-C stops the workers after their current step (each run then checkpoints and is recorded interrupted) and
    re-raises KeyboardInterrupt once every finished run is recorded.
    """
    check_options(executor, workers, gpus, address)
    listener = listener or Listener()
    runs_root = runs_root or store.path.with_name(store.path.stem + ".runs")
    todo = plan(study, store)
    threads = threads_per_worker(workers)
    pool = (pool_factory or _pool)(executor, store, workers, threads, gpus, address)
    queue = list(todo.todo)
    listener.planned(len(queue))
    try:
        while queue or pool.active:
            while queue and len(pool.active) < pool.slots:
                run = queue.pop(0)
                folder = run_dir(runs_root, study.name, run)
                _drop_unrecorded(store, run, folder)
                store.add_artifact(run["id"], "run_dir", folder.resolve())
                pool.submit(Task(run["id"], run["config"], str(folder), threads))
                listener.started(run, _steps(run))
            for run_id in pool.poll():
                listener.finished(store.run(run_id))
            listener.progress(pool.live())
            if queue or pool.active:
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        pool.stop()
        raise
    finally:
        pool.close()
    return todo


def _steps(run: dict[str, Any]) -> int:
    """The run's total steps (its config's steps, token budget or schedule total)."""
    cfg = config_from_dict(run["config"])
    return cfg.total_steps(load_schedule(cfg.schedule).total)


def _pool(executor: str, store: Store, workers: int, threads: int, gpus: float, address: str | None):
    if executor == "ray":
        from lrlab.sweep.ray_pool import RayPool

        return RayPool(store, workers, threads, gpus, address)
    from lrlab.sweep.local import LocalPool

    return LocalPool(store, workers)
