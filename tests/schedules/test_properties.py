"""Hypothesis properties over random schedules: finite, non-negative, monotone phases, round trips, closed forms."""

import math

import numpy as np
import pytest
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


def _warm(x: float, shape: str) -> float:
    """Share of the peak reached at warmup progress x (from init = 0), in closed form."""
    if shape == "linear":
        return x
    if shape == "cosine":
        return (1 - math.cos(math.pi * x)) / 2
    return 1 - math.sqrt(1 - x)  # 1-sqrt


def _left(p: float, shape: str, power: float = 1.0) -> float:
    """Share of peak - final still left after the elapsed fraction p of a decay, in closed form."""
    if shape == "linear":
        return 1 - p
    if shape == "cosine":
        return (1 + math.cos(math.pi * p)) / 2
    if shape == "1-sqrt":
        return 1 - math.sqrt(p)
    return (1 - p) ** power  # poly


@st.composite
def schedules_with_reference(draw):
    """A schedule and an independent plain-Python lr(t) built from the same drawn numbers, not from its fields."""
    peak, warmup = draw(peaks), draw(warmups)
    total = warmup + draw(st.integers(1, 2_000))
    wshape, offset = draw(warmup_shapes), draw(st.sampled_from([0, 1]))
    final = draw(st.floats(0.0, 1.0)) * peak
    kind = draw(st.sampled_from(["constant", "cosine", "linear", "1-sqrt", "poly", "exp", "wsd"]))
    common = dict(peak=peak, warmup=warmup, total=total, warmup_shape=wshape, warmup_offset=offset)
    start, shape, power = warmup, kind, 1.0  # the decay runs from ``start`` to ``total``
    if kind == "constant":
        s = Constant(**common)
    elif kind == "exp":
        final = max(final, peak * 1e-3)
        s = Exponential(**common, final=final)
    elif kind == "wsd":
        decay_steps = draw(st.integers(1, total - warmup))
        shape = draw(st.sampled_from(["linear", "cosine", "1-sqrt", "poly"]))
        power = draw(st.floats(0.5, 3.0)) if shape == "poly" else 1.0
        start = total - decay_steps
        s = WSD(**common, decay_steps=decay_steps, shape=shape, final=final, power=power)
    else:
        if kind == "poly":
            power = draw(st.floats(0.5, 3.0))
        cls = {"cosine": Cosine, "linear": Linear, "1-sqrt": OneMinusSqrt, "poly": Polynomial}[kind]
        s = cls(**common, final=final, **({"power": power} if kind == "poly" else {}))

    def reference(t: int) -> float:
        if t < warmup:
            return peak * _warm((t + offset) / warmup, wshape)
        if kind == "constant":
            return peak
        p = min(max((t - start) / (total - start), 0.0), 1.0)  # elapsed share of the decay
        if kind == "exp":
            return peak * (final / peak) ** p
        return final + (peak - final) * _left(p, shape, power)

    return s, reference


@settings(max_examples=150, deadline=None)
@given(schedules_with_reference(), st.lists(st.integers(0, 5_000), max_size=20))
def test_every_family_matches_its_closed_form(pair, extra):
    """Against cos/sqrt/pow formulas evaluated step by step, on the whole run, past its end and at random steps,
    through both the array and the scalar call. Tolerance as in test_crosscheck: the closed forms cancel near
    the end of a decay (1 + cos, 1 - sqrt), which costs ~1e-16 x peak absolute."""
    s, reference = pair
    steps = [*range(s.total + 50), *extra]
    got = s(np.array(steps))
    for t, value in zip(steps, got.tolist(), strict=True):
        assert math.isclose(value, reference(t), rel_tol=1e-12, abs_tol=1e-15 * s.peak), t
    for t in {0, max(s.warmup - 1, 0), s.warmup, s.total - 1, s.total, *extra[:3]}:
        scalar = s(t)
        assert isinstance(scalar, float)
        assert math.isclose(scalar, reference(t), rel_tol=1e-12, abs_tol=1e-15 * s.peak), t


@settings(max_examples=100, deadline=None)
@given(schedules(), st.lists(st.integers(0, 5_000), max_size=30), st.integers(1, 4))
def test_the_per_step_memo_gives_the_vectorized_values_exactly(s, probes, cycles):
    """A Python int takes the block memo; the array path is the reference: equal floats, in order and out of it,
    for a plain family and a Cyclic composite, and the memo changes neither equality nor the spec."""
    for sched in (s, Cyclic(s, cycles)):
        fresh = parse(str(sched))
        steps = list(range(min(sched.total + 3, 3_000))) + probes  # a scheduler's walk, then random jumps
        assert [sched(t) for t in steps] == sched(np.array(steps)).tolist()
        assert all(type(sched(t)) is float for t in probes)
        assert sched == fresh and str(sched) == str(fresh)


def test_a_table_asked_one_step_at_a_time_ends_where_the_table_does():
    from lrlab.errors import InputError
    from lrlab.schedules.composite import Tabulated

    table = Tabulated(np.linspace(1.0, 0.0, 1_500))
    assert [table(t) for t in range(1_500)] == np.linspace(1.0, 0.0, 1_500).tolist()
    with pytest.raises(InputError, match="past the tabulated"):
        table(1_500)
    assert table(1_024) == table(np.array([1_024]))[0]  # the second block is cut at the table's end
    with pytest.raises(InputError, match="step 5000 is past"):  # the step asked for, not the block's end
        Tabulated(np.ones(1_024))(5_000)


def test_a_block_that_cannot_be_evaluated_whole_falls_back_to_one_step_at_a_time():
    """A table inside a Join ends within the memo's block: each step is still served, and the memo is not
    pickled (a cache, not state)."""
    import pickle

    from lrlab.errors import InputError
    from lrlab.schedules import Constant, Schedule
    from lrlab.schedules.composite import Join, Tabulated

    joined = Join((Tabulated(np.full(500, 1e-3)), Constant(peak=1e-4)), (1_000,))
    assert [joined(t) for t in (0, 499, 1_000, 1_023)] == [1e-3, 1e-3, 1e-4, 1e-4]
    with pytest.raises(InputError, match="step 600 is past"):
        joined(600)

    class Half(Schedule):  # a minimal subclass: no total attribute
        def _lr(self, t):
            return np.full(t.shape, 0.5)

    assert Half()(3) == 0.5
    cosine = parse("cosine:peak=1e-3,total=1000")
    before = len(pickle.dumps(cosine))
    cosine(5)
    assert len(pickle.dumps(cosine)) == before and pickle.loads(pickle.dumps(cosine)) == cosine
