"""On the multi-power-law authors' public curves: schedules rebuilt from file names, fits against their logs."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from lrlab.laws import MomentumLaw, MultiPowerLaw, curve_metrics, fit, load_curve, optimize_free
from lrlab.laws.optimize import baseline

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "laws.py"
_spec = importlib.util.spec_from_file_location("bench_laws", BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def curves(data_dir, size):
    folder = data_dir / "loss_curve_repo" / f"csv_{size}"
    return {n: load_curve(folder / f"{n}.csv", schedule=bench.spec_of(n)) for n in bench.TRAIN + bench.TEST}


def logged(data_dir, size, key):
    """The authors' logged per-curve metric (e.g. prede) for each curve of their fit."""
    text = (data_dir / "logs" / f"{size}.log").read_text()
    pairs = re.findall(rf"evaluation:(\w+)\.csv\n(?:.*\n)*?.*{key}: ([0-9.e-]+)", text)
    return {name: float(v) for name, v in pairs}


@pytest.mark.parametrize("size", [25, 100, 400])
def test_rebuilt_schedules_match_the_logged_lr_column(data_dir, size):
    for name, c in curves(data_dir, size).items():
        table = np.loadtxt(data_dir / "loss_curve_repo" / f"csv_{size}" / f"{name}.csv", delimiter=",", skiprows=1)
        np.testing.assert_allclose(c.lr[table[:, 0].astype(int)], table[:, 1], rtol=1e-12, err_msg=name)


def test_momentum_law_matches_its_published_error_on_400m(data_dir):
    """Tissue et al. report ~0.22% mean PredE for the momentum law on these test curves; within 10% of it."""
    cs = curves(data_dir, 400)
    f = fit(MomentumLaw(), [cs[n] for n in bench.TRAIN])
    mean = np.mean([curve_metrics(f.predict(cs[n].lr, cs[n].steps), cs[n].loss)["prede"] for n in bench.TEST])
    assert 0.9 * 0.0022 <= mean <= 1.1 * 0.0022


@pytest.mark.parametrize("size", [25, 100, 400])
def test_multipower_fit_is_at_least_as_close_as_the_authors_on_the_training_curves(data_dir, size):
    cs = curves(data_dir, size)
    f = fit(MultiPowerLaw(), [cs[n] for n in bench.TRAIN])
    theirs = logged(data_dir, size, "prede")
    for n in bench.TRAIN:
        assert f.curves[n]["prede"] <= theirs[n], n
    test = np.mean([curve_metrics(f.predict(cs[n].lr, cs[n].steps), cs[n].loss)["prede"] for n in bench.TEST])
    assert test < 0.0025  # held-out mean PredE; the authors log 0.11-0.17% with their own fit


def test_free_form_schedule_is_no_worse_than_the_authors_optimized_one(data_dir):
    cs = curves(data_dir, 400)
    f = fit(MultiPowerLaw(), [cs[n] for n in bench.TRAIN])
    total, peak, warmup = 24_000, 3e-4, 2160
    t = np.arange(warmup)
    authors = np.concatenate([peak * (t + 1) / warmup, np.load(data_dir / "optimized_schedules" / "400.npy")])
    theirs = float(f.predict(authors, [total - 1])[0])
    cosine = float(f.predict(baseline(total, peak, warmup).values(total), [total - 1])[0])
    ours = optimize_free(f, total, peak, warmup).loss
    assert ours <= theirs + 1e-9 < cosine


@pytest.mark.slow
@pytest.mark.parametrize("size", [25, 100, 400])
def test_exp_kernel_variant_beats_the_multipower_law_on_held_out_curves(data_dir, size):
    """The reason lrlab keeps its variant: lower mean test PredE at every size, fitted on TRAIN only."""
    from lrlab.laws import QAreaExpLaw

    cs = curves(data_dir, size)
    means = []
    for law in (MultiPowerLaw(), QAreaExpLaw()):
        f = fit(law, [cs[n] for n in bench.TRAIN])
        means.append(
            np.mean([curve_metrics(f.predict(cs[n].lr, cs[n].steps), cs[n].loss)["prede"] for n in bench.TEST])
        )
    assert means[1] < means[0]
