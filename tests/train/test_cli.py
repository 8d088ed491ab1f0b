"""``lrlab train``: records in --out, diverged is exit 0, bad input is one line and exit 2, --resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from lrlab.cli.train import register
from lrlab.schedules import parse
from lrlab.train import load_config

FAST = ["--set", "seq_len=32", "--batch-size", "4", "--set", "eval_batches=1", "--no-progress"]


@pytest.fixture
def invoke(text_file):
    app = typer.Typer()
    register(app)
    app.command("noop", hidden=True)(lambda: None)  # two commands, so "train" is addressed by name as in lrlab
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["train", *args, "--set", f"data='{text_file}'", *FAST])


def test_preset_and_steps_write_metrics_and_run_json(invoke, tmp_path, read_metrics):
    result = invoke("--preset", "tiny", "--steps", "3", "--seed", "2", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "done: 3 steps" in result.output
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [0, 1, 2] and all({"lr", "train_loss"} <= r.keys() for r in rows)
    assert "val_loss" in rows[-1]
    run = json.loads((tmp_path / "run.json").read_text())
    assert (run["status"], run["steps_done"], run["config"]["seed"], run["config"]["batch_size"]) == ("done", 3, 2, 4)


def test_config_file_then_resume_with_more_steps(invoke, tmp_path, read_metrics):
    cfg = tmp_path / "run.toml"
    cfg.write_text('steps = 2\nschedule = "constant:peak=1e-3"\noptimizer = "torch-adamw"\n')
    assert invoke(str(cfg), "--out", str(tmp_path / "r")).exit_code == 0
    result = invoke(str(cfg), "--steps", "4", "--out", str(tmp_path / "r"), "--resume")
    assert result.exit_code == 0, result.output
    assert [r["step"] for r in read_metrics(tmp_path / "r")] == [0, 1, 2, 3]


def test_divergence_is_a_result_with_exit_code_0(invoke, tmp_path):
    result = invoke("--steps", "40", "--schedule", "constant:peak=1e3", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "diverged at step" in result.output
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "diverged"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "stpes=3"], "unknown key 'stpes'"),
        (["--set", "steps=three"], "key 'steps' expects int or None"),
        (["--optimizer", "sgd9"], "unknown optimizer 'sgd9'"),
        (["--schedule", "cosine:peak=oops"], "cosine:peak=oops"),
        (["--resume"], "--resume needs --out DIR"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(invoke, args, message):
    result = invoke("--steps", "2", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_resume_from_a_corrupted_checkpoint_is_exit_2(invoke, tmp_path):
    assert invoke("--steps", "2", "--out", str(tmp_path)).exit_code == 0
    (tmp_path / "checkpoints" / "ckpt-00000002.pt").write_bytes(b"\x00garbage")
    result = invoke("--steps", "4", "--out", str(tmp_path), "--resume")
    assert result.exit_code == 2 and "is corrupted" in result.output


def test_progress_bar_run_and_the_examples_load(invoke, tmp_path):
    result = invoke("--steps", "2", "--progress")
    assert result.exit_code == 0 and "done: 2 steps" in result.output
    for name in ("tiny", "small"):
        cfg = load_config(Path(__file__).parents[2] / "examples" / f"{name}.toml")
        assert cfg.model.preset == name and parse(cfg.schedule).total == cfg.steps
