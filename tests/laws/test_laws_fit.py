"""Fitting recovers known parameters from noisy synthetic curves; scores and bands behave."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lawdata import two_stage, warmup_cosine

from lrlab.errors import InputError
from lrlab.laws import Curve, MomentumLaw, MultiPowerLaw, curve_metrics, fit
from lrlab.laws.fitting import huber


def synthetic(law, theta, schedules, noise, seed, every=64, first=500):
    rng = np.random.default_rng(seed)
    curves = []
    for i, lr in enumerate(schedules):
        steps = np.arange(first, len(lr), every)
        clean = law.predict(theta, lr, steps)
        curves.append(Curve(f"c{i}", steps, clean * np.exp(noise * rng.standard_normal(len(steps))), lr))
    return curves


def train_schedules():
    return [
        two_stage(12_000, 300, 10**9, 0.0),  # constant
        warmup_cosine(12_000, 300),
        two_stage(8000, 300, 4000, 9e-5),
    ]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    l0=st.floats(2.0, 3.5),
    a=st.floats(0.3, 0.8),
    alpha=st.floats(0.3, 0.7),
    c=st.floats(0.2, 1.0),
    seed=st.integers(0, 2**16),
)
def test_momentum_law_recovers_its_parameters(l0, a, alpha, c, seed):
    law = MomentumLaw()
    truth = {"L0": l0, "A": a, "alpha": alpha, "C": c}
    result = fit(law, synthetic(law, truth, train_schedules(), 2e-4, seed))
    for name, value in truth.items():
        assert result.theta[name] == pytest.approx(value, rel=0.08), name
    # held-out schedule: a WSD-like linear decay predicted within the noise
    lr = np.concatenate([two_stage(9000, 300, 10**9, 0.0), np.linspace(3e-4, 3e-5, 3000)])
    steps = np.arange(500, 12_000, 64)
    assert curve_metrics(result.predict(lr, steps), law.predict(truth, lr, steps))["prede"] < 1e-3


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    l0=st.floats(2.2, 3.2),
    b=st.floats(300.0, 700.0),
    c=st.floats(0.5, 3.0),
    beta=st.floats(0.3, 0.8),
    gamma=st.floats(0.4, 0.7),
    seed=st.integers(0, 2**16),
)
def test_multipower_law_recovers_its_predictions(l0, b, c, beta, gamma, seed):
    """C, beta, gamma trade off inside the kernel, so the test holds the fit to the curves it implies."""
    law = MultiPowerLaw()
    truth = {"L0": l0, "A": 0.6, "alpha": 0.45, "B": b, "C": c, "beta": beta, "gamma": gamma}
    result = fit(law, synthetic(law, truth, train_schedules(), 2e-4, seed, every=128), method="lbfgs")
    for name in ("L0", "A", "alpha"):
        assert result.theta[name] == pytest.approx(truth[name], rel=0.1), name
    lr = warmup_cosine(20_000, 300)
    steps = np.arange(500, 20_000, 200)
    assert curve_metrics(result.predict(lr, steps), law.predict(truth, lr, steps))["prede"] < 1.5e-3


def test_adam_fit_starts_from_the_saturated_drop_law_and_improves_on_it():
    """The default MPL fit (the authors' procedure): SaturatedDropLaw first, then early-stopped Adam."""
    from lrlab.laws.multipower import SaturatedDropLaw

    law = MultiPowerLaw()
    truth = {"L0": 2.4, "A": 0.6, "alpha": 0.45, "B": 500.0, "C": 2.0, "beta": 0.6, "gamma": 0.6}
    curves = synthetic(law, truth, train_schedules(), 2e-4, 7, every=128)
    start = fit(SaturatedDropLaw(), curves)
    seed = start.theta | {"C": 1.0, "beta": 0.5, "gamma": 0.5}
    y = np.concatenate([c.loss for c in curves])
    pred = np.concatenate([law.predict(seed, c.lr, c.steps) for c in curves])
    result = fit(law, curves)
    assert result.info["method"] == "adam"
    assert result.objective < 0.5 * float(huber(np.log(y) - np.log(pred), 1e-3).sum())
    assert result.theta == fit(law, curves).theta  # deterministic
    assert np.mean([m["prede"] for m in result.curves.values()]) < 2e-3


def test_adam_fit_keeps_its_start_when_the_law_is_invalid_there():
    """A start whose prediction is negative has no finite gradient: the fit stops and returns it unchanged."""
    law = MultiPowerLaw(warmup="skip")
    truth = {"L0": 2.4, "A": 0.6, "alpha": 0.45, "B": 500.0, "C": 2.0, "beta": 0.6, "gamma": 0.6}
    curves = synthetic(law, truth, train_schedules(), 2e-4, 7, every=128)
    start = truth | {"L0": 0.0, "B": 1e5}  # L0 + A S^-alpha - B LD < 0 once the LR has dropped
    result = fit(law, curves, start=start)
    assert result.theta == start
    assert np.isinf(result.objective)


def test_fit_start_must_name_every_parameter_with_a_value_in_bounds():
    law = MultiPowerLaw()
    truth = {"L0": 2.4, "A": 0.6, "alpha": 0.45, "B": 500.0, "C": 2.0, "beta": 0.6, "gamma": 0.6}
    curves = synthetic(law, truth, train_schedules(), 2e-4, 7, every=128)
    for start, message in (
        ({"L0": 2.0}, "missing A"),
        (truth | {"zeta": 1.0}, "unknown zeta"),
        (truth | {"C": math.nan}, "start C = nan is outside"),
        (truth | {"gamma": 9.0}, r"start gamma = 9.0 is outside \[0, 1.5\]"),
    ):
        with pytest.raises(InputError, match=message):
            fit(law, curves, start=start)


def test_adam_falls_back_to_the_lowest_evaluated_point_when_the_kept_one_is_invalid():
    """The kept point is one step past the lowest evaluation, never evaluated itself: if it is invalid, the
    lowest evaluated point is returned. Here the first step moves L0 from 1.02 to ~0.97, where the objective is
    infinite."""
    from lrlab.laws.fitting import _adam

    law = MultiPowerLaw()
    seed = {"L0": 1.02, "A": 0.6, "alpha": 0.45, "B": 500.0, "C": 2.0, "beta": 0.6, "gamma": 0.6}

    def objective(theta):
        return (theta["L0"] - 1.0) ** 2 if theta["L0"] > 0.99 else math.inf

    theta, evaluations = _adam(law, seed, objective)
    assert theta == seed
    assert evaluations == 2


def test_variant_has_no_adam_fit():
    from lrlab.laws import QAreaExpLaw

    law = QAreaExpLaw()
    curves = synthetic(
        law, {"L0": 2.4, "A": 0.6, "alpha": 0.45, "B": 400.0, "C": 40.0, "q": 0.8}, train_schedules(), 0, 1
    )
    with pytest.raises(InputError, match="has no adam fit"):
        fit(law, curves, method="adam")


def test_lbfgs_fit_from_the_truth_stays_there():
    """``start`` is tried before the grid: from the true parameters of a noise-free curve, the optimum is them."""
    law = MomentumLaw()
    truth = {"L0": 2.5, "A": 0.6, "alpha": 0.5, "C": 0.5}
    curves = synthetic(law, truth, train_schedules(), 0.0, 1)
    result = fit(law, curves, start=truth)
    for name, value in truth.items():
        assert result.theta[name] == pytest.approx(value, rel=1e-4), name


def test_saturated_drop_law_is_the_mpl_with_a_complete_drop():
    """G = 1 with the drop measured from the peak: L0 + A S1^-alpha - B (eta_max - eta_s)."""
    from lrlab.laws.multipower import SaturatedDropLaw

    lr = two_stage(4000, 200, 2000, 1e-4)
    steps = np.arange(300, 4000, 100)
    theta = {"L0": 2.0, "A": 0.5, "alpha": 0.4, "B": 300.0}
    want = 2.0 + 0.5 * np.cumsum(lr)[steps] ** -0.4 - 300.0 * (3e-4 - lr[steps])
    np.testing.assert_allclose(SaturatedDropLaw().predict(theta, lr, steps), want, rtol=1e-12)


def test_fit_is_deterministic():
    law = MomentumLaw(lam=None)
    curves = synthetic(law, {"L0": 2.5, "A": 0.6, "alpha": 0.5, "C": 0.5, "lam": 0.998}, train_schedules(), 1e-3, 1)
    a, b = fit(law, curves), fit(law, curves)
    assert a.theta == b.theta
    assert a.theta["lam"] == pytest.approx(0.998, abs=1.5e-3)


def test_huber_is_quadratic_inside_and_linear_outside():
    r = np.array([-3e-3, -5e-4, 0.0, 5e-4, 3e-3])
    np.testing.assert_allclose(huber(r, 1e-3), [2.5e-6, 1.25e-7, 0.0, 1.25e-7, 2.5e-6])


def test_metrics_on_a_known_case():
    m = curve_metrics(np.array([1.1, 2.0, 2.7]), np.array([1.0, 2.0, 3.0]))
    assert m["prede"] == pytest.approx((0.1 + 0.0 + 0.1) / 3)
    assert m["worste"] == pytest.approx(0.1)
    assert m["r2"] == pytest.approx(1 - (0.01 + 0.09) / 2.0)


def test_band_brackets_the_prediction_and_widens_away_from_the_data():
    law = MomentumLaw()
    truth = {"L0": 2.5, "A": 0.6, "alpha": 0.5, "C": 0.5}
    result = fit(law, synthetic(law, truth, train_schedules(), 2e-3, 3))
    lr = two_stage(100_000, 300, 10**9, 0.0)
    steps = np.array([5000, 50_000, 99_999])
    pred, lo, hi = result.band(lr, steps)
    assert np.all(lo < pred) and np.all(pred < hi)
    width = (hi - lo) / pred
    assert width[0] >= 2 * 1.9 * result.resid_std  # at least the residual scatter
    assert width[2] > width[0]  # extrapolating 8x past the data is less certain


def test_noisy_per_step_losses_fit_after_smoothing():
    law = MomentumLaw()
    truth = {"L0": 2.5, "A": 0.6, "alpha": 0.5, "C": 0.5}
    lr = warmup_cosine(6000, 300)
    steps = np.arange(300, 6000)
    rng = np.random.default_rng(0)
    noisy = law.predict(truth, lr, steps) * np.exp(0.02 * rng.standard_normal(len(steps)))
    curve = Curve("noisy", steps, noisy, lr).smoothed(20)
    assert len(curve.steps) == len(steps) // 20
    other = synthetic(law, truth, [two_stage(6000, 300, 10**9, 0.0)], 0.0, 0)
    result = fit(law, [curve, *other])
    held = np.arange(400, 6000, 100)
    assert curve_metrics(result.predict(lr, held), law.predict(truth, lr, held))["prede"] < 2e-3


def test_size_law_recovers_its_parameters_across_three_sizes():
    from lrlab.laws import MomentumSizeLaw

    law = MomentumSizeLaw()
    truth = {"L0": 1.8, "A": 0.55, "alpha": 0.5, "C": 0.4, "B": 0.3, "beta": 0.35, "gamma": 0.2}
    rng = np.random.default_rng(5)
    curves = []
    for n in (25e6, 100e6, 400e6):
        for i, lr in enumerate(train_schedules()):
            steps = np.arange(500, len(lr), 64)
            clean = law.predict(truth, lr, steps, n)
            noisy = clean * np.exp(2e-4 * rng.standard_normal(len(steps)))
            curves.append(Curve(f"{n:.0e}-{i}", steps, noisy, lr, n_params=n))
    result = fit(law, curves)
    for name, value in truth.items():
        assert result.theta[name] == pytest.approx(value, rel=0.1, abs=0.02), name
    lr = warmup_cosine(12_000, 300)
    steps = np.arange(500, 12_000, 100)
    err = curve_metrics(result.predict(lr, steps, 200e6), law.predict(truth, lr, steps, 200e6))["prede"]
    assert err < 1e-3  # an unseen size between the fitted ones


@pytest.mark.parametrize(("gamma", "c"), [(None, 0.02), (0.0, 40.0)])
@pytest.mark.parametrize("warmup", ["count", "skip"])
def test_variant_with_q_1_is_the_large_beta_limit_of_the_multipower_law(gamma, c, warmup):
    from lrlab.laws import QAreaExpLaw

    theta = {"L0": 2.4, "A": 0.65, "alpha": 0.43, "B": 520.0, "C": c, "gamma": 0.8 if gamma is None else gamma}
    lr = two_stage(6000, 300, 3000, 5e-5)
    steps = np.arange(400, 6000, 100)
    limit = QAreaExpLaw(warmup=warmup, gamma=gamma).predict(theta | {"q": 1.0}, lr, steps)
    big = 1e7  # (1 + C x / beta)^-beta -> exp(-C x)
    near = MultiPowerLaw(warmup=warmup).predict(theta | {"C": theta["C"] / big, "beta": big}, lr, steps)
    np.testing.assert_allclose(limit, near, rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(low=st.floats(1e-5, 2e-4), area=st.floats(1e-3, 0.1), c=st.floats(1.0, 300.0))
def test_variant_relaxes_in_lr_area(low, area, c):
    """gamma = 0: after a single drop to ``low``, the share of the drop realized depends only on the LR area
    spent since, 1 - exp(-C area), whatever ``low`` is."""
    from lrlab.laws import QAreaExpLaw

    peak, switch = 3e-4, 1000
    lr = two_stage(switch + 20_000, 100, switch, low, peak)
    n = round(area / low)  # steps at ``low`` that spend about ``area``
    s = np.array([switch + n - 1])
    theta = {"L0": 0.0, "A": 0.0, "alpha": 0.5, "B": 1.0, "C": c, "q": 1.0}
    got = -QAreaExpLaw(warmup="skip").predict(theta, lr, s)[0]
    np.testing.assert_allclose(got, (peak - low) * -np.expm1(-c * n * low), rtol=1e-9)


@pytest.mark.parametrize(
    ("q", "weight"),
    [(0.5, 0.5), (1.0, 0.25), (2.0, 0.0625)],  # the weight of a step at a quarter of the peak: 0.25^q, by hand
)
def test_variant_area_exponent_weights_low_lr_steps(q, weight):
    """Sq = eta_max sum (eta / eta_max)^q: with q = 0.5 a step at a quarter of the peak counts as half a step,
    with q = 1 (the MPL's S1) as a quarter, with q = 2 as a sixteenth. B = 0 isolates the area term
    (L = 1 / Sq), so the expected values depend on q alone."""
    from lrlab.laws import QAreaExpLaw

    law = QAreaExpLaw()
    lr = np.array([1e-4, 4e-4, 1e-4, 1e-4])
    theta = {"L0": 0.0, "A": 1.0, "alpha": 1.0, "B": 0.0, "C": 1.0, "q": q}
    got = law.predict(theta, lr, np.array([0, 1, 3]))
    area = 4e-4 * np.cumsum([weight, 1.0, weight, weight])
    np.testing.assert_allclose(got, 1.0 / area[[0, 1, 3]], rtol=1e-12)


def test_variant_default_gamma_is_fixed_and_ignores_a_theta_entry():
    """gamma = 0 by default is an option, not a parameter: a "gamma" in theta changes nothing, while
    QAreaExpLaw(gamma=None) reads it. One drop from 4e-4 to 1e-4 at step 2 and A = 0 leave the drop term alone:
    L(s) = -(4e-4 - 1e-4) (1 - exp(-C eta^-gamma 1e-4 n)), n = s - 1 steps at the low LR, eta^-0.5 = 100."""
    from lrlab.laws import QAreaExpLaw

    lr = np.array([4e-4, 4e-4, 1e-4, 1e-4, 1e-4])
    steps = np.array([2, 3, 4])
    theta = {"L0": 0.0, "A": 0.0, "alpha": 1.0, "B": 1.0, "C": 10.0, "q": 0.5}
    assert "gamma" not in {p.name for p in QAreaExpLaw().params}
    assert "gamma" in {p.name for p in QAreaExpLaw(gamma=None).params}
    n = steps - 1.0
    for law, extra, rate in (
        (QAreaExpLaw(), {}, 10.0),
        (QAreaExpLaw(), {"gamma": 0.5}, 10.0),  # ignored
        (QAreaExpLaw(gamma=None), {"gamma": 0.0}, 10.0),
        (QAreaExpLaw(gamma=None), {"gamma": 0.5}, 10.0 * 100),
    ):
        got = law.predict(theta | extra, lr, steps)
        np.testing.assert_allclose(got, -3e-4 * -np.expm1(-rate * 1e-4 * n), rtol=1e-9, err_msg=str(extra))
