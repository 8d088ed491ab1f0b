"""Outputs: created where asked (missing folders too), never over an input or another output, written whole,
keeping the permissions and links of what they replace."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lrlab.cli import app
from lrlab.datasets import mpl_curve_path, mpl_schedule_spec
from lrlab.errors import InputError
from lrlab.files import atomic_write, check_distinct, write_text

CURVE = mpl_curve_path(25, "cosine_24000")
SPEC = mpl_schedule_spec("cosine_24000")


def run(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def curve(tmp_path) -> Path:
    path = tmp_path / "c.csv"
    path.write_bytes(CURVE.read_bytes())
    return path


@pytest.fixture
def fit_file(tmp_path, curve) -> Path:
    out = tmp_path / "fit.json"
    assert run("fit", curve, "--schedule", SPEC, "--law", "momentum", "--out", out).exit_code == 0
    return out


def test_outputs_into_missing_folders_are_created(tmp_path, curve):
    res = run("fit", curve, "--schedule", SPEC, "--law", "momentum", "--out", tmp_path / "a/b/fit.json",
              "--plot", tmp_path / "p/q.png")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "a/b/fit.json").read_text())["law"] == "momentum"
    assert (tmp_path / "p/q.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--out", "{curve}"), "is also the curve"),
        (("--out", "{tmp}/f.png", "--plot", "{tmp}/f.png"), "is also --out"),
    ],
)
def test_fit_never_writes_over_its_inputs_or_its_other_output(tmp_path, curve, args, message):
    before = curve.read_bytes()
    argv = [a.format(curve=curve, tmp=tmp_path) for a in args]
    res = run("fit", curve, "--schedule", SPEC, "--law", "momentum", *argv)
    assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert curve.read_bytes() == before and not (tmp_path / "f.png").exists()


def test_optimize_and_predict_never_write_over_the_fit(tmp_path, fit_file):
    before = fit_file.read_bytes()
    res = run("optimize", fit_file, "--steps", 24000, "--peak-lr", 3e-4, "--out-csv", fit_file)
    assert res.exit_code == 2 and "is also the fit file" in res.stderr
    res = run("predict", fit_file, "--schedule", SPEC, "--steps", 24000, "--plot", tmp_path / "link.png")
    assert res.exit_code == 0
    (tmp_path / "alias.png").symlink_to(fit_file)
    res = run("predict", fit_file, "--schedule", SPEC, "--steps", 24000, "--plot", tmp_path / "alias.png")
    assert res.exit_code == 2 and "is also the fit file" in res.stderr  # a link to the input is the input
    assert fit_file.read_bytes() == before


def test_check_distinct_compares_real_files(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("x")
    check_distinct({"--out": tmp_path / "b.txt"}, {"the input": a})  # different files: fine
    with pytest.raises(InputError, match="is also the input"):
        check_distinct({"--out": tmp_path / "." / "a.txt"}, {"the input": a})


def test_a_replaced_file_keeps_its_mode_and_a_link_is_written_through(tmp_path):
    target = tmp_path / "private.json"
    target.write_text("old")
    target.chmod(0o600)
    write_text(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o600
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_text(link, "through the link")
    assert link.is_symlink() and target.read_text() == "through the link"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write("half")
        raise RuntimeError("the work failed half-way")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"resid_std": 1e300}, "resid_std and model_error must lie in [0, 1.0)"),
        ({"model_error": 2.0}, "resid_std and model_error must lie in [0, 1.0)"),
        ({"cov": [[1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]}, "cov is not a covariance"),
        ({"cov": [[1.0, 0.5, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]}, "cov is not a covariance"),
    ],
)
def test_tampered_fit_files_are_refused(tmp_path, fit_file, change, message):
    tampered = tmp_path / "t.json"
    tampered.write_text(json.dumps(json.loads(fit_file.read_text()) | change))
    res = run("predict", tampered, "--schedule", SPEC, "--steps", 24000, "--at", 23999)
    assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_predicting_far_from_the_fitted_peak_warns_it_is_an_extrapolation(fit_file):
    res = run("predict", fit_file, "--schedule", "constant:peak=1", "--steps", 24000, "--at", 23999, "--json")
    assert "warning: peak LR 1 is" in res.stderr and "an extrapolation" in res.stderr
    quiet = run("predict", fit_file, "--schedule", SPEC, "--steps", 24000, "--at", 23999, "--json")
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr


def test_file_names_with_control_characters_are_printed_escaped(tmp_path, curve):
    odd = tmp_path / "c\x1b]0;x.csv"
    odd.write_bytes(curve.read_bytes())
    res = run("fit", odd, "--schedule", SPEC, "--law", "momentum", "--out", tmp_path / "fit.json")
    assert res.exit_code == 0 and "\x1b" not in res.stdout and "\\x1b" in res.stdout


def test_a_run_that_fails_after_its_first_step_is_one_line_and_exit_1(tmp_path, monkeypatch):
    """A failure once the records are open is recorded (status failed, traceback in run.json) and reported in one
    line with exit code 1; bad input is exit 2."""
    import lrlab.train.loop as loop

    real = loop.Trainer.evaluate

    def failing(self):
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(loop.Trainer, "evaluate", failing)
    text = tmp_path / "t.txt"
    text.write_text(CURVE.read_text() * 20)
    out = tmp_path / "r"
    res = run("train", "--steps", 3, "--set", f"data='{text}'", "--set", "seq_len=32", "--batch-size", 4,
              "--set", "eval_every=2", "--no-progress", "--out", out)  # fmt: skip
    monkeypatch.setattr(loop.Trainer, "evaluate", real)
    assert res.exit_code == 1 and len(res.stderr.strip().splitlines()) == 1
    assert "training failed: RuntimeError: the disk went away" in res.stderr and str(out / "run.json") in res.stderr
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["status"] == "failed" and "the disk went away" in recorded["traceback"]
    assert os.path.exists(out / "metrics.jsonl")
