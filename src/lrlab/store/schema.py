"""The run store's SQLite schema, its version (``PRAGMA user_version``) and the forward migrations between them.

Version 2 (current)::

    studies(id, name UNIQUE, spec JSON, created)
    runs(id, study_id -> studies, config JSON (canonical), config_hash, cell JSON, status, attempts, failures,
         started, finished, host, pid, error, final JSON, meta JSON;  UNIQUE (study_id, config_hash))
    metrics(run_id -> runs, step, name, value;  PRIMARY KEY (run_id, step, name))   a re-logged step replaces
    artifacts(id, run_id -> runs, kind, path;  UNIQUE (run_id, kind, path))

Times are seconds since the epoch (UTC); ``value`` is NULL for a NaN or infinite metric. Version 1 was the first
layout (no ``cell``, ``failures`` or ``meta`` column, no ``interrupted`` status); :data:`MIGRATIONS` takes any
older file to the current version when it is opened, inside one transaction.
"""

from __future__ import annotations

SCHEMA_VERSION = 2

STATUSES = ("pending", "running", "done", "diverged", "failed", "interrupted")

_V1 = """
CREATE TABLE studies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    config TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'done', 'diverged', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    started REAL,
    finished REAL,
    host TEXT,
    pid INTEGER,
    error TEXT,
    final TEXT NOT NULL DEFAULT '{}',
    UNIQUE (study_id, config_hash)
);
CREATE TABLE metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, step, name)
) WITHOUT ROWID;
CREATE TABLE artifacts (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    UNIQUE (run_id, kind, path)
);
CREATE INDEX runs_by_study ON runs(study_id, status);
"""

# 1 -> 2: a run keeps the sweep cell it came from (for grouping), the environment it ran in and how many of its
# attempts failed (the retry limit counts failures, not interruptions), and may end "interrupted" (Ctrl-C or
# SIGTERM, resumable). SQLite cannot change a CHECK constraint in place: the table is
# rebuilt (https://www.sqlite.org/lang_altertable.html, "other kinds of table schema changes").
_V1_TO_V2 = """
CREATE TABLE runs_v2 (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    config TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    cell TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'done', 'diverged', 'failed', 'interrupted')),
    attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    started REAL,
    finished REAL,
    host TEXT,
    pid INTEGER,
    error TEXT,
    final TEXT NOT NULL DEFAULT '{}',
    meta TEXT NOT NULL DEFAULT '{}',
    UNIQUE (study_id, config_hash)
);
INSERT INTO runs_v2 (id, study_id, config, config_hash, status, attempts, failures, started, finished, host, pid,
    error, final)
    SELECT id, study_id, config, config_hash, status, attempts, status = 'failed', started, finished, host, pid, error,
    final FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v2 RENAME TO runs;
CREATE INDEX runs_by_study ON runs(study_id, status);
"""

#: MIGRATIONS[v] takes a version-v file to version v + 1 (v = 0: an empty file, created at version 1).
MIGRATIONS: dict[int, str] = {0: _V1, 1: _V1_TO_V2}
