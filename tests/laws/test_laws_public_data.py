"""On the multi-power-law authors' public curves (bundled, lrlab.datasets): fits against their logs."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from lrlab.datasets import MPL_CURVES, MPL_PEAK, MPL_TEST, MPL_TRAIN, MPL_WARMUP, mpl_curve
from lrlab.laws import MomentumLaw, MultiPowerLaw, curve_metrics, fit, optimize_free
from lrlab.laws.optimize import baseline


def curves(data_dir, size):
    return {n: mpl_curve(size, n, data=data_dir) for n in MPL_CURVES}


def logged(data_dir, size, key):
    """The authors' logged per-curve metric (e.g. prede) for each curve of their fit."""
    text = (data_dir / "logs" / f"{size}.log").read_text()
    pairs = re.findall(rf"evaluation:(\w+)\.csv\n(?:.*\n)*?.*{key}: ([0-9.e-]+)", text)
    return {name: float(v) for name, v in pairs}


def test_momentum_law_matches_its_published_error_on_400m(data_dir):
    """Tissue et al. report ~0.22% mean PredE for the momentum law on these test curves; within 10% of it."""
    cs = curves(data_dir, 400)
    f = fit(MomentumLaw(), [cs[n] for n in MPL_TRAIN])
    mean = np.mean([curve_metrics(f.predict(cs[n].lr, cs[n].steps), cs[n].loss)["prede"] for n in MPL_TEST])
    assert 0.9 * 0.0022 <= mean <= 1.1 * 0.0022


def logged_params(data_dir, size, line):
    """A parameter list logged on the line containing ``line`` (e.g. 'Fitting complete')."""
    text = (data_dir / "logs" / f"{size}.log").read_text()
    found = re.search(rf"{line}.*?Best Params: \[([^\]]+)\]", text, re.S)
    return [float(v) for v in found.group(1).replace(",", " ").split()]


def authors_lr(name, size):
    """The authors' per-step LR: their warmup is linspace(0, peak, W), i.e. lr(t) = peak t / (W - 1)."""
    lr = mpl_curve(size, name).lr.copy()
    lr[:MPL_WARMUP] = np.linspace(0.0, MPL_PEAK, MPL_WARMUP)
    return lr


@pytest.mark.parametrize("size", [25, 100, 400])
def test_authors_logged_parameters_reproduce_their_logged_errors(data_dir, size):
    """The convention check: their fitted parameters, our law with the warmup counted in the loss-drop sum and
    their LR array, give every PredE their log reports (train and test); skipping the warmup is ~5% off."""
    names = ["L0", "A", "alpha", "B", "C", "beta", "gamma"]
    theta = dict(zip(names, logged_params(data_dir, size, "Fitting complete"), strict=True))
    theirs = logged(data_dir, size, "prede")
    cs = curves(data_dir, size)
    for n in ("cosine_24000", "wsdcon_9", "wsd_20000_24000"):  # one of each shape keeps the test short
        lr = authors_lr(n, size)
        ours = curve_metrics(MultiPowerLaw().predict(theta, lr, cs[n].steps), cs[n].loss)["prede"]
        assert ours == pytest.approx(theirs[n], rel=1e-4), n
        skipped = curve_metrics(MultiPowerLaw(warmup="skip").predict(theta, lr, cs[n].steps), cs[n].loss)
        assert skipped["prede"] > 0.02


def test_default_fit_follows_the_authors_procedure(data_dir):
    """SaturatedDropLaw reaches their logged initialization; early-stopped Adam from there lands near their fit
    (our seed differs from theirs by ~1e-4, which the early-stopped steps amplify)."""
    from lrlab.laws.multipower import SaturatedDropLaw

    cs = curves(data_dir, 400)
    train = [cs[n] for n in MPL_TRAIN]
    start = fit(SaturatedDropLaw(), train).theta
    np.testing.assert_allclose(list(start.values()), logged_params(data_dir, 400, "Initialization"), rtol=1e-3)
    final = fit(MultiPowerLaw(), train).theta
    np.testing.assert_allclose(list(final.values()), logged_params(data_dir, 400, "Fitting complete"), rtol=0.03)


