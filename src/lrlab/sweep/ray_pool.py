"""The Ray executor: one Ray task a run, with ``threads`` CPUs (and ``gpus`` GPUs) as its resources.

The driver owns every write to the store: a task trains with its records kept in memory and returns them, and
the driver writes them in one go, so the SQLite file is written by one process on one machine even when the
workers are on others (SQLite's locks do not hold on network file systems). Live progress comes from a small
actor the tasks report to. ``address`` joins a running cluster; without it a local Ray instance starts with the
sweep and stops with it. Run folders (checkpoints) must be on storage every worker sees.
"""

from __future__ import annotations

from typing import Any

from lrlab.errors import InputError
from lrlab.store.db import Store
from lrlab.store.sink import record_outcome
from lrlab.sweep.worker import Task, run_collected


def _ray():
    try:
        import ray
    except ImportError:
        raise InputError("the ray executor needs Ray: pip install 'lrlab[ray]'", "executor") from None
    return ray


class _Board:
    """Latest (step, train loss) of each running task (a Ray actor)."""

    def __init__(self) -> None:
        self.latest: dict[int, tuple[int, Any]] = {}

    def update(self, run_id: int, step: int, loss: Any) -> None:
        self.latest[run_id] = (step, loss)

    def snapshot(self) -> dict[int, tuple[int, Any]]:
        return dict(self.latest)


class RayPool:
    """At most ``workers`` Ray tasks at a time; the driver polls them and writes each one's records on return."""

    def __init__(self, store: Store, workers: int, threads: int, gpus: float = 0.0, address: str | None = None):
        ray = self._ray = _ray()
        self.store, self.slots = store, workers
        self._started = not ray.is_initialized()
        if self._started:
            options = {"address": address} if address else {"num_cpus": workers * threads}
            ray.init(**options, include_dashboard=False, log_to_driver=False, configure_logging=False)
        self._task = ray.remote(run_collected).options(num_cpus=threads, num_gpus=gpus, max_retries=0)
        self._board = ray.remote(_Board).remote()
        self.active: dict[Any, Task] = {}

    def submit(self, task: Task) -> None:
        self.store.claim(task.run_id)
        self.active[self._task.remote(task, self._board)] = task

    def poll(self) -> list[int]:
        ray = self._ray
        ready, _ = ray.wait(list(self.active), num_returns=len(self.active), timeout=0)
        done = []
        for ref in ready:
            task = self.active.pop(ref)
            try:
                out = ray.get(ref)
            except Exception as exc:  # the task died (worker crash, cancellation): recorded, the sweep goes on
                self.store.finish_run(task.run_id, "failed", error=f"the Ray task failed: {type(exc).__name__}")
            else:
                self._write(task.run_id, out)
            done.append(task.run_id)
        return done

    def _write(self, run_id: int, out: dict[str, Any]) -> None:
        if out["meta"]:
            self.store.set_meta(run_id, out["meta"].get("meta", {}))  # the environment the task ran in
        self.store.truncate(run_id, out["start"])
        self.store.log_metrics(run_id, out["rows"])
        record_outcome(self.store, run_id, out["result"])

    def live(self) -> dict[int, tuple[int, Any]]:
        snap = self._ray.get(self._board.snapshot.remote())
        ids = {t.run_id for t in self.active.values()}
        return {k: v for k, v in snap.items() if k in ids}

    def stop(self) -> None:
        """Cancel the running tasks; their runs are recorded interrupted (their records are lost with the task, so
        the next sweep trains them from step 0: the driver never resumes a checkpoint whose rows it lacks)."""
        for ref, task in list(self.active.items()):
            self._ray.cancel(ref)
            self.store.finish_run(task.run_id, "interrupted", error="the sweep was stopped")
            del self.active[ref]

    def close(self) -> None:
        if self.active:
            self.stop()
        if self._started:
            self._ray.shutdown()
