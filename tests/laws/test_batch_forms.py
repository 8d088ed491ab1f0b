"""Batch-size laws: known B_noise and eps_max recovered from noisy synthetic grids, the generating form chosen by
leave-one-batch-size-out error, a cross-check against scipy's curve_fit, intervals, and one-line errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import curve_fit

from lrlab.errors import InputError
from lrlab.laws.batch import Form, Grid, fit_form, fit_grid, locate_all
from lrlab.laws.batch.select import b_noise_views, summary

SIZES = (8, 16, 32, 64, 128, 256, 512)


def surge(b, eps_max, b_noise):
    return eps_max / (0.5 * (np.sqrt(b_noise / b) + np.sqrt(b / b_noise)))


def sgd(b, eps_max, b_noise):
    return eps_max / (1 + b_noise / b)


def power(b, c, k):
    return c * b**k


def synthetic(best, sizes=SIZES, noise=0.003, rng=None, n_lr=8, factor=2.0, curvature=0.15, skew=0.02) -> Grid:
    """A grid whose loss at batch size B is a skewed bowl in log LR around best(B), plus Gaussian noise; the
    grid's LRs are centred near each optimum with a random offset (as a user would place them)."""
    rng = rng or np.random.default_rng(0)
    rows = []
    for b in sizes:
        opt = best(b)
        centre = math.log(opt) + rng.uniform(-0.5, 0.5) * math.log(factor)
        for x in centre + math.log(factor) * (np.arange(n_lr) - (n_lr - 1) / 2):
            d = x - math.log(opt)
            loss = 2.0 + 1.0 / math.log2(b + 1) + curvature * d * d + skew * d**3 + noise * rng.standard_normal()
            rows.append((math.exp(x), b, loss))
    lr, batch, loss = (np.array(c) for c in zip(*rows, strict=True))
    return Grid(lr, batch, loss, np.full(len(lr), np.nan))


@settings(max_examples=25, deadline=None)
@given(
    log_b_noise=st.floats(math.log(20), math.log(200)),
    log_eps=st.floats(math.log(1e-4), math.log(1e-2)),
    seed=st.integers(0, 2**16),
)
def test_surge_recovers_b_noise_and_eps_max(log_b_noise, log_eps, seed):
    b_noise, eps_max = math.exp(log_b_noise), math.exp(log_eps)
    g = fit_grid(synthetic(lambda b: surge(b, eps_max, b_noise), rng=np.random.default_rng(seed)), law="surge",
                 n_boot=100)  # fmt: skip
    assert g.fit.params["b_noise"] == pytest.approx(b_noise, rel=0.15)
    assert g.fit.params["eps_max"] == pytest.approx(eps_max, rel=0.05)
    assert g.fit.b_noise_bound is None


@settings(max_examples=15, deadline=None)
@given(log_b_noise=st.floats(math.log(20), math.log(200)), seed=st.integers(0, 2**16))
def test_sgd_recovers_b_noise(log_b_noise, seed):
    b_noise = math.exp(log_b_noise)
    g = fit_grid(synthetic(lambda b: sgd(b, 3e-3, b_noise), rng=np.random.default_rng(seed)), law="sgd", n_boot=50)
    assert g.fit.params["b_noise"] == pytest.approx(b_noise, rel=0.2)
    assert g.fit.params["alpha"] == 1.0


