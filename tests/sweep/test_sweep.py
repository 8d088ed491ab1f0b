"""Execution tests of lrlab.sweep: the local executor end to end, re-runs, diverged and failed cells, crash safety
of ``lrlab sweep`` under SIGKILL (of the driver and of a worker) and Ctrl-C, and Ray against the local executor.

Every study here trains the tiny GPT at seq_len 32 and 4 sequences a step on a ~60 KB text file, so a run is tens
of milliseconds of compute a step; what costs time is process start-up (torch imports) and the sweeps' own polls.
The crash tests run ``lrlab sweep`` as a subprocess and find its processes by a marker in their environment
(every process of a sweep inherits it: the driver, its forkserver and the workers forked from that).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import lrlab.train.loop
from lrlab.store import Store
from lrlab.sweep import execute, load_study, plan, summarize, threads_per_worker
from lrlab.sweep.driver import Listener, run_dir
from lrlab.train.checkpoint import list_checkpoints
from lrlab.train.config import config_from_dict
from lrlab.train.loop import Trainer
from lrlab.train.metrics import MemorySink

WORKERS = 2
CLI = [sys.executable, "-c", "from lrlab.cli import main; main()", "sweep"]
TAG = "LRLAB_TEST_SWEEP_TAG"  # the environment marker of a test's `lrlab sweep` processes
CRASH_STEPS = 150  # long enough that kills land inside runs (about 10-30 ms a step on one thread)
on_linux = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds processes through /proc")


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Corpus caches go to a per-session folder (set for the whole session: the forkserver keeps its env)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LRLAB_CACHE", str(tmp_path_factory.getbasetemp() / "lrlab-cache"))
        yield


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """~60 KB of Python source as a one-file text corpus (last 5% is validation)."""
    path = tmp_path_factory.mktemp("sweep-corpus") / "corpus.txt"
    path.write_text(inspect.getsource(lrlab.train.loop) * 3 + inspect.getsource(json) * 2)
    return path


def write_study(
    folder: Path,
    name: str,
    data: Path,
    axes: str = "",
    zips: str = "",
    steps: int = 20,
    retries: int = 2,
    ckpt_every: int = 5,
) -> Path:
    """A study of the tiny GPT on ``data``; ``axes`` and ``zips`` are TOML lines of its [axes] and [[zip]]."""
    path = folder / f"{name}.toml"
    path.write_text(
        f"""
name = "{name}"
retries = {retries}

[base]
data = {json.dumps(str(data))}
seq_len = 32
batch_size = 4
steps = {steps}
eval_every = 10
eval_batches = 1
ckpt_every = {ckpt_every}
schedule = "constant:peak=3e-3,warmup=2"

[axes]
{axes}
{"[[zip]]" if zips else ""}
{zips}
"""
    )
    return path


# --- reading stores ---------------------------------------------------------------------------------------------


def query(path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """One read of a store file (a plain SQLite reader: it never blocks the sweep writing it)."""
    db = sqlite3.connect(path, timeout=30)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def live_runs(path: Path) -> dict[int, tuple[str, int | None]]:
    """{run id: (status, pid)} of a store a sweep may be writing now ({} before it has its tables)."""
    if not path.exists():
        return {}
    try:
        return {i: (status, pid) for i, status, pid in query(path, "SELECT id, status, pid FROM runs ORDER BY id")}
    except sqlite3.OperationalError:  # the driver has not created the tables yet
        return {}


def ckpt_dir(path: Path, runs_root: Path, study: str, run_id: int) -> Path:
    """The checkpoint folder of a run of a store a sweep may be writing now."""
    config = json.loads(query(path, "SELECT config FROM runs WHERE id = ?", (run_id,))[0][0])
    return run_dir(runs_root, study, {"id": run_id, "config": config}) / "checkpoints"


def curves(path: Path) -> dict[int, dict[tuple[int, str], float | None]]:
    """Every run's metric rows as {(step, name): value}, without the wall-clock ``elapsed_s``."""
    out: dict[int, dict[tuple[int, str], float | None]] = {}
    for run, step, name, value in query(path, "SELECT run_id, step, name, value FROM metrics"):
        if name != "elapsed_s":
            out.setdefault(run, {})[(step, name)] = value
    return out


