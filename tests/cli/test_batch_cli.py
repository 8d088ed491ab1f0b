"""``lrlab surge | bnoise | scale`` end to end: the JSON the issue specifies, groups, store input, over-training
refits, plots, the bundled public table, the across-scale fit, and the example study."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from typer.testing import CliRunner

from lrlab.cli import app
from lrlab.store import Store
from lrlab.sweep.study import load_study

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def _surge_best(b: float, b_noise: float) -> float:
    return 3e-3 / (0.5 * (math.sqrt(b_noise / b) + math.sqrt(b / b_noise)))


def _write_grid(path: Path, optimizers=(("adam", 48.0), ("lion", 20.0)), steps=(100, 200), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["lr", "batch_size", "loss", "steps", "optimizer"])
        for name, b_noise in optimizers:
            for b in (8, 16, 32, 64, 128, 256):
                best = _surge_best(b, b_noise)
                for lr in best * 2.0 ** (np.arange(7) - 3 + rng.uniform(-0.5, 0.5)):
                    for s in steps:
                        loss = (
                            2 + 20 / math.sqrt(s * b) + 0.15 * math.log(lr / best) ** 2 + 0.003 * rng.standard_normal()
                        )
                        w.writerow([lr, b, loss, s, name])
    return path


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_surge_json_per_group(tmp_path):
    grid = _write_grid(tmp_path / "grid.csv")
    out = json.loads(_ok(["surge", str(grid), "--group", "optimizer", "--predict-batch", "100,512", "--json"]))
    groups = {g["group"]["optimizer"]: g for g in out["groups"]}
    assert set(groups) == {"adam", "lion"}
    adam = groups["adam"]
    assert set(adam) >= {"law", "params", "intervals", "b_noise", "per_batch", "predicted", "cv_error"}
    assert adam["law"] == "surge" and adam["unit"] == "sequences"
    assert adam["params"]["b_noise"] == pytest.approx(48, rel=0.2)
    assert groups["lion"]["params"]["b_noise"] == pytest.approx(20, rel=0.2)
    lo, hi = adam["intervals"]["b_noise"]
    assert lo < adam["params"]["b_noise"] < hi
    assert [p["batch_size"] for p in adam["per_batch"]] == [8, 16, 32, 64, 128, 256]
    assert all(set(p) >= {"batch_size", "best_lr", "interval", "at_grid_edge"} for p in adam["per_batch"])
    assert [p["batch_size"] for p in adam["predicted"]] == [100, 512]
    assert adam["predicted"][0]["best_lr"] == pytest.approx(_surge_best(100, 48), rel=0.1)
    assert set(adam["cv_error"]) == {"surge", "sgd", "power"}
    assert adam["b_noise"]["surge_peak"]["value"] == adam["params"]["b_noise"]
    assert [row["steps"] for row in adam["over_training"]["by_steps"]] == [100, 200]


def test_surge_table_plot_and_single_grid_json(tmp_path):
    grid = _write_grid(tmp_path / "grid.csv", optimizers=(("adam", 48.0),))
    plot = tmp_path / "surge.png"
    text = _ok(["surge", str(grid), "--plot", str(plot)])
    assert "law: surge" in text and "B_noise (sequences): surge peak" in text and "over training" in text
    image = matplotlib.image.imread(plot)
    assert image.shape[0] > 500 and image.shape[1] > 500 and image[..., :3].std() > 0.05  # drawn, not blank
    one = json.loads(_ok(["surge", str(grid), "--law", "power", "--json"]))
    assert one["law"] == "power" and set(one["params"]) == {"c", "k"}


def test_one_bad_group_leaves_the_others(tmp_path):
    grid = _write_grid(tmp_path / "grid.csv", optimizers=(("adam", 48.0),), steps=(200,))
    with open(grid, "a") as fh:  # a group with one batch size: no law, reported, the adam group still fitted
        fh.write("".join(f"{lr},8,{2 + (i - 2) ** 2 / 10},200,$\\bad$\n" for i, lr in enumerate([1e-3, 2e-3, 4e-3])))
    out = json.loads(_ok(["surge", str(grid), "--group", "optimizer", "--predict-batch", "1000", "--json"]))
    by = {g["group"]["optimizer"]: g for g in out["groups"]}
    assert "2 or more batch sizes" in by["$\\bad$"]["error"]
    assert by["adam"]["law"] == "surge" and by["adam"]["predicted"][0]["extrapolated"]
    plot = tmp_path / "p.png"
    _ok(["surge", str(grid), "--group", "optimizer", "--plot", str(plot)])  # a $ in a group name is no math
    assert plot.stat().st_size > 0


def test_surge_reads_a_store(tmp_path):
    rng = np.random.default_rng(1)
    with Store(tmp_path / "runs.db") as store:
        sid = store.study("s")
        for b in (8, 16, 32, 64, 128):
            best = _surge_best(b, 32)
            for lr in best * 2.0 ** (np.arange(6) - 2.5):
                config = {"batch_size": b, "seq_len": 16, "steps": 20, "eval_every": 10, "optimizer": "torch-adamw",
                          "schedule": f"cosine:peak={lr},warmup=2,total=20"}  # fmt: skip
                run = store.add_run(sid, config, {"lr": float(lr), "batch_size": b})
                store.claim(run, meta={"total_steps": 20})
                rows = [{"step": s, "val_loss": 2 + 10 / math.sqrt((s + 1) * b) + 0.15 * math.log(lr / best) ** 2
                         + 0.002 * rng.standard_normal(), "gns": 30.0} for s in (9, 19)]  # fmt: skip
                store.log_metrics(run, rows)
                store.finish_run(run, "done", {})
    out = json.loads(_ok(["surge", "--store", str(tmp_path / "runs.db"), "--study", "s", "--json"]))
    assert out["params"]["b_noise"] == pytest.approx(32, rel=0.3)
    assert out["b_noise"]["gns"] == 30.0
    assert out["b_noise"]["spread"] == pytest.approx(
        max(out["params"]["b_noise"], 30) / min(out["params"]["b_noise"], 30)
    )


def test_bnoise_example_grows_with_model_size():
    out = json.loads(_ok(["bnoise", "--example", "--json"]))
    models = [g["group"]["model"] for g in out["groups"]]
    assert models == ["85M", "151M", "302M", "604M", "1.2B"]
    values = [g["b_noise"] for g in out["groups"]]
    assert all(a < b for a, b in itertools.pairwise(values))
    assert all(g["interval"][0] < g["b_noise"] < g["interval"][1] for g in out["groups"])


def test_bnoise_csv_and_plot(tmp_path):
    path = tmp_path / "steps.csv"
    b = np.array([32, 64, 128, 256, 512, 1024])
    path.write_text("batch_size,steps\n" + "".join(f"{x},{1000 * (1 + 200 / x):.1f}\n" for x in b))
    plot = tmp_path / "bn.svg"
    out = json.loads(_ok(["bnoise", str(path), "--json", "--plot", str(plot)]))
    assert out["b_noise"] == pytest.approx(200, rel=1e-3)
    assert out["s_min"] == pytest.approx(1000, rel=1e-3)
    assert plot.read_text().lstrip().startswith("<?xml")


def test_scale_recovers_a_known_law(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "scale.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["lr", "batch_size", "loss", "n", "d"])
        for n in (1e6, 4e6, 16e6):
            for d in (1e8, 4e8, 1.6e9):
                eta, bopt = 1.79 * n**-0.713 * d**0.307, 0.58 * d**0.571
                for b in bopt * 2.0 ** (np.arange(7) - 3):
                    for lr in eta * 2.0 ** (np.arange(7) - 3):
                        loss = 3 + 0.1 * math.log(lr / eta) ** 2 + 0.05 * math.log(b / bopt) ** 2
                        w.writerow([lr, b, loss + 0.001 * rng.standard_normal(), n, d])
    out = json.loads(_ok(["scale", str(path), "--group", "n", "--group", "d", "--json"]))
    lr_law, batch_law = out["laws"]["eta_opt"], out["laws"]["B_opt"]
    assert lr_law["exponents"]["N"] == pytest.approx(-0.713, abs=0.03)
    assert lr_law["exponents"]["D"] == pytest.approx(0.307, abs=0.03)
    assert batch_law["exponents"]["D"] == pytest.approx(0.571, abs=0.03)
    assert lr_law["logo_error"] < 0.05
    first = out["groups"][0]
    step = next(p for p in first["published"] if p["name"] == "Step Law")
    assert first["best_lr"] == pytest.approx(step["eta_opt"], rel=0.05)
    text = _ok(["scale", str(path), "--group", "n", "--group", "d"])
    assert "eta_opt = " in text and "N^-0.7" in text and "B_opt = " in text and "Step Law" in text


def test_the_example_study_is_a_real_surge_grid():
    study = load_study(EXAMPLES / "surge.toml")
    by_opt: dict[str, set] = {}
    for cell in study.cells:
        by_opt.setdefault(cell.values["optimizer"], set()).add((cell.values["lr"], cell.values["batch_size"]))
    assert set(by_opt) == {"torch-adamw", "lion"}
    for cells in by_opt.values():
        assert len({b for _, b in cells}) >= 5 and len({lr for lr, _ in cells}) >= 6
