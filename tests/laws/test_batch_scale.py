"""Hyperparameter power laws across scale (lrlab.laws.batch.scale): exact recovery, agreement with numpy and
scipy's regressions, the leave-one-group-out error, the published laws at a point worked by hand, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from lrlab.errors import InputError
from lrlab.laws.batch.scale import PUBLISHED, fit_power, published

N = np.repeat([1e8, 3e8, 1e9, 3e9], 3)
D = np.tile([2e9, 2e10, 2e11], 4)


# -- recovery and agreement -------------------------------------------------------------------------------------


def test_exact_power_law_data_give_back_coefficient_and_exponents():
    lr = 1.79 * N**-0.713 * D**0.307
    fit = fit_power("lr", lr, {"N": N, "D": D}, groups=N)
    assert fit.coef == pytest.approx(1.79, rel=1e-9)
    assert fit.exponents["N"] == pytest.approx(-0.713, abs=1e-10)
    assert fit.exponents["D"] == pytest.approx(0.307, abs=1e-10)
    assert fit.features == ("N", "D") and fit.n == 12 and fit.target == "lr"
    np.testing.assert_allclose(fit.log_residuals, 0.0, atol=1e-12)
    for key, value in (("coef", 1.79), ("N", -0.713), ("D", 0.307)):
        lo, hi = fit.intervals[key]
        assert lo == pytest.approx(value, rel=1e-8, abs=1e-10) and hi == pytest.approx(value, rel=1e-8, abs=1e-10)
    np.testing.assert_allclose(fit.predict(N=2e9, D=5e10), 1.79 * 2e9**-0.713 * 5e10**0.307, rtol=1e-9)


@settings(max_examples=80, deadline=None)
@given(
    st.floats(-3.0, 3.0),
    st.lists(st.floats(-1.5, 1.5), min_size=1, max_size=3),
    st.integers(0, 2**32 - 1),
)
def test_any_exact_power_law_is_recovered(log10_coef, exponents, seed):
    rng = np.random.default_rng(seed)
    n = len(exponents) + 2 + int(rng.integers(0, 6))
    features = {f"x{k}": 10.0 ** rng.uniform(0, 12, n) for k in range(len(exponents))}
    y = 10.0**log10_coef * np.prod([features[f"x{k}"] ** a for k, a in enumerate(exponents)], axis=0)
    fit = fit_power("y", y, features)
    assert math.log10(fit.coef) == pytest.approx(log10_coef, abs=1e-8)
    for k, a in enumerate(exponents):
        assert fit.exponents[f"x{k}"] == pytest.approx(a, abs=1e-9)


def noisy(seed=3, sigma=0.1):
    rng = np.random.default_rng(seed)
    return 0.58 * D**0.571 * N**0.02 * np.exp(sigma * rng.standard_normal(len(N)))


def test_the_fit_agrees_with_numpy_lstsq_on_log_y():
    y = noisy()
    x = np.column_stack([np.ones(len(y)), np.log(N), np.log(D)])
    beta, rss, *_ = np.linalg.lstsq(x, np.log(y), rcond=None)
    fit = fit_power("B_opt", y, {"N": N, "D": D})
    assert math.log(fit.coef) == pytest.approx(beta[0], rel=1e-10)
    assert [fit.exponents["N"], fit.exponents["D"]] == pytest.approx(beta[1:], rel=1e-10)
    assert float(fit.log_residuals @ fit.log_residuals) == pytest.approx(float(rss[0]), rel=1e-10)
    np.testing.assert_allclose(fit.log_residuals, np.log(y) - x @ beta, atol=1e-12)


def test_one_feature_intervals_are_scipy_linregress_t_intervals():
    y = noisy()
    reg = stats.linregress(np.log(D), np.log(y))
    fit = fit_power("B_opt", y, {"D": D}, level=0.9)
    t = stats.t.ppf(0.95, len(y) - 2)
    assert fit.exponents["D"] == pytest.approx(reg.slope, rel=1e-10)
    assert fit.intervals["D"] == pytest.approx((reg.slope - t * reg.stderr, reg.slope + t * reg.stderr), rel=1e-9)
    lo, hi = math.exp(reg.intercept - t * reg.intercept_stderr), math.exp(reg.intercept + t * reg.intercept_stderr)
    assert fit.intervals["coef"] == pytest.approx((lo, hi), rel=1e-9)
    assert fit.coef == pytest.approx(math.exp(reg.intercept), rel=1e-10) and fit.level == 0.9


def test_predict_broadcasts_and_names_its_features():
    fit = fit_power("B_opt", noisy(), {"N": N, "D": D})
    out = fit.predict(N=np.array([[1e9], [2e9]]), D=np.array([1e10, 1e11, 1e12]))
    assert out.shape == (2, 3) and np.all(np.diff(out, axis=1) > 0)
    with pytest.raises(InputError, match="missing D"):
        fit.predict(N=1e9)
    with pytest.raises(InputError, match="unknown C"):
        fit.predict(N=1e9, D=1e10, C=1.0)
    with pytest.raises(InputError, match="D: must be finite and > 0, got -1"):
        fit.predict(N=1e9, D=-1.0)


# -- leave one group out ----------------------------------------------------------------------------------------


def test_logo_error_is_zero_on_exact_data_and_positive_on_noisy_data():
    exact = 0.58 * D**0.571
    assert fit_power("B_opt", exact, {"D": D}, groups=N).logo_error == pytest.approx(0.0, abs=1e-12)
    error = fit_power("B_opt", noisy(), {"D": D}, groups=N).logo_error
    assert error is not None and 0.01 < error < 0.5


def test_logo_error_is_the_mean_held_out_log_error_worked_by_polyfit():
    y = noisy(seed=11)
    groups = np.repeat(["a", "b", "c", "d"], 3)
    expected = []
    for g in "abcd":
        keep = groups != g
        slope, intercept = np.polyfit(np.log(D[keep]), np.log(y[keep]), 1)
        expected.extend(np.abs(np.log(y[~keep]) - (intercept + slope * np.log(D[~keep]))))
    fit = fit_power("B_opt", y, {"D": D}, groups=groups)
    assert fit.logo_error == pytest.approx(float(np.mean(expected)), rel=1e-9)
    # without groups each row is its own group (leave one out)
    loo = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        slope, intercept = np.polyfit(np.log(D[keep]), np.log(y[keep]), 1)
        loo.append(abs(math.log(y[i]) - (intercept + slope * math.log(D[i]))))
    assert fit_power("B_opt", y, {"D": D}).logo_error == pytest.approx(float(np.mean(loo)), rel=1e-9)


def test_logo_error_is_none_with_fewer_than_three_groups_or_an_unfittable_fold():
    y = noisy()
    assert fit_power("B_opt", y, {"D": D}, groups=N < 1e9).logo_error is None  # two groups
    assert fit_power("B_opt", y, {"D": D}, groups=D).logo_error is not None  # each fold keeps two D values
    pair = fit_power("lr", [1.0, 1.1, 0.8], {"N": [1e8, 1e8, 2e8]}, groups=[0, 1, 2])
    assert pair.logo_error is None  # leaving out the one row at 2e8 leaves N with one value


# -- published laws ---------------------------------------------------------------------------------------------


def test_published_laws_at_one_billion_parameters_and_a_hundred_billion_tokens():
    """Worked by hand (log10): Step Law eta = 10^(0.25285 - 0.713 x 9 + 0.307 x 11) = 10^-2.78715 = 1.6325e-3,
    B = 0.58 x 10^(0.571 x 11) = 0.58 x 10^6.281 = 1.1077e6 tokens; DeepSeek with C = 6 N D = 6e20 FLOPs
    (log10 C = 20.77815): eta = 0.3118 x 10^(-0.125 x 20.77815) = 0.3118 x 10^-2.59727 = 7.8815e-4,
    B = 0.2920 x 10^(0.3271 x 20.77815) = 0.2920 x 10^6.79654 = 1.8277e6 tokens."""
    rows = {r["name"]: r for r in published(N=1e9, D=1e11)}
    assert set(rows) == {"Step Law", "DeepSeek LLM"}
    assert rows["Step Law"]["eta_opt"] == pytest.approx(1.6325e-3, rel=2e-4)
    assert rows["Step Law"]["B_opt"] == pytest.approx(1.1077e6, rel=2e-4)
    assert rows["DeepSeek LLM"]["eta_opt"] == pytest.approx(7.8815e-4, rel=2e-4)
    assert rows["DeepSeek LLM"]["B_opt"] == pytest.approx(1.8277e6, rel=2e-4)
    assert rows["DeepSeek LLM"]["inputs"] == {"C": 6e20, "C_from": "6 N D"}
    assert "2503.04715" in rows["Step Law"]["reference"] and "2401.02954" in rows["DeepSeek LLM"]["reference"]
    assert rows["Step Law"]["formulas"]["eta_opt"] == "eta_opt = 1.79 N^-0.713 D^0.307"
    assert "tokens" in rows["Step Law"]["units"]["B_opt"] and "FLOPs" in rows["DeepSeek LLM"]["units"]["B_opt"]


def test_published_gives_what_its_inputs_allow():
    only_d = {r["name"]: r for r in published(D=1e11)}
    assert set(only_d) == {"Step Law"} and only_d["Step Law"]["eta_opt"] is None
    assert only_d["Step Law"]["B_opt"] == pytest.approx(1.1077e6, rel=2e-4)
    given_c = {r["name"]: r for r in published(N=1e9, D=1e11, C=1e21)}
    assert given_c["DeepSeek LLM"]["inputs"]["C_from"] == "given"
    assert given_c["DeepSeek LLM"]["B_opt"] == pytest.approx(0.2920 * 1e21**0.3271, rel=1e-12)
    assert published() == [] and [r["name"] for r in published(N=1e9)] == []
    assert PUBLISHED["step-law/B_opt"](D=1e11) == pytest.approx(1.1077e6, rel=2e-4)
    for law in PUBLISHED.values():
        assert law.formula.startswith(law.target) and law.reference and law.units
    with pytest.raises(InputError, match="takes D"):
        PUBLISHED["step-law/B_opt"](N=1e9)


BAD_INPUTS = [({"N": -1.0}, "N"), ({"D": 0.0}, "D"), ({"C": math.inf}, "C"), ({"N": [1e9, 2e9]}, "N"),
              ({"D": True}, "D"), ({"C": "x"}, "C")]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "param"), BAD_INPUTS)
def test_published_refuses_inputs_that_are_not_one_positive_number(kwargs, param):
    with pytest.raises(InputError) as err:
        published(**kwargs)
    assert err.value.param == param and "\n" not in str(err.value)


# -- bad input --------------------------------------------------------------------------------------------------


def test_a_feature_with_one_value_is_refused_by_name():
    with pytest.raises(InputError, match="N takes one value: its exponent cannot be fitted") as err:
        fit_power("lr", noisy(), {"N": np.full(12, 1e9), "D": D})
    assert err.value.param == "N"


def test_too_few_rows_for_intervals_are_refused():
    with pytest.raises(InputError, match=r"3 parameters .* need at least 4 rows for intervals, got 3") as err:
        fit_power("lr", [1.0, 2.0, 3.0], {"N": [1.0, 2.0, 4.0], "D": [1.0, 3.0, 2.0]})
    assert err.value.param == "y"
    fit = fit_power("lr", [1.0, 2.0, 3.0], {"N": [1.0, 2.0, 4.0]})  # 2 parameters, 3 rows: one dof, fine
    assert fit.intervals["N"][0] < fit.exponents["N"] < fit.intervals["N"][1]


@pytest.mark.parametrize(
    ("y", "features", "groups", "param", "match"),
    [
        ([1, 2, 3, -4], {"N": [1, 2, 3, 4]}, None, "y", "must be finite and > 0, got -4"),
        ([1, 2, 3, math.nan], {"N": [1, 2, 3, 4]}, None, "y", "must be finite and > 0, got nan"),
        ([1, 2, 3, 4], {"N": [1, 2, 0, 4]}, None, "N", "must be finite and > 0, got 0"),
        ([1, 2, 3, 4], {"N": [1, 2, 3]}, None, "N", "3 values where y has 4"),
        ([1, 2, 3, 4], {}, None, "features", "needs at least one feature"),
        ([1, 2, 3, 4], {"not a name": [1, 2, 3, 4]}, None, "features", "identifiers"),
        ([1, 2, 3, 4], {"N": [1, 2, 3, 4]}, [0, 1], "groups", "2 group labels where y has 4"),
        ([[1, 2, 3, 4]], {"N": [1, 2, 3, 4]}, None, "y", "one-dimensional"),
        (
            [1, 2, 3, 4, 5],
            {"N": [1, 2, 3, 4, 5], "D": [2, 3, 5, 7, 11], "C": [12, 36, 90, 168, 330]},
            None,
            "features",
            "linearly dependent",
        ),
    ],
)
def test_bad_tables_are_one_line_errors_naming_the_parameter(y, features, groups, param, match):
    with pytest.raises(InputError, match=match) as err:
        fit_power("lr", y, features, groups=groups)
    assert err.value.param == param and "\n" not in str(err.value)


@pytest.mark.parametrize("level", [0, 1, 2, True, None])
def test_a_bad_level_or_target_is_refused(level):
    with pytest.raises(InputError, match="between 0 and 1") as err:
        fit_power("lr", [1, 2, 3], {"N": [1, 2, 4]}, level=level)
    assert err.value.param == "level"
    with pytest.raises(InputError) as err:
        fit_power("", [1, 2, 3], {"N": [1, 2, 4]})
    assert err.value.param == "target"