def duplicates(path: Path) -> list[tuple]:
    sql = "SELECT run_id, step, name, COUNT(*) FROM metrics GROUP BY run_id, step, name HAVING COUNT(*) > 1"
    return query(path, sql)


def final_table(path: Path, study: str) -> list[dict[str, Any]]:
    """The study's table (run, status, cell keys, final metrics) without ``attempts``, which a crash changes."""
    with Store(path) as store:
        return [{k: v for k, v in row.items() if k != "attempts"} for row in store.table(study)]


def rows_of(sink: MemorySink) -> dict[tuple[int, str], float | None]:
    """An in-process run's rows in the store's form: every numeric value but ``elapsed_s``, as a float."""
    return {
        (row["step"], name): float(value)
        for row in sink.rows
        for name, value in row.items()
        if name not in ("step", "elapsed_s") and isinstance(value, int | float)
    }


def train_alone(config: dict[str, Any], threads: int) -> tuple[Any, MemorySink]:
    """A cell's config trained in this process (no folder), with the thread count a sweep worker sets."""
    cfg = config_from_dict(config)
    cfg.threads = threads
    sink = MemorySink()
    return Trainer(cfg, None, sink=sink).run(), sink


# --- `lrlab sweep` as a subprocess ------------------------------------------------------------------------------


