"""``lrlab schedule show|compare``, ``lrlab demo``, ``--version``: output, JSON, plots and exit codes."""

import json

import pytest
from typer.testing import CliRunner

from lrlab import __version__
from lrlab.cli import app
from lrlab.schedules import parse, write_csv

runner = CliRunner()
COSINE = "cosine:peak=1e-3,warmup=100,total=1000,final=1e-4"


def run(*args):
    return runner.invoke(app, list(args))


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_show_json_at_requested_steps_matches_library():
    result = run("schedule", "show", COSINE, "--json", "--at", "0,1,99,100,500,999")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["steps"] == [0, 1, 99, 100, 500, 999]
    assert data["lr"] == parse(COSINE)(data["steps"]).tolist()


def test_show_json_every_and_default_all_steps():
    every = json.loads(run("schedule", "show", COSINE, "--json", "--every", "250").stdout)
    assert every["steps"] == [0, 250, 500, 750]
    full = json.loads(run("schedule", "show", "constant:peak=1e-3,warmup=100", "--json", "--steps", "300").stdout)
    assert len(full["lr"]) == 300 and full["lr"][0] == 1e-5


def test_show_table_lists_phase_boundaries(tmp_path):
    plot = tmp_path / "s.png"
    result = run("schedule", "show", "wsd:peak=1e-3,warmup=100,total=1000,decay=0.2", "--plot", str(plot))
    assert result.exit_code == 0, result.output
    for step in ("99", "100", "800", "999"):
        assert f" {step} " in result.output
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_show_accepts_a_csv_schedule(tmp_path):
    path = tmp_path / "lr.csv"
    write_csv(parse(COSINE), path, 1000)
    data = json.loads(run("schedule", "show", str(path), "--json", "--at", "0,500").stdout)
    assert data["lr"] == parse(COSINE)([0, 500]).tolist()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["schedule", "show", "cosine:peak=1e-3,warmup=100,totl=1000"], "position 28 ('totl')"),
        (["schedule", "show", "constant:peak=1e-3"], "--steps"),
        (["schedule", "show", COSINE, "--at", "1,x"], "--at"),
        (["schedule", "show", COSINE, "--at", "1", "--every", "2"], "not both"),
        (["schedule", "show", "missing.csv"], "missing.csv: no such file"),
        (["schedule", "compare", COSINE], "two or more"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(args, needle):
    result = run(*args)
    assert result.exit_code == 2
    assert needle in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_compare_json_and_plot(tmp_path):
    wsd = "wsd:peak=1e-3,warmup=100,total=2000,decay=0.2"
    result = run("schedule", "compare", COSINE, wsd, "--json", "--at", "0,1500")
    data = json.loads(result.stdout)
    assert data["specs"] == [COSINE, str(parse(wsd))]
    assert data["lr"][0] == [1e-5, 1e-4] and data["lr"][1] == [1e-5, 1e-3]
    plot = tmp_path / "cmp.png"
    result = run("schedule", "compare", COSINE, wsd, "--plot", str(plot))
    assert result.exit_code == 0 and plot.read_bytes()[:4] == b"\x89PNG"
    assert "#1" in result.output and "#2" in result.output


def test_every_command_has_help_with_examples():
    commands = (["schedule", "show"], ["schedule", "compare"], ["demo"], ["fit"], ["predict"], ["optimize"])
    for args in (*commands, ["train"], ["find-lr"]):
        result = run(*args, "--help")
        assert result.exit_code == 0 and "Example" in result.output


def test_demo_schedule_gallery_writes_plot_and_table(tmp_path):
    result = run("demo", "--parts", "schedules", "--out", str(tmp_path), "--steps", "2000")
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "schedules.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[0] == "step" and "WSD linear 20%" in header and len(header) >= 8
    steps = [int(r.split(",")[0]) for r in rows[1:]]
    assert steps == sorted(set(steps)) and 99 in steps and 100 in steps  # warmup 2000 // 20 = 100 steps
    assert (tmp_path / "schedules.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "warmup.csv").exists()


def test_demo_rejects_unknown_parts():
    result = run("demo", "--parts", "schedules,surge")
    assert result.exit_code == 2 and "surge" in result.output
