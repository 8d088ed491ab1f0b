"""Cross-checks against independent implementations: transformers' schedules, torch.optim.lr_scheduler, mpmath.

Tolerance: 1e-12 relative, plus an absolute 1e-15 x peak. The absolute part is needed because transformers
computes cosine-like factors as ``0.5 * (1 + cos(pi p))`` and ``1 - sqrt(p)``, which cancel near the end of the
decay and carry ~1e-16 absolute error there (up to ~1e-7 relative for 100k steps); lrlab's formulas avoid the
cancellation, and the mpmath test below holds them to 1e-13 relative everywhere.
"""

import mpmath
import numpy as np
import pytest
import torch
import transformers.optimization as hf

from lrlab.schedules import WSD, Constant, Cosine, InverseSqrt, Linear, Polynomial
from lrlab.schedules.torch import ScheduleLR

W, T, PEAK = 2_000, 100_000, 3e-4
STEPS = np.arange(T + 1)


def _hf_lrs(factory, **kwargs) -> np.ndarray:
    """Evaluate a transformers schedule's LambdaLR function at every step (peak as the optimizer LR)."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    lam = factory(opt, **kwargs).lr_lambdas[0]
    return np.array([PEAK * lam(int(t)) for t in STEPS])


def _close(ours, theirs):
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15 * PEAK)


HF = "warmup_offset=0 matches transformers' lr = peak * t / W warmup"


def test_linear_schedule_with_warmup():
    ours = Linear(peak=PEAK, warmup=W, total=T, final=0.0, warmup_offset=0)
    _close(ours(STEPS), _hf_lrs(hf.get_linear_schedule_with_warmup, num_warmup_steps=W, num_training_steps=T))


def test_cosine_schedule_with_warmup():
    ours = Cosine(peak=PEAK, warmup=W, total=T, warmup_offset=0)
    _close(ours(STEPS), _hf_lrs(hf.get_cosine_schedule_with_warmup, num_warmup_steps=W, num_training_steps=T))


def test_cosine_with_min_lr():
    ours = Cosine(peak=PEAK, warmup=W, total=T, final_ratio=0.1, warmup_offset=0)
    theirs = _hf_lrs(
        hf.get_cosine_with_min_lr_schedule_with_warmup, num_warmup_steps=W, num_training_steps=T, min_lr_rate=0.1
    )
    _close(ours(STEPS), theirs)


def test_constant_with_warmup():
    ours = Constant(peak=PEAK, warmup=W, warmup_offset=0)
    _close(ours(STEPS), _hf_lrs(hf.get_constant_schedule_with_warmup, num_warmup_steps=W))


def test_inverse_sqrt():
    ours = InverseSqrt(peak=PEAK, warmup=W, timescale=5_000, warmup_offset=0)
    _close(ours(STEPS), _hf_lrs(hf.get_inverse_sqrt_schedule, num_warmup_steps=W, timescale=5_000))


def test_polynomial_decay():
    ours = Polynomial(peak=PEAK, warmup=W, total=T, final=1e-7, power=2.0, warmup_offset=0)
    theirs = _hf_lrs(
        hf.get_polynomial_decay_schedule_with_warmup, num_warmup_steps=W, num_training_steps=T, lr_end=1e-7, power=2.0
    )
    _close(ours(STEPS), theirs)


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize("ratio", [0.0, 0.1])
def test_warmup_stable_decay(shape, ratio):
    decay = 20_000
    # transformers warms WSD up from min_lr_ratio x peak, i.e. lrlab's init = final.
    ours = WSD(
        peak=PEAK,
        warmup=W,
        total=T,
        decay_steps=decay,
        shape=shape,
        final_ratio=ratio,
        init=ratio * PEAK,
        warmup_offset=0,
    )
    theirs = _hf_lrs(
        hf.get_wsd_schedule,
        num_warmup_steps=W,
        num_decay_steps=decay,
        num_training_steps=T,
        decay_type=shape,
        min_lr_ratio=ratio,
    )
    _close(ours(STEPS), theirs)


def _torch_lrs(make, steps: int) -> np.ndarray:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


def test_torch_cosine_annealing_closed_form():
    n = 5_000
    ours = Cosine(peak=PEAK, total=n, final=1e-6)
    theirs = _torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=n, eta_min=1e-6), n)
    # torch updates the LR recursively step by step, so its rounding error accumulates: 1e-10 relative here.
    np.testing.assert_allclose(ours.values(n), theirs, rtol=1e-10)


def test_torch_linear_warmup_then_cosine_via_sequential_lr():
    n, w = 3_000, 300

    def make(o):
        warm = torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / w, end_factor=1.0, total_iters=w - 1)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=n - w, eta_min=0.0)
        return torch.optim.lr_scheduler.SequentialLR(o, [warm, cos], milestones=[w])

    ours = Cosine(peak=PEAK, warmup=w, total=n)  # default (t + 1) / W warmup: update w - 1 at the peak
    np.testing.assert_allclose(ours.values(n), _torch_lrs(make, n), rtol=1e-10, atol=1e-15)


def test_scheduler_adapter_matches_pure_schedule_exactly():
    s = WSD(peak=PEAK, warmup=50, total=500, decay=0.3, shape="cosine", final=1e-6)
    np.testing.assert_array_equal(_torch_lrs(lambda o: ScheduleLR(o, s), 500), s.values(500))


@pytest.mark.parametrize(
    ("schedule", "exact"),
    [
        (Cosine(peak=1.0, total=T), lambda t: mpmath.cos(mpmath.pi * t / (2 * T)) ** 2),
        (WSD(peak=1.0, total=T, decay_steps=T, shape="1-sqrt"), lambda t: 1 - mpmath.sqrt(mpmath.mpf(t) / T)),
        (Linear(peak=1.0, total=T), lambda t: mpmath.mpf(T - t) / T),
    ],
)
def test_high_precision_reference_including_the_tail(schedule, exact):
    mpmath.mp.dps = 40
    steps = np.unique(np.concatenate([np.linspace(0, T - 1, 200).astype(int), np.arange(T - 20, T)]))
    ref = np.array([float(exact(int(t))) for t in steps])
    np.testing.assert_allclose(schedule(steps), ref, rtol=1e-13, atol=0)
