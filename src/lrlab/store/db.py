"""The run store: one SQLite file (default ``runs.db``) of studies, runs, their metrics and artifacts.

Connections run in WAL mode (readers never block the writer) with foreign keys on and a busy timeout, and every
write is one short ``BEGIN IMMEDIATE`` transaction (it takes the write lock up front, so a waiting writer queues
on the busy timeout instead of failing with SQLITE_BUSY when it upgrades a read). Several local processes may
share a file; a file on a network file system must have a single writer (SQLite's locks do not hold there):
with Ray the driver writes and the workers send their results back.

    store = Store("runs.db")
    study = store.study("lr-sweep", {"axes": {...}})
    run = store.add_run(study, config, cell={"lr": 1e-3})
    steps, loss = store.curve(run, "val_loss")
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.errors import InputError, clip
from lrlab.files import json_ready, make_dirs
from lrlab.store.schema import MIGRATIONS, SCHEMA_VERSION, STATUSES

BUSY_TIMEOUT_S = 60.0  # a writer waits this long for another's transaction before giving up
FINISHED = ("done", "diverged")  # statuses a sweep never runs again
STORE_TABLES = {"studies", "runs", "metrics", "artifacts"}  # every schema version has these
_INSERT_METRIC = "INSERT OR REPLACE INTO metrics (run_id, step, name, value) VALUES (?, ?, ?, ?)"


def canonical(obj: Any) -> str:
    """JSON with sorted keys and no spaces: equal configs give equal text, hence equal hashes."""
    return json.dumps(json_ready(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


# Config keys added after stores existed, whose None means what a config without them meant: left out of the hash
# while None, so that a study or sweep continued into an older store finds its finished runs.
LATER_KEYS = ("eval_batch_size", "eval_seed")


def config_hash(config: dict) -> str:
    """sha256 of the canonical JSON of a config (first 16 hex digits); a :data:`LATER_KEYS` key at None is left
    out."""
    kept = {k: v for k, v in config.items() if not (k in LATER_KEYS and v is None)}
    return hashlib.sha256(canonical(kept).encode()).hexdigest()[:16]


class Store:
    """A connection to a run store file (created, or migrated to the current schema, on open)."""

    def __init__(self, path: str | Path, timeout: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise InputError(f"{self.path} is not a file", "store")
        make_dirs(self.path.parent, "store")  # as files.check_output promises for a new file's folders
        self.db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            self._check_file()  # before anything writes: a refused file is left exactly as it was
            _retry_locked(lambda: self.db.execute("PRAGMA journal_mode=WAL"), timeout)
            self.db.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint, safe against corruption
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise InputError(f"{self.path}: not an lrlab run store ({exc})", "store") from None
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        """Close the connection (every write is committed already)."""
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- schema -------------------------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The file's schema version (SQLite's user_version)."""
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _check_file(self) -> None:
        """Refuse a store of a newer schema, and an SQLite file of someone else's (tables but no lrlab version)."""
        version = self.version
        if version > SCHEMA_VERSION:
            raise InputError(
                f"{self.path} has run-store schema version {version}; this lrlab reads up to {SCHEMA_VERSION}",
                "store",
            )
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        foreign = (version == 0 and tables) or (version > 0 and not STORE_TABLES <= tables)
        if foreign:
            listed = ", ".join(sorted(tables)[:5]) or "none"
            raise InputError(f"{self.path}: an SQLite file but not an lrlab run store (tables {listed})", "store")

    def _migrate(self) -> None:
        if self.version == SCHEMA_VERSION:
            return
        # a table rebuild must not cascade deletes: foreign keys off for the migration (outside a transaction)
        self.db.execute("PRAGMA foreign_keys=OFF")
        try:
            with self.transaction():
                version = self.version  # another process may have migrated meanwhile
                while version < SCHEMA_VERSION:
                    for statement in _statements(MIGRATIONS[version]):
                        self.db.execute(statement)
                    version += 1
                    self.db.execute(f"PRAGMA user_version={version}")
                broken = self.db.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise InputError(f"{self.path}: {len(broken)} rows break foreign keys after migration", "store")
        finally:
            self.db.execute("PRAGMA foreign_keys=ON")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any error)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- writes -------------------------------------------------------------------------------------------------

    def study(self, name: str, spec: dict | None = None) -> int:
        """The id of study ``name``, created with ``spec`` if new; a given ``spec`` replaces the stored one."""
        if not name or not isinstance(name, str):
            raise InputError(f"a study needs a non-empty name, got {name!r}", "study")
        with self.transaction() as db:
            row = db.execute("SELECT id FROM studies WHERE name = ?", (name,)).fetchone()
            if row is None:
                cur = db.execute(
                    "INSERT INTO studies (name, spec, created) VALUES (?, ?, ?)",
                    (name, canonical(spec or {}), time.time()),
                )
                return int(cur.lastrowid)
            if spec is not None:
                db.execute("UPDATE studies SET spec = ? WHERE id = ?", (canonical(spec), row[0]))
            return int(row[0])

    def add_run(self, study_id: int, config: dict, cell: dict | None = None) -> int:
        """The id of the run with this config in the study, added as pending if new (the config hash is unique
        within a study, so adding a run twice gives the same id)."""
        digest = config_hash(config)
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO runs (study_id, config, config_hash, cell) VALUES (?, ?, ?, ?)",
                (study_id, canonical(config), digest, canonical(cell or {})),
            )
            row = db.execute(
                "SELECT id FROM runs WHERE study_id = ? AND config_hash = ?", (study_id, digest)
            ).fetchone()
        return int(row[0])

    def claim(self, run_id: int, meta: dict | None = None, pid: int | None = None) -> None:
        """Mark a run running on this host, in process ``pid`` (default: this one), as one more attempt."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = 'running', attempts = attempts + 1, started = ?, finished = NULL, host = ?,"
                " pid = ?, error = NULL, meta = ? WHERE id = ?",
                (time.time(), socket.gethostname(), os.getpid() if pid is None else pid, canonical(meta or {}), run_id),
            )

    def set_meta(self, run_id: int, meta: dict) -> None:
        """The environment a run ran in (torch build, threads, data fingerprint), as the trainer records it."""
        with self.transaction() as db:
            db.execute("UPDATE runs SET meta = ? WHERE id = ?", (canonical(meta), run_id))

    def truncate(self, run_id: int, start_step: int) -> None:
        """Drop a run's metric rows at steps >= ``start_step``, which a resumed run logs again."""
        with self.transaction() as db:
            db.execute("DELETE FROM metrics WHERE run_id = ? AND step >= ?", (run_id, start_step))

    def log_metrics(self, run_id: int, rows: Iterable[dict[str, Any]]) -> int:
        """Write every numeric key of each row (a trainer metrics row: ``step`` plus names) in one transaction;
        a step logged again replaces its values. Returns the number of metric rows written."""
        records = [
            (run_id, int(row["step"]), name, _value(value))
            for row in rows
            for name, value in row.items()
            if name != "step" and _is_metric(value)
        ]
        if records:
            with self.transaction() as db:
                db.executemany(_INSERT_METRIC, records)
        return len(records)

    def finish_run(self, run_id: int, status: str, final: dict | None = None, error: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, finished = ?, final = ?, error = ?, failures = failures + ? WHERE id = ?",
                (status, time.time(), canonical(final or {}), error, int(status == "failed"), run_id),
            )

    def add_artifact(self, run_id: int, kind: str, path: str | Path) -> None:
        """Record a file or folder a run made (``kind`` e.g. "run_dir": its checkpoints); recording it again is a
        no-op."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO artifacts (run_id, kind, path) VALUES (?, ?, ?)", (run_id, kind, str(path))
            )

    # --- reads --------------------------------------------------------------------------------------------------

    def find_run(self, study: str, config: dict) -> dict[str, Any] | None:
        """The run with this config in the study, without adding anything; None if there is none."""
        row = self.db.execute(
            "SELECT runs.id FROM runs JOIN studies ON studies.id = runs.study_id WHERE name = ? AND config_hash = ?",
            (study, config_hash(config)),
        ).fetchone()
        return None if row is None else self.run(int(row[0]))

    def study_id(self, name: str) -> int:
        row = self.db.execute("SELECT id FROM studies WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = [r[0] for r in self.db.execute("SELECT name FROM studies ORDER BY name")]
            raise InputError(f"{self.path} has no study {name!r} (studies: {', '.join(known) or 'none'})", "study")
        return int(row[0])

    def studies(self) -> list[dict[str, Any]]:
        """Every study with its run counts per status."""
        out = []
        for sid, name, created in self.db.execute("SELECT id, name, created FROM studies ORDER BY id").fetchall():
            counts = dict(
                self.db.execute("SELECT status, COUNT(*) FROM runs WHERE study_id = ? GROUP BY status", (sid,))
            )
            out.append({"id": sid, "name": name, "created": created, "runs": sum(counts.values()), **counts})
        return out

    def run(self, run_id: int) -> dict[str, Any]:
        """One run as a plain dict (config, cell, final and meta decoded)."""
        if isinstance(run_id, bool) or not isinstance(run_id, int) or not 0 < run_id < 2**63:
            raise InputError(f"{self.path} has no run {clip(run_id)}: run ids are whole numbers from 1", "run")
        rows = self._runs("WHERE runs.id = ?", (run_id,))
        if not rows:
            raise InputError(f"{self.path} has no run {run_id}", "run")
        return rows[0]

    def runs(self, study: str | int, status: str | None = None) -> list[dict[str, Any]]:
        """Every run of a study (by name or id) as plain dicts, in the order they were added."""
        sid = study if isinstance(study, int) else self.study_id(study)
        if status is None:
            return self._runs("WHERE study_id = ? ORDER BY runs.id", (sid,))
        return self._runs("WHERE study_id = ? AND status = ? ORDER BY runs.id", (sid, status))

    def _runs(self, where: str, args: tuple) -> list[dict[str, Any]]:
        cols = ("id", "study", "config", "cell", "status", "attempts", "failures", "started", "finished", "host")
        cols += ("pid", "error", "final", "meta")
        rows = self.db.execute(
            "SELECT runs.id, studies.name, config, cell, status, attempts, failures, started, finished, host, pid,"
            f" error, final, meta FROM runs JOIN studies ON studies.id = runs.study_id {where}",
            args,
        ).fetchall()
        out = []
        for values in rows:
            d = dict(zip(cols, values, strict=True))
            for key in ("config", "cell", "final", "meta"):
                d[key] = json.loads(d[key])
            out.append(d)
        return out

    def curve(self, run_id: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of one metric of a run, by step; NaN where the value was not finite."""
        rows = self.db.execute(
            "SELECT step, value FROM metrics WHERE run_id = ? AND name = ? ORDER BY step", (run_id, name)
        ).fetchall()
        steps = np.array([r[0] for r in rows], dtype=np.int64)
        values = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=np.float64)
        return steps, values

    def artifacts(self, run_id: int) -> list[dict[str, str]]:
        """The files and folders recorded for a run, as ``{"kind", "path"}`` dicts in the order recorded."""
        rows = self.db.execute("SELECT kind, path FROM artifacts WHERE run_id = ? ORDER BY id", (run_id,))
        return [{"kind": kind, "path": path} for kind, path in rows]

    def metric_names(self, run_id: int) -> list[str]:
        """The names of the metrics logged for a run, sorted."""
        rows = self.db.execute("SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name", (run_id,))
        return [r[0] for r in rows]

    def latest(self, run_ids: Iterable[int], name: str = "train_loss") -> dict[int, tuple[int, float | None]]:
        """Each run's last logged step and its ``name`` value (for live progress lines)."""
        ids = list(run_ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT m.run_id, m.step, m.value FROM metrics m JOIN (SELECT run_id, MAX(step) AS step FROM metrics "
            f"WHERE run_id IN ({marks}) AND name = ? GROUP BY run_id) last "
            "ON m.run_id = last.run_id AND m.step = last.step WHERE m.name = ?",
            (*ids, name, name),
        ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def table(self, study: str | int) -> list[dict[str, Any]]:
        """One flat row per run: id, status, attempts, each cell key, then each final metric."""
        out = []
        for r in self.runs(study):
            out.append({"run": r["id"], "status": r["status"], "attempts": r["attempts"], **r["cell"], **r["final"]})
        return out

    def best(self, study: str | int, group_by: Iterable[str], metric: str = "final_val_loss") -> dict[tuple, dict]:
        """The run with the lowest ``metric`` among the finished runs of each group of equal ``group_by`` cell
        values; a diverged run is best only if its whole group diverged."""
        keys = tuple(group_by)
        best: dict[tuple, dict] = {}
        for row in self.table(study):
            if row["status"] not in FINISHED:
                continue
            group = tuple(hashable(row.get(k)) for k in keys)
            if group not in best or _rank(row, metric) < _rank(best[group], metric):
                best[group] = row
        return best

    def integrity(self) -> str:
        """SQLite's own check of the file ("ok" when sound)."""
        return str(self.db.execute("PRAGMA integrity_check").fetchone()[0])


def _retry_locked(operation, timeout: float) -> None:
    """Run ``operation``, retrying while the file is locked by another connection (switching a new file to WAL
    does not wait on the busy timeout by itself), for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            operation()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _rank(row: dict, metric: str) -> tuple[bool, float]:
    """Order of runs within a group: finished before diverged, then by ``metric`` (a missing value last)."""
    value = row.get(metric)
    finite = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return row["status"] == "diverged", float(value) if finite else math.inf


def hashable(value: Any) -> Any:
    """A cell value usable as a dict key (JSON lists, nested too, as tuples)."""
    return tuple(hashable(v) for v in value) if isinstance(value, list) else value


def _is_metric(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _value(value: Any) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


def _statements(script: str) -> list[str]:
    """The statements of a migration script (none of lrlab's contains a ';' inside a literal)."""
    return [s.strip() for s in script.split(";") if s.strip()]
