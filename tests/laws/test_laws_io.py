"""A fitted law survives JSON save/load exactly; bad fit files are one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lawdata import two_stage, warmup_cosine

from lrlab.errors import InputError
from lrlab.laws import (
    Curve,
    MomentumFloorLaw,
    MomentumLaw,
    MultiPowerLaw,
    QAreaExpLaw,
    SaturatedDropLaw,
    fit,
    load_fit,
    save_fit,
)
from lrlab.laws.io import fit_to_dict


@pytest.mark.parametrize(
    "law",
    [
        MomentumLaw(lam=None, warmup="area"),
        MultiPowerLaw(),
        MultiPowerLaw(warmup="skip"),
        QAreaExpLaw(),
        QAreaExpLaw(warmup="skip", gamma=None),
        SaturatedDropLaw(),
        MomentumFloorLaw(),
        MomentumFloorLaw(lam=0.99),
    ],
)
def test_round_trip_predicts_the_same(tmp_path, law):
    lr = warmup_cosine(6000, 200)
    steps = np.arange(300, 6000, 100)
    loss = 2.5 + 0.6 * np.cumsum(lr)[steps] ** -0.5
    flat = two_stage(6000, 200, 10**9, 0.0)
    flat_loss = 2.5 + 0.6 * np.cumsum(flat)[steps] ** -0.5 + 0.01
    result = fit(law, [Curve("cos", steps, loss, lr), Curve("flat", steps, flat_loss, flat)])
    result.model_error = 0.004  # as lrlab.laws.select sets it
    save_fit(result, tmp_path / "f.json")
    back = load_fit(tmp_path / "f.json")
    assert back.law.options() == law.options()
    assert back.theta == result.theta and back.model_error == 0.004
    assert back.info["from_step"] == result.info["from_step"] == 295  # T / 20 = 5900 / 20 (3 W = 597)
    for a, b in zip(back.band(lr, steps), result.band(lr, steps), strict=True):
        np.testing.assert_array_equal(a, b)
    assert back.info["warmup"] == 200
    assert back.curves == result.curves


def test_bad_fit_files(tmp_path):
    path = tmp_path / "f.json"
    path.write_text("{")
    with pytest.raises(InputError, match="not JSON"):
        load_fit(path)
    path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(InputError, match="not an lrlab law fit"):
        load_fit(path)
    for old in (1, 99):  # version 1 fits predate the mpl laws' warmup option: refused, never misread
        path.write_text(json.dumps({"format": "lrlab.law-fit", "version": old}))
        with pytest.raises(InputError, match=f"unsupported version {old!r}"):
            load_fit(path)
    path.write_text(json.dumps({"format": "lrlab.law-fit", "version": 2, "law": "nope"}))
    with pytest.raises(InputError, match="unknown law 'nope'"):
        load_fit(path)
    path.write_text(json.dumps({"format": "lrlab.law-fit", "version": 2, "law": "mpl", "params": {"L0": 1}}))
    with pytest.raises(InputError, match="missing key 'A'"):
        load_fit(path)
    with pytest.raises(InputError, match=r"fit .*absent\.json: no such file"):
        load_fit(tmp_path / "absent.json")


def test_version_3_fits_load_without_a_model_error_and_a_bad_one_is_refused(tmp_path):
    lr = warmup_cosine(6000, 200)
    steps = np.arange(300, 6000, 100)
    result = fit(MomentumLaw(), [Curve("cos", steps, 2.5 + 0.6 * np.cumsum(lr)[steps] ** -0.5, lr)])
    d = fit_to_dict(result)
    d["version"] = 3
    del d["model_error"]
    (tmp_path / "v3.json").write_text(json.dumps(d))
    assert load_fit(tmp_path / "v3.json").model_error == 0.0
    for bad in (-0.1, 1.5, "x", None):
        d = fit_to_dict(result) | {"model_error": bad}
        (tmp_path / "bad.json").write_text(json.dumps(d))
        with pytest.raises(InputError, match="model_error"):
            load_fit(tmp_path / "bad.json")


def test_version_2_variant_fits_load_with_their_fitted_gamma(tmp_path):
    """Version 2 wrote mpl-qexp without a gamma option because its gamma was always fitted: read it that way."""
    lr = warmup_cosine(6000, 200)
    steps = np.arange(300, 6000, 100)
    law = QAreaExpLaw(warmup="skip", gamma=None)
    theta = {"L0": 2.4, "A": 0.6, "alpha": 0.45, "B": 400.0, "gamma": 0.8, "C": 0.02, "q": 0.8}
    result = fit(law, [Curve("cos", steps, law.predict(theta, lr, steps), lr)])
    d = fit_to_dict(result)
    d["version"] = 2
    del d["options"]["gamma"]
    (tmp_path / "v2.json").write_text(json.dumps(d))
    back = load_fit(tmp_path / "v2.json")
    assert back.law.options() == {"warmup": "skip", "gamma": None}
    np.testing.assert_array_equal(back.predict(lr, steps), result.predict(lr, steps))


@pytest.mark.parametrize(
    ("spec", "warmup"),
    [
        ("constant:peak=3e-4,warmup=200", 200),
        ("constant:peak=3e-4,warmup=200,warmup_offset=0", 200),  # lr(t) = peak t / W reaches the peak at t = W
        ("constant:peak=3e-4,warmup=200 | @3000 constant:peak=1e-4", 200),  # composite: read off the LR
    ],
)
def test_saved_warmup_is_the_spec_warmup(spec, warmup):
    from lrlab.laws.fitting import training_info
    from lrlab.schedules import parse

    lr = parse(spec).values(6000)
    assert training_info([Curve("c", np.arange(300, 6000, 100), np.ones(57), lr, spec)])["warmup"] == warmup
