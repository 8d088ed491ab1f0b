"""``lrlab find-lr``: both methods on a tiny config, their JSON, plots and errors."""

import inspect
import json

import pytest
from typer.testing import CliRunner

import lrlab.schedules.spec
from lrlab.cli import app

runner = CliRunner()


@pytest.fixture
def small_data(tmp_path, monkeypatch):
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "corpus.txt"
    path.write_text(inspect.getsource(lrlab.schedules.spec) * 4)
    return ["--set", f"data='{path}'", "--set", "seq_len=32", "--set", "batch_size=4", "--preset", "tiny"]


def test_range_test_json_and_plot(small_data, tmp_path):
    plot = tmp_path / "range.png"
    result = runner.invoke(app, ["find-lr", *small_data, "--steps", "40", "--json", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["method"] == "range" and len(data["lrs"]) == len(data["losses"]) <= 40
    assert data["lrs"][0] == pytest.approx(1e-6)
    for lr in data["suggestions"].values():
        assert data["lrs"][0] <= lr <= data["lrs"][-1]
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_catapult_json_gives_a_bracketed_eta_c_and_a_shorter_warmup(small_data):
    schedule = ["--set", "schedule='cosine:peak=1.0,warmup=100,total=300'"]
    result = runner.invoke(app, ["find-lr", *small_data, *schedule, "--method", "catapult", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stable_lr"] < data["eta_c"] < data["catapult_lr"] <= 1.06 * data["stable_lr"]
    assert [t["catapult"] for t in data["trials"] if t["lr"] >= data["catapult_lr"]] == [True] * sum(
        t["lr"] >= data["catapult_lr"] for t in data["trials"]
    )
    assert "init=" in data["schedule"] and "warmup=" in data["schedule"]


def test_bad_method_is_one_line_exit_2(small_data):
    result = runner.invoke(app, ["find-lr", *small_data, "--method", "bisect"])
    assert result.exit_code == 2 and "bisect" in result.output and len(result.output.strip().splitlines()) == 1