@pytest.mark.parametrize("size", [25, 100, 400])
def test_adam_stage_from_the_logged_seed_reproduces_the_logged_fit(data_dir, size):
    """The bookkeeping check: from their logged seed (+ C, beta, gamma = 1, 0.5, 0.5) and on their LR arrays,
    lrlab's early-stopped Adam stops at their logged step on their logged final parameters (measured within
    4e-5). Keeping the lowest point itself instead of the point one step after it (their loop records after
    stepping) lands 0.3-0.4% away, far outside this tolerance."""
    names = ["L0", "A", "alpha", "B", "C", "beta", "gamma"]
    seed = dict(zip(names, [*logged_params(data_dir, size, "Initialization"), 1.0, 0.5, 0.5], strict=True))
    cs = curves(data_dir, size)
    train = [replace(cs[n], lr=authors_lr(n, size)) for n in MPL_TRAIN]
    result = fit(MultiPowerLaw(), train, start=seed)
    np.testing.assert_allclose(
        list(result.theta.values()), logged_params(data_dir, size, "Fitting complete"), rtol=1e-4
    )
    stopped = re.search(r"Early stopping at step (\d+)", (data_dir / "logs" / f"{size}.log").read_text())
    assert result.info["adam_steps"] == int(stopped.group(1)) + 1  # their 0-based step of the last evaluation


@pytest.mark.parametrize("size", [25, 100, 400])
def test_converged_multipower_fit_is_at_least_as_close_as_the_authors_on_the_training_curves(data_dir, size):
    cs = curves(data_dir, size)
    f = fit(MultiPowerLaw(), [cs[n] for n in MPL_TRAIN], method="lbfgs")
    theirs = logged(data_dir, size, "prede")
    for n in MPL_TRAIN:
        assert f.curves[n]["prede"] <= theirs[n], n
    test = np.mean([curve_metrics(f.predict(cs[n].lr, cs[n].steps), cs[n].loss)["prede"] for n in MPL_TEST])
    assert test < 0.0025  # held-out mean PredE: 0.14-0.22%, the authors log 0.11-0.17% with their own fit


def test_free_form_schedule_matches_the_authors_optimized_one(data_dir):
    """Under the default (authors'-procedure) fit, the law their schedule was optimized for: within 3e-5 (our 24
    knots against their per-step schedule; the gain over cosine is ~0.06)."""
    cs = curves(data_dir, 400)
    f = fit(MultiPowerLaw(), [cs[n] for n in MPL_TRAIN])
    total, peak, warmup = 24_000, 3e-4, 2160
    t = np.arange(warmup)
    authors = np.concatenate([peak * (t + 1) / warmup, np.load(data_dir / "optimized_schedules" / "400.npy")])
    theirs = float(f.predict(authors, [total - 1])[0])
    cosine = float(f.predict(baseline(total, peak, warmup).values(total), [total - 1])[0])
    ours = optimize_free(f, total, peak, warmup).loss
    assert ours <= theirs + 3e-5 < cosine


@pytest.mark.slow
def test_variant_beats_the_multipower_law_on_held_out_curves(data_dir):
    """Why lrlab keeps mpl-qexp (fitted on TRAIN only): mean TEST PredE at or below the issue's goal of 0.12% at
    every size (measured 0.104 / 0.078 / 0.115), lower than the converged MPL at every size and than the default
    (authors'-procedure) MPL on average over the sizes (not at 25M)."""
    from lrlab.laws import QAreaExpLaw

    means = {}
    for size in (25, 100, 400):
        cs = curves(data_dir, size)
        for key, law, method in (
            ("adam", MultiPowerLaw(), None),
            ("lbfgs", MultiPowerLaw(), "lbfgs"),
            ("qexp", QAreaExpLaw(), None),
        ):
            f = fit(law, [cs[n] for n in MPL_TRAIN], method=method)
            pred = [curve_metrics(f.predict(cs[n].lr, cs[n].steps), cs[n].loss)["prede"] for n in MPL_TEST]
            means[key, size] = np.mean(pred)
    for size in (25, 100, 400):
        assert means["qexp", size] <= 0.0012, size
        assert means["qexp", size] < means["lbfgs", size], size
    assert np.mean([means["qexp", s] for s in (25, 100, 400)]) < np.mean([means["adam", s] for s in (25, 100, 400)])
