"""Loss-curve laws held out: the multi-power-law public curves (bundled), or the development set (``--data``).

``--dataset multipowerlaw`` (default). Data: the curves Luo et al. published with "A Multi-Power Law for Loss
Curve Prediction Across Learning Rate Schedules" (2025, arXiv:2503.12811; MIT licence), bundled with lrlab as
package data in src/lrlab/datasets/multipowerlaw (lrlab.datasets.root(); its README, LICENSE and CITATION.cff say
what each file is). ``--data PATH`` reads another copy of the same layout instead. For each model size (25M,
100M, 400M) every law is fitted on the authors' TRAIN split (constant_24000, cosine_24000, wsdcon_9) and scored
on the TEST split (constant_72000, cosine_72000, wsd_20000_24000, wsdld_20000_24000, wsdcon_3, wsdcon_18). Each
curve's LR of every step is rebuilt from its file name with lrlab schedules (lrlab.datasets.mpl_schedule_spec).
Sizes run in the outer loop and laws in the inner one, so the fit times of the laws are measured alternately.
Every law is fitted as ``lrlab fit`` fits it: the default window, and the pilots-only model error in its band
(lrlab.laws.select); ``auto`` is ``lrlab fit``'s default, the law that protocol chooses.

``--laws momentum-size`` adds the momentum law's model-size form, fitted once on the TRAIN curves of all the
sizes given (N = 25e6, 100e6, 400e6) and scored per size (its fit_seconds is that one joint fit). Other names
beyond the registry's: momentum-area, mpl-converged (mpl fitted to convergence by L-BFGS-B instead of the
authors' early-stopped Adam), mpl-paper (converged, warmup skipped in the loss-drop sum as the paper's formula
reads), mpl-qexp-skip (the variant with the warmup skipped) and mpl-qexp-gamma (the variant's earlier form: the
kernel's gamma fitted, warmup skipped).

``--select`` runs the earlier train-only model-selection protocol instead (no TEST curve is read for it): per
law and size, the mean PredE of leave-one-TRAIN-curve-out and of a time split at step 16000 (selection_scores).

Baselines, named in the output:
- ``mpl``: lrlab's MultiPowerLaw; every law's mean PredE is printed as a ratio to it;
- ``authors``: the per-curve test PredE that the authors' own fit logged (logs/{size}.log), read at run time.

Text mode also compares schedules for a 24000-step run under the fitted mpl and mpl-qexp: cosine to 10%, the
best WSD, the free-form optimum, and the authors' MPL-optimized schedule (optimized_schedules/{size}.npy).

``--dataset schedules-and-scaling --data PATH``: the development set (10 groups, lrlab.datasets.
schedules_and_scaling), both fixed protocols or one (``--protocol``): per law, mean PredE over the groups of the
targets' points at step >= 1000, and the share of those points inside the band. The named baseline is
``plain-momentum``: a 4-parameter momentum fit written here with scipy alone (points at step >= 1000, lambda
picked from {0.99, 0.995, 0.999} by the objective); ``auto`` also reports its picks and how many of them were the
candidate with the best test error.

Run:  python benchmarks/laws.py [--sizes 25,100,400] [--laws ...] [--json] [--select] [--data PATH]
      python benchmarks/laws.py --dataset schedules-and-scaling --data PATH [--protocol P] [--laws ...] [--json]
--json prints, for multipowerlaw, {"<law>": {"<size>": {"mean_prede", "band_coverage", "fit_seconds", "curves":
{"<name>": {"prede", "worste", "coverage"}}}}}; for schedules-and-scaling, {"<protocol>": {"<law>": {"mean_prede",
"band_coverage", "groups": {"<group>": {"prede", "coverage", "law"}}}}}.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from lrlab.datasets import MPL_PEAK, MPL_TEST, MPL_TRAIN, MPL_WARMUP, mpl_curve, mpl_log_path, mpl_optimized_schedule
from lrlab.datasets import schedules_and_scaling as sas
from lrlab.laws import curve_metrics, fit, make_law, optimize_free, optimize_wsd
from lrlab.laws.fitting import fit_window
from lrlab.laws.optimize import baseline
from lrlab.laws.select import CANDIDATES, fit_measured, select

SCORE_FROM = sas.SCORE_FROM

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


def fit_named(name: str, curves: list, from_step="auto", measured: bool = False):
    """A benchmark law fitted on ``curves``: ``auto`` through lrlab.laws.select; with ``measured``, the others
    with their pilots-only model error too (the band lrlab fit saves), else plain lrlab.laws.fit."""
    if name == "auto":
        return select(curves, from_step=from_step)
    law, method = law_of(name)
    if measured:
        return fit_measured(law, curves, from_step, method=method)
    return fit(law, curves, method=method, from_step=from_step)


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
        f = fit_named(name, [curves[n] for n in TRAIN], measured=True)
        results[name] = score(f, curves, f.seconds)
        if name == "auto":
            results[name]["chosen"] = f.law.name
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
        return c.records(keep(c.steps))

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


# ----- the development set (schedules-and-scaling, not bundled: --data PATH) -----
DEV_LAWS = "momentum,mpl,mpl-qexp,momentum-floor,auto,plain-momentum"


def plain_momentum_fit(curves: list, from_step: int = SCORE_FROM):
    """The named baseline, independent of lrlab's fitter: the 4-parameter momentum law
    L0 + A S1^-alpha - C S2 (warmup flat at the peak) fitted with scipy's least_squares (Huber, f_scale 1e-3
    on log loss) to the points at step >= 1000 only, lambda picked from {0.99, 0.995, 0.999} by the objective.
    Returns a function (lr, steps) -> predicted loss."""
    from scipy.optimize import least_squares
    from scipy.signal import lfilter

    def features(lr, lam):
        flat = np.array(lr, dtype=float)
        flat[: int(np.argmax(flat))] = flat.max()
        drops = np.r_[0.0, flat[:-1] - flat[1:]]
        return np.cumsum(flat), np.cumsum(lfilter([1.0], [1.0, -lam], drops))

    best = None
    for lam in (0.99, 0.995, 0.999):
        cols = []
        for c in curves:
            keep = c.steps >= from_step
            s1, s2 = features(c.lr, lam)
            cols.append((s1[c.steps[keep]], s2[c.steps[keep]], c.loss[keep]))
        s1, s2, y = (np.concatenate(v) for v in zip(*cols, strict=True))

        def resid(x, s1=s1, s2=s2, y=y):
            pred = x[0] + np.exp(x[1]) * s1 ** -x[2] - np.exp(x[3]) * s2
            return np.log(y) - np.log(np.maximum(pred, 1e-12))

        for alpha in (0.3, 0.5, 0.8):
            coef = np.linalg.lstsq(np.stack([np.ones_like(s1), s1**-alpha, -s2], 1), y, rcond=None)[0]
            x0 = [coef[0], np.log(max(coef[1], 1e-8)), alpha, np.log(max(coef[2], 1e-8))]
            r = least_squares(resid, x0, loss="huber", f_scale=1e-3, max_nfev=3000)
            if best is None or r.cost < best[0]:
                best = (r.cost, r.x, lam)
    _, x, lam = best

    def predict(lr, steps):
        s1, s2 = features(lr, lam)
        return x[0] + np.exp(x[1]) * s1[steps] ** -x[2] - np.exp(x[3]) * s2[steps]

    return predict


def dev_fit(name: str, pilots: list, from_step):
    """(predict(lr, steps), band(lr, steps) or None, chosen law) for one benchmark law name on the pilots."""
    if name == "plain-momentum":
        return plain_momentum_fit(pilots), None, name
    f = fit_named(name, pilots, from_step, measured=True)
    return f.predict, f.band, f.law.name


def run_dev(data: Path, laws: list[str], protocols: list[str], from_step, as_json: bool) -> None:
    """Both fixed protocols on every group: mean PredE (step >= 1000) per law, band coverage, auto's picks."""
    report: dict = {}
    console = Console()
    for proto in protocols:
        rows: dict[str, dict] = {name: {"groups": {}} for name in laws}
        for group in sas.groups(data):
            pilot_names, target_names = sas.split(data, group, proto)
            pilots = [sas.curve(data, group, n) for n in pilot_names]
            targets = [fit_window(sas.curve(data, group, n), SCORE_FROM) for n in target_names]
            for name in laws:
                predict, band, chosen = dev_fit(name, pilots, from_step)
                errs, cover = [], []
                for c in targets:
                    errs.append(float(np.mean(np.abs(predict(c.lr, c.steps) - c.loss) / c.loss)))
                    if band is not None:
                        _, lo, hi = band(c.lr, c.steps)
                        cover.append(float(np.mean((c.loss >= lo) & (c.loss <= hi))))
                rows[name]["groups"][group] = {"prede": float(np.mean(errs)), "law": chosen}
                if cover:
                    rows[name]["groups"][group]["coverage"] = float(np.mean(cover))
        for row in rows.values():
            groups = row["groups"].values()
            row["mean_prede"] = float(np.mean([g["prede"] for g in groups]))
            if all("coverage" in g for g in groups):
                row["band_coverage"] = float(np.mean([g["coverage"] for g in groups]))
        if "auto" in rows:
            rows["auto"] |= auto_summary(rows)
        report[proto] = rows
    if as_json:
        print(json.dumps(report))
        return
    for proto, rows in report.items():
        base = rows.get("plain-momentum", {}).get("mean_prede")
        table = Table(title=f"schedules-and-scaling, {proto}: mean PredE over the groups (%)", show_edge=False)
        for col in ("law", "mean PredE %", "ratio to plain-momentum", "95% coverage"):
            table.add_column(col, justify="right")
        for name, row in rows.items():
            ratio = f"{row['mean_prede'] / base:.3f}" if base else ""
            cov = f"{row['band_coverage']:.2f}" if "band_coverage" in row else ""
            table.add_row(name, f"{100 * row['mean_prede']:.3f}", ratio, cov)
        console.print(table)
        if "auto" in rows:
            a = rows["auto"]
            console.print(
                f"  auto picked the best-on-test candidate in {a['picked_best']}/{a['n_groups']} groups; "
                f"picks: {a['picks']}; best single candidate: {a['best_single']}"
            )


