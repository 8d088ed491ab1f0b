"""The demo's training parts on a few steps: files, and the warmup finding they exist to show."""

import csv

from typer.testing import CliRunner

from lrlab.cli import app


def test_warmup_and_law_parts(tmp_path, monkeypatch):
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--parts", "warmup,laws", "--train-steps", "45", "--out", str(out)])
    assert result.exit_code == 0, result.output
    warm = {r["run"]: r for r in csv.DictReader(open(out / "warmup.csv"))}
    assert set(warm) == {"AdamW, 4-step warmup", "AdamW, no warmup", "GI-AdamW, no warmup"}  # warmup: 10% of 45
    # the point of warmup: without it AdamW's first update is larger relative to the weights; Adam's first
    # step is sign-like, so it scales with lr(0) = peak / 4 here
    assert float(warm["AdamW, no warmup"]["first_update_rel"]) > 3 * float(
        warm["AdamW, 4-step warmup"]["first_update_rel"]
    )
    # GI-Adam's second moment starts at g0^2, which keeps its first update small without any warmup
    assert float(warm["GI-AdamW, no warmup"]["first_update_rel"]) < 0.2 * float(
        warm["AdamW, no warmup"]["first_update_rel"]
    )
    laws = list(csv.DictReader(open(out / "laws.csv")))
    assert [r["law"] for r in laws] == ["momentum", "mpl", "mpl-qexp"]
    assert all(0 <= float(r["heldout_prede"]) < 0.2 for r in laws)
    for name in ("warmup.png", "laws.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
