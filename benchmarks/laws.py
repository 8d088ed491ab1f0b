"""Loss-curve laws on the multi-power-law authors' public curves: fit on TRAIN, predict TEST.

Data: the curves Luo et al. published with "A Multi-Power Law for Loss Curve Prediction Across Learning Rate
Schedules" (2025, arXiv:2503.12811; MIT licence), bundled with lrlab as package data in
src/lrlab/datasets/multipowerlaw (lrlab.datasets.root(); its README, LICENSE and CITATION.cff say what each file
is). ``--data PATH`` reads another copy of the same layout instead. For each model size (25M, 100M, 400M) every
law is fitted on the authors' TRAIN split (constant_24000, cosine_24000, wsdcon_9) and scored on the TEST split
(constant_72000, cosine_72000, wsd_20000_24000, wsdld_20000_24000, wsdcon_3, wsdcon_18). Each curve's LR of every
step is rebuilt from its file name with lrlab schedules (lrlab.datasets.mpl_schedule_spec), as the README
describes. Sizes run in the outer loop and laws in the inner one, so the fit times of the laws are measured
alternately in one process.

``--laws momentum-size`` adds the momentum law's model-size form, fitted once on the TRAIN curves of all the
sizes given (N = 25e6, 100e6, 400e6) and scored per size (its fit_seconds is that one joint fit). Other names
beyond the registry's: momentum-area, mpl-converged (mpl fitted to convergence by L-BFGS-B instead of the
authors' early-stopped Adam), mpl-paper (converged, warmup skipped in the loss-drop sum as the paper's formula
reads), mpl-qexp-skip (the variant with the warmup skipped) and mpl-qexp-gamma (the variant's earlier form: the
kernel's gamma fitted, warmup skipped).

``--select`` runs the train-only model-selection protocol instead (no TEST curve is read for it): per law and
size, the mean PredE of leave-one-TRAIN-curve-out and of a time split at step 16000 (see selection_scores).

Baselines, named in the output:
- ``mpl``: lrlab's MultiPowerLaw; every law's mean PredE is printed as a ratio to it;
- ``authors``: the per-curve test PredE that the authors' own fit logged (logs/{size}.log), read at run time.

Text mode also compares schedules for a 24000-step run under the fitted mpl and mpl-qexp: cosine to 10%, the
best WSD, the free-form optimum, and the authors' MPL-optimized schedule (optimized_schedules/{size}.npy).

Run:  python benchmarks/laws.py [--sizes 25,100,400] [--laws momentum,mpl,mpl-qexp] [--json] [--select] [--data PATH]
--json prints {"<law>": {"<size>": {"mean_prede", "band_coverage", "fit_seconds", "curves": {"<name>": {"prede",
"worste", "coverage"}}}}}; coverage is the share of a test curve's points inside the fit's nominal 95% band.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from lrlab.datasets import MPL_PEAK, MPL_TEST, MPL_TRAIN, MPL_WARMUP, mpl_curve, mpl_log_path, mpl_optimized_schedule
from lrlab.laws import curve_metrics, fit, make_law, optimize_free, optimize_wsd
from lrlab.laws.optimize import baseline

TRAIN, TEST = MPL_TRAIN, MPL_TEST  # the authors' split
PEAK, WARMUP = MPL_PEAK, MPL_WARMUP
# benchmark name -> (registry law, its options, fit method or None for the law's default)
LAWS = {
    "momentum": ("momentum", {"lam": 0.999, "warmup": "peak"}, None),
    "momentum-area": ("momentum", {"lam": 0.999, "warmup": "area"}, None),
    "mpl-converged": ("mpl", {}, "lbfgs"),
    "mpl-paper": ("mpl", {"warmup": "skip"}, "lbfgs"),
    "mpl-qexp-skip": ("mpl-qexp", {"warmup": "skip"}, None),
    "mpl-qexp-gamma": ("mpl-qexp", {"warmup": "skip", "gamma": None}, None),
}
SPLIT = 16_000  # the time split of the selection protocol (--select)


def law_of(name: str):
    """(law, fit method) by benchmark name: the registry names, plus the variants of ``LAWS``."""
    base, options, method = LAWS.get(name, (name, {}, None))
    return make_law(base, **options), method


def fit_named(name: str, curves: list):
    law, method = law_of(name)
    return fit(law, curves, method=method)


def authors_prede(size: int, data: Path | None = None) -> dict[str, float]:
    """Per-curve PredE logged by the authors' fit: lines 'evaluation:NAME.csv' followed by 'prede: X'."""
    text = mpl_log_path(size, data=data).read_text()
    pairs = re.findall(r"evaluation:(\w+)\.csv\n(?:.*\n)*?.*prede: ([0-9.e-]+)", text)
    return {name: float(v) for name, v in pairs}


