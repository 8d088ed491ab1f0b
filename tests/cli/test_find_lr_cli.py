"""``lrlab find-lr``: both methods on a tiny config, their JSON, plots and errors."""

import inspect
import json

import numpy as np
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
    assert set(data) == {"method", "suggestions", "stopped_early", "lrs", "losses", "smoothed"}
    assert data["method"] == "range" and set(data["suggestions"]) == {"steepest", "valley"}
    lrs, losses, smoothed = (np.array(data[k]) for k in ("lrs", "losses", "smoothed"))
    assert len(lrs) == len(losses) == len(smoothed) <= 40
    np.testing.assert_allclose(lrs, np.geomspace(1e-6, 1.0, 40)[: len(lrs)], rtol=1e-12)  # the CLI's default sweep
    ema = np.cumsum(0.95 ** -np.arange(len(losses)) * losses) * 0.05 * 0.95 ** np.arange(len(losses))
    np.testing.assert_allclose(smoothed, ema / (1 - 0.95 ** np.arange(1, len(losses) + 1)), rtol=1e-9)
    # Measured (seed 0, this config): the loss starts at ln 256 = 5.45, falls fastest at steepest = 0.014 (4.72)
    # and is at 5.00 at valley = 0.0049; the tiny GPT's known-good peak LR is 1e-2 (the demo's). Both suggestions
    # must lie within a decade of it, where the loss has already dropped well below its start.
    first = smoothed[0]
    for name, lr in data["suggestions"].items():
        assert 1e-3 < lr < 0.1, (name, lr)
        assert smoothed[int(np.argmin(abs(np.log(lrs / lr))))] < first - 0.2, name
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