def auto_summary(rows: dict) -> dict:
    """How auto's per-group picks compare with the candidates' test errors (the candidates' rows must be run)."""
    groups = list(rows["auto"]["groups"])
    picks = {g: rows["auto"]["groups"][g]["law"] for g in groups}
    have = [n for n in CANDIDATES if n in rows]
    out = {"picks": dict(sorted(Counter(picks.values()).items())), "n_groups": len(groups)}
    if len(have) == len(CANDIDATES):
        best = {g: min(have, key=lambda n: rows[n]["groups"][g]["prede"]) for g in groups}
        out["picked_best"] = sum(picks[g] == best[g] for g in groups)
        out["best_single"] = min(have, key=lambda n: rows[n]["mean_prede"])
    return out


def _window(text: str):
    if text == "auto":
        return text
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"a whole number of steps >= 0 or 'auto', got {text!r}")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="25,100,400")
    parser.add_argument("--laws", default="momentum,mpl,mpl-qexp,momentum-floor,auto")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--select", action="store_true", help="run the train-only selection protocol instead")
    parser.add_argument("--data", type=Path, help="a copy of the multipowerlaw data's layout (default: bundled)")
    parser.add_argument("--dataset", choices=("multipowerlaw", "schedules-and-scaling"), default="multipowerlaw")
    parser.add_argument("--protocol", choices=sas.PROTOCOLS, help="schedules-and-scaling: one protocol (default both)")
    parser.add_argument(
        "--from-step", default="auto", type=_window, help="the fit window's first step (default: lrlab's rule)"
    )
    args = parser.parse_args()
    from_step = args.from_step
    if args.dataset == "schedules-and-scaling":
        if args.data is None:
            parser.error("--dataset schedules-and-scaling needs --data PATH (it is not bundled)")
        laws = (DEV_LAWS if args.laws == parser.get_default("laws") else args.laws).split(",")
        run_dev(args.data, laws, [args.protocol] if args.protocol else list(sas.PROTOCOLS), from_step, args.json)
        return
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
