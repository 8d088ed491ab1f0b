"""The run store (lrlab.store): schema and pragmas, the v1 -> v2 migration (also from a committed v1 file), runs,
metrics, queries, several writer processes on one file, the trainer sink and the CSV / Parquet export.

Expected values are computed here independently (hashes with hashlib, rows through a second plain ``sqlite3``
connection, exports read back with ``csv`` and ``pyarrow``), not through the store's own read methods.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import socket
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lrlab.errors import InputError
from lrlab.store import SCHEMA_VERSION, STATUSES, Store, StoreSink, canonical, config_hash, export, schema

FIXTURE_V1 = Path(__file__).parent / "data" / "runs-v1.db"


def _sql(path: Path) -> sqlite3.Connection:
    """A second, plain connection to a store file (what another process would see)."""
    return sqlite3.connect(path, isolation_level=None)


def _count(path: Path, table: str, where: str = "", args: tuple = ()) -> int:
    db = _sql(path)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table} {where}", args).fetchone()[0])
    finally:
        db.close()


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "runs.db") as s:
        yield s


# --- the version-1 layout, built by hand ------------------------------------------------------------------------

V1_CONFIGS = ({"lr": 0.001, "steps": 10}, {"lr": 1.0, "steps": 10})
V1_STUDY = (1, "old-study", '{"axes":{"lr":[0.001,1.0]}}', 1700000000.0)
# (id, study_id, config, config_hash, status, attempts, started, finished, host, pid, error, final)
V1_RUNS = (
    (1, 1, canonical(V1_CONFIGS[0]), config_hash(V1_CONFIGS[0]), "done", 1, 1700000001.0, 1700000002.5, "host-a", 111,
     None, '{"final_val_loss":2.5,"steps_done":10}'),
    (2, 1, canonical(V1_CONFIGS[1]), config_hash(V1_CONFIGS[1]), "failed", 2, 1700000003.0, 1700000004.0, "host-b",
     222, "RuntimeError: boom", "{}"),
)  # fmt: skip
# (run_id, step, name, value): run 1 has 10 steps of train_loss and two val_loss rows, run 2 a NULL (NaN) value
V1_METRICS = tuple(
    [(1, s, "train_loss", 5.0 - 0.25 * s) for s in range(10)]
    + [(1, 4, "val_loss", 4.5), (1, 9, "val_loss", 3.25)]
    + [(2, 0, "train_loss", 5.5), (2, 1, "train_loss", 9.0), (2, 2, "train_loss", None)]
)
V1_ARTIFACTS = ((1, 1, "checkpoint", "/runs/old-study/1/checkpoints/ckpt-00000010.pt"),)
V1_RUN_COLUMNS = "id, study_id, config, config_hash, status, attempts, started, finished, host, pid, error, final"


def build_v1(path: Path) -> None:
    """A version-1 store file: the first schema (MIGRATIONS[0]) with a study, a done and a failed run, metrics and
    an artifact, in the default rollback-journal mode (one self-contained file)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.executescript(schema.MIGRATIONS[0])
        db.execute("PRAGMA user_version=1")
        db.execute("BEGIN")
        db.execute("INSERT INTO studies (id, name, spec, created) VALUES (?, ?, ?, ?)", V1_STUDY)
        db.executemany(f"INSERT INTO runs ({V1_RUN_COLUMNS}) VALUES ({','.join('?' * 12)})", V1_RUNS)
        db.executemany("INSERT INTO metrics (run_id, step, name, value) VALUES (?, ?, ?, ?)", V1_METRICS)
        db.executemany("INSERT INTO artifacts (id, run_id, kind, path) VALUES (?, ?, ?, ?)", V1_ARTIFACTS)
        db.execute("COMMIT")
    finally:
        db.close()


def _rows(db: sqlite3.Connection, sql: str) -> list[tuple]:
    return [tuple(r) for r in db.execute(sql).fetchall()]


