"""The demo's training parts: files, the warmup finding, and the law study's claims in the README."""

import csv
import json

import pytest
import torch
from typer.testing import CliRunner

from lrlab.cli import app
from lrlab.report.law_study import BASELINE
from lrlab.train.corpus import load_data


def _demo(tmp_path, monkeypatch, *args):
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_warmup_part_shows_what_warmup_is_for(tmp_path, monkeypatch):
    out = _demo(tmp_path, monkeypatch, "--parts", "warmup", "--train-steps", "40")
    warm = {r["run"]: r for r in csv.DictReader(open(out / "warmup.csv"))}
    assert set(warm) == {"AdamW, 4-step warmup", "AdamW, no warmup", "GI-AdamW, no warmup"}  # warmup: 10% of 40
    first = {name: float(r["first_update_rel"]) for name, r in warm.items()}
    # without warmup AdamW's first update is larger relative to the weights; Adam's first step is sign-like, so it
    # scales with lr(0) = peak / 4 here (measured 0.577 against 0.144)
    assert first["AdamW, no warmup"] > 3 * first["AdamW, 4-step warmup"]
    # GI-Adam's second moment starts at g0^2, which keeps its first update small without any warmup (0.018)
    assert first["GI-AdamW, no warmup"] < 0.2 * first["AdamW, no warmup"]
    env = json.loads((out / "environment.json").read_text())
    # what the runs recorded they ran with: the study pins 1 thread on the CPU, whatever this process uses
    assert env["threads"] == 1 and env["device"] == "cpu" and env["data"] == "stdlib"
    assert env["data_fingerprint"] == load_data("stdlib").fingerprint() and env["torch_version"] == torch.__version__
    assert (out / "warmup.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_law_part_at_the_readme_configuration(tmp_path, monkeypatch):
    """The README's claims, at its configuration (400-step runs, seed 0, 1 thread). Measured here (AMD EPYC,
    AVX512): held-out PredE momentum 0.93%, mpl 0.62%, mpl-qexp 0.79%, momentum-floor (auto's choice) 0.63%; on
    the decay phase mpl 0.50% against 2.03% for the no-law baseline (the constant run's curve), final-loss error
    0.93% against 2.82%. An earlier session's machine (another CPU) gave 0.97 / 0.74 / 0.83% and mpl 0.69% vs
    2.06% on the decay phase; with 2 threads or seed 1 there every law stayed under 1.2% held-out PredE and mpl
    beat the baseline on the decay phase. The bounds leave that margin, since the CPU model, thread count and
    kernel path move these chaotic short runs."""
    out = _demo(tmp_path, monkeypatch, "--parts", "laws")
    table = list(csv.DictReader(open(out / "laws.csv")))
    rows = {r["law"]: {k: float(v) for k, v in r.items() if k not in ("law", "chosen")} for r in table}
    assert list(rows) == ["momentum", "mpl", "mpl-qexp", "momentum-floor", "auto", BASELINE]
    base = rows[BASELINE]
    for law in ("momentum", "mpl", "mpl-qexp", "momentum-floor", "auto"):
        assert rows[law]["heldout_prede"] < 0.015, law
    chosen = table[4]["chosen"]
    assert chosen in rows and rows["auto"]["final_pred"] == rows[chosen]["final_pred"]  # auto is one of the laws
    assert rows["mpl"]["decay_prede"] < base["decay_prede"]
    assert rows["mpl"]["final_error"] < base["final_error"]
    assert (out / "laws.png").read_bytes()[:4] == b"\x89PNG"
