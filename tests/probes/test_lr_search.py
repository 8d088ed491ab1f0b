"""Catapult search and the LR range test: known thresholds, restored state, suggestions."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrlab.errors import InputError
from lrlab.probes import catapult_search, catapult_warmup, lr_range_test
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


def test_catapult_errors_name_the_fix():
    model = Quadratic([1.0])
    with pytest.raises(InputError, match="start lower"):
        catapult_search(model, torch.optim.SGD(model.parameters(), lr=1.0), model, lr_start=10.0)


def test_catapult_warmup_shortens_warmup_at_the_same_slope():
    s = Cosine(peak=1e-3, warmup=1000, total=10_000)
    w = catapult_warmup(s, eta_c=2.5e-4)
    assert (w.warmup, w.init, w.total, w.peak) == (750, 2.5e-4, 10_000, 1e-3)
    assert catapult_warmup(s, eta_c=2e-3).warmup == 0


def test_range_test_restores_state_and_suggests_inside_the_sweep():
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
    assert result.stopped_early  # lr = 10 diverges on this problem
    assert 1e-5 <= result.suggestions["steepest"] <= result.lrs[-1]
    assert 1e-5 <= result.suggestions["valley"] <= result.lrs[-1]


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
