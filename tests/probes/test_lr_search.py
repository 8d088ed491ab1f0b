"""Catapult search and the LR range test: known thresholds, restored state, suggestions."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrlab.errors import InputError
from lrlab.probes import catapult_search, catapult_warmup, lr_range_test
from lrlab.probes.catapult import NoCatapult
from lrlab.probes.range_test import suggest
from lrlab.schedules import Cosine


class Quadratic(torch.nn.Module):
    """L(w) = 0.5 sum_i lambda_i w_i^2: SGD diverges (the loss rises after one step) iff lr > 2 / max lambda."""

    def __init__(self, curvatures):
        super().__init__()
        self.lam = torch.tensor(curvatures, dtype=torch.float64)
        self.w = torch.nn.Parameter(torch.ones(len(curvatures), dtype=torch.float64))

    def forward(self):
        return 0.5 * (self.lam * self.w**2).sum()


@settings(max_examples=25, deadline=None)
@given(st.floats(0.1, 100.0))
def test_catapult_finds_two_over_lambda_on_a_quadratic(curvature):
    model = Quadratic([curvature])
    opt = torch.optim.SGD(model.parameters(), lr=0.123)
    w0 = model.w.detach().clone()
    result = catapult_search(model, opt, model, lr_start=1e-4, rel_tol=0.01)
    critical = 2 / curvature
    assert result.stable_lr <= critical * (1 + 1e-9) and result.catapult_lr >= critical * (1 - 1e-9)
    assert result.eta_c == pytest.approx(critical, rel=0.01)
    assert torch.equal(model.w.detach(), w0) and opt.param_groups[0]["lr"] == 0.123  # state restored
    assert len(result.trials) < 40


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(0.1, 100.0), min_size=2, max_size=6))
def test_catapult_over_k_steps_approaches_two_over_top_curvature(curvatures):
    """With several directions one step can hide the unstable one; over k = 50 steps it dominates, so eta_c lies
    within ln(sum lambda / max lambda) / (4 k) < 1% (+ the search tolerance) above 2 / max lambda."""
    model = Quadratic(curvatures)
    result = catapult_search(
        model, torch.optim.SGD(model.parameters(), lr=0.1), model, lr_start=1e-4, k=50, rel_tol=0.01
    )
    critical = 2 / max(curvatures)
    assert critical * (1 - 1e-9) <= result.catapult_lr
    assert result.eta_c <= critical * 1.03


def test_catapult_errors_name_the_fix_and_a_bad_argument_is_not_a_missing_catapult():
    model = Quadratic([1.0])
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    with pytest.raises(NoCatapult, match="start lower"):
        catapult_search(model, opt, model, lr_start=10.0)
    with pytest.raises(NoCatapult, match="raise lr_start"):
        catapult_search(model, opt, model, lr_start=1e-9, max_trials=3)
    for bad_args in ({"lr_start": -1.0}, {"lr_start": 1e-3, "max_trials": 0}):
        with pytest.raises(InputError) as bad:
            catapult_search(model, opt, model, **bad_args)
        assert not isinstance(bad.value, NoCatapult)


def test_catapult_warmup_shortens_warmup_at_the_same_slope():
    s = Cosine(peak=1e-3, warmup=1000, total=10_000)
    w = catapult_warmup(s, eta_c=2.5e-4)
    assert (w.warmup, w.init, w.total, w.peak) == (750, 2.5e-4, 10_000, 1e-3)
    assert catapult_warmup(s, eta_c=2e-3).warmup == 0


def test_range_test_restores_state_and_stops_as_documented():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.randn(256, 8), torch.randn(256, 1)
    before = [p.detach().clone() for p in model.parameters()]
    result = lr_range_test(
        model, opt, lambda i: torch.nn.functional.mse_loss(model(x), y), lr_min=1e-5, lr_max=10.0, steps=80
    )
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True))
    assert opt.param_groups[0]["lr"] == 0.05 and not opt.state  # momentum buffers gone again
    assert result.stopped_early and len(result.lrs) < 80  # lr = 10 diverges on this problem
    np.testing.assert_allclose(result.lrs, np.geomspace(1e-5, 10.0, 80)[: len(result.lrs)], rtol=1e-12)
    best = result.smoothed[:-1].min()  # the documented stop: the last point exceeds 4 x the best before it
    assert result.smoothed[-1] > 4 * best and np.all(
        result.smoothed[:-1] <= 4 * np.minimum.accumulate(result.smoothed[:-1])
    )


def _designed_sweep(center: float, smooth: float):
    """A range test whose loss, as a function of the LR the optimizer holds, is designed: 3 - tanh(2 (x - center))
    in x = log10(lr), steepest exactly at lr = 10^center, plus a blow-up 10 (x + 1) above lr = 0.1."""
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=0.5)

    def loss_fn(i):
        x = math.log10(opt.param_groups[0]["lr"])  # the LR this batch trains at, read back from the optimizer
        return w.sum() * 0 + (3 - math.tanh(2 * (x - center)) + (10 * (x + 1) if x > -1 else 0.0))

    return lr_range_test(torch.nn.ParameterList([w]), opt, loss_fn, lr_min=1e-6, lr_max=1.0, steps=121, smooth=smooth)


@settings(max_examples=25, deadline=None)
@given(st.floats(-5.0, -1.5))
def test_range_test_finds_the_designed_steepest_lr(center):
    """Unsmoothed, steepest is the grid point nearest 10^center (grid steps are 0.05 decades, 12%); the sweep
    stops once the blow-up passes 4 x the best loss (~2, so at lr ~ 0.4); the valley lies on the decline, below
    the blow-up."""
    raw = _designed_sweep(center, smooth=0.0)
    assert raw.suggestions["steepest"] == pytest.approx(10**center, rel=0.13)
    assert raw.stopped_early and 0.1 < raw.lrs[-1] < 1.0
    assert raw.suggestions["valley"] < 0.1  # on the decline, before the blow-up the sweep ran into
    # the default EMA (0.95) lags the curve towards higher LRs: measured 2.0-2.5 x 10^center over center in
    # [-5, -1.5]; never below the designed LR, and well within half a decade of it
    smoothed = _designed_sweep(center, smooth=0.95)
    assert 10**center <= smoothed.suggestions["steepest"] <= 3 * 10**center


@settings(max_examples=25, deadline=None)
@given(st.floats(0.1, 100.0))
def test_range_test_suggestions_track_the_curvature_of_a_quadratic(curvature):
    """SGD on 0.5 lambda w^2 converges in one step at lr = 1 / lambda and diverges above 2 / lambda. On a fixed
    grid (1e-5..1e3, 120 points) the suggestions must move with 1 / lambda across three decades: measured
    steepest = 0.16-0.21 / lambda, valley 0.05-0.49 / lambda (the valley sits 2/3 down the decline, which starts
    at the grid's first point), stop beyond 2 / lambda."""
    model = Quadratic([curvature, curvature / 7])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lr_range_test(model, opt, lambda i: model(), lr_min=1e-5, lr_max=1e3, steps=120)
    good = 1 / curvature
    assert 0.1 * good < result.suggestions["steepest"] < good
    assert 0.02 * good < result.suggestions["valley"] < 2 * good  # below the stability limit
    assert result.stopped_early and result.lrs[-1] > 2 * good


def test_suggestions_on_a_synthetic_curve():
    lrs = np.logspace(-6, 0, 61)
    loss = 3 - np.tanh((np.log10(lrs) + 3) * 2) + np.where(lrs > 0.1, (np.log10(lrs) + 1) * 10, 0)
    s = suggest(lrs, loss)
    assert s["steepest"] == pytest.approx(1e-3, rel=0.3)  # the tanh's steepest point
    assert 1e-3 < s["valley"] < 0.1


def test_catapult_warmup_starts_exactly_at_eta_init():
    s = Cosine(peak=3e-3, warmup=30, total=300)
    w = catapult_warmup(s, eta_c=1e-3, fraction=0.5)
    assert w(0) == 5e-4 and w(w.warmup) == 3e-3 and w.warmup == 25