def load_size(size: int, names: tuple[str, ...] = TRAIN + TEST, data: Path | None = None) -> dict:
    """The curves of one model size, named by file, each with its parameter count (for momentum-size); ``data``:
    a copy of the data's layout, by default the bundled one."""
    return {n: mpl_curve(size, n, data=data) for n in names}


def score(f, curves: dict, seconds: float) -> dict:
    """The benchmark record of one fit on one size: per-curve test PredE / WorstE, their mean, the fit time, and
    the coverage of the nominal 95% band (the share of a curve's observed points inside it)."""
    out = {}
    for n, c in curves.items():
        if n in TEST:
            pred, lo, hi = f.band(c.lr, c.steps, c.n_params)
            out[n] = curve_metrics(pred, c.loss) | {"coverage": float(np.mean((c.loss >= lo) & (c.loss <= hi)))}
    return {
        "mean_prede": float(np.mean([s["prede"] for s in out.values()])),
        "band_coverage": float(np.mean([s["coverage"] for s in out.values()])),
        "fit_seconds": seconds,
        "curves": {n: {k: s[k] for k in ("prede", "worste", "coverage")} for n, s in out.items()},
    }


def run_size(curves: dict, laws: list[str]) -> tuple[dict, dict]:
    results, fits = {}, {}
    for name in laws:
        f = fit_named(name, [curves[n] for n in TRAIN])
        results[name] = score(f, curves, f.seconds)
        fits[name] = f
    return results, fits


def run_size_law(by_size: dict[int, dict]) -> dict[int, dict]:
    """momentum-size: one fit on the TRAIN curves of every size at once, scored per size."""
    train = [replace(c[n], name=f"{size}M/{n}") for size, c in by_size.items() for n in TRAIN]
    f = fit(make_law("momentum-size"), train)
    return {size: score(f, curves, f.seconds) for size, curves in by_size.items()}


def selection_scores(curves: dict, name: str) -> dict[str, float]:
    """The train-only model-selection protocol: PredE on held-out parts of the TRAIN curves, never TEST.

    - leave one curve out: fit on two TRAIN curves, score the third (3 scores);
    - time split: fit on the steps < SPLIT of all three, score constant_24000 and cosine_24000 from SPLIT on.
    """

    def part(c, keep):
        return replace(c, steps=c.steps[keep(c.steps)], loss=c.loss[keep(c.steps)])

    out = {}
    for held in TRAIN:
        f = fit_named(name, [curves[n] for n in TRAIN if n != held])
        out[f"without {held}"] = curve_metrics(f.predict(curves[held].lr, curves[held].steps), curves[held].loss)
    f = fit_named(name, [part(curves[n], lambda s: s < SPLIT) for n in TRAIN])
    for n in ("constant_24000", "cosine_24000"):
        late = part(curves[n], lambda s: s >= SPLIT)
        out[f"{n} after {SPLIT}"] = curve_metrics(f.predict(late.lr, late.steps), late.loss)
    return {k: v["prede"] for k, v in out.items()}


