"""Curve loaders: CSV and JSONL, the schedule precedence rules, and one clear line for each bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lrlab.errors import InputError
from lrlab.laws import load_curve, load_curves
from lrlab.schedules import parse, write_csv

SPEC = "cosine:peak=1e-3,warmup=10,total=100,final=1e-4"


def write(path, text):
    path.write_text(text)
    return path


def sparse_csv(tmp_path, name="run"):
    rows = "".join(f"{s},{parse(SPEC)(s)},{3.0 - s / 100},7\n" for s in range(10, 100, 10))
    return write(tmp_path / f"{name}.csv", "step,lr,loss,extra\n" + rows)


def test_explicit_schedule_wins_over_sidecar_and_column(tmp_path):
    path = sparse_csv(tmp_path)
    write_csv(parse("constant:peak=5e-4"), tmp_path / "run.lr.csv", 100)
    curve = load_curve(path, schedule=SPEC)
    np.testing.assert_array_equal(curve.lr, parse(SPEC).values(91))
    assert curve.schedule == str(parse(SPEC))


def test_sidecar_is_used_when_no_schedule_is_given(tmp_path):
    path = sparse_csv(tmp_path)
    write_csv(parse(SPEC), tmp_path / "run.lr.csv", 100)
    curve = load_curve(path)
    np.testing.assert_allclose(curve.lr, parse(SPEC).values(91))
    np.testing.assert_array_equal(curve.steps, np.arange(10, 100, 10))
    np.testing.assert_allclose(curve.loss, 3.0 - curve.steps / 100)


def test_dense_lr_column_is_enough(tmp_path):
    rows = "".join(f"{s},{1e-3 / (s + 1)},{3 - s / 10}\n" for s in range(20))
    curve = load_curve(write(tmp_path / "d.csv", "step,lr,loss\n" + rows))
    np.testing.assert_allclose(curve.lr, 1e-3 / (np.arange(20) + 1))


def test_sparse_lr_column_without_schedule_is_an_error_that_says_so(tmp_path):
    with pytest.raises(InputError, match="lr column is sparse"):
        load_curve(sparse_csv(tmp_path))


def test_jsonl_records(tmp_path):
    lines = [json.dumps({"step": s, "loss": 3 - s / 100, "note": "x"}) for s in (5, 10, 20)]
    curve = load_curve(write(tmp_path / "r.jsonl", "\n".join(lines) + "\n"), schedule=SPEC)
    np.testing.assert_array_equal(curve.steps, [5, 10, 20])
    assert curve.name == "r"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("step,lr,loss\n0,1e-3,3\n2,1e-3,2.9\n1,1e-3,2.8\n", "unsorted step 1"),
        ("step,lr,loss\n0,1e-3,3\n1,1e-3,2.9\n1,1e-3,2.8\n", "duplicate step 1"),
        ("step,lr,loss\n0,1e-3,3\n1,1e-3,nan\n", "loss nan at step 1"),
        ("step,lr,loss\n0,1e-3,3\n1,1e-3,-0.5\n", "loss -0.5 at step 1"),
        ("step,lr,loss\n0,1e-3,3\n1,1e-3,0\n", "loss 0.0 at step 1"),
        ("step,lr,loss\n0,1e-3,3\nx,1e-3,2\n", r"c.csv:3: expected an integer step"),
        ("step,lr,loss\n0,1e-3,3\n1,2\n", r"c.csv:3: 2 fields"),
        ("time,value\n0,3\n", "header must name columns 'step' and 'loss'"),
        ("", "empty file"),
    ],
)
def test_bad_files_give_one_line(tmp_path, text, message):
    with pytest.raises(InputError, match=message) as err:
        load_curve(write(tmp_path / "c.csv", text))
    assert "\n" not in str(err.value)


def test_bad_jsonl_line(tmp_path):
    with pytest.raises(InputError, match=r"j.jsonl:2: not JSON"):
        load_curve(write(tmp_path / "j.jsonl", '{"step": 0, "loss": 3}\n{oops\n'), schedule=SPEC)
    with pytest.raises(InputError, match=r"j.jsonl:1: expected an object"):
        load_curve(write(tmp_path / "j.jsonl", "[1, 2]\n"), schedule=SPEC)


def test_schedule_shorter_than_the_curve(tmp_path):
    path = write(tmp_path / "c.csv", "step,loss\n10,3\n150,2\n")
    with pytest.raises(InputError, match="covers 100 steps but the curve runs to step 150"):
        load_curve(path, schedule=SPEC)
    write_csv(parse(SPEC), tmp_path / "c.lr.csv", 100)
    with pytest.raises(InputError, match="covers 100 steps"):
        load_curve(path)


def test_missing_lr_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="no LR"):
        load_curve(write(tmp_path / "c.csv", "step,loss\n10,3\n"))
    with pytest.raises(InputError, match="no such file"):
        load_curve(tmp_path / "absent.csv")


def test_one_schedule_per_curve(tmp_path):
    path = sparse_csv(tmp_path)
    with pytest.raises(InputError, match="schedules: got 2 for 1 curves"):
        load_curves([str(path)], [SPEC, SPEC])


def test_smoothing_averages_blocks(tmp_path):
    curve = load_curve(sparse_csv(tmp_path), schedule=SPEC).smoothed(3)
    np.testing.assert_array_equal(curve.steps, [20, 50, 80])
    np.testing.assert_allclose(curve.loss, [2.8, 2.5, 2.2])


def test_binary_file_is_an_input_error(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xff\xfe\x00\x81binary")
    with pytest.raises(InputError, match="not UTF-8 text"):
        load_curve(path, schedule=SPEC)


def test_a_loss_before_any_learning_rate_is_an_input_error(tmp_path):
    """lr(0) = 0 (a t/W warmup) leaves no LR area at step 0, where power-law terms are infinite."""
    rows = "step,loss,lr\n" + "".join(f"{t},{5 - 0.01 * t},{1e-4 * t}\n" for t in range(20))
    write(tmp_path / "run.csv", rows)
    with pytest.raises(InputError, match="comes before any learning rate"):
        load_curve(tmp_path / "run.csv")


def test_an_lr_column_with_gaps_is_named_as_such(tmp_path):
    write(tmp_path / "run.csv", "step,loss,lr\n0,5,1e-3\n1,4.9,\n2,4.8,1e-3\n")
    with pytest.raises(InputError, match="lr column has no value at step 1"):
        load_curve(tmp_path / "run.csv")
