"""``lrlab sweep``, ``lrlab runs list|show|export`` and ``lrlab train --store``, through the real CLI app on tiny
runs (tiny preset, 10 steps of 4 x 32 tokens on a ~60 KB text file).

The store is checked with a plain ``sqlite3`` connection and the Store API, the printed JSON against the store,
the stored curves against metrics.jsonl, and bad input against lrlab's rule: exit 2 and one ``error:`` line.
"""

from __future__ import annotations

import csv
import inspect
import json
import math
import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

import lrlab.train.loop
from lrlab.cli import app
from lrlab.schedules import parse
from lrlab.store import Store
from lrlab.train import load_config
from lrlab.train.model import GPT

LRS = (1e-3, 2e-3, 3e-3, 1e3)  # the last one diverges at once
STEPS, SEQ_LEN, BATCH = 10, 32, 4


def _study_text(corpus: Path, name: str = "tiny4") -> str:
    return f"""name = "{name}"
retries = 1

[base]
data = "{corpus}"
steps = {STEPS}
seq_len = {SEQ_LEN}
batch_size = {BATCH}
eval_batches = 1
eval_every = 5
schedule = "cosine:peak=1e-3,warmup=2,total={STEPS}"

[axes]
lr = [{", ".join(repr(lr) for lr in LRS)}]
"""


def _invoke(*argv: str):
    return CliRunner().invoke(app, [str(a) for a in argv], catch_exceptions=True)


def _ok(result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.exception, result.output)
    return result.stdout


