"""The local executor: each run in its own worker process, at most ``workers`` at a time.

Workers are forked from a ``forkserver`` that has imported torch and lrlab once, so a run starts in milliseconds,
and a run that crashes its process (a segfault, an out-of-memory kill) takes nothing else down: the driver sees
the exit code and records the run as failed. Each worker writes its own records to the store (SQLite in WAL mode
takes several local writers) and gets ``threads`` torch threads, with workers x threads <= the cores.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from multiprocessing.context import ForkServerProcess
from typing import Any

from lrlab.store.db import Store
from lrlab.sweep.worker import Task, run_local

STOP_WAIT_S = 60.0  # how long Ctrl-C waits for workers to checkpoint before killing them


class LocalPool:
    """At most ``workers`` local worker processes at a time, each training one run and writing its own records."""

    def __init__(self, store: Store, workers: int) -> None:
        self.store, self.slots = store, workers
        self._ctx = multiprocessing.get_context("forkserver")
        # torch._dynamo: the first optimizer a process builds imports it (about 1 s); preloaded once here
        self._ctx.set_forkserver_preload(["lrlab.sweep.worker", "torch._dynamo"])
        self.active: dict[int, tuple[Task, ForkServerProcess]] = {}
        self._stopping = False  # the sweep is stopping its workers: a SIGTERM death is an interruption

    def submit(self, task: Task) -> None:
        proc = self._ctx.Process(target=run_local, args=(task, str(self.store.path)), name=f"lrlab-run-{task.run_id}")
        proc.start()
        self.active[task.run_id] = (task, proc)

    def poll(self) -> list[int]:
        """The runs whose worker has exited since the last call (a crashed worker's run is recorded failed)."""
        done = []
        for run_id, (_task, proc) in list(self.active.items()):
            if proc.is_alive():
                continue
            proc.join()
            if proc.exitcode != 0 and self.store.run(run_id)["status"] in ("pending", "running"):
                if self._stopping and proc.exitcode == -signal.SIGTERM:  # stopped before its handler was set
                    self.store.finish_run(run_id, "interrupted", error="stopped by the sweep while starting")
                else:
                    why = f"signal {-proc.exitcode}" if proc.exitcode < 0 else f"exit code {proc.exitcode}"
                    self.store.finish_run(run_id, "failed", error=f"the worker process died ({why})")
            del self.active[run_id]
            done.append(run_id)
        return done

    def live(self) -> dict[int, tuple[int, Any]]:
        return self.store.latest(self.active)

    def stop(self) -> None:
        """Ask every worker to stop after its current step (SIGTERM: checkpoint, status interrupted)."""
        self._stopping = True
        for _task, proc in self.active.values():
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        for _task, proc in self.active.values():
            proc.join(STOP_WAIT_S)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self.poll()

    def close(self) -> None:
        if self.active:
            self.stop()
