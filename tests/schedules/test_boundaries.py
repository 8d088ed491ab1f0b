"""Exact values at phase boundaries for every warmup and decay shape (optax-style exact asserts)."""

import math

import numpy as np
import pytest

from lrlab.errors import InputError
from lrlab.schedules import (
    WSD,
    Constant,
    Cosine,
    Exponential,
    InverseSqrt,
    Linear,
    MultiStep,
    OneMinusSqrt,
    Polynomial,
    Step,
)

PEAK, W, T = 1e-3, 100, 1000


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
def test_warmup_from_zero_never_gives_update_zero_lr_zero(shape):
    s = Constant(peak=PEAK, warmup=W, warmup_shape=shape)
    assert s(0) > 0
    assert s(W - 1) == PEAK  # the last warmup update runs at the peak (x = 1 exactly)
    assert s(W) == PEAK


def test_linear_warmup_default_and_offset_zero_conventions():
    default = Constant(peak=PEAK, warmup=W)
    assert default(0) == PEAK * 1 / W
    assert default(49) == PEAK * 50 / W
    hf = Constant(peak=PEAK, warmup=W, warmup_offset=0)
    assert hf(0) == 0.0
    assert hf(50) == PEAK * 50 / W
    assert hf(W) == PEAK


def test_warmup_from_init():
    s = Constant(peak=1.0, warmup=10, init=0.2, warmup_offset=0)
    assert s(0) == 0.2
    assert s(5) == pytest.approx(0.6, abs=1e-15)


def test_cosine_warmup_midpoint():
    s = Constant(peak=1.0, warmup=10, warmup_shape="cosine", warmup_offset=0)
    assert s(5) == pytest.approx(0.5, abs=1e-15)


def test_exp_warmup_is_geometric():
    s = Constant(peak=1.0, warmup=10, warmup_shape="exp", init=1e-4, warmup_offset=0)
    assert s(0) == pytest.approx(1e-4, rel=1e-15)
    assert s(5) == pytest.approx(1e-2, rel=1e-14)
    with pytest.raises(InputError, match="init > 0"):
        Constant(peak=1.0, warmup=10, warmup_shape="exp")


@pytest.mark.parametrize("cls", [Cosine, Linear, OneMinusSqrt, Polynomial])
def test_decays_start_at_peak_and_reach_final_at_total(cls):
    s = cls(peak=PEAK, warmup=W, total=T, final=1e-5)
    assert s(W) == PEAK
    assert s(T) == 1e-5
    assert s(T + 500) == 1e-5  # past the end the final LR holds
    assert 1e-5 < s(T - 1) < s(T - 2) < PEAK  # the last update is not wasted at the floor


def test_midpoints():
    assert Cosine(peak=1.0, total=100)(50) == pytest.approx(0.5, abs=1e-15)
    assert Linear(peak=1.0, total=100)(25) == 0.75
    assert OneMinusSqrt(peak=1.0, total=100)(25) == pytest.approx(0.5, abs=1e-15)
    assert Polynomial(peak=1.0, total=100, power=2.0)(50) == 0.25
    assert Cosine(peak=1.0, total=100, final_ratio=0.1)(50) == pytest.approx(0.55, abs=1e-15)


def test_exponential_forms():
    geo = Exponential(peak=1.0, warmup=0, total=100, final=1e-2)
    assert geo(0) == 1.0 and geo(100) == pytest.approx(1e-2, rel=1e-15)
    assert geo(50) == pytest.approx(0.1, rel=1e-14)
    per_step = Exponential(peak=1.0, warmup=10, gamma=0.5)
    assert per_step(10) == 1.0 and per_step(12) == 0.25


def test_inverse_sqrt():
    s = InverseSqrt(peak=1.0, warmup=100)
    assert s(100) == 1.0
    assert s(100 + 300) == pytest.approx(0.5, rel=1e-15)  # sqrt(100 / 400)
    assert InverseSqrt(peak=1.0, timescale=4)(12) == pytest.approx(0.5, rel=1e-15)


def test_step_and_multistep_drop_exactly_at_milestones():
    s = Step(peak=1.0, every=100, gamma=0.5)
    assert [s(99), s(100), s(199), s(200)] == [1.0, 0.5, 0.5, 0.25]
    m = MultiStep(peak=1.0, milestones=(300, 600), gamma=0.1)
    assert m(299) == 1.0 and m(300) == pytest.approx(0.1) and m(600) == pytest.approx(0.01)


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt", "exp", "poly"])
def test_wsd_phases(shape):
    s = WSD(peak=PEAK, warmup=W, total=T, decay=0.2, shape=shape, final=1e-5)
    assert s.decay_start == 800 and s.decay_length == 200
    assert s(W - 1) == PEAK and s(W) == PEAK and s(799) == PEAK and s(800) == PEAK
    assert s(801) < PEAK
    assert s(T) == pytest.approx(1e-5, rel=1e-14)
    assert s(T - 1) > 1e-5


def test_wsd_decay_midpoints_by_shape():
    kw = dict(peak=1.0, total=1000, decay_steps=200, final=0.0)
    assert WSD(shape="linear", **kw)(900) == 0.5
    assert WSD(shape="cosine", **kw)(900) == pytest.approx(0.5, abs=1e-15)
    assert WSD(shape="1-sqrt", **kw)(900) == pytest.approx(1 - math.sqrt(0.5), abs=1e-15)


def test_wsd_rejects_decay_overlapping_warmup_and_exp_to_zero():
    with pytest.raises(InputError, match="inside the warmup"):
        WSD(peak=1.0, warmup=900, total=1000, decay=0.2)
    with pytest.raises(InputError, match="final > 0"):
        WSD(peak=1.0, total=1000, decay=0.2, shape="exp", final=0.0)


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (Cosine, dict(peak=1.0, warmup=100, total=100), "must exceed warmup"),
        (Cosine, dict(peak=1.0, total=100, final=2.0), "final LR"),
        (Cosine, dict(peak=1.0, total=100, final=0.1, final_ratio=0.1), "not both"),
        (Constant, dict(peak=-1.0), "peak"),
        (Constant, dict(peak=1.0, warmup_shape="sigmoid"), "warmup_shape"),
        (Step, dict(peak=1.0, every=0), "every"),
        (MultiStep, dict(peak=1.0, milestones=(5, 3)), "increasing"),
        (InverseSqrt, dict(peak=1.0), "timescale"),
    ],
)
def test_bad_arguments_raise_input_error_naming_the_value(cls, kwargs, match):
    with pytest.raises(InputError, match=match):
        cls(**kwargs)


def test_steps_must_be_non_negative_integers():
    s = Constant(peak=1.0)
    with pytest.raises(InputError, match=">= 0"):
        s(-1)
    with pytest.raises(InputError, match="whole"):
        s(np.array([0.5]))
    assert s(np.array([3.0])).tolist() == [1.0]
