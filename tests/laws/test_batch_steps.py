"""B_noise from steps vs examples (lrlab.laws.batch.steps): recovery, an independent brute-force optimum, interval
coverage, the bounds, every bad input, the CSV reader, and the bundled critical-batch-size table."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrlab.datasets import CBS_SEQ_LEN, critical_batch_size, root
from lrlab.errors import InputError
from lrlab.laws.batch.steps import MAX_ROWS, fit_steps, load_steps

CBS_DIGEST = "eb9fd96060b931c44051ec2044e69e30a710af5c1817af20d754d02a8557d6e2"  # steps_to_target.csv, as copied
B9 = 2.0 ** np.arange(6, 15)  # 64 ... 16384, the batch sizes of the public table


def truth(batch_size, s_min, b_noise):
    return s_min * (1.0 + b_noise / np.asarray(batch_size, dtype=float))


@st.composite
def designs(draw, span_min=1):
    """3-9 distinct batch sizes 2^(k0 + k_i), k_i distinct in 0..13, spanning at least 2^span_min."""
    k0 = draw(st.integers(0, 10))
    ks = draw(
        st.lists(st.integers(0, 13), min_size=3, max_size=9, unique=True).filter(lambda v: max(v) - min(v) >= span_min)
    )
    return 2.0 ** (k0 + np.sort(np.array(ks)))


# -- recovery ---------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(designs(), st.floats(-1.0, 1.0), st.floats(0.0, 6.0))
def test_noise_free_steps_give_back_s_min_e_min_and_b_noise(b, where, log10_s_min):
    """B_noise from a tenth of the smallest batch to ten times the largest, S_min from 1 to 1e6 steps."""
    b_noise = math.exp(math.log(b[0]) + (where + 1) / 2 * (math.log(b[-1]) - math.log(b[0])) + where * math.log(10))
    s_min = 10.0**log10_s_min
    fit = fit_steps(b, truth(b, s_min, b_noise))
    assert fit.b_noise == pytest.approx(b_noise, rel=1e-6)
    assert fit.s_min == pytest.approx(s_min, rel=1e-6)
    assert fit.e_min == pytest.approx(s_min * b_noise, rel=1e-6)
    assert not fit.at_bound
    np.testing.assert_allclose(fit.log_residuals, 0.0, atol=1e-9)
    for key, value in (("s_min", s_min), ("e_min", s_min * b_noise), ("b_noise", b_noise)):
        lo, hi = fit.intervals[key]
        assert lo <= value * (1 + 1e-6) and hi >= value * (1 - 1e-6) and hi - lo <= 1e-5 * value  # zero width


@settings(max_examples=60, deadline=None)
@given(designs(span_min=3), st.floats(0.0, 1.0), st.floats(1.0, 5.0), st.data())
def test_small_multiplicative_noise_moves_the_fit_by_about_as_much(b, where, log10_s_min, data):
    """Noise of at most 0.1% on each step count, B_noise inside the batch sizes: the estimates move by at most 30x
    that (the design's worst condition seen is ~4x), the fitted curve by at most sqrt(n) x 0.1% at the data."""
    delta = 1e-3
    b_noise = math.exp(math.log(b[0]) + where * (math.log(b[-1]) - math.log(b[0])))
    s_min = 10.0**log10_s_min
    eps = np.array(data.draw(st.lists(st.floats(-delta, delta), min_size=len(b), max_size=len(b))))
    fit = fit_steps(b, truth(b, s_min, b_noise) * np.exp(eps))
    assert abs(math.log(fit.b_noise / b_noise)) <= 30 * delta
    assert abs(math.log(fit.s_min / s_min)) <= 30 * delta
    assert abs(math.log(fit.e_min / (s_min * b_noise))) <= 30 * delta
    assert np.max(np.abs(np.log(fit.steps_at(b) / truth(b, s_min, b_noise)))) <= math.sqrt(len(b)) * delta * 1.01


def brute_force(b, s, rounds=6, size=81):
    """An independent search of the same objective: sum (log S - log(S_min + E_min / B))^2 on a grid over
    (log S_min, log B_noise), zoomed around the best point ``rounds`` times. Returns (S_min, B_noise, objective)."""
    y = np.log(s)
    ls = np.linspace(math.log(s.min()) - 8, math.log(s.min()) + 1, size)
    lb = np.linspace(math.log(b.min()) - 8, math.log(b.max()) + 8, size)
    for _ in range(rounds):
        grid_s, grid_b = np.meshgrid(ls, lb, indexing="ij")
        model = np.log(np.exp(grid_s)[..., None] + np.exp(grid_s + grid_b)[..., None] / b)
        objective = ((y - model) ** 2).sum(axis=-1)
        i, j = np.unravel_index(int(np.argmin(objective)), objective.shape)
        ds, db = ls[1] - ls[0], lb[1] - lb[0]
        ls = np.linspace(ls[i] - 2 * ds, ls[i] + 2 * ds, size)
        lb = np.linspace(lb[j] - 2 * db, lb[j] + 2 * db, size)
    return math.exp(grid_s[i, j]), math.exp(grid_b[i, j]), float(objective[i, j])


@pytest.mark.parametrize("model", ["85M", "604M"])
def test_the_fit_is_the_optimum_an_independent_brute_force_search_finds(model):
    b, s, _ = critical_batch_size()[model]
    fit = fit_steps(b, s)
    s_min, b_noise, objective = brute_force(b, s)
    assert float(np.sum(fit.log_residuals**2)) <= objective * (1 + 1e-9)
    assert fit.s_min == pytest.approx(s_min, rel=1e-4)
    assert fit.b_noise == pytest.approx(b_noise, rel=1e-4)


def test_a_noisy_synthetic_table_reaches_the_brute_force_optimum_too():
    rng = np.random.default_rng(7)
    b = np.repeat(B9[:7], 2)  # two seeds a batch size
    s = truth(b, 800.0, 3000.0) * np.exp(0.05 * rng.standard_normal(len(b)))
    fit = fit_steps(b, s)
    s_min, b_noise, objective = brute_force(b, s)
    assert float(np.sum(fit.log_residuals**2)) <= objective * (1 + 1e-9)
    assert fit.b_noise == pytest.approx(b_noise, rel=1e-4) and fit.s_min == pytest.approx(s_min, rel=1e-4)


def test_the_linear_form_is_numpy_polyfit_of_one_over_s_on_one_over_e():
    b, s, _ = critical_batch_size()["302M"]
    slope, intercept = np.polyfit(1.0 / (s * b), 1.0 / s, 1)
    fit = fit_steps(b, s)
    assert fit.linear_b_noise == pytest.approx(-slope, rel=1e-9)
    assert fit.linear_s_min == pytest.approx(1.0 / intercept, rel=1e-9)


def test_steps_falling_faster_than_one_over_b_have_no_linear_s_min_and_no_saturation():
    fit = fit_steps([1.0, 2.0, 4.0], [100.0, 48.0, 20.0])  # the line of 1/S on 1/E has a negative intercept
    slope, intercept = np.polyfit(1.0 / (fit.steps * fit.batch_size), 1.0 / fit.steps, 1)
    assert intercept < 0 and math.isnan(fit.linear_s_min) and fit.linear_b_noise == pytest.approx(-slope)
    assert fit.b_noise == math.inf and fit.s_min == 0.0 and fit.intervals["b_noise"][1] == math.inf


# -- intervals --------------------------------------------------------------------------------------------------


def test_profile_intervals_cover_the_truth_close_to_the_nominal_95_percent():
    """300 synthetic tables, fixed seed: 5, 7 or 9 batch sizes (powers of 2 from 64), multiplicative noise of 2%,
    5% or 10%, B_noise log-uniform between twice the smallest and half the largest batch, S_min 1e2-1e4.
    Measured when written: coverage 0.967 (s_min), 0.963 (e_min), 0.963 (b_noise)."""
    rng = np.random.default_rng(20240521)
    hits = {"s_min": 0, "e_min": 0, "b_noise": 0}
    reps = 300
    for r in range(reps):
        n, sigma = (5, 7, 9)[r % 3], (0.02, 0.05, 0.10)[(r // 3) % 3]
        b = B9[:n]
        b_noise = math.exp(rng.uniform(math.log(2 * b[0]), math.log(b[-1] / 2)))
        s_min = math.exp(rng.uniform(math.log(1e2), math.log(1e4)))
        fit = fit_steps(b, truth(b, s_min, b_noise) * np.exp(sigma * rng.standard_normal(n)))
        for key, value in (("s_min", s_min), ("e_min", s_min * b_noise), ("b_noise", b_noise)):
            lo, hi = fit.intervals[key]
            hits[key] += lo <= value <= hi
    coverage = {k: v / reps for k, v in hits.items()}
    assert all(0.88 <= c <= 0.99 for c in coverage.values()), coverage


def test_intervals_contain_the_estimate_and_grow_with_the_level():
    b, s, _ = critical_batch_size()["151M"]
    fits = [fit_steps(b, s, level=q) for q in (0.5, 0.95, 0.99)]
    for key in ("s_min", "e_min", "b_noise"):
        for f in fits:
            lo, hi = f.intervals[key]
            assert 0 < lo < getattr(f, key) < hi < math.inf
        (lo1, hi1), (lo2, hi2), (lo3, hi3) = (f.intervals[key] for f in fits)
        assert lo3 < lo2 < lo1 and hi1 < hi2 < hi3
    assert fits[1].level == 0.95


def test_three_batch_sizes_give_wide_but_finite_intervals_when_the_steps_bend():
    b = np.array([64.0, 512.0, 4096.0])
    fit = fit_steps(b, truth(b, 1000.0, 500.0) * np.exp([0.01, -0.02, 0.01]))
    lo, hi = fit.intervals["b_noise"]
    assert lo <= fit.b_noise <= hi and hi > 2 * lo  # one degree of freedom: t_1 = 12.7


# -- the bounds -------------------------------------------------------------------------------------------------


def test_steps_that_do_not_fall_with_batch_size_pin_e_min_at_zero():
    b = B9[:6]
    fit = fit_steps(b, 500.0 * (1 + 0.02 * np.log(b)))  # steps *rise* with B: the best E_min is 0
    assert fit.at_bound and fit.e_min == 0.0 and fit.b_noise == 0.0
    assert fit.s_min == pytest.approx(math.exp(np.mean(np.log(500.0 * (1 + 0.02 * np.log(b))))), rel=1e-12)
    assert fit.intervals["b_noise"][0] == 0.0 and fit.intervals["e_min"][0] == 0.0
    np.testing.assert_allclose(fit.steps_at([1.0, 1e6]), fit.s_min)


def test_flat_steps_without_noise_have_no_noise_scale():
    fit = fit_steps(B9[:5], np.full(5, 1234.0))
    assert fit.at_bound and fit.s_min == pytest.approx(1234.0, rel=1e-12)
    assert fit.intervals["b_noise"][0] == 0.0 and fit.intervals["b_noise"][1] < 1e-9  # (rounding's width)


def test_steps_falling_as_one_over_b_throughout_have_an_unbounded_noise_scale():
    b = B9[:6]
    fit = fit_steps(b, 3e6 / b)  # perfect scaling over the whole range: no saturation measured
    assert fit.b_noise == math.inf and fit.s_min == 0.0 and not fit.at_bound
    assert fit.e_min == pytest.approx(3e6, rel=1e-9)
    np.testing.assert_allclose(fit.steps_at(b), 3e6 / b, rtol=1e-9)
    noisy = fit_steps(b, 3e6 / b * np.exp([0.01, -0.01, 0.02, -0.02, 0.01, 0.0]))
    assert noisy.intervals["b_noise"][1] == math.inf and noisy.intervals["s_min"][0] == 0.0
    assert noisy.intervals["e_min"][0] <= 3e6 <= noisy.intervals["e_min"][1]


# -- the result -------------------------------------------------------------------------------------------------


def test_inputs_are_sorted_by_batch_size_and_residuals_follow_them():
    b = np.array([512.0, 64.0, 256.0, 128.0, 1024.0])
    s = truth(b, 1000.0, 400.0) * np.exp([0.01, -0.01, 0.02, 0.0, -0.02])
    fit = fit_steps(list(b), list(s))
    order = np.argsort(b)
    np.testing.assert_array_equal(fit.batch_size, b[order])
    np.testing.assert_array_equal(fit.steps, s[order])
    np.testing.assert_allclose(fit.log_residuals, np.log(s[order]) - np.log(fit.steps_at(b[order])), atol=1e-12)


def test_steps_at_and_examples_at_are_vectorized():
    fit = fit_steps(B9[:5], truth(B9[:5], 1000.0, 400.0))
    np.testing.assert_allclose(fit.steps_at(np.array([[100.0, 400.0]])), [[1000 + 4e5 / 100, 2000.0]], rtol=1e-9)
    np.testing.assert_allclose(fit.examples_at([400.0]), [2000.0 * 400], rtol=1e-9)
    assert fit.steps_at(400.0).shape == ()
    with pytest.raises(InputError, match="batch_size: must be finite and > 0, got 0"):
        fit.steps_at([0.0])


def test_seeds_at_one_batch_size_are_rows_like_any_other():
    b, s = B9[:5], truth(B9[:5], 1000.0, 400.0) * np.exp([0.01, -0.01, 0.02, 0.0, -0.02])
    once, twice = fit_steps(b, s), fit_steps(np.repeat(b, 2), np.repeat(s, 2))
    assert twice.b_noise == pytest.approx(once.b_noise, rel=1e-7) and twice.s_min == pytest.approx(once.s_min, rel=1e-7)
    assert len(twice.log_residuals) == 10
    lo1, hi1 = once.intervals["b_noise"]
    lo2, hi2 = twice.intervals["b_noise"]
    assert lo1 < lo2 < hi2 < hi1  # twice the rows (more degrees of freedom): narrower


# -- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch_size", "steps", "param", "match"),
    [
        ([64, 128, 256], [3, 2], "steps", "2 values where batch_size has 3"),
        ([64, 128, math.nan], [3, 2, 1], "batch_size", "must be finite and > 0, got nan"),
        ([64, 128, 256], [3, math.inf, 1], "steps", "must be finite and > 0, got inf"),
        ([64, 0, 256], [3, 2, 1], "batch_size", "must be finite and > 0, got 0"),
        ([64, 128, 256], [3, -2, 1], "steps", "must be finite and > 0, got -2"),
        ([64, 64, 128, 128], [3, 3, 2, 2], "batch_size", "needs steps at 3 or more batch sizes, got 2"),
        ([], [], "batch_size", "needs steps at 3 or more batch sizes, got 0"),
        ([[64, 128, 256]], [[3, 2, 1]], "batch_size", "one-dimensional"),
        (["a", "b", "c"], [3, 2, 1], "batch_size", "must be numbers"),
    ],
)
def test_bad_tables_are_one_line_errors_naming_the_parameter(batch_size, steps, param, match):
    with pytest.raises(InputError, match=match) as err:
        fit_steps(batch_size, steps)
    assert err.value.param == param and "\n" not in str(err.value)


def test_more_rows_than_the_limit_are_refused_before_any_work():
    b = np.tile([64.0, 128.0, 256.0], MAX_ROWS // 3 + 1)
    with pytest.raises(InputError, match=f"more than the limit of {MAX_ROWS:,}") as err:
        fit_steps(b, np.ones_like(b))
    assert err.value.param == "batch_size"


@pytest.mark.parametrize("level", [0, 1, 1.5, -0.1, True, "0.9", math.nan])
def test_a_level_outside_zero_one_is_refused(level):
    with pytest.raises(InputError, match="between 0 and 1") as err:
        fit_steps([1, 2, 4], [3, 2, 1.5], level=level)
    assert err.value.param == "level"


# -- the CSV reader ---------------------------------------------------------------------------------------------


def write(path, text):
    path.write_text(text)
    return path


def test_load_steps_groups_rows_by_the_named_columns_in_file_order(tmp_path):
    path = write(
        tmp_path / "s.csv",
        "Model,Batch_Size,STEPS,target_loss,note\nA,64,100,3.1,x\nB,64,300,3.0,\nA,128,60,3.1,y\nB,128,170,3.0,\n",
    )
    table = load_steps(path, group=["model"])
    assert list(table) == [("A",), ("B",)]
    np.testing.assert_array_equal(table[("A",)][0], [64, 128])
    np.testing.assert_array_equal(table[("B",)][1], [300, 170])
    both = load_steps(path, group=["model", "Target_Loss"])
    assert list(both) == [("A", "3.1"), ("B", "3.0")]
    (only,) = load_steps(path).items()
    assert only[0] == () and len(only[1][0]) == 4


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("64,abc\n", r"s\.csv:3: steps must be a number, got 'abc'"),
        ("-64,100\n", r"s\.csv:3: batch_size must be finite and > 0, got -64"),
        ("64,inf\n", r"s\.csv:3: steps must be finite and > 0, got inf"),
        ("64,0\n", r"s\.csv:3: steps must be finite and > 0, got 0"),
        ("64\n", r"s\.csv:3: 1 fields where the header has 2"),
    ],
)
def test_load_steps_bad_rows_name_the_file_and_line(tmp_path, body, match):
    path = write(tmp_path / "s.csv", "batch_size,steps\n32,500\n" + body)
    with pytest.raises(InputError, match=match) as err:
        load_steps(path)
    assert "\n" not in str(err.value)


def test_load_steps_file_and_group_errors(tmp_path):
    path = write(tmp_path / "s.csv", "model,batch_size,steps\nA,64,100\n,128,50\n")
    with pytest.raises(InputError, match=r"s\.csv:3: no value in group column 'model'"):
        load_steps(path, group=["model"])
    with pytest.raises(InputError, match=r"s\.csv:1: header must name columns .*'seed'"):
        load_steps(path, group=["seed"])
    with pytest.raises(InputError, match="is a data column") as err:
        load_steps(path, group=["steps"])
    assert err.value.param == "group"
    with pytest.raises(InputError, match="is repeated"):
        load_steps(path, group=["model", "MODEL"])
    with pytest.raises(InputError, match="no rows"):
        load_steps(write(tmp_path / "e.csv", "batch_size,steps\n\n"))
    with pytest.raises(InputError, match="no such file"):
        load_steps(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="header must name columns 'batch_size' and 'steps'"):
        load_steps(write(tmp_path / "h.csv", "bs,steps\n64,100\n"))


# -- the bundled critical-batch-size table ----------------------------------------------------------------------


def test_the_bundled_table_ships_with_its_licence_unchanged():
    folder = root("critical_batch_size")
    assert {p.name for p in folder.iterdir() if p.is_file()} == {"steps_to_target.csv", "LICENSE", "README.md"}
    assert hashlib.sha256((folder / "steps_to_target.csv").read_bytes()).hexdigest() == CBS_DIGEST
    assert "MIT License" in (folder / "LICENSE").read_text() and "Hanlin Zhang" in (folder / "LICENSE").read_text()
    readme = (folder / "README.md").read_text()
    assert "c5b509d8cf276bb40388172a08f9d6f644cf44dc" in readme and "2410.21676" in readme


def test_the_bundled_table_has_five_models_at_nine_batch_sizes_of_512_token_sequences():
    table = critical_batch_size()
    assert list(table) == ["85M", "151M", "302M", "604M", "1.2B"]
    for b, s, target in table.values():
        np.testing.assert_array_equal(b, B9)
        assert np.all(np.diff(s) <= 0) and 2.7 < target < 3.5  # steps never rise with batch size here
    assert [t for _, _, t in table.values()] == [3.42, 3.24, 3.07, 2.92, 2.736]
    lines = (root("critical_batch_size") / "steps_to_target.csv").read_text().splitlines()
    assert len(lines) == 46 and {line.split(",")[3] for line in lines[1:]} == {str(CBS_SEQ_LEN)}


def test_b_noise_of_the_public_runs_is_positive_and_grows_with_model_size():
    """Zhang et al.'s runs: the noise scale grows from 85M to 1.2B (about 2.2k to 11k sequences of 512 tokens,
    1.1M to 5.7M tokens), each bounded on both sides; the fitted curve stays within 15% of every step count."""
    fits = {m: fit_steps(b, s) for m, (b, s, _) in critical_batch_size().items()}
    b_noise = [f.b_noise for f in fits.values()]
    assert all(0 < v < math.inf for v in b_noise) and not any(f.at_bound for f in fits.values())
    assert np.all(np.diff(b_noise) > 0)
    assert 1500 < b_noise[0] < 3000 and 8000 < b_noise[-1] < 15000
    for f in fits.values():
        lo, hi = f.intervals["b_noise"]
        assert 0 < lo < f.b_noise < hi < math.inf
        assert np.max(np.abs(f.log_residuals)) < math.log(1.15)
    # the straight line of 1/S on 1/E agrees with the log-space fit to within 5% on these tables
    for f in fits.values():
        assert f.linear_b_noise == pytest.approx(f.b_noise, rel=0.05)


def test_critical_batch_size_reads_another_copy_and_refuses_two_targets_for_one_model(tmp_path):
    text = (root("critical_batch_size") / "steps_to_target.csv").read_text()
    copy = write(tmp_path / "copy.csv", text)
    assert list(critical_batch_size(data=copy)) == ["85M", "151M", "302M", "604M", "1.2B"]
    bad = write(tmp_path / "bad.csv", text.replace("85M,3.42,64,", "85M,3.40,64,"))
    with pytest.raises(InputError, match="model '85M' has more than one target_loss"):
        critical_batch_size(data=bad)
