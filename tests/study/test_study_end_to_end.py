"""The study end to end on a tiny budget (`lrlab study ... --verify` in a subprocess, as a user runs it): the
recommendation, what the pilots spent, the report in a real browser, `lrlab report`, `lrlab train` on the
recommendation, and a study killed mid-way that resumes without rerunning a finished pilot."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lrlab.store import Store
from lrlab.study import load_spec
from lrlab.study.runs import STEPS, spent_tokens
from lrlab.train.config import load_config

HOSTILE = "<script>alert(1)</script>"
SPEC = """
name = {name!r}
optimizers = ["torch-adamw"]
max_batch_size = 8
pilot_share = 0.8
workers = 2

[budget]
steps = 1000

[base]
data = {data!r}
batch_size = 4
seq_len = 32
eval_batches = 1

[base.model]
preset = "tiny"
"""


def _corpus(folder: Path) -> Path:
    """~200 KB of the standard library's text as one file: a small, fixed corpus for fast runs."""
    import email
    import json as json_module

    text = "".join(Path(m.__file__).read_text() for m in (json_module, email))
    for path in sorted(Path(email.__file__).parent.glob("*.py"))[:20]:
        text += path.read_text()
    out = folder / "corpus.txt"
    out.write_text(text)
    return out


def _lrlab(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrlab", *args], capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("study")
    spec = tmp / "study.toml"
    spec.write_text(SPEC.format(name=HOSTILE, data=str(_corpus(tmp))))
    done = _lrlab("study", str(spec), "--out", str(tmp / "out"), "--verify")
    assert done.returncode == 0, done.stderr[-2000:]
    return {"tmp": tmp, "spec": spec, "out": tmp / "out", "stdout": done.stdout}


def test_recommendation_is_a_config_within_the_pilot_budget(finished):
    spec = load_spec(finished["spec"])
    rec = load_config(finished["out"] / "recommendation.toml")
    assert rec.optimizer == "torch-adamw"
    assert rec.batch_size in (2, 4, 8)
    assert rec.steps * rec.batch_size * rec.seq_len >= spec.tokens  # the full budget, at the chosen batch size
    with Store(finished["out"] / "runs.db") as store:
        pilots = [r for step in STEPS[:-1] for r in store.runs(f"{HOSTILE}/{step}")]
        assert all(r["status"] in ("done", "diverged") for r in pilots)
        assert 0 < spent_tokens(pilots) <= spec.pilot_share * spec.tokens
        (verified,) = store.runs(f"{HOSTILE}/verify")
    # every training run, at every batch size, scored on one validation set: the base batch size's
    trained = [r["config"] for r in [*pilots, verified] if "batch_size" in r["config"]]
    assert {r["batch_size"] for r in trained} >= {2, 4, 8}
    assert {(r["eval_batches"], r["eval_batch_size"], r["eval_seed"]) for r in trained} == {(1, 4, None)}
    assert rec.validation_set == (1, 4, 0)
    assert verified["status"] == "done"
    assert verified["config"] == rec.to_dict() | {"threads": verified["config"]["threads"]}
    spent = re.search(r"pilots spent ([\d,]+) training tokens", finished["stdout"])
    assert spent and int(spent[1].replace(",", "")) == spent_tokens(pilots)


def test_recommendation_round_trips_through_train(finished):
    rec = finished["out"] / "recommendation.toml"
    run = finished["tmp"] / "trained"
    done = _lrlab("train", str(rec), "--out", str(run), "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "done"
    assert {k: v for k, v in record["config"].items() if k != "threads"} == {
        k: v for k, v in load_config(rec).to_dict().items() if k != "threads"
    }
    with Store(finished["out"] / "runs.db") as store:
        (verified,) = store.runs(f"{HOSTILE}/verify")
    # the same config and seed: the same curve up to the CPU thread count's rounding
    assert record["final_val_loss"] == pytest.approx(verified["final"]["final_val_loss"], rel=0.05)


def test_report_opens_in_a_browser_with_every_image_and_the_name_as_text(finished, browser):
    shot = finished["tmp"] / "report.png"
    seen = browser(finished["out"] / "report.html", screenshot=shot)
    assert len(seen["images"]) >= 7
    assert all(i["complete"] and i["natural_width"] > 0 and i["natural_height"] > 0 for i in seen["images"])
    assert [m for m in seen["console"] if m[0] == "error"] == []
    assert seen["page_errors"] == [] and seen["failed_requests"] == [] and seen["dialogs"] == []
    assert seen["script_count"] == 0
    assert HOSTILE in seen["title"] and HOSTILE in seen["text"]
    assert "Recommendation" in seen["text"] and "Verify: predicted against observed" in seen["text"]
    assert shot.stat().st_size > 10_000


def test_report_command_rebuilds_the_same_page_from_the_store(finished):
    again = finished["tmp"] / "again.html"
    done = _lrlab("report", str(finished["spec"]), "--store", str(finished["out"] / "runs.db"), "--out", str(again))
    assert done.returncode == 0, done.stderr[-2000:]

    def text(path: Path) -> str:  # the page without its embedded images
        return re.sub(r'src="data:image/png;base64,[^"]*"', "", path.read_text())

    assert text(again) == text(finished["out"] / "report.html")


def test_report_before_the_study_ran_is_one_line(finished, tmp_path):
    empty = tmp_path / "empty.db"
    Store(empty).close()
    done = _lrlab("report", str(finished["spec"]), "--store", str(empty), "--out", str(tmp_path / "r.html"))
    assert done.returncode == 2
    assert "has not finished its lr step" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r.html").exists()


def test_a_killed_study_resumes_without_rerunning_finished_pilots(finished, tmp_path):
    spec = tmp_path / "study.toml"
    spec.write_text(SPEC.format(name="resume", data=str(next(finished["tmp"].glob("corpus.txt")))))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrlab", "study", str(spec), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "runs.db").exists():
            with Store(out / "runs.db") as store:
                names = {s["name"] for s in store.studies()}
                if "resume/grid" in names and any(r["status"] == "done" for r in store.runs("resume/grid")):
                    break
        time.sleep(0.2)
    assert proc.poll() is None, "the study ended before it could be killed mid-way"
    os.kill(proc.pid, signal.SIGKILL)  # the driver dies; its workers see it and stop after their step
    proc.wait()
    with Store(out / "runs.db") as store:
        before = {r["id"]: r for step in ("lr", "warmup", "grid") for r in store.runs(f"resume/{step}")}
    finished_before = {i for i, r in before.items() if r["status"] in ("done", "diverged")}
    assert finished_before and any(r["status"] not in ("done", "diverged") for r in before.values())
    done = _lrlab("study", str(spec), "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    with Store(out / "runs.db") as store:
        after = {r["id"]: r for step in ("lr", "warmup", "grid", "schedule") for r in store.runs(f"resume/{step}")}
    assert all(r["status"] in ("done", "diverged") for r in after.values())
    for i in finished_before:  # nothing that had finished ran again
        assert after[i]["attempts"] == before[i]["attempts"] and after[i]["finished"] == before[i]["finished"]
    # the same pilots give the same answer as the uninterrupted study of the same file
    assert (
        load_config(out / "recommendation.toml").to_dict()
        == load_config(finished["out"] / "recommendation.toml").to_dict()
    )


def _reference_edge(optima, kept) -> str | None:
    """A slow, obvious restatement of step 2's rule: the kept batch size's edge, else the majority's, low on a tie."""
    edges = [o.at_grid_edge for o in optima if o.at_grid_edge in ("low", "high")]
    if kept.at_grid_edge in ("low", "high"):
        return kept.at_grid_edge
    if not edges:
        return None
    return "high" if edges.count("high") > edges.count("low") else "low"


def test_the_grid_adds_lr_columns_exactly_while_a_batch_sizes_best_lr_sat_at_an_edge(finished):
    from lrlab.study import Executor, run_study
    from lrlab.study.batch import _run_and_fit, extend_lrs, grid_lrs

    spec = load_spec(finished["spec"])
    with Store(finished["out"] / "runs.db") as store:
        result = run_study(spec, store, Executor(dry=True))
        expected = grid_lrs(result.warmup.chosen.range_lr)
        for _ in range(result.plan.extra_lr_columns):  # replay: a column beyond the edge while a best sits at one
            m = _run_and_fit(spec, store, result.plan, result.warmup, expected, Executor(dry=True))
            edge = _reference_edge(m.optima, m.pick)
            if edge is None:
                break
            expected = extend_lrs(expected, edge)
        grid_runs = store.runs(f"{HOSTILE}/grid")
    assert result.batch.lrs == expected
    assert sorted({r["cell"]["lr"] for r in grid_runs}) == list(expected)
    assert len(grid_runs) == 3 * len(expected)