@pytest.mark.parametrize(
    ("name", "best"),
    [
        ("surge", lambda b: surge(b, 3e-3, 64)),
        ("sgd", lambda b: sgd(b, 3e-3, 64)),
        ("power", lambda b: power(b, 1e-4, 0.3)),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_picks_the_generating_form(name, best, seed):
    g = fit_grid(synthetic(best, rng=np.random.default_rng(seed)), n_boot=20)
    assert g.law == name, g.cv_errors


def test_fit_matches_scipy_curve_fit():
    """The profile scan + refinement reaches the same weighted least-squares optimum as scipy's curve_fit on the
    log form, started at the truth (an independent optimizer on the same objective)."""
    g = fit_grid(synthetic(lambda b: surge(b, 2e-3, 90), noise=0.01, rng=np.random.default_rng(3)), n_boot=0)
    points = [o for o in g.optima if o.is_value]
    b = np.array([o.batch_size for o in points])
    y = np.log([o.best_lr for o in points])
    sd = np.maximum([o.log_sd for o in points], 0.02)
    for name, model, start in [
        ("surge", lambda b, a, u: a - np.log(np.cosh((np.log(b) - u) / 2)), (math.log(2e-3), math.log(90))),
        ("sgd", lambda b, a, u: a - np.logaddexp(0, u - np.log(b)), (math.log(2e-3), math.log(90))),
    ]:
        (a, u), _ = curve_fit(model, b, y, p0=start, sigma=sd, absolute_sigma=True)
        assert g.fits[name].params["eps_max"] == pytest.approx(math.exp(a), rel=1e-4)
        assert g.fits[name].params["b_noise"] == pytest.approx(math.exp(u), rel=1e-4)
    (a, k), _ = curve_fit(lambda b, a, k: a + k * np.log(b), b, y, sigma=sd)
    assert g.fits["power"].params["k"] == pytest.approx(k, rel=1e-6)


def test_sgd_alpha_fitted():
    best = lambda b: 3e-3 / (1 + 64 / b) ** 0.5  # noqa: E731
    g = fit_grid(synthetic(best, noise=0.001), law="sgd", alpha=None, n_boot=50)
    assert g.fit.params["alpha"] == pytest.approx(0.5, rel=0.15)
    lo, hi = g.fit.intervals["alpha"]
    assert lo < g.fit.params["alpha"] < hi


def test_peak_beyond_the_grid_is_a_bound():
    g = fit_grid(synthetic(lambda b: surge(b, 3e-3, 1e5), sizes=(8, 16, 32, 64)), law="surge", n_boot=20)
    assert g.fit.b_noise_bound == "high"
    assert b_noise_views(g)["spread"] is None  # a bound is no estimate to compare


def test_band_and_prediction():
    g = fit_grid(synthetic(lambda b: surge(b, 3e-3, 64), noise=0.005), law="surge")
    pred, lo, hi = g.fit.band([64, 2048])
    assert np.all(lo <= pred) and np.all(pred <= hi)
    assert pred[0] == pytest.approx(3e-3, rel=0.05)
    assert (hi[1] / lo[1]) > (hi[0] / lo[0])  # extrapolating widens the band
    obj = summary(g, [64, 2048])
    assert obj["predicted"][0]["loss"] is not None and obj["predicted"][1]["loss"] is None
    assert [p["batch_size"] for p in obj["per_batch"]] == list(map(float, SIZES))


def test_band_covers_at_its_level():
    """The 95 % interval of B_noise covers the truth in 88-100 % of 60 noisy surge grids."""
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(60):
        b_noise = math.exp(rng.uniform(math.log(16), math.log(128)))
        g = fit_grid(synthetic(lambda b, bn=b_noise: surge(b, 3e-3, bn), noise=0.005, rng=rng), law="surge",
                     n_boot=200)  # fmt: skip
        lo, hi = g.fit.intervals["b_noise"]
        hits += lo <= b_noise <= hi
    assert 0.88 <= hits / 60 <= 1.0


def test_edges_are_not_fitted():
    """Batch sizes whose best LR is at the grid's edge are left out of the fit: moving their (bound) value does
    not change the law."""
    grid = synthetic(lambda b: surge(b, 3e-3, 64))
    optima, _ = locate_all(grid)
    form = Form("surge")
    base = fit_form(form, optima, n_boot=0)
    from dataclasses import replace

    bounded = [replace(optima[0], at_grid_edge="low", best_lr=1e-9), *optima[1:]]
    moved = fit_form(form, bounded, n_boot=0)
    assert moved.params == fit_form(form, optima[1:], n_boot=0).params  # the bound is not a point
    assert moved.params != base.params
    bounded2 = [replace(optima[0], at_grid_edge="low", best_lr=1.0), *optima[1:]]
    assert fit_form(form, bounded2, n_boot=0).params == moved.params


def test_real_grid_conditions():
    """Uneven LR spacing, a different LR range per batch size, missing cells and runs that diverge at high LR:
    B_noise is still recovered within 25 % on 10 grids."""
    rng = np.random.default_rng(11)
    for _ in range(10):
        rows = []
        for b in SIZES:
            best = surge(b, 3e-3, 64)
            xs = np.sort(math.log(best) + rng.uniform(-2.5, 2.5, size=9))
            xs = xs[rng.uniform(size=len(xs)) > 0.15]  # missing cells
            for x in xs:
                d = x - math.log(best)
                loss = math.inf if d > 1.8 else 2 + 0.15 * d * d + 0.02 * d**3 + 0.004 * rng.standard_normal()
                rows.append((math.exp(x), b, loss))
        lr, batch, loss = (np.array(c) for c in zip(*rows, strict=True))
        g = fit_grid(Grid(lr, batch, loss, np.full(len(lr), np.nan)), law="surge", n_boot=50)
        assert g.fit.params["b_noise"] == pytest.approx(64, rel=0.25)


def test_notes_for_bounds_and_limits():
    """The law contradicting a grid-edge bound is noted, and so is alpha at its limit."""
    from dataclasses import replace

    g = fit_grid(synthetic(lambda b: surge(b, 3e-3, 64)), law="surge", n_boot=20)
    last = g.optima[-1]
    lied = replace(last, at_grid_edge="high", best_lr=1.0, interval=(0.9, math.inf))
    fit = fit_form(Form("surge"), [*g.optima[:-1], lied], n_boot=0)
    from lrlab.laws.batch.select import GridFit

    noted = GridFit("", "surge", {"surge": fit}, {}, g.loss_noise, "surge", g.grid)
    assert any("the grid puts the best LR above" in n for n in noted.notes)
    sharp = fit_grid(synthetic(lambda b: 3e-3 / (1 + 64 / b) ** 12), law="sgd", alpha=None, n_boot=20)
    assert any("alpha reached its limit" in n for n in sharp.fit.notes)


def test_errors():
    one = synthetic(lambda b: 1e-3, sizes=(32,))
    with pytest.raises(InputError, match="2 or more batch sizes"):
        fit_grid(one)
    lr = np.array([1e-3, 2e-3, 4e-3] * 2)
    edges = Grid(lr, np.repeat([8.0, 16.0], 3), np.array([2.0, 2.1, 2.2, 2.0, 2.1, 2.2]), np.full(6, np.nan))
    with pytest.raises(InputError, match="grid's edge: 8 \\(low\\), 16 \\(low\\)"):
        fit_grid(edges)
    with pytest.raises(InputError, match="law"):
        fit_grid(synthetic(lambda b: 1e-3), law="linear")
    with pytest.raises(InputError, match="alpha"):
        Form("sgd", alpha=-1.0)
    diverged = Grid(lr, np.repeat([8.0, 16.0], 3), np.array([np.inf] * 3 + [2.0, 1.9, 2.2]), np.full(6, np.nan))
    with pytest.raises(InputError, match=r"8 \(every LR diverged\)"):
        fit_grid(diverged)
    with pytest.raises(InputError, match="every cell diverged"):
        fit_grid(Grid(lr, np.repeat([8.0, 16.0], 3), np.full(6, np.inf), np.full(6, np.nan)))