def run_selection(by_size: dict[int, dict], laws: list[str], as_json: bool) -> None:
    """--select: the protocol's mean PredE per law and size (and its parts), then nothing about TEST."""
    report = {name: {} for name in laws}
    for size, curves in by_size.items():
        for name in laws:
            scores = selection_scores(curves, name)
            report[name][str(size)] = {"select_prede": float(np.mean(list(scores.values()))), "parts": scores}
    if as_json:
        print(json.dumps(report))
        return
    table = Table(title="train-only selection protocol: mean held-out PredE (%)", show_edge=False)
    table.add_column("law")
    for size in by_size:
        table.add_column(f"{size}M", justify="right")
    table.add_column("mean", justify="right")
    for name in laws:
        vals = [report[name][str(size)]["select_prede"] for size in by_size]
        table.add_row(name, *(f"{100 * v:.3f}" for v in vals), f"{100 * np.mean(vals):.3f}")
    Console().print(table)


def schedule_comparison(size: int, law_fit, data: Path | None = None) -> dict[str, float]:
    """Predicted final loss (24000 steps) of four schedules under a fitted law."""
    total = 24_000
    t = np.arange(WARMUP)
    authors = np.concatenate([PEAK * (t + 1) / WARMUP, mpl_optimized_schedule(size, data=data)])
    last = np.array([total - 1])
    return {
        "cosine to 10%": float(law_fit.predict(baseline(total, PEAK, WARMUP).values(total), last)[0]),
        "best wsd": optimize_wsd(law_fit, total, PEAK, WARMUP).loss,
        "free-form (lrlab)": optimize_free(law_fit, total, PEAK, WARMUP).loss,
        "authors' optimized": float(law_fit.predict(authors, last)[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="25,100,400")
    parser.add_argument("--laws", default="momentum,mpl,mpl-qexp")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--select", action="store_true", help="run the train-only selection protocol instead")
    parser.add_argument("--data", type=Path, help="a copy of the multipowerlaw data's layout (default: bundled)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    laws = args.laws.split(",")
    if args.select:
        run_selection({size: load_size(size, TRAIN, args.data) for size in sizes}, laws, args.json)
        return
    report: dict[str, dict[str, dict]] = {name: {} for name in laws}
    console = Console()
    by_size = {size: load_size(size, data=args.data) for size in sizes}
    per_size = [n for n in laws if n != "momentum-size"]
    joint = run_size_law(by_size) if "momentum-size" in laws else {}
    for size in sizes:
        results, fits = run_size(by_size[size], per_size)
        if joint:
            results["momentum-size"] = joint[size]
        for name, r in results.items():
            report[name][str(size)] = r
        if args.json:
            continue
        logged = authors_prede(size, args.data)
        table = Table(title=f"{size}M: test PredE / WorstE (%)", show_edge=False)
        table.add_column("curve")
        for name in laws:
            table.add_column(name, justify="right")
        table.add_column("authors' log", justify="right")
        for n in TEST:
            cells = [
                f"{100 * results[k]['curves'][n]['prede']:.3f} / {100 * results[k]['curves'][n]['worste']:.3f}"
                for k in laws
            ]
            table.add_row(n, *cells, f"{100 * logged[n]:.3f}")
        authors_mean = float(np.mean([logged[n] for n in TEST]))
        table.add_row(
            "mean PredE", *(f"{100 * results[k]['mean_prede']:.4f}" for k in laws), f"{100 * authors_mean:.4f}"
        )
        if "mpl" in results:
            ref = results["mpl"]["mean_prede"]
            table.add_row(
                "ratio to mpl", *(f"{results[k]['mean_prede'] / ref:.3f}" for k in laws), f"{authors_mean / ref:.3f}"
            )
        table.add_row("95% coverage", *(f"{results[k]['band_coverage']:.2f}" for k in laws), "")
        table.add_row("fit seconds", *(f"{results[k]['fit_seconds']:.2f}" for k in laws), "")
        console.print(table)
        for name in ("mpl", "mpl-qexp"):
            if name not in fits:
                continue
            comp = schedule_comparison(size, fits[name], args.data)
            base = comp["cosine to 10%"]
            console.print(f"{size}M, 24000 steps, predicted final loss under lrlab's {name} fit:")
            for k, v in comp.items():
                console.print(f"  {k:20s} {v:.4f}   gain over cosine {base - v:+.4f}")
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
