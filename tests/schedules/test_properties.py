"""Hypothesis properties over random schedules: finite, non-negative, monotone phases, round trips, vectorization."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lrlab.schedules import WSD, Constant, Cosine, Cyclic, Exponential, Linear, OneMinusSqrt, Polynomial, parse

peaks = st.floats(1e-6, 10.0)
warmups = st.integers(0, 300)
warmup_shapes = st.sampled_from(["linear", "cosine", "1-sqrt"])


@st.composite
def schedules(draw):
    peak, warmup = draw(peaks), draw(warmups)
    total = warmup + draw(st.integers(1, 2_000))
    common = dict(
        peak=peak,
        warmup=warmup,
        total=total,
        warmup_shape=draw(warmup_shapes),
        warmup_offset=draw(st.sampled_from([0, 1])),
    )
    final = draw(st.floats(0.0, 1.0)) * peak
    kind = draw(st.sampled_from(["constant", "cosine", "linear", "1-sqrt", "poly", "exp", "wsd"]))
    if kind == "constant":
        return Constant(**common)
    if kind == "exp":
        return Exponential(**common, final=max(final, peak * 1e-3))
    if kind == "wsd":
        span = total - warmup
        shape = draw(st.sampled_from(["linear", "cosine", "1-sqrt", "poly"]))
        power = 2.0 if shape == "poly" else 1.0
        return WSD(**common, decay_steps=draw(st.integers(1, span)), shape=shape, final=final, power=power)
    cls = {"cosine": Cosine, "linear": Linear, "1-sqrt": OneMinusSqrt, "poly": Polynomial}[kind]
    return cls(**common, final=final)


@settings(max_examples=150, deadline=None)
@given(schedules())
def test_finite_non_negative_and_monotone_phases(s):
    t = np.arange(s.total + 50)
    lr = s(t)
    assert np.all(np.isfinite(lr)) and np.all(lr >= 0)
    warm = lr[: s.warmup]
    assert np.all(np.diff(warm) >= 0), "warmup must not decrease"
    after = lr[s.warmup :]
    assert np.all(np.diff(after) <= 1e-15 * s.peak), "decay must not increase"
    assert lr.max() <= s.peak * (1 + 1e-15)


@settings(max_examples=150, deadline=None)
@given(schedules())
def test_spec_round_trip(s):
    assert parse(str(s)) == s


@settings(max_examples=60, deadline=None)
@given(schedules(), st.integers(1, 4), st.floats(0.1, 1.0))
def test_cyclic_round_trip(s, cycles, gain):
    c = Cyclic(s, cycles, gain)
    assert parse(str(c)) == c


@settings(max_examples=80, deadline=None)
@given(schedules(), st.lists(st.integers(0, 5_000), min_size=1, max_size=30))
def test_vectorized_equals_scalar(s, steps):
    vec = s(np.array(steps))
    assert vec.tolist() == [s(t) for t in steps]
    assert isinstance(s(steps[0]), float)
