"""The bundled public loss curves (lrlab.datasets): shipped files, rebuilt schedules, example sets, errors."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lrlab
from lrlab.datasets import (
    DATASETS,
    EXAMPLES,
    MPL_CURVES,
    MPL_PEAK,
    MPL_SIZES,
    MPL_TEST,
    MPL_TRAIN,
    MPL_WARMUP,
    example_curves,
    example_specs,
    mpl_curve,
    mpl_curve_path,
    mpl_log_path,
    mpl_optimized_schedule,
    mpl_schedule_spec,
    root,
)
from lrlab.errors import InputError
from lrlab.schedules import load

# sha256 over (relative path, bytes) of every bundled file but the README, in path order: the files are the
# authors' (source commit 8da9f19), byte for byte.
DIGEST = "a39b31060fac9b6418fd702e31495e1aaefa56fa21046278be3aff0b28ff474d"


def bundled_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_every_bundled_file_is_present_with_its_licence_and_citation():
    folder = root()
    expected = {"README.md", "LICENSE", "CITATION.cff"}
    expected |= {f"loss_curve_repo/csv_{s}/{n}.csv" for s in MPL_SIZES for n in MPL_CURVES}
    expected |= {f"logs/{s}.log" for s in MPL_SIZES} | {f"optimized_schedules/{s}.npy" for s in MPL_SIZES}
    assert {p.relative_to(folder).as_posix() for p in bundled_files(folder)} == expected
    digest = hashlib.sha256()
    for p in bundled_files(folder):
        if p.name != "README.md":
            digest.update(p.relative_to(folder).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    assert digest.hexdigest() == DIGEST
    assert "MIT License" in (folder / "LICENSE").read_text() and "Kairong Luo" in (folder / "LICENSE").read_text()
    assert "2503.12811" in (folder / "CITATION.cff").read_text()
    readme = (folder / "README.md").read_text()
    assert "8da9f1902602f3391b971a811e3cc51604541769" in readme and "unchanged" in readme


def test_the_data_is_found_through_the_installed_package_from_any_directory(tmp_path):
    """root() lies inside the imported lrlab package; a fresh interpreter elsewhere finds it, without torch."""
    assert root().is_relative_to(Path(lrlab.__file__).parent)
    assert root() == Path(lrlab.datasets.__file__).parent / "multipowerlaw"
    code = (
        "import sys, lrlab.datasets as d; c = d.example_curves('mpl-25'); "
        "print(d.root(), len(c), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(root()), "3", "False"]


@pytest.mark.parametrize("size", MPL_SIZES)
def test_rebuilt_schedules_match_the_logged_lr_column(size):
    for name in MPL_CURVES:
        c = mpl_curve(size, name)
        table = np.loadtxt(mpl_curve_path(size, name), delimiter=",", skiprows=1)
        np.testing.assert_array_equal(c.steps, table[:, 0].astype(int), err_msg=name)
        np.testing.assert_array_equal(c.loss, table[:, 2], err_msg=name)
        np.testing.assert_allclose(c.lr[table[:, 0].astype(int)], table[:, 1], rtol=1e-12, err_msg=name)
        # the warmup, which the files do not log: lrlab's linear warmup to the peak
        np.testing.assert_allclose(c.lr[[0, MPL_WARMUP - 1]], [MPL_PEAK / MPL_WARMUP, MPL_PEAK], rtol=1e-12)


def test_example_sets_are_the_authors_train_and_test_curves_of_one_size():
    assert list(EXAMPLES) == ["mpl-25", "mpl-100", "mpl-400"]
    assert all("2503.12811" in text and "\n" not in text for text in EXAMPLES.values())
    for size in MPL_SIZES:
        for split, names in (("train", MPL_TRAIN), ("test", MPL_TEST)):
            curves = example_curves(f"mpl-{size}", split)
            assert [c.name for c in curves] == list(names)
            assert all(c.n_params == size * 1e6 for c in curves)
            specs = example_specs(f"mpl-{size}", split)
            assert list(specs) == list(names)
            assert [c.schedule for c in curves] == [str(load(specs[n])) for n in names]
    assert [c.name for c in example_curves("mpl-400")] == list(MPL_TRAIN)  # train is the default


def test_the_other_bundled_files_load():
    for size in MPL_SIZES:
        lr = mpl_optimized_schedule(size)
        assert lr.shape == (24_000 - MPL_WARMUP,) and lr.dtype == np.float64
        assert lr[0] == MPL_PEAK and np.all(np.diff(lr) <= 0) and lr[-1] > 0
        assert "Fitting complete" in mpl_log_path(size).read_text()


def test_data_points_at_another_copy_of_the_same_layout(tmp_path):
    copy = shutil.copytree(root(), tmp_path / "copy")
    assert mpl_curve_path(100, "wsdcon_3", data=copy) == copy / "loss_curve_repo" / "csv_100" / "wsdcon_3.csv"
    np.testing.assert_array_equal(mpl_curve(100, "wsdcon_3", data=copy).loss, mpl_curve(100, "wsdcon_3").loss)
    np.testing.assert_array_equal(mpl_optimized_schedule(25, data=str(copy)), mpl_optimized_schedule(25))
    assert mpl_log_path(400, data=copy).read_text() == mpl_log_path(400).read_text()
    with pytest.raises(InputError, match="no such file"):
        mpl_curve(25, "cosine_24000", data=tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("call", "names"),
    [
        (lambda: root("nope"), DATASETS),
        (lambda: mpl_curve(50, "cosine_24000"), ("25", "100", "400")),
        (lambda: mpl_curve_path(25, "cosine_48000"), MPL_CURVES),
        (lambda: mpl_log_path(7), ("25", "100", "400")),
        (lambda: mpl_optimized_schedule("400"), ("25", "100", "400")),
        (lambda: mpl_schedule_spec("linear_24000"), ("constant_T", "wsdcon_K")),
        (lambda: mpl_schedule_spec("wsd_24000_20000"), ("wsd_S_T",)),
        (lambda: example_curves("mpl-50"), tuple(EXAMPLES)),
        (lambda: example_curves("mpl-25", "val"), ("train", "test")),
        (lambda: example_specs("400"), tuple(EXAMPLES)),
    ],
)
def test_bad_names_are_one_line_input_errors_naming_the_choices(call, names):
    with pytest.raises(InputError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    assert all(n in message for n in names), message


def test_schedule_specs_of_the_file_names():
    assert mpl_schedule_spec("constant_72000") == "constant:peak=0.0003,warmup=2160"
    assert mpl_schedule_spec("cosine_24000") == "cosine:peak=0.0003,warmup=2160,total=24000,final=3e-05"
    assert mpl_schedule_spec("wsdld_20000_24000") == (
        "wsd:peak=0.0003,warmup=2160,total=24000,decay_steps=4000,shape=linear,final=3e-05"
    )
    assert mpl_schedule_spec("wsdcon_18") == "constant:peak=0.0003,warmup=2160 | @8000 constant:peak=18e-5"


# --- the development set's reader (lrlab.datasets.schedules_and_scaling), on the group vendored for tests ---------

DEV = Path(__file__).parents[1] / "laws" / "data" / "schedules-and-scaling"


def test_dev_set_protocols_split_the_group_as_its_readme_says():
    from lrlab.datasets import schedules_and_scaling as sas

    assert sas.groups(DEV) == ["slimpajama_L8_d384"]
    pilots, targets = sas.split(DEV, "slimpajama_L8_d384", "cross-peak")
    assert pilots == ["const_lr0.001_T10000", "cos10_lr0.002_T3000"]  # longest constant, shortest cosine
    assert sorted(targets) == ["cos10_lr0.002_T10000", "cos10_lr0.002_T7000", "wsd-linear-f0.2_lr0.001_T3000",
                               "wsd-linear-f0.2_lr0.001_T7000"]  # fmt: skip
    pilots, targets = sas.split(DEV, "slimpajama_L8_d384", "same-peak")
    assert (pilots, targets) == (
        ["const_lr0.001_T10000", "wsd-linear-f0.2_lr0.001_T3000"],
        ["wsd-linear-f0.2_lr0.001_T7000"],
    )
    c = sas.curve(DEV, "slimpajama_L8_d384", "wsd-linear-f0.2_lr0.001_T7000")
    assert c.steps[0] == 200 and c.steps[-1] == 6800 and len(c.lr) == 6801  # the LR of every step to the last
    # the sidecar LR equals the logged LR at every logged step (the data's README checks the same)
    logged = np.loadtxt(DEV / "slimpajama_L8_d384" / "wsd-linear-f0.2_lr0.001_T7000.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(c.lr[logged[:, 0].astype(int)], logged[:, 1], rtol=1e-12)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [(None, "no such file"), ("{", "not JSON"), ('{"groups": {}}', "non-empty 'groups'"), ("[1]", "'groups' table")],
)
def test_dev_set_with_a_bad_manifest_is_one_input_error(tmp_path, manifest, message):
    from lrlab.datasets import schedules_and_scaling as sas

    if manifest is not None:
        (tmp_path / "manifest.json").write_text(manifest)
    with pytest.raises(InputError, match=message) as info:
        sas.groups(tmp_path)
    assert "\n" not in str(info.value)


def test_dev_set_bad_names_are_input_errors():
    from lrlab.datasets import schedules_and_scaling as sas

    with pytest.raises(InputError, match="unknown group 'nope'"):
        sas.split(DEV, "nope", "cross-peak")
    with pytest.raises(InputError, match="unknown protocol 'sideways'"):
        sas.split(DEV, "slimpajama_L8_d384", "sideways")
    with pytest.raises(InputError, match="has no curve 'x'"):
        sas.curve(DEV, "slimpajama_L8_d384", "x")
