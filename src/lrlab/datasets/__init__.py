"""Public loss-curve data bundled with lrlab, to try the loss-curve laws (:mod:`lrlab.laws`) on real curves.

One dataset ships today, ``"multipowerlaw"``: the loss curves that Luo et al. published with "A Multi-Power Law
for Loss Curve Prediction Across Learning Rate Schedules" (2025, arXiv:2503.12811), copied unchanged from
https://github.com/thu-yao-01-luo/MultiPowerLaw (commit 8da9f19; MIT licence, Copyright (c) 2025 Kairong Luo).
The licence, the authors' CITATION.cff and a README describing every file ship next to the data, in
``root("multipowerlaw")``; cite the paper when you use the curves.

What is in it (see that README):

- ``loss_curve_repo/csv_{25,100,400}/NAME.csv``: 27 curves, columns ``step,lr,loss``, of Llama-2-style models of
  25M / 100M / 400M parameters (AdamW, batch 0.5M tokens). ``step`` is the 0-based optimizer step, warmup
  included; ``lr`` the raw learning rate (peak 3e-4); ``loss`` the language-model loss in nats, 4 decimals.
  Rows every 128 steps, from the end of the 2160-step linear warmup on. The schedule of each curve is named by
  its file (``mpl_schedule_spec`` rebuilds it as an lrlab schedule spec for every step).
- ``logs/{size}.log``: the authors' fit logs (their fitted parameters, per-curve errors).
- ``optimized_schedules/{size}.npy``: their MPL-optimized LR for a 24000-step run, post-warmup only (21840
  float64 values, raw LR); a prediction, not a measured curve.

Use it:

    from lrlab.datasets import example_curves
    from lrlab.laws import MultiPowerLaw, fit
    f = fit(MultiPowerLaw(), example_curves("mpl-400"))          # the authors' TRAIN split, 400M

A second, ``"critical_batch_size"``: the steps that runs at nine batch sizes took to reach a target loss, for
five model sizes (85M to 1.2B), printed by Zhang et al. 2024, "How Does Critical Batch Size Scale in
Pre-training?" (arXiv:2410.21676) in https://github.com/hlzhang109/critical-batch-size (commit c5b509d; MIT
licence, Copyright (c) 2024 Hanlin Zhang). Batch sizes in sequences of 512 tokens (``CBS_SEQ_LEN``); see its
README in ``root("critical_batch_size")``. Fit the noise scale per model:

    from lrlab.datasets import critical_batch_size
    from lrlab.laws.batch.steps import fit_steps
    fits = {m: fit_steps(b, s) for m, (b, s, _) in critical_batch_size().items()}

numpy and :mod:`lrlab.laws` / :mod:`lrlab.schedules` only (no torch). Every bad name is an
:class:`lrlab.errors.InputError` whose one-line message lists the choices.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import numpy as np

from lrlab.errors import InputError
from lrlab.laws import Curve, load_curve

__all__ = [
    "CBS_SEQ_LEN",
    "DATASETS",
    "EXAMPLES",
    "MPL_CURVES",
    "MPL_FINAL",
    "MPL_PEAK",
    "MPL_SIZES",
    "MPL_TEST",
    "MPL_TRAIN",
    "MPL_WARMUP",
    "critical_batch_size",
    "example_curves",
    "example_specs",
    "mpl_curve",
    "mpl_curve_path",
    "mpl_log_path",
    "mpl_optimized_schedule",
    "mpl_schedule_spec",
    "root",
]

DATASETS = ("multipowerlaw", "critical_batch_size")

MPL_SIZES = (25, 100, 400)  # model sizes in millions of parameters (the csv_{size} folders)
# The authors' split (paper's Table 6, their src/config.py): fit on TRAIN, predict TEST.
MPL_TRAIN = ("constant_24000", "cosine_24000", "wsdcon_9")
MPL_TEST = ("constant_72000", "cosine_72000", "wsd_20000_24000", "wsdld_20000_24000", "wsdcon_3", "wsdcon_18")
MPL_CURVES = MPL_TRAIN + MPL_TEST
MPL_PEAK = 3e-4  # peak LR (raw) of every curve
MPL_WARMUP = 2160  # linear warmup steps of every curve
MPL_FINAL = 3e-5  # final LR of the cosine and WSD curves

# Example sets for ``lrlab fit --example NAME``: name -> one line saying what it is.
EXAMPLES = {
    f"mpl-{size}": f"Luo et al. 2025 (arXiv:2503.12811, MIT licence), {size}M parameters: {', '.join(MPL_TRAIN)}"
    for size in MPL_SIZES
}
_EXAMPLE_SIZE = {f"mpl-{size}": size for size in MPL_SIZES}
_SPLITS = {"train": MPL_TRAIN, "test": MPL_TEST}


def _choices(values) -> str:
    return ", ".join(str(v) for v in values)


def root(name: str = "multipowerlaw") -> Path:
    """The folder of a bundled dataset, inside the installed lrlab package (its README, LICENSE, data)."""
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; choose from {_choices(DATASETS)}")
    return Path(str(files(__name__).joinpath(name)))


def _folder(data: str | Path | None) -> Path:
    return root() if data is None else Path(data)


def _size(size: int) -> int:
    if size not in MPL_SIZES:
        raise InputError(f"unknown multipowerlaw model size {size!r}; choose from {_choices(MPL_SIZES)} (millions)")
    return int(size)


def mpl_schedule_spec(name: str) -> str:
    """The lrlab schedule spec of a multipowerlaw curve, rebuilt from its file name (without ``.csv``).

    All: linear warmup over 2160 steps to the peak 3e-4 (lrlab's warmup, ``peak (t + 1) / 2160``; the authors'
    is ``linspace(0, peak, 2160)``, which the data's ``lr`` column does not show: it starts after warmup).
    ``constant_T``: the peak; ``cosine_T``: cosine to 3e-5 at step T; ``wsd_S_T`` / ``wsdld_S_T``: the peak until
    S, then a geometric / linear decay to 3e-5 at T; ``wsdcon_K``: the peak until step 8000, then K x 1e-5.
    """
    warm = f"peak={MPL_PEAK},warmup={MPL_WARMUP}"
    if re.fullmatch(r"constant_(\d+)", name):
        return f"constant:{warm}"
    if m := re.fullmatch(r"cosine_(\d+)", name):
        return f"cosine:{warm},total={m[1]},final={MPL_FINAL}"
    if (m := re.fullmatch(r"(wsd|wsdld)_(\d+)_(\d+)", name)) and int(m[2]) < int(m[3]):
        shape = "exp" if m[1] == "wsd" else "linear"
        return f"wsd:{warm},total={m[3]},decay_steps={int(m[3]) - int(m[2])},shape={shape},final={MPL_FINAL}"
    if m := re.fullmatch(r"wsdcon_(\d+)", name):  # two-stage: the peak until step 8000, then a constant K x 1e-5
        return f"constant:{warm} | @8000 constant:peak={int(m[1])}e-5"
    raise InputError(
        f"unknown multipowerlaw curve {name!r}; expected constant_T, cosine_T, wsd_S_T, wsdld_S_T or wsdcon_K "
        f"(bundled: {_choices(MPL_CURVES)})"
    )


def mpl_curve_path(size: int, name: str, *, data: str | Path | None = None) -> Path:
    """The CSV (``step,lr,loss``) of one curve; ``data``: another copy of the same layout (default: bundled)."""
    size = _size(size)
    if name not in MPL_CURVES:
        raise InputError(f"unknown multipowerlaw curve {name!r}; choose from {_choices(MPL_CURVES)}")
    return _folder(data) / "loss_curve_repo" / f"csv_{size}" / f"{name}.csv"


def mpl_curve(size: int, name: str, *, data: str | Path | None = None) -> Curve:
    """One curve as an :class:`lrlab.laws.Curve` named by its file (e.g. ``cosine_24000``): its logged steps and
    losses (nats), the LR of every step from :func:`mpl_schedule_spec`, and ``n_params = size x 1e6``."""
    path = mpl_curve_path(size, name, data=data)
    return load_curve(path, schedule=mpl_schedule_spec(name), n_params=size * 1e6)


def mpl_log_path(size: int, *, data: str | Path | None = None) -> Path:
    """The authors' text log of their fit on one model size (fitted parameters, per-curve PredE etc.)."""
    return _folder(data) / "logs" / f"{_size(size)}.log"


def mpl_optimized_schedule(size: int, *, data: str | Path | None = None) -> np.ndarray:
    """The authors' MPL-optimized LR for a 24000-step run, after the 2160-step warmup: 21840 raw LRs (float64)."""
    return np.load(_folder(data) / "optimized_schedules" / f"{_size(size)}.npy", allow_pickle=False)


def _example(name: str, split: str) -> tuple[int, tuple[str, ...]]:
    if name not in EXAMPLES:
        raise InputError(f"unknown example {name!r}; choose from {_choices(EXAMPLES)}", "name")
    if split not in _SPLITS:
        raise InputError(f"unknown split {split!r} of example {name}; choose from {_choices(_SPLITS)}")
    return _EXAMPLE_SIZE[name], _SPLITS[split]


def example_specs(name: str, split: str = "train") -> dict[str, str]:
    """Curve name -> lrlab schedule spec of an example set (``EXAMPLES``), without reading any file."""
    _, names = _example(name, split)
    return {n: mpl_schedule_spec(n) for n in names}


def example_curves(name: str, split: str = "train") -> list[Curve]:
    """The curves of an example set (``EXAMPLES``: ``mpl-25``, ``mpl-100``, ``mpl-400``): ``split="train"``
    the authors' TRAIN curves of that model size (what to fit), ``"test"`` their TEST curves (what to predict)."""
    size, names = _example(name, split)
    return [mpl_curve(size, n) for n in names]


CBS_SEQ_LEN = 512  # tokens a sequence in every critical_batch_size run (its seq_len column)


def critical_batch_size(*, data: str | Path | None = None) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """The ``critical_batch_size`` table: model (``"85M"`` ... ``"1.2B"``) -> (batch_size, steps, target_loss).

    ``batch_size`` in sequences of :data:`CBS_SEQ_LEN` tokens, ``steps`` the optimizer steps to the model's
    ``target_loss`` (C4 validation cross-entropy, nats per token), in file order (batch sizes ascending).
    ``data``: another copy of ``steps_to_target.csv`` (default: the bundled one).
    """
    # imported here, not at the top: lrlab.datasets is imported by most of lrlab, the batch laws by few
    from lrlab.laws.batch.steps import load_steps

    path = root("critical_batch_size") / "steps_to_target.csv" if data is None else Path(data)
    table = load_steps(path, group=["model", "target_loss"])
    out: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
    for (model, target), (batch_size, steps) in table.items():
        if model in out:
            raise InputError(f"{path}: model {model!r} has more than one target_loss")
        try:
            loss = float(target)
        except ValueError:
            raise InputError(f"{path}: target_loss of model {model!r} is not a number: {target!r}") from None
        out[model] = (batch_size, steps, loss)
    return out