def _default_sigint() -> None:
    """The driver as a terminal starts it: a shell starts background jobs (a CI script run with ``&``) with SIGINT
    ignored, and a process that inherits that never sees the Ctrl-C these tests send."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Sweep:
    """``lrlab sweep STUDY --workers 2 --store STORE`` as a subprocess, started as often as needed; its processes
    (driver, forkserver, workers, orphans) carry ``TAG=<unique>`` in their environment."""

    def __init__(self, study: Path, store: Path) -> None:
        self.study, self.store = study, store
        self.tag = uuid.uuid4().hex
        self.logs: list[Path] = []
        self.proc: subprocess.Popen | None = None

    def start(self) -> subprocess.Popen:
        log = self.store.with_name(f"{self.store.stem}-sweep{len(self.logs)}.log")
        self.logs.append(log)
        env = {**os.environ, TAG: self.tag, "COLUMNS": "120"}
        cmd = [*CLI, str(self.study), "--workers", str(WORKERS), "--store", str(self.store)]
        with open(log, "wb") as out:  # a file, not a pipe: orphans holding a pipe open would hang a reader
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=_default_sigint)
        return self.proc

    def finish(self, timeout: float = 300) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"lrlab sweep did not finish in {timeout:.0f} s:\n{self.output()}") from None

    def output(self) -> str:
        return self.logs[-1].read_text(errors="replace")

    def processes(self) -> list[int]:
        """The live (not zombie) processes of this sweep."""
        needle = f"{TAG}={self.tag}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                if stat[stat.rindex(")") + 2] == "Z":
                    continue
                if needle in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    found.append(int(entry))
            except (OSError, ValueError):  # gone meanwhile, or not ours to read
                continue
        return found


def training(proc: subprocess.Popen, store: Path) -> bool:
    """The sweep has ended, or one of its runs has taken its first step (a run is claimed after it)."""
    return proc.poll() is not None or any(s == "running" for s, _ in live_runs(store).values())


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def describe(pids: list[int]) -> str:
    """The command lines of processes (for a failure message)."""
    lines = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            lines.append(f"{pid}: {cmdline}")
        except OSError:
            lines.append(f"{pid}: (gone)")
    return "\n".join(lines)


def assert_same_results(path: Path, reference: Path, study: str, cells: int) -> None:
    """A crashed-and-resumed store against an uninterrupted one: every run once, same statuses and final losses
    (exactly), no step stored twice, a sound SQLite file, and no run left unfinished."""
    with Store(path) as store:
        assert store.integrity() == "ok"
        runs = store.runs(study)
    assert len(runs) == cells
    assert len({r["id"] for r in runs}) == len({json.dumps(r["cell"], sort_keys=True) for r in runs}) == cells
    assert {r["status"] for r in runs} <= {"done", "diverged"}
    assert duplicates(path) == []
    assert final_table(path, study) == final_table(reference, study)


def assert_same_curves(path: Path, reference: Path) -> None:
    """Every run's metric rows equal the uninterrupted run's, step by step (a resumed run continues bit-exactly
    from its checkpoint and drops the rows it logs again)."""
    got, want = curves(path), curves(reference)
    assert sorted(got) == sorted(want)
    for run in want:
        missing = sorted({s for s, _ in want[run]} - {s for s, _ in got[run]})
        assert not missing, f"run {run}: {len(missing)} steps have no metric rows (first {missing[:5]})"
        assert got[run] == want[run], f"run {run}: metric rows differ from the uninterrupted run's"


# --- the local executor, in process ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory, corpus):
    """A 4-cell study (2 LRs x 2 seeds, 20 steps) executed once on 2 local workers."""
    folder = tmp_path_factory.mktemp("local-sweep")
    study = load_study(write_study(folder, "local", corpus, axes="lr = [1e-3, 3e-3]\nseed = [0, 1]"))
    path = folder / "runs.db"
    with Store(path) as store:
        first = execute(study, store, workers=WORKERS)
    return study, path, first


def test_local_sweep_runs_each_cell_as_if_trained_alone(local_sweep):
    study, path, first = local_sweep
    assert len(study.cells) == len(first.runs) == len(first.todo) == 4 and not first.skipped
    threads = threads_per_worker(WORKERS)
    stored = curves(path)
    with Store(path) as store:
        runs = store.runs(study.name)
    assert [r["cell"] for r in runs] == [c.values for c in study.cells]
    for run, cell in zip(runs, study.cells, strict=True):
        assert (run["status"], run["attempts"], run["failures"], run["error"]) == ("done", 1, 0, None)
        assert run["config"] == cell.config.to_dict()
        assert run["meta"]["threads"] == threads  # the worker ran with threads_per_worker(workers)
        result, sink = train_alone(run["config"], threads)
        assert result.status == "done"
        assert run["final"]["steps_done"] == result.steps_done == 20
        assert run["final"]["final_train_loss"] == result.final_train_loss
        assert run["final"]["final_val_loss"] == result.final_val_loss
        alone = rows_of(sink)
        assert sorted({s for s, _ in alone}) == list(range(20))
        assert stored[run["id"]] == alone  # every metric row, step by step, exactly
    # the cells differ: a sweep that ran one config four times would pass the checks above
    assert len({r["final"]["final_val_loss"] for r in runs}) == 4


def test_a_second_execute_runs_nothing(local_sweep):
    study, path, _ = local_sweep
    counts = query(path, "SELECT run_id, COUNT(*) FROM metrics GROUP BY run_id ORDER BY run_id")
    with Store(path) as store:
        before = store.runs(study.name)
        assert plan(study, store).todo == []
        again = execute(study, store, workers=WORKERS)
        after = store.runs(study.name)
        assert len(store.studies()) == 1
    assert again.todo == [] and again.skipped == [] and [r["id"] for r in again.runs] == [r["id"] for r in before]
    assert [r["attempts"] for r in after] == [1, 1, 1, 1]
    assert after == before  # status, final, started/finished times: nothing was touched
    assert query(path, "SELECT run_id, COUNT(*) FROM metrics GROUP BY run_id ORDER BY run_id") == counts
    assert len(counts) == 4 and all(n > 0 for _, n in counts)


def test_checkpoints_without_their_rows_are_not_resumed(tmp_path, corpus):
    """A store deleted and created anew (run ids restart at 1) beside the old run folders: the same config finds
    its old checkpoints but not the rows before them, so it trains afresh and stores every step (resuming would
    leave a hole, as a cancelled Ray task's lost rows would); another config never sees them (folders are named
    by config hash)."""
    path = tmp_path / "runs.db"
    first = load_study(write_study(tmp_path, "again", corpus, axes="lr = [3e-3]"))
    with Store(path) as store:
        execute(first, store, workers=1)
        reference = store.runs("again")[0]
    want = curves(path)[reference["id"]]
    folder = run_dir(tmp_path / "runs.runs", "again", reference)
    assert list_checkpoints(folder / "checkpoints")
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    with Store(path) as store:
        execute(first, store, workers=1)
        again = store.runs("again")[0]
    assert again["id"] == reference["id"] == 1 and again["status"] == "done"
    assert curves(path)[1] == want  # all 20 steps, bit for bit: trained from scratch
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    other = load_study(write_study(tmp_path, "again", corpus, axes="lr = [1e-3]"))
    with Store(path) as store:
        execute(other, store, workers=1)
        run = store.runs("again")[0]
    assert run["id"] == 1 and run_dir(tmp_path / "runs.runs", "again", run) != folder
    assert sorted({s for s, _ in curves(path)[1]}) == list(range(20))
    assert run["final"]["final_val_loss"] != reference["final"]["final_val_loss"]


def test_the_summary_of_a_sweep_covers_its_own_runs_only(tmp_path, corpus):
    """A study file edited after a sweep keeps the earlier runs in the store; the new sweep's table and best LR
    come from the new cells alone."""
    path = tmp_path / "runs.db"
    with Store(path) as store:
        old = execute(load_study(write_study(tmp_path, "edit", corpus, axes="lr = [3e-3, 1e-3]", steps=20)), store)
        new = execute(load_study(write_study(tmp_path, "edit", corpus, axes="lr = [3e-3, 1e-3]", steps=6)), store)
        assert len(store.runs("edit")) == 4
        summary = summarize(store, "edit", run_ids=[r["id"] for r in new.runs])
        finals = {r["cell"]["lr"]: store.run(r["id"])["final"]["final_val_loss"] for r in new.runs}
        everything = summarize(store, "edit")
    (row,) = summary.rows
    assert row["cells"] == {lr: f"{v:.4f}" for lr, v in finals.items()}
    assert row["best"] == min(finals.values()) and finals[row["best_lr"]] == row["best"]
    assert {r["id"] for r in old.runs}.isdisjoint(r["id"] for r in new.runs)
    assert everything.rows[0]["best"] < row["best"]  # the 20-step runs beat the 6-step ones: excluded above


def test_diverged_and_failed_cells_are_recorded_and_failures_retried_within_retries(tmp_path, corpus):
    """lr=1e3 diverges (a result, never retried); two runs fail at run time (a file stands where their checkpoint
    folder goes: the 5-step checkpoint raises) and are recorded failed with the error while the other cells
    finish; failed runs are retried while failures <= retries (1 here): unblocked, b's retry succeeds; a fails
    twice and is then skipped, even once unblocked."""
    study = load_study(write_study(tmp_path, "faults", corpus, axes="lr = [3e-3, 1e3, 2e-3, 1e-3, 5e-3]", retries=1))
    runs_root = tmp_path / "runs.runs"
    with Store(tmp_path / "runs.db") as store:
        ids = [r["id"] for r in plan(study, store).runs]
        blocks = [run_dir(runs_root, study.name, store.run(i)) / "checkpoints" for i in ids[2:4]]
        for block in blocks:
            block.parent.mkdir(parents=True)
            block.write_text("in the way")
        first = execute(study, store, workers=WORKERS)
        runs = store.runs(study.name)
        assert [r["status"] for r in runs] == ["done", "diverged", "failed", "failed", "done"]
        done, diverged, fail_a, fail_b, done2 = runs
        for run in (done, done2):
            assert run["final"]["steps_done"] == 20 and run["error"] is None and run["failures"] == 0
        assert diverged["failures"] == 0 and diverged["error"] is None
        assert diverged["final"]["diverged_at"] == diverged["final"]["steps_done"] < 20
        for run, block in zip((fail_a, fail_b), blocks, strict=True):
            assert (run["failures"], run["attempts"], run["final"]["steps_done"]) == (1, 1, 5)
            assert f"cannot create the folder {block}" in run["error"]
        assert len(first.todo) == 5

        blocks[1].unlink()  # b can checkpoint now: its retry succeeds; a fails a second time
        second = execute(study, store, workers=WORKERS)
        assert [r["id"] for r in second.todo] == [fail_a["id"], fail_b["id"]]
        now = {r["id"]: r for r in store.runs(study.name)}
        assert (now[fail_a["id"]]["status"], now[fail_a["id"]]["failures"]) == ("failed", 2)
        assert (now[fail_b["id"]]["status"], now[fail_b["id"]]["failures"]) == ("done", 1)
        assert now[fail_b["id"]]["final"]["steps_done"] == 20
        for run in (done, diverged, done2):  # finished runs were not run again
            assert now[run["id"]] == run
        steps = query(
            tmp_path / "runs.db", "SELECT step FROM metrics WHERE run_id = ? AND name = 'train_loss'", (fail_b["id"],)
        )
        assert sorted(s for (s,) in steps) == list(range(20))  # the retry replaced the failed attempt's rows

        blocks[0].unlink()  # too late: a is out of retries (2 failures > 1)
        third = execute(study, store, workers=WORKERS)
        assert third.todo == [] and [r["id"] for r in third.skipped] == [fail_a["id"]]
        assert store.run(fail_a["id"])["status"] == "failed" and store.run(fail_a["id"])["failures"] == 2


def test_a_run_failing_before_its_first_step_spends_its_retries(tmp_path, corpus):
    """A run whose data file is gone when it runs (the study validated it when read) fails before its first step.
    Each such failure must count (failures + 1) so that retries run out, and count as an attempt (docs/store.md:
    "attempts counts starts; failures counts the attempts that failed"). A local worker claims its run only
    after the first step, and records a failure only of a run still pending or running, so the second failure
    of a run already marked failed is not recorded at all: failures stays 1 and the run is retried forever."""
    doomed = tmp_path / "doomed.txt"
    shutil.copy(corpus, doomed)
    study = load_study(write_study(tmp_path, "early-failure", doomed, axes="lr = [3e-3]", retries=1))
    doomed.unlink()
    with Store(tmp_path / "runs.db") as store:
        execute(study, store, workers=WORKERS)
        (run,) = store.runs(study.name)
        assert run["status"] == "failed" and run["failures"] == 1
        assert doomed.name in run["error"] and "no such file" in run["error"]
        execute(study, store, workers=WORKERS)  # the retry (1 failure <= 1 retry)
        (run,) = store.runs(study.name)
        assert run["status"] == "failed" and run["failures"] == 2, "the second failure was not counted"
        assert run["attempts"] >= run["failures"], f"attempts {run['attempts']} < failures {run['failures']}"
        assert plan(study, store).todo == []  # out of retries


class _InterruptOnStart(Listener):
    """Ctrl-C right after the first run is handed to a worker (while the worker is still starting up)."""

    def started(self, run: dict[str, Any], total_steps: int) -> None:
        raise KeyboardInterrupt


def test_ctrl_c_while_a_worker_starts_is_not_a_failure(tmp_path, corpus):
    """execute's doc: Ctrl-C stops the workers after their current step, each run recorded interrupted. A worker
    stopped before its trainer exists (it has not installed its own SIGTERM handler yet) must record its run
    interrupted too, not failed: a Ctrl-C spends no retry, and with retries = 0 the run still runs again."""
    study = load_study(write_study(tmp_path, "ctrl-c-at-start", corpus, axes="lr = [3e-3]", retries=0))
    with Store(tmp_path / "runs.db") as store:
        with pytest.raises(KeyboardInterrupt):
            execute(study, store, workers=WORKERS, listener=_InterruptOnStart())
        (run,) = store.runs(study.name)
        assert run["status"] in ("pending", "interrupted"), (run["status"], run["error"])
        assert run["failures"] == 0
        assert [r["id"] for r in plan(study, store).todo] == [run["id"]]


# --- crash safety of `lrlab sweep` ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crash_study(tmp_path_factory, corpus) -> tuple[Path, Path]:
    """A 5-cell study of 150-step runs checkpointed every 10 steps (the last cell diverges at once; cells 3 and 4
    start together), and its store after an uninterrupted ``lrlab sweep``: what the interrupted ones must end as."""
    folder = tmp_path_factory.mktemp("crash")
    study = write_study(
        folder, "crash", corpus, axes="lr = [1e-3, 2e-3, 3e-3, 5e-3, 1e3]", steps=CRASH_STEPS, ckpt_every=10
    )
    reference = Sweep(study, folder / "reference.db")
    reference.start()
    assert reference.finish() == 0, reference.output()
    runs = live_runs(reference.store)
    assert [s for s, _ in runs.values()] == ["done", "done", "done", "done", "diverged"], reference.output()
    return study, reference.store


@on_linux
def test_workers_of_a_sigkilled_driver_stop_at_their_next_step(tmp_path, corpus):
    """worker.py: "if the sweep driver dies (killed, or its terminal closed), the worker stops after the current
    step the way SIGTERM stops a run (checkpoint, status interrupted), so no orphan keeps training". Two runs of
    20,000 steps (minutes each): SIGKILL the driver once both train; within 20 s no process of the sweep may
    remain, and both runs must be interrupted, with a checkpoint at the step each stopped at."""
    steps = 20_000
    study = write_study(tmp_path, "orphans", corpus, axes="lr = [1e-3, 2e-3]", steps=steps, ckpt_every=1000)
    store = tmp_path / "runs.db"
    sweep = Sweep(study, store)
    proc = sweep.start()

    def both_train() -> bool:  # running, and past their first step (a worker claims its run before it trains)
        if proc.poll() is not None:
            return True
        running = [i for i, (s, _) in live_runs(store).items() if s == "running"]
        stepped = query(store, "SELECT COUNT(DISTINCT run_id) FROM metrics") if running else [(0,)]
        return len(running) == WORKERS and stepped[0][0] == WORKERS

    try:
        wait_until(both_train, 120, "both runs to train")
        assert proc.poll() is None, sweep.output()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        try:
            wait_until(lambda: not sweep.processes(), 20, "the killed driver's workers to stop")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; still running:\n{describe(sweep.processes())}") from None
    finally:
        for pid in sweep.processes():  # orphans of this test's sweep, if the workers did not stop
            os.kill(pid, signal.SIGKILL)
    with Store(store) as db:
        runs = db.runs("orphans")
    assert len(runs) == 2
    for run in runs:
        assert run["status"] == "interrupted", (run["id"], run["status"])
        done = run["final"]["steps_done"]
        ckpts = list_checkpoints(run_dir(tmp_path / "runs.runs", "orphans", run) / "checkpoints")
        assert 0 < done < steps and ckpts[-1].name == f"ckpt-{done:08d}.pt"


@pytest.mark.slow
@on_linux
def test_a_sigkilled_driver_leaves_no_orphans_and_a_rerun_ends_as_if_uninterrupted(tmp_path, crash_study):
    """SIGKILL the driver three times (once anywhere from start-up on, twice a random moment after a run started
    training), re-running after each kill: its workers notice their parent is gone and stop within seconds
    (checkpointed, recorded interrupted); a last run finishes the study with the uninterrupted sweep's table,
    final losses and metric rows, bit for bit."""
    study, reference = crash_study
    store = tmp_path / "runs.db"
    sweep = Sweep(study, store)
    rng = random.Random(20240611)
    for kill in range(3):
        proc = sweep.start()
        if kill == 0:
            time.sleep(rng.uniform(0.5, 3.0))
        else:
            wait_until(functools.partial(training, proc, store), 120, "a run to start training")
            time.sleep(rng.uniform(0.0, 1.5))
        assert proc.poll() is None, f"the sweep ended before kill {kill + 1}; make its runs longer:\n{sweep.output()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        try:
            wait_until(
                lambda: not sweep.processes(), 20, f"the processes of the killed sweep to exit (kill {kill + 1})"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; still running:\n{describe(sweep.processes())}") from None
        statuses = {s for s, _ in live_runs(store).values()}
        assert statuses <= {"pending", "interrupted", "done", "diverged"}, statuses  # orphans stopped cleanly
    sweep.start()
    assert sweep.finish() == 0, sweep.output()
    wait_until(lambda: not sweep.processes(), 20, "the finished sweep's processes to exit")
    assert_same_results(store, reference, "crash", 5)
    with Store(store) as db:
        attempts = [r["attempts"] for r in db.runs("crash")]
    # a kill while a run trains interrupts it (its orphaned worker stops at the next step), so a re-run resumes it
    assert max(attempts) >= 2, f"no run was interrupted and resumed (attempts {attempts}): did the orphans go on?"
    assert_same_curves(store, reference)


@pytest.mark.slow
@on_linux
def test_a_sigkilled_worker_fails_its_run_only_and_a_rerun_resumes_it(tmp_path, crash_study):
    """SIGKILL one worker after its run wrote a checkpoint: the driver records that run failed (signal 9) and
    finishes the others; a re-run retries it from its checkpoint and the study ends as if uninterrupted."""
    study, reference = crash_study
    store = tmp_path / "runs.db"
    sweep = Sweep(study, store)
    rng = random.Random(7)
    proc = sweep.start()
    victim: dict[str, int] = {}

    def checkpointed_worker() -> bool:
        assert proc.poll() is None, f"the sweep ended before a worker could be killed:\n{sweep.output()}"
        for run_id, (status, pid) in live_runs(store).items():
            folder = ckpt_dir(store, store.with_name("runs.runs"), "crash", run_id)
            if status == "running" and list_checkpoints(folder) and pid in sweep.processes():
                victim.update(run=run_id, pid=pid)
                return True
        return False

    wait_until(checkpointed_worker, 120, "a running worker with a checkpoint")
    time.sleep(rng.uniform(0.05, 0.3))
    assert victim["pid"] in sweep.processes() and victim["pid"] not in (proc.pid, os.getpid())
    os.kill(victim["pid"], signal.SIGKILL)
    # the driver goes on with the other cells, then exits 1: a run of the sweep failed
    assert sweep.finish() == 1, sweep.output()
    assert "1 failed" in sweep.output()
    with Store(store) as db:
        runs = {r["id"]: r for r in db.runs("crash")}
    killed = runs.pop(victim["run"])
    assert killed["status"] == "failed" and killed["failures"] == 1 and "signal 9" in killed["error"]
    want = {r["run"]: r["status"] for r in final_table(reference, "crash")}
    assert {i: r["status"] for i, r in runs.items()} == {i: s for i, s in want.items() if i != victim["run"]}
    assert list_checkpoints(ckpt_dir(store, store.with_name("runs.runs"), "crash", victim["run"]))

    sweep.start()
    assert sweep.finish() == 0, sweep.output()
    assert_same_results(store, reference, "crash", 5)
    with Store(store) as db:
        assert db.run(victim["run"])["attempts"] == 2
    assert_same_curves(store, reference)


@pytest.mark.slow
@on_linux
def test_ctrl_c_records_finished_runs_interrupts_running_ones_and_a_rerun_completes(tmp_path, crash_study):
    """SIGINT to the driver once a run is done and both workers train (each has checkpointed): exit code 130,
    the finished runs kept, the running ones interrupted with a checkpoint at their last step; a re-run ends as
    if uninterrupted."""
    study, reference = crash_study
    store = tmp_path / "runs.db"
    sweep = Sweep(study, store)
    proc = sweep.start()

    before: dict[int, tuple[str, int | None]] = {}
    runs_root = tmp_path / "runs.runs"

    def one_done_two_training() -> bool:
        assert proc.poll() is None, f"the sweep ended before Ctrl-C:\n{sweep.output()}"
        before.clear()
        before.update(live_runs(store))
        running = [i for i, (s, _) in before.items() if s == "running"]
        checkpointed = all(list_checkpoints(ckpt_dir(store, runs_root, "crash", i)) for i in running)
        return [s for s, _ in before.values()].count("done") >= 1 and len(running) == WORKERS and checkpointed

    wait_until(one_done_two_training, 120, "one run done and two training")
    os.kill(proc.pid, signal.SIGINT)
    assert sweep.finish(120) == 130, sweep.output()
    assert "stopped" in sweep.output()
    wait_until(lambda: not sweep.processes(), 20, "the stopped sweep's processes to exit")
    want = {r["run"]: r for r in final_table(reference, "crash")}
    with Store(store) as db:
        runs = {r["id"]: r for r in db.runs("crash")}
    interrupted = [r for r in runs.values() if r["status"] == "interrupted"]
    assert {r["status"] for r in runs.values()} <= {"pending", "interrupted", "done", "diverged"}
    for run_id, (status, _pid) in before.items():
        if status in ("done", "diverged"):  # finished before Ctrl-C: recorded as in the uninterrupted sweep
            assert runs[run_id]["status"] == want[run_id]["status"]
            assert runs[run_id]["final"]["final_val_loss"] == want[run_id]["final_val_loss"]
        if status == "running":  # stopped after its current step (or it was finishing anyway)
            assert runs[run_id]["status"] in ("interrupted", "done")
    assert interrupted, "Ctrl-C interrupted no run"
    for run in interrupted:
        steps = run["final"]["steps_done"]
        assert 0 < steps < CRASH_STEPS and run["failures"] == 0
        ckpts = list_checkpoints(run_dir(runs_root, "crash", run) / "checkpoints")
        assert ckpts[-1].name == f"ckpt-{steps:08d}.pt"  # the checkpoint of the step it stopped at

    sweep.start()
    assert sweep.finish() == 0, sweep.output()
    assert_same_results(store, reference, "crash", 5)
    assert_same_curves(store, reference)


# --- Ray against the local executor -----------------------------------------------------------------------------


def test_ray_executor_gives_the_local_executors_results(tmp_path, corpus, extra):
    """The same study on Ray (a local instance; skipped without Ray, failed under LRLAB_REQUIRE_EXTRAS=1) and on
    local workers, with the same thread count: the same configs, statuses, final losses and metric rows."""
    extra("ray")
    study = load_study(write_study(tmp_path, "ray-vs-local", corpus, axes="lr = [1e-3, 3e-3, 1e3]"))
    paths = {name: tmp_path / f"{name}.db" for name in ("local", "ray")}
    runs = {}
    for name, path in paths.items():
        with Store(path) as store:
            done = execute(study, store, executor=name, workers=WORKERS)
            assert len(done.todo) == 3
            runs[name] = store.runs(study.name)
    local, ray = runs["local"], runs["ray"]
    assert [r["config"] for r in ray] == [r["config"] for r in local] == [c.config.to_dict() for c in study.cells]
    assert [r["cell"] for r in ray] == [r["cell"] for r in local]
    assert [r["status"] for r in ray] == [r["status"] for r in local] == ["done", "done", "diverged"]
    assert [r["final"] for r in ray] == [r["final"] for r in local]  # final losses exactly (same thread count)
    assert [r["meta"]["threads"] for r in ray] == [r["meta"]["threads"] for r in local]
    assert curves(paths["ray"]) == curves(paths["local"])
    assert duplicates(paths["ray"]) == []