def _one_error_line(result, *needles: str) -> str:
    """lrlab's bad-input rule: exit 2, exactly one non-empty line (on stderr, starting 'error:'), no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.exception, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    err = [ln for ln in result.stderr.splitlines() if ln.strip()]
    out = [ln for ln in result.stdout.splitlines() if ln.strip()]
    assert len(err) == 1 and out == [], (err, out)
    assert err[0].startswith("error:") and "Traceback" not in result.output, err[0]
    for needle in needles:
        assert needle in err[0], (needle, err[0])
    return err[0]


def _dump(path: Path) -> list[str]:
    """Every row of a store file, as SQL text (what "unchanged" is checked against)."""
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep-corpus") / "corpus.txt"
    path.write_text(inspect.getsource(lrlab.train.loop) * 3 + inspect.getsource(json) * 2)
    return path


@pytest.fixture(scope="module")
def swept(tmp_path_factory, corpus):
    """One 4-cell sweep (run once for the module), then the same sweep again: (folder, store, first, second)."""
    root = tmp_path_factory.mktemp("swept")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LRLAB_CACHE", str(root / "cache"))
        mp.chdir(root)
        study = root / "study.toml"
        study.write_text(_study_text(corpus))
        store = root / "runs.db"
        first = _invoke("sweep", study, "--store", store, "--workers", "2")
        dump = _dump(store) if store.exists() else []
        second = _invoke("sweep", study, "--store", store, "--workers", "2")
    return root, store, first, second, dump


@pytest.fixture
def here(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- lrlab sweep ---------------------------------------------------------------------------------------------


def test_dry_run_prints_every_cell_and_the_total_compute_and_writes_nothing(here: Path, corpus: Path) -> None:
    study = here / "study.toml"
    study.write_text(_study_text(corpus))
    before = sorted(p.name for p in here.iterdir())
    out = _ok(_invoke("sweep", study, "--dry-run", "--store", here / "runs.db"))
    assert sorted(p.name for p in here.iterdir()) == before  # no store, no run folders
    assert "tiny4: 4 cells" in out
    tokens = STEPS * BATCH * SEQ_LEN
    rows = [ln for ln in out.splitlines() if f"{tokens:,}" in ln]
    assert len(rows) == 4
    for lr, row in zip(LRS, rows, strict=True):
        assert f"{lr:.3g}" in row and f" {STEPS} " in row
    params = GPT(load_config(None, [f"seq_len={SEQ_LEN}"]).gpt_config(256)).num_params()  # counted by torch
    total = 6.0 * params * tokens * len(LRS) / 1e15
    match = re.search(r"total: (\S+) PFLOP", out)
    assert match, out
    assert float(match.group(1)) == pytest.approx(total, rel=5e-3)


def test_sweep_runs_every_cell_and_records_the_diverged_one(swept) -> None:
    root, store, first, _second, _dump_after_first = swept
    out = _ok(first)
    with Store(store) as db:
        runs = db.runs("tiny4")
        assert len(runs) == 4
        by_lr = {r["cell"]["lr"]: r for r in runs}
        assert sorted(by_lr) == sorted(LRS)
        assert [by_lr[lr]["status"] for lr in LRS] == ["done", "done", "done", "diverged"]
        assert all(r["attempts"] == 1 and r["failures"] == 0 and r["error"] is None for r in runs)
        for lr in LRS[:3]:
            r = by_lr[lr]
            steps, loss = db.curve(r["id"], "train_loss")
            assert steps.tolist() == list(range(STEPS)) and all(math.isfinite(v) for v in loss)
            assert db.curve(r["id"], "val_loss")[0].tolist() == [4, 9]  # every 5 steps (after 5, 10 updates)
            assert r["final"]["final_val_loss"] == db.curve(r["id"], "val_loss")[1][-1]
            assert parse(r["config"]["schedule"]).peak == lr
            assert r["meta"]["total_steps"] == STEPS
        diverged = by_lr[1e3]
        assert diverged["final"]["diverged_at"] is not None
        assert db.curve(diverged["id"], "train_loss")[0].tolist() == list(range(diverged["final"]["diverged_at"] + 1))
        best = min(LRS[:3], key=lambda lr: by_lr[lr]["final"]["final_val_loss"])
        best_loss = by_lr[best]["final"]["final_val_loss"]
    assert "tiny4: 4 runs in" in out and "(3 done, 1 diverged, 0 failed; 4 ran now)" in out
    table = out[out.index("final final_val_loss by LR") :]
    assert "div" in table
    assert f"*{best_loss:.4f}" in table  # the best LR's cell is starred
    assert (root / "runs.runs" / "tiny4").is_dir()  # checkpoints beside the store


def test_sweep_again_runs_nothing(swept) -> None:
    _root, store, _first, second, dump_after_first = swept
    out = _ok(second)
    assert "(3 done, 1 diverged, 0 failed; 0 ran now)" in out
    with Store(store) as db:
        assert [r["attempts"] for r in db.runs("tiny4")] == [1, 1, 1, 1]
    assert _dump(store) == dump_after_first  # not a row changed


# --- lrlab runs ----------------------------------------------------------------------------------------------


def test_runs_list_shows_the_studies_with_their_counts(swept) -> None:
    _root, store, *_ = swept
    out = _ok(_invoke("runs", "list", "--store", store))
    line = next(ln for ln in out.splitlines() if "tiny4" in ln)
    cells = [c.strip() for c in line.split("│")]
    assert cells[1:6] == ["tiny4", "4", "3", "1", "0"]
    rows = json.loads(_ok(_invoke("runs", "list", "--store", store, "--json")))
    assert [(r["name"], r["runs"], r["done"], r["diverged"]) for r in rows] == [("tiny4", 4, 3, 1)]


def test_runs_list_study_json_is_the_store_table(swept) -> None:
    _root, store, *_ = swept
    rows = json.loads(_ok(_invoke("runs", "list", "tiny4", "--store", store, "--json")))
    with Store(store) as db:
        table = db.table("tiny4")
    assert rows == json.loads(json.dumps(table))
    assert [r["status"] for r in rows].count("done") == 3
    text = _ok(_invoke("runs", "list", "tiny4", "--store", store))
    assert text.count("done") == 3 and text.count("diverged") >= 1


def test_runs_show_json_has_the_run_and_its_curves(swept) -> None:
    _root, store, *_ = swept
    with Store(store) as db:
        run = db.runs("tiny4", "done")[0]
        names = db.metric_names(run["id"])
        curves = {n: db.curve(run["id"], n) for n in names}
    shown = json.loads(_ok(_invoke("runs", "show", str(run["id"]), "--store", store, "--json")))
    assert set(shown["curves"]) == set(names) >= {"train_loss", "val_loss", "lr"}
    for name, (steps, values) in curves.items():
        assert shown["curves"][name]["steps"] == steps.tolist()
        got = [math.nan if v is None else v for v in shown["curves"][name]["values"]]
        assert len(got) == len(values)
        assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(got, values.tolist(), strict=True))
    assert {k: shown[k] for k in ("id", "study", "status", "config", "cell", "final", "attempts")} == {
        k: run[k] for k in ("id", "study", "status", "config", "cell", "final", "attempts")
    }
    (artifact,) = shown["artifacts"]  # the run's folder (its checkpoints), where the sweep put it
    assert artifact["kind"] == "run_dir" and list(Path(artifact["path"], "checkpoints").glob("ckpt-*.pt"))
    text = _ok(_invoke("runs", "show", str(run["id"]), "--store", store))
    assert f"run {run['id']} of study tiny4: done after 1 attempt(s)" in text
    assert f"train_loss ({STEPS} steps)" in text and f"run_dir: {artifact['path']}" in text


def test_runs_export_writes_one_row_per_run(swept, tmp_path: Path) -> None:
    _root, store, *_ = swept
    out = tmp_path / "x.csv"
    assert "wrote 4 runs to" in _ok(_invoke("runs", "export", "tiny4", "--out", out, "--store", store))
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert sorted(float(r["lr"]) for r in rows) == sorted(LRS)
    assert sorted(r["status"] for r in rows) == ["diverged", "done", "done", "done"]


def test_runs_bad_inputs_are_one_error_line(swept, tmp_path: Path) -> None:
    _root, store, *_ = swept
    before = _dump(store)
    _one_error_line(_invoke("runs", "list", "--store", tmp_path / "missing.db"), "--store", "no such run store")
    _one_error_line(_invoke("runs", "list", "nope", "--store", store), "no study 'nope'", "tiny4")
    _one_error_line(_invoke("runs", "show", "9999", "--store", store), "no run 9999")
    _one_error_line(_invoke("runs", "show", "abc", "--store", store))
    _one_error_line(_invoke("runs", "show", "9" * 25, "--store", store), f"no run {'9' * 25}")
    out = tmp_path / "x.xyz"
    _one_error_line(_invoke("runs", "export", "tiny4", "--out", out, "--store", store), "--out", ".xyz")
    assert not out.exists()
    under_a_file = tmp_path / "notes.txt" / "x.csv"
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    _one_error_line(_invoke("runs", "export", "tiny4", "--out", under_a_file, "--store", store), "--out")
    _one_error_line(_invoke("runs", "export", "nope", "--out", tmp_path / "y.csv", "--store", store), "no study")
    assert not (tmp_path / "y.csv").exists()
    text = tmp_path / "notes2.txt"
    text.write_text("not a database\n" * 20)
    _one_error_line(_invoke("runs", "list", "--store", text), "--store", "not an lrlab run store")
    _one_error_line(_invoke("runs", "list", "--store", tmp_path), "--store")
    assert _dump(store) == before


def test_runs_on_a_future_version_store_is_refused_and_leaves_it_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE x (a)")
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    before = path.read_bytes()
    _one_error_line(_invoke("runs", "list", "--store", path), "--store", "version 99")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["future.db"]


def test_sweep_bad_study_is_one_error_line_and_creates_no_store(here: Path, corpus: Path) -> None:
    study = here / "bad.toml"
    study.write_text(_study_text(corpus).replace("lr = [", "learning_rate = ["))
    _one_error_line(_invoke("sweep", study, "--store", here / "runs.db"), "learning_rate")
    _one_error_line(_invoke("sweep", here / "missing.toml", "--store", here / "runs.db"), "no such file")
    assert not (here / "runs.db").exists()


@pytest.mark.parametrize(
    "flag",
    [("--workers", "0"), ("--executor", "slurm"), ("--gpus", "-1"), ("--address", "auto"), ("--runs-dir", "afile")],
    ids=lambda f: f[0],
)
def test_sweep_bad_option_is_one_error_line_and_creates_no_store(here: Path, corpus: Path, flag) -> None:
    study = here / "good.toml"
    study.write_text(_study_text(corpus))
    (here / "afile").write_text("a file where the run folders would go")
    _one_error_line(_invoke("sweep", study, "--store", here / "runs.db", *flag), flag[0])
    assert not (here / "runs.db").exists()


def test_a_sweep_with_a_failed_run_exits_1_and_says_how_to_see_it(here: Path, corpus: Path) -> None:
    study = here / "blocked.toml"
    study.write_text(_study_text(corpus, name="blocked").replace("retries = 1", "retries = 0"))
    (here / "runs.runs").mkdir()
    (here / "runs.runs" / "blocked").write_text("a file where the study's run folders go: every run fails")
    result = _invoke("sweep", study, "--store", here / "runs.db", "--workers", "1")
    assert result.exit_code == 1, result.output
    assert "4 failed" in result.stdout and "lrlab runs show RUN_ID" in result.stdout
    with Store(here / "runs.db") as db:
        assert [r["status"] for r in db.runs("blocked")] == ["failed"] * 4


def test_dry_run_prints_a_study_name_with_markup_literally(here: Path, corpus: Path) -> None:
    study = here / "markup.toml"
    study.write_text(_study_text(corpus, name="[/]x [bold red]RED"))
    out = _ok(_invoke("sweep", study, "--dry-run"))
    assert "[/]x [bold red]RED: 4 cells" in out


# --- lrlab train --store -------------------------------------------------------------------------------------


def _train_args(corpus: Path, *extra) -> list:
    return ["train", "--set", f"data='{corpus}'", "--set", f"seq_len={SEQ_LEN}", "--batch-size", str(BATCH),
            "--set", "eval_batches=1", "--set", "eval_every=3", "--steps", "7", "--schedule", "constant:peak=1e-3",
            "--no-progress", *extra]  # fmt: skip


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_train_records_the_run_in_the_store_and_refuses_the_same_config_again(here: Path, corpus: Path) -> None:
    store = here / "runs.db"
    out = _ok(_invoke(*_train_args(corpus, "--store", store, "--study", "s", "--out", here / "run1")))
    assert out.startswith("done: 7 steps")
    rows = _jsonl(here / "run1" / "metrics.jsonl")
    run_json = json.loads((here / "run1" / "run.json").read_text())
    with Store(store) as db:
        (run,) = db.runs("s")
        assert (run["status"], run["attempts"], run["failures"]) == ("done", 1, 0)
        assert run["config"]["steps"] == 7 and run["config"]["data"] == str(corpus)
        assert run["final"]["final_val_loss"] == run_json["final_val_loss"]
        assert run["meta"]["total_steps"] == 7
        names = {k for r in rows for k, v in r.items() if k != "step" and isinstance(v, int | float)}
        names -= {k for r in rows for k, v in r.items() if isinstance(v, bool)}
        assert set(db.metric_names(run["id"])) == names
        for name in names:
            steps, values = db.curve(run["id"], name)
            expected = [(r["step"], r[name]) for r in rows if name in r]
            assert steps.tolist() == [s for s, _ in expected]
            assert values.tolist() == [float(v) for _, v in expected]  # exact: both are the same float
        assert db.curve(run["id"], "train_loss")[0].tolist() == list(range(7))
    before = _dump(store)
    again = _invoke(*_train_args(corpus, "--store", store, "--study", "s", "--out", here / "run2"))
    _one_error_line(again, "--store", "already holds this config as run", "--resume", "--overwrite")
    assert _dump(store) == before
    assert not (here / "run2").exists()
    # another study may hold the same config
    _ok(_invoke(*_train_args(corpus, "--store", store, "--study", "other")))
    with Store(store) as db:
        assert [r["status"] for r in db.runs("other")] == ["done"]
        assert db.runs("s")[0]["attempts"] == 1


def test_train_overwrite_replaces_the_stored_run_without_duplicate_steps(here: Path, corpus: Path) -> None:
    store = here / "runs.db"
    _ok(_invoke(*_train_args(corpus, "--store", store, "--study", "s", "--out", here / "run")))
    with Store(store) as db:
        (run,) = db.runs("s")
        first = {n: db.curve(run["id"], n) for n in db.metric_names(run["id"])}
    _ok(_invoke(*_train_args(corpus, "--store", store, "--study", "s", "--out", here / "run", "--overwrite")))
    with Store(store) as db:
        (again,) = db.runs("s")
        assert (again["id"], again["status"], again["attempts"]) == (run["id"], "done", 2)
        n = db.db.execute("SELECT COUNT(*), COUNT(DISTINCT step || name) FROM metrics").fetchone()
        assert n[0] == n[1] == sum(len(s) for s, _ in first.values())
        steps, loss = db.curve(run["id"], "train_loss")
        assert steps.tolist() == first["train_loss"][0].tolist()
        assert loss.tolist() == first["train_loss"][1].tolist()  # same seed, same config: the same curve


def test_sweep_with_a_bad_schedule_spec_is_refused_before_anything_runs(here: Path, corpus: Path) -> None:
    """A cell whose schedule spec does not parse is a bad study (one error line), not a started sweep whose
    worker is killed and whose run is recorded failed."""
    study = here / "bad-schedule.toml"
    text = _study_text(corpus).replace(f"cosine:peak=1e-3,warmup=2,total={STEPS}", "cosine:peak=x")
    study.write_text(text[: text.index("lr = [")] + "seed = [0, 1]\n")  # no lr axis: the spec is never parsed
    _one_error_line(_invoke("sweep", study, "--store", here / "runs.db", "--workers", "1"), "peak")
    assert not (here / "runs.db").exists()


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [("--set", "data='{tmp}/missing.txt'", "no such file"), ("--optimizer", "nope", "unknown optimizer")],
    ids=["missing-data", "unknown-optimizer"],
)
def test_train_refused_before_it_starts_leaves_the_store_alone(
    here: Path, corpus: Path, flag: str, value: str, needle: str
) -> None:
    """`lrlab train --store` that fails its checks (exit 2) neither creates the store nor adds a run to one."""
    value = value.replace("{tmp}", str(here))
    new = here / "new.db"
    _one_error_line(_invoke(*_train_args(corpus, flag, value, "--store", new, "--study", "s")), needle)
    assert not new.exists()
    existing = here / "existing.db"
    _ok(_invoke(*_train_args(corpus, "--store", existing, "--study", "s")))
    before = _dump(existing)
    _one_error_line(_invoke(*_train_args(corpus, flag, value, "--store", existing, "--study", "s")), needle)
    assert _dump(existing) == before