def check_migrated(path: Path) -> None:
    """``path`` holds the v1 content of :func:`build_v1`: open it with Store, check it is v2 and lost nothing."""
    with Store(path) as s:
        assert s.version == SCHEMA_VERSION == 2
        db = s.db
        assert _rows(db, "SELECT id, name, spec, created FROM studies") == [V1_STUDY]
        assert _rows(db, f"SELECT {V1_RUN_COLUMNS} FROM runs ORDER BY id") == list(V1_RUNS)
        # the rebuild of `runs` (DROP TABLE) must not cascade into metrics and artifacts
        assert _rows(db, "SELECT run_id, step, name, value FROM metrics ORDER BY run_id, name, step") == sorted(
            V1_METRICS, key=lambda r: (r[0], r[2], r[1])
        )
        assert _rows(db, "SELECT id, run_id, kind, path FROM artifacts") == list(V1_ARTIFACTS)
        assert _rows(db, "SELECT id, failures, cell, meta FROM runs ORDER BY id") == [
            (1, 0, "{}", "{}"),
            (2, 1, "{}", "{}"),
        ]
        # the new table is what metrics and artifacts point at, and the cascade still works through it
        for table in ("metrics", "artifacts"):
            fks = db.execute(f"PRAGMA foreign_key_list({table})").fetchall()
            assert [(fk[2], fk[3], fk[4], fk[6]) for fk in fks] == [("runs", "run_id", "id", "CASCADE")]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert s.integrity() == "ok"
        assert {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")} >= {"runs_by_study"}
        # the read API decodes the old rows, and the hashes still find them
        assert s.run(1)["config"] == V1_CONFIGS[0]
        assert s.run(1)["final"] == {"final_val_loss": 2.5, "steps_done": 10}
        assert s.add_run(1, {"steps": 10, "lr": 0.001}) == 1
        steps, values = s.curve(2, "train_loss")
        assert steps.tolist() == [0, 1, 2]
        assert values[:2].tolist() == [5.5, 9.0] and math.isnan(values[2])
        # version 2 accepts the new status
        s.finish_run(1, "interrupted")
        db.execute("UPDATE runs SET status = 'interrupted' WHERE id = 2")
        assert _rows(db, "SELECT status FROM runs ORDER BY id") == [("interrupted",), ("interrupted",)]
    with Store(path) as again:  # a second open does not migrate again
        assert again.version == 2
        assert _count(path, "metrics") == len(V1_METRICS)


# --- schema --------------------------------------------------------------------------------------------------


def test_new_file_is_current_version_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with Store(path) as s:
        assert s.version == SCHEMA_VERSION
        assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert s.db.execute("PRAGMA busy_timeout").fetchone()[0] == 60_000
    other = _sql(path)
    try:
        assert other.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # WAL is a property of the file
        tables = {r[0] for r in other.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"studies", "runs", "metrics", "artifacts"}
        cols = [r[1] for r in other.execute("PRAGMA table_info(runs)")]
        assert {"cell", "failures", "meta"} <= set(cols)
    finally:
        other.close()
    assert STATUSES == ("pending", "running", "done", "diverged", "failed", "interrupted")


def test_deleting_a_study_cascades_to_its_runs_metrics_and_artifacts(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(path) as s:
        kept_study, gone_study = s.study("kept"), s.study("gone")
        kept = s.add_run(kept_study, {"lr": 1})
        gone = [s.add_run(gone_study, {"lr": i}) for i in range(2)]
        for run in (kept, *gone):
            s.log_metrics(run, [{"step": t, "train_loss": 1.0, "lr": 0.1} for t in range(3)])
            s.add_artifact(run, "checkpoint", f"/ckpt/{run}.pt")
        s.db.execute("DELETE FROM studies WHERE id = ?", (gone_study,))
    marks = ",".join("?" * len(gone))
    assert _count(path, "runs", f"WHERE id IN ({marks})", tuple(gone)) == 0
    assert _count(path, "metrics", f"WHERE run_id IN ({marks})", tuple(gone)) == 0
    assert _count(path, "artifacts", f"WHERE run_id IN ({marks})", tuple(gone)) == 0
    assert _count(path, "metrics", "WHERE run_id = ?", (kept,)) == 6
    assert _count(path, "artifacts", "WHERE run_id = ?", (kept,)) == 1
    assert _count(path, "studies") == 1


def test_a_metric_of_an_unknown_run_is_refused_by_the_foreign_key(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.log_metrics(999, [{"step": 0, "loss": 1.0}])
    assert store.db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 0


# --- migration -----------------------------------------------------------------------------------------------


def test_v1_file_built_here_migrates_without_losing_rows(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    build_v1(path)
    raw = _sql(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
    with pytest.raises(sqlite3.IntegrityError):  # the v1 layout really refuses the new status
        raw.execute("UPDATE runs SET status = 'interrupted' WHERE id = 1")
    raw.close()
    check_migrated(path)


def test_committed_v1_fixture_migrates_a_copy(tmp_path: Path) -> None:
    assert FIXTURE_V1.is_file(), f"missing fixture {FIXTURE_V1}"
    before = hashlib.sha256(FIXTURE_V1.read_bytes()).hexdigest()
    copy = tmp_path / "runs-v1.db"
    shutil.copyfile(FIXTURE_V1, copy)
    fixture = _sql(copy)
    assert fixture.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "cell" not in [r[1] for r in fixture.execute("PRAGMA table_info(runs)")]
    fixture.close()
    # the committed file holds what build_v1 writes (so the two migration tests check the same content)
    rebuilt = tmp_path / "rebuilt.db"
    build_v1(rebuilt)
    dumps = []
    for p in (copy, rebuilt):
        db = _sql(p)
        dumps.append(list(db.iterdump()))
        db.close()
    assert dumps[0] == dumps[1]
    check_migrated(copy)
    assert hashlib.sha256(FIXTURE_V1.read_bytes()).hexdigest() == before  # the fixture itself is untouched


def _future_file(path: Path) -> bytes:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE something (a)")
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    return path.read_bytes()


def test_future_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    _future_file(path)
    with pytest.raises(InputError, match=r"version 99.*reads up to 2") as info:
        Store(path)
    assert "\n" not in str(info.value)
    assert info.value.param == "store"


def test_a_refused_future_version_file_is_left_unchanged(tmp_path: Path) -> None:
    """Refusing a file must not write to it: today Store switches it to WAL (header bytes 18-19) first."""
    path = tmp_path / "future.db"
    before = _future_file(path)
    with pytest.raises(InputError):
        Store(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "content",
    [b"name,value\nlr,0.001\n" * 50, bytes(np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8))],
    ids=["text", "random-bytes"],
)
def test_a_file_that_is_not_sqlite_is_an_input_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not an lrlab run store") as info:
        Store(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert path.read_bytes() == content


def test_a_folder_is_an_input_error_and_a_missing_folder_is_created(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a file"):
        Store(tmp_path)
    with Store(tmp_path / "new" / "folder" / "runs.db") as s:
        assert s.version == SCHEMA_VERSION
    with open(tmp_path / "a-file", "w"), pytest.raises(InputError, match="cannot create the folder"):
        Store(tmp_path / "a-file" / "runs.db")


@pytest.mark.parametrize("version", [1, 2])
def test_a_foreign_sqlite_file_claiming_a_store_version_is_refused_untouched(tmp_path: Path, version: int) -> None:
    """Another app's SQLite file whose user_version happens to be 1 or 2 lacks the store's tables: refused before
    any PRAGMA writes it (it stays out of WAL mode, byte for byte as it was)."""
    path = tmp_path / "app.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users (id INTEGER)")
    db.execute(f"PRAGMA user_version={version}")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(InputError, match="not an lrlab run store") as info:
        Store(path)
    assert "users" in str(info.value) and "\n" not in str(info.value)
    assert path.read_bytes() == before and not path.with_name("app.db-wal").exists()


def test_open_waits_for_another_writer_on_a_fresh_file_instead_of_failing(tmp_path: Path) -> None:
    """Two processes creating one store at once: the second must wait on the busy timeout, not fail. Modelled
    deterministically: another connection holds a write transaction on a new (rollback-journal) file for 0.5 s."""
    path = tmp_path / "fresh.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE unrelated (a)")
    other.execute("DROP TABLE unrelated")  # the file exists, empty, at version 0
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    try:
        with Store(path, timeout=10) as s:
            assert s.version == SCHEMA_VERSION
    finally:
        release.join()
        other.close()
    assert time.monotonic() - started < 10


# --- runs ----------------------------------------------------------------------------------------------------


def test_add_run_is_idempotent_by_canonical_config_hash(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    config = {"lr": 1e-3, "model": {"preset": "tiny", "n_layer": 2}, "probes": ["rrc"]}
    reordered = {"probes": ["rrc"], "model": {"n_layer": 2, "preset": "tiny"}, "lr": 1e-3}
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    assert canonical(reordered) == text
    assert config_hash(reordered) == hashlib.sha256(text.encode()).hexdigest()[:16]
    with Store(path) as s:
        a, b = s.study("a"), s.study("b")
        first = s.add_run(a, config, cell={"lr": 1e-3})
        assert s.add_run(a, config) == first
        assert s.add_run(a, reordered) == first
        other = s.add_run(a, {**config, "lr": 2e-3})
        in_b = s.add_run(b, reordered)
        assert len({first, other, in_b}) == 3
        assert s.run(first)["cell"] == {"lr": 1e-3}  # the second add did not replace the cell
        assert s.run(first)["status"] == "pending" and s.run(first)["attempts"] == 0
        assert s.study("a") == a  # a study is found by name too
    db = _sql(path)
    assert _rows(db, "SELECT study_id, config_hash, config FROM runs ORDER BY id") == [
        (a, config_hash(config), text),
        (a, config_hash({**config, "lr": 2e-3}), canonical({**config, "lr": 2e-3})),
        (b, config_hash(config), text),
    ]
    db.close()


def test_study_spec_is_replaced_only_when_given(store: Store) -> None:
    sid = store.study("s", {"axes": {"lr": [1]}})
    assert store.study("s") == sid
    assert json.loads(store.db.execute("SELECT spec FROM studies").fetchone()[0]) == {"axes": {"lr": [1]}}
    store.study("s", {"axes": {"lr": [2]}})
    assert json.loads(store.db.execute("SELECT spec FROM studies").fetchone()[0]) == {"axes": {"lr": [2]}}
    for bad in ("", None, 3):
        with pytest.raises(InputError, match="non-empty name"):
            store.study(bad)


def test_claim_counts_attempts_and_records_host_pid_meta(store: Store) -> None:
    run = store.add_run(store.study("s"), {"x": 1})
    store.claim(run, {"torch": "2.x"})
    r = store.run(run)
    assert (r["status"], r["attempts"], r["host"], r["pid"]) == ("running", 1, socket.gethostname(), os.getpid())
    assert r["meta"] == {"torch": "2.x"} and r["started"] is not None and r["finished"] is None
    store.finish_run(run, "interrupted", error="stopped")
    store.claim(run, pid=4242)
    r = store.run(run)
    assert (r["status"], r["attempts"], r["pid"], r["error"], r["finished"]) == ("running", 2, 4242, None, None)
    assert r["failures"] == 0


def test_truncate_drops_steps_from_k_on_only(store: Store) -> None:
    sid = store.study("s")
    run, other = store.add_run(sid, {"x": 1}), store.add_run(sid, {"x": 2})
    for r in (run, other):
        store.log_metrics(r, [{"step": t, "train_loss": float(t), "val_loss": 10.0 + t} for t in range(10)])
    store.truncate(run, 6)
    for name, offset in (("train_loss", 0.0), ("val_loss", 10.0)):
        steps, values = store.curve(run, name)
        assert steps.tolist() == [0, 1, 2, 3, 4, 5]
        np.testing.assert_array_equal(values, np.arange(6) + offset)
    assert store.curve(other, "train_loss")[0].tolist() == list(range(10))
    store.truncate(run, 0)
    assert store.metric_names(run) == []


def test_a_step_logged_twice_keeps_one_row_with_the_last_value(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(path) as s:
        run = s.add_run(s.study("s"), {"x": 1})
        s.log_metrics(run, [{"step": 3, "train_loss": 1.0}, {"step": 4, "train_loss": 1.5}])
        s.log_metrics(run, [{"step": 3, "train_loss": 2.0}])
        s.log_metrics(run, [{"step": 5, "train_loss": 7.0}, {"step": 5, "train_loss": 8.0}])  # within one batch
    assert _rows(_sql(path), "SELECT step, value FROM metrics ORDER BY step") == [(3, 2.0), (4, 1.5), (5, 8.0)]


def test_non_finite_metrics_are_null_and_read_back_as_nan(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(path) as s:
        run = s.add_run(s.study("s"), {"x": 1})
        rows = [
            {"step": 0, "loss": 1.0},
            {"step": 1, "loss": math.nan},
            {"step": 2, "loss": math.inf},
            {"step": 3, "loss": -math.inf},
            {"step": 4, "loss": np.float32(0.5)},
        ]
        assert s.log_metrics(run, rows) == 5
        steps, values = s.curve(run, "loss")
    assert steps.tolist() == [0, 1, 2, 3, 4]
    assert values[0] == 1.0 and values[4] == 0.5 and np.isnan(values[1:4]).all()
    assert _rows(_sql(path), "SELECT step FROM metrics WHERE value IS NULL ORDER BY step") == [(1,), (2,), (3,)]


def test_only_numbers_are_stored_as_metrics(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(path) as s:
        run = s.add_run(s.study("s"), {"x": 1})
        row = {"step": 0, "loss": 2.0, "tokens": 128, "n": np.int64(3), "flag": True, "off": np.bool_(False)}
        row |= {"phase": "warmup", "none": None, "list": [1, 2]}
        assert s.log_metrics(run, [row]) == 3
        assert s.metric_names(run) == ["loss", "n", "tokens"]
    assert _rows(_sql(path), "SELECT name, value FROM metrics ORDER BY name") == [
        ("loss", 2.0),
        ("n", 3.0),
        ("tokens", 128.0),
    ]
    with Store(path) as s:
        assert s.log_metrics(run, [{"step": 1, "flag": True}]) == 0  # nothing to write: no transaction


def test_finish_run_counts_failures_and_records_outcome(store: Store) -> None:
    run = store.add_run(store.study("s"), {"x": 1})
    for expected in (1, 2):
        store.claim(run)
        store.finish_run(run, "failed", {"steps_done": 3}, "RuntimeError: boom")
        r = store.run(run)
        assert (r["status"], r["failures"], r["attempts"], r["error"]) == (
            "failed",
            expected,
            expected,
            "RuntimeError: boom",
        )
        assert r["final"] == {"steps_done": 3} and r["finished"] >= r["started"]
    store.claim(run)
    store.finish_run(run, "done", {"final_val_loss": 2.0})
    r = store.run(run)
    assert (r["status"], r["failures"], r["error"], r["final"]) == ("done", 2, None, {"final_val_loss": 2.0})
    store.finish_run(run, "diverged")
    assert store.run(run)["failures"] == 2
    with pytest.raises(ValueError, match="unknown run status"):
        store.finish_run(run, "exploded")
    assert store.run(run)["status"] == "diverged"


def test_unknown_study_and_run_are_input_errors(store: Store) -> None:
    store.study("alpha")
    store.study("beta")
    with pytest.raises(InputError, match=r"no study 'gamma' \(studies: alpha, beta\)"):
        store.study_id("gamma")
    with pytest.raises(InputError, match="no study"):
        store.runs("gamma")
    with pytest.raises(InputError, match="has no run 7"):
        store.run(7)


# --- queries -------------------------------------------------------------------------------------------------


def test_curve_is_sorted_by_step_as_numpy_arrays(store: Store) -> None:
    run = store.add_run(store.study("s"), {"x": 1})
    rng = np.random.default_rng(1)
    steps = rng.permutation(200)
    values = rng.normal(size=200)
    for chunk in np.array_split(np.arange(200), 7):  # logged out of order, in several transactions
        store.log_metrics(run, [{"step": int(steps[i]), "loss": float(values[i])} for i in chunk])
    got_steps, got_values = store.curve(run, "loss")
    assert got_steps.dtype == np.int64 and got_values.dtype == np.float64
    order = np.argsort(steps)
    np.testing.assert_array_equal(got_steps, steps[order])
    np.testing.assert_array_equal(got_values, values[order])
    empty_steps, empty_values = store.curve(run, "missing")
    assert empty_steps.shape == (0,) and empty_values.shape == (0,)


def _finished(store: Store, sid: int, cell: dict, status: str, final: dict) -> int:
    run = store.add_run(sid, {"cell": cell}, cell=cell)
    if status != "pending":
        store.claim(run)
        if status != "running":
            store.finish_run(run, status, final)
    return run


def test_table_has_one_row_per_run_with_cell_and_final(store: Store) -> None:
    sid = store.study("s")
    a = _finished(store, sid, {"lr": 1e-3, "batch_size": 8}, "done", {"final_val_loss": 2.5, "steps_done": 10})
    b = _finished(store, sid, {"lr": 1e-2, "batch_size": 8}, "diverged", {"diverged_at": 4})
    c = _finished(store, sid, {"lr": 1e-1, "batch_size": 16}, "pending", {})
    assert store.table("s") == [
        {
            "run": a,
            "status": "done",
            "attempts": 1,
            "lr": 1e-3,
            "batch_size": 8,
            "final_val_loss": 2.5,
            "steps_done": 10,
        },
        {"run": b, "status": "diverged", "attempts": 1, "lr": 1e-2, "batch_size": 8, "diverged_at": 4},
        {"run": c, "status": "pending", "attempts": 0, "lr": 1e-1, "batch_size": 16},
    ]
    assert store.table(sid) == store.table("s")
    assert [r["id"] for r in store.runs("s", "diverged")] == [b]
    assert store.studies() == [
        {"id": sid, "name": "s", "created": store.studies()[0]["created"], "runs": 3, "done": 1, "diverged": 1,
         "pending": 1}
    ]  # fmt: skip


def test_best_per_group_counts_a_diverged_run_as_infinity(store: Store) -> None:
    sid = store.study("s")
    loss = "final_val_loss"
    # group bs=8: the lowest finished value wins; a diverged run's (even lower) value and unfinished runs do not count
    _finished(store, sid, {"bs": 8, "lr": 1}, "done", {loss: 3.0})
    best8 = _finished(store, sid, {"bs": 8, "lr": 2}, "done", {loss: 2.5})
    _finished(store, sid, {"bs": 8, "lr": 3}, "diverged", {loss: 0.1})
    _finished(store, sid, {"bs": 8, "lr": 4}, "failed", {loss: 0.2})
    _finished(store, sid, {"bs": 8, "lr": 5}, "interrupted", {loss: 0.3})
    # group bs=16: the whole group diverged, so a diverged run is its best
    div16 = _finished(store, sid, {"bs": 16, "lr": 1}, "diverged", {loss: 9.0})
    _finished(store, sid, {"bs": 16, "lr": 2}, "diverged", {})
    # group bs=32: nothing finished, so no entry
    _finished(store, sid, {"bs": 32, "lr": 1}, "failed", {loss: 1.0})
    _finished(store, sid, {"bs": 32, "lr": 2}, "pending", {})
    best = store.best("s", ["bs"])
    assert set(best) == {(8,), (16,)}
    assert best[(8,)]["run"] == best8 and best[(8,)][loss] == 2.5
    assert best[(16,)]["run"] == div16 and best[(16,)]["status"] == "diverged"
    # another metric, and groups of two keys (every combination its own group)
    assert set(store.best("s", ["bs", "lr"])) == {(8, 1), (8, 2), (8, 3), (16, 1), (16, 2)}
    assert store.best("s", [])[()]["run"] == best8


def test_best_prefers_a_finished_run_over_a_diverged_one_in_a_mixed_group(store: Store) -> None:
    """'a diverged run ... is best only if its whole group diverged': also when the done run of the group has no
    finite value of the metric, and the diverged run was added first."""
    sid = store.study("s")
    _finished(store, sid, {"bs": 8, "lr": 1}, "diverged", {"final_val_loss": 1.0})
    done = _finished(store, sid, {"bs": 8, "lr": 2}, "done", {"final_val_loss": math.nan})
    best = store.best("s", ["bs"])
    assert best[(8,)]["status"] == "done" and best[(8,)]["run"] == done


def test_latest_gives_each_runs_last_step_and_value(store: Store) -> None:
    sid = store.study("s")
    a, b, silent = (store.add_run(sid, {"x": i}) for i in range(3))
    store.log_metrics(a, [{"step": t, "train_loss": 10.0 - t} for t in range(8)])
    store.log_metrics(a, [{"step": 8, "val_loss": 1.0}])  # a later step without train_loss
    store.log_metrics(b, [{"step": t, "train_loss": math.nan if t == 2 else float(t)} for t in range(3)])
    assert store.latest([a, b, silent]) == {a: (7, 3.0), b: (2, None)}
    assert store.latest([a], "val_loss") == {a: (8, 1.0)}
    assert store.latest([]) == {}


# --- several writer processes on one file --------------------------------------------------------------------

_WRITER = """
import time
from lrlab.store import Store
errors = []
try:
    store = Store(PATH)
    for start in range(0, STEPS, BATCH):
        steps = range(start, start + BATCH)
        rows = [{"step": t, **{f"m{k}": RUN * 1e6 + t * 10 + k for k in range(METRICS)}} for t in steps]
        store.log_metrics(RUN, rows)
    store.close()
except BaseException as exc:
    errors.append(f"{type(exc).__name__}: {exc}")
with open(RESULT, "w") as f:
    f.write("\\n".join(errors) or "ok")
"""


def test_four_writer_processes_and_a_reader_share_one_file(tmp_path: Path) -> None:
    steps, metrics, batch = 2000, 5, 100
    path = tmp_path / "runs.db"
    with Store(path) as s:
        sid = s.study("concurrent")
        runs = [s.add_run(sid, {"worker": i}) for i in range(4)]
    ctx = multiprocessing.get_context("spawn")
    procs, results = [], []
    for run in runs:
        result = tmp_path / f"writer-{run}.txt"
        scope = {"PATH": str(path), "RUN": run, "STEPS": steps, "BATCH": batch, "METRICS": metrics}
        scope |= {"RESULT": str(result)}
        procs.append(ctx.Process(target=exec, args=(_WRITER, scope)))
        results.append(result)
    for p in procs:
        p.start()
    polls, seen, reader_errors = 0, dict.fromkeys(runs, -1), []
    with Store(path) as reader:
        deadline = time.monotonic() + 240
        while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
            try:
                now = reader.latest(runs, "m0")
            except Exception as exc:
                reader_errors.append(f"{type(exc).__name__}: {exc}")
                break
            for run, (step, value) in now.items():
                assert step >= seen[run], "a run's latest step went backwards"
                assert value == run * 1e6 + step * 10  # the value belongs to that step (never a torn batch)
                assert (step + 1) % batch == 0  # whole batches only: each is one transaction
                seen[run] = step
            polls += 1
            time.sleep(0.01)
        for p in procs:
            p.join(60)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    assert reader_errors == []
    assert [r.read_text() for r in results] == ["ok"] * 4
    assert polls > 0
    db = _sql(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 4 * steps * metrics
        per_run = db.execute(
            "SELECT run_id, COUNT(*), COUNT(DISTINCT step), MIN(step), MAX(step), SUM(value) FROM metrics "
            "GROUP BY run_id ORDER BY run_id"
        ).fetchall()
        t = np.arange(steps, dtype=np.float64)
        for run, (run_id, n, distinct, lo, hi, total) in zip(runs, per_run, strict=True):
            expected = sum(float(np.sum(run * 1e6 + t * 10 + k)) for k in range(metrics))
            assert (run_id, n, distinct, lo, hi) == (run, steps * metrics, steps, 0, steps - 1)
            assert total == pytest.approx(expected, rel=1e-12)
        dupes = db.execute(
            "SELECT COUNT(*) FROM (SELECT run_id, step, name FROM metrics GROUP BY 1, 2, 3 HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        assert dupes == 0
    finally:
        db.close()
    with Store(path) as s:
        assert s.latest(runs, "m4") == {r: (steps - 1, r * 1e6 + (steps - 1) * 10 + 4) for r in runs}


# --- StoreSink -----------------------------------------------------------------------------------------------


def test_sink_writes_in_batches_and_everything_on_close(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = Store(path)
    run = store.add_run(store.study("s"), {"x": 1})
    sink = StoreSink(store, run, flush_rows=10, flush_seconds=1e9)
    sink.open({"config": {"x": 1}, "meta": {"device": "cpu"}}, 0)
    counts = []
    for t in range(25):
        sink.log({"step": t, "train_loss": 5.0 - 0.1 * t})
        counts.append(_count(path, "metrics"))
    assert counts == [0] * 9 + [10] * 10 + [20] * 6  # written every 10 rows, never one row at a time
    assert _rows(_sql(path), "SELECT MIN(step), MAX(step) FROM metrics") == [(0, 19)]
    sink.close({"status": "done", "steps_done": 25, "final_train_loss": 2.6, "final_val_loss": 2.7})
    assert _count(path, "metrics") == 25
    steps, values = store.curve(run, "train_loss")
    assert steps.tolist() == list(range(25))
    np.testing.assert_allclose(values, 5.0 - 0.1 * np.arange(25), rtol=0, atol=1e-12)
    r = store.run(run)
    assert r["status"] == "done" and r["meta"] == {"device": "cpu"}  # the trainer's meta, not its config
    store.close()


def test_sink_flushes_after_flush_seconds(tmp_path: Path, monkeypatch) -> None:
    import lrlab.store.sink as sink_module

    clock = [1000.0]
    monkeypatch.setattr(sink_module.time, "monotonic", lambda: clock[0])
    path = tmp_path / "runs.db"
    with Store(path) as store:
        run = store.add_run(store.study("s"), {"x": 1})
        sink = StoreSink(store, run, flush_rows=1000, flush_seconds=2.0)
        sink.open({}, 0)
        clock[0] += 1.9
        sink.log({"step": 0, "loss": 1.0})
        assert _count(path, "metrics") == 0  # 1.9 s: still buffered
        clock[0] += 0.1
        sink.log({"step": 1, "loss": 1.0})
        assert _count(path, "metrics") == 2  # 2 s since the last write: both rows flushed
        clock[0] += 1.0
        sink.log({"step": 2, "loss": 1.0})
        assert _count(path, "metrics") == 2  # the clock restarts at each flush


def test_sink_open_with_a_start_step_drops_later_rows(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(path) as store:
        run = store.add_run(store.study("s"), {"x": 1})
        store.log_metrics(run, [{"step": t, "train_loss": 1.0, "val_loss": 2.0} for t in range(10)])
        sink = StoreSink(path, run)  # a path: the sink opens its own connection
        sink.open({"meta": {"resumed": True}}, 6)
        assert _rows(_sql(path), "SELECT DISTINCT step FROM metrics ORDER BY step") == [(t,) for t in range(6)]
        assert store.run(run)["status"] == "running" and store.run(run)["attempts"] == 1
        for t in range(6, 12):
            sink.log({"step": t, "train_loss": 0.5})
        sink.close({"status": "done", "steps_done": 12})
        sink.store.close()
        steps, values = store.curve(run, "train_loss")
        assert steps.tolist() == list(range(12))
        assert values.tolist() == [1.0] * 6 + [0.5] * 6
        assert store.curve(run, "val_loss")[0].tolist() == list(range(6))


def test_sink_close_records_status_final_and_error_with_traceback(store: Store) -> None:
    sid = store.study("s")
    run = store.add_run(sid, {"x": 1})
    sink = StoreSink(store, run)
    sink.open({}, 0)
    sink.log({"step": 0, "train_loss": 3.0})
    trace = 'Traceback (most recent call last):\n  File "loop.py", line 1\nRuntimeError: boom'
    sink.close({"status": "failed", "steps_done": 1, "error": "RuntimeError: boom", "traceback": trace})
    r = store.run(run)
    assert r["status"] == "failed" and r["failures"] == 1
    assert r["final"] == {"steps_done": 1}
    assert r["error"] == f"RuntimeError: boom\n{trace}"
    assert store.curve(run, "train_loss")[1].tolist() == [3.0]

    done = store.add_run(sid, {"x": 2})
    sink = StoreSink(store, done)
    sink.open({}, 0)
    result = {"status": "diverged", "steps_done": 4, "final_train_loss": math.inf, "final_val_loss": None}
    sink.close(result | {"diverged_at": 4, "error": None})
    r = store.run(done)
    assert (r["status"], r["failures"], r["error"]) == ("diverged", 0, None)
    assert r["final"] == {"steps_done": 4, "final_train_loss": None, "final_val_loss": None, "diverged_at": 4}


# --- export --------------------------------------------------------------------------------------------------


def _export_study(store: Store) -> list[int]:
    sid = store.study("ex")
    a = _finished(store, sid, {"lr": 0.001, "batch_size": 8}, "done", {"final_val_loss": 2.5, "steps_done": 10})
    b = _finished(store, sid, {"lr": 0.01}, "diverged", {"steps_done": 4, "diverged_at": 4})
    c = _finished(store, sid, {"lr": 0.1, "batch_size": 16, "model.preset": "mini"}, "pending", {})
    return [a, b, c]


def test_export_csv_has_the_union_of_columns_and_empty_cells(tmp_path: Path, store: Store) -> None:
    a, b, c = _export_study(store)
    out = tmp_path / "ex.csv"
    assert export(store, "ex", out) == 3
    with out.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames
        rows = list(reader)
    # first-seen order; the store keeps cell and final as canonical JSON, so each run's keys come sorted
    assert header == ["run", "status", "attempts", "batch_size", "lr", "final_val_loss", "steps_done", "diverged_at",
                      "model.preset"]  # fmt: skip
    assert rows == [
        {"run": str(a), "status": "done", "attempts": "1", "lr": "0.001", "batch_size": "8", "final_val_loss": "2.5",
         "steps_done": "10", "diverged_at": "", "model.preset": ""},
        {"run": str(b), "status": "diverged", "attempts": "1", "lr": "0.01", "batch_size": "", "final_val_loss": "",
         "steps_done": "4", "diverged_at": "4", "model.preset": ""},
        {"run": str(c), "status": "pending", "attempts": "0", "lr": "0.1", "batch_size": "16", "final_val_loss": "",
         "steps_done": "", "diverged_at": "", "model.preset": "mini"},
    ]  # fmt: skip
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_export_parquet_equals_the_csv(tmp_path: Path, store: Store, extra) -> None:
    pq = extra("pyarrow.parquet")
    _export_study(store)
    assert export(store, "ex", tmp_path / "ex.csv") == 3
    assert export(store, "ex", tmp_path / "ex.PARQUET") == 3  # the suffix in any case
    table = pq.read_table(tmp_path / "ex.PARQUET")
    with (tmp_path / "ex.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        header, csv_rows = reader.fieldnames, list(reader)
    assert table.column_names == header
    parquet_rows = table.to_pylist()
    assert [{k: "" if v is None else str(v) for k, v in row.items()} for row in parquet_rows] == csv_rows
    assert table.schema.field("lr").type == "double" and table.schema.field("run").type == "int64"


def test_export_to_an_unknown_suffix_is_an_input_error(tmp_path: Path, store: Store) -> None:
    _export_study(store)
    with pytest.raises(InputError, match=r"unknown format '\.xyz'.*\.csv, \.parquet"):
        export(store, "ex", tmp_path / "ex.xyz")
    assert not (tmp_path / "ex.xyz").exists()
    with pytest.raises(InputError, match="no study 'nope'"):
        export(store, "nope", tmp_path / "ex.csv")
    assert not (tmp_path / "ex.csv").exists()


def test_export_parquet_of_a_column_with_mixed_types_is_not_a_pyarrow_crash(
    tmp_path: Path, store: Store, extra
) -> None:
    """optimizer_options values are free (a study may sweep ``"optimizer_options.x" = [1, "auto"]``): the export
    writes them, or refuses with an InputError, but never lets a pyarrow exception out (a traceback at the CLI)."""
    pq = extra("pyarrow.parquet")
    sid = store.study("mixed")
    _finished(store, sid, {"optimizer_options.x": 1}, "done", {"final_val_loss": 2.0})
    _finished(store, sid, {"optimizer_options.x": "auto"}, "done", {"final_val_loss": 2.1})
    out = tmp_path / "mixed.parquet"
    try:
        n = export(store, "mixed", out)
    except InputError as exc:
        assert "\n" not in str(exc)
        assert not out.exists()
    else:
        assert n == 2 and pq.read_table(out).num_rows == 2


def test_later_config_keys_at_none_hash_as_configs_without_them():
    """A config written before eval_batch_size/eval_seed existed and one with them at None are the same run."""
    old = {"batch_size": 8, "seed": 0, "steps": None}
    assert config_hash({**old, "eval_batch_size": None, "eval_seed": None}) == config_hash(old)
    assert config_hash({**old, "eval_batch_size": 8, "eval_seed": None}) != config_hash(old)
    assert config_hash({**old, "eval_seed": 0}) != config_hash(old)
    assert config_hash({**old, "steps": 5}) != config_hash(old)  # other keys at None still count
