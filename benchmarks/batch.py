"""Batch-size laws: fit time, interval coverage and leave-one-batch-size-out error, against named baselines.

Two parts, both measured in this one run:

1. Steps to a target loss (``--steps CSV``, default the bundled public table of Zhang et al. 2024,
   arXiv:2410.21676, lrlab.datasets.root("critical_batch_size"); columns batch_size, steps and ``--group``):
   per group, B_noise by lrlab's fit (log-space least squares, profile intervals; lrlab.laws.batch.steps) and by
   the named baseline ``linear``: numpy.polyfit of 1/S on 1/E (the straight line of McCandlish et al. 2018,
   arXiv:1812.06162). Printed: both B_noise, lrlab's interval, fit times and their ratio, and each fit's
   leave-one-batch-size-out |log error| of the held-out batch size's steps, with the ratio lrlab / linear.
2. Synthetic LR x batch-size grids (``--reps`` per generating form: surge, sgd and power, 6 batch sizes 8-256,
   a skewed bowl in log LR plus Gaussian loss noise ``--noise``), twice: 8 LRs a factor 2 apart around each
   optimum, and a hard set (9 LRs at random log positions within a factor 12 of it, 15 % of cells missing, runs
   diverging 6x above the best LR). ``lrlab.laws.batch.fit_grid`` (every form fitted, cross-validated and
   bootstrapped) against the named baseline ``curve_fit``: scipy's curve_fit of the surge formula on each batch
   size's best cell (the grid search a user would do by hand), and, to isolate the locator, the same curve_fit
   on each batch size's 3-point parabola vertex. Times: the surge fit alone (locate + fit, no bootstrap) against
   curve_fit, and the whole fit_grid for reference. Printed: the share of grids
   whose generating form ``auto`` picked, the 95 % interval coverage of B_noise and eps_max and the mean
   |log error| of B_noise by lrlab and by the baseline (surge grids), and
   each form's mean leave-one-batch-size-out |log error| by generating form, as a ratio to the power law's.
   ``--grid CSV`` (lr,batch_size,loss[,GROUP...], ``--grid-group``) adds a real grid: each form's
   leave-one-batch-size-out error on it.

Run:  python benchmarks/batch.py [--reps 40] [--noise 0.005] [--steps CSV --group model] [--grid CSV] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.optimize import OptimizeWarning, curve_fit

from lrlab.datasets import root
from lrlab.laws.batch import CANDIDATES, Form, Grid, cv_error, fit_form, fit_grid, load_grids, locate_all
from lrlab.laws.batch.steps import fit_steps, load_steps

SIZES = (8, 16, 32, 64, 128, 256)
TRUTH = {
    "surge": lambda b, bn: 3e-3 / (0.5 * (np.sqrt(bn / b) + np.sqrt(b / bn))),
    "sgd": lambda b, bn: 3e-3 / (1 + bn / b),
    "power": lambda b, bn: 1e-4 * b ** (0.15 + 0.5 * math.log(bn / 16) / math.log(8)),  # k from 0.15 to 0.65
}


def _linear(b: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """B_noise and S_min from the straight line 1/S = 1/S_min - B_noise / E (E = S B), numpy.polyfit."""
    slope, intercept = np.polyfit(1 / (s * b), 1 / s, 1)
    return (-slope, 1 / intercept) if intercept > 0 else (math.nan, math.nan)


def _timed(fn, repeat: int = 5):
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def steps_part(path, group) -> dict:
    out = {}
    for key, (b, s) in load_steps(path, group).items():
        name = ",".join(key) or "all"
        fit, t_fit = _timed(lambda b=b, s=s: fit_steps(b, s))
        (lin_bn, _), t_lin = _timed(lambda b=b, s=s: _linear(b, s))
        held, held_lin = [], []
        for i in range(len(b)):
            keep = np.arange(len(b)) != i
            f = fit_steps(b[keep], s[keep])
            held.append(abs(math.log(f.steps_at(b[i])) - math.log(s[i])))
            bn, smin = _linear(b[keep], s[keep])
            pred = smin * (1 + bn / b[i]) if math.isfinite(bn) else math.nan
            held_lin.append(abs(math.log(pred) - math.log(s[i])) if pred > 0 else math.inf)
        out[name] = {
            "b_noise": fit.b_noise, "interval": fit.intervals["b_noise"], "linear_b_noise": lin_bn,
            "fit_ms": 1e3 * t_fit, "linear_ms": 1e3 * t_lin, "lobo": float(np.mean(held)),
            "linear_lobo": float(np.mean(held_lin)),
        }  # fmt: skip
    return out


def synthetic(form: str, b_noise: float, rng, noise: float, hard: bool) -> Grid:
    """8 LRs a factor 2 apart around each optimum (``hard=False``), or (``hard``) 9 LRs at random log positions
    within a factor 12 of it, 15 % of cells missing and runs diverging 6x above the best LR."""
    rows = []
    for b in SIZES:
        opt = TRUTH[form](b, b_noise)
        if hard:
            xs = np.sort(math.log(opt) + rng.uniform(-2.5, 2.5, size=9))
            xs = xs[rng.uniform(size=len(xs)) > 0.15]
        else:
            xs = math.log(opt) + rng.uniform(-0.5, 0.5) * math.log(2) + math.log(2) * (np.arange(8) - 3.5)
        for x in xs:
            d = x - math.log(opt)
            loss = 2 + 1 / math.log2(b + 1) + 0.15 * d * d + 0.02 * d**3 + noise * rng.standard_normal()
            rows.append((math.exp(x), b, math.inf if hard and d > 1.8 else loss))
    lr, batch, loss = (np.array(c) for c in zip(*rows, strict=True))
    return Grid(lr, batch, loss, np.full(len(lr), np.nan))


def _best_cells(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Each batch size's best cell: the grid search a user does by hand."""
    b = grid.batch_sizes
    return b, np.array([grid.lr[grid.batch_size == x][np.argmin(grid.loss[grid.batch_size == x])] for x in b])


def _vertices(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Each batch size's 3-point parabola vertex in log LR around the best cell (the cell at an edge)."""
    sizes, best = [], []
    for x in grid.batch_sizes:
        lr, loss = grid.at_batch(x)
        order = np.argsort(lr)
        lr, loss = np.log(lr[order]), loss[order]
        j = int(np.argmin(loss))
        if 0 < j < len(lr) - 1 and np.all(np.isfinite(loss[j - 1 : j + 2])):
            c2, c1, _ = np.polyfit(lr[j - 1 : j + 2], loss[j - 1 : j + 2], 2)
            best.append(math.exp(-c1 / (2 * c2)) if c2 > 0 else math.exp(lr[j]))
        else:
            best.append(math.exp(lr[j]))
        sizes.append(x)
    return np.array(sizes), np.array(best)


def _curve_fit(b: np.ndarray, best: np.ndarray) -> float:
    """scipy curve_fit of the surge formula in log space: B_noise."""

    def model(b, a, u):
        return a - np.log(np.cosh((np.log(b) - u) / 2))

    with warnings.catch_warnings():  # a flat optimum leaves the covariance undefined: only the fit is used
        warnings.simplefilter("ignore", OptimizeWarning)
        (_, u), _ = curve_fit(model, b, np.log(best), p0=(math.log(best.max()), math.log(np.median(b))), maxfev=5000)
    return math.exp(u)


def grids_part(reps: int, noise: float, seed: int, hard: bool) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for form in CANDIDATES:
        picked, hits_bn, hits_eps, t_full, t_surge, t_base = 0, 0, 0, 0.0, 0.0, 0.0
        err_bn, err_cells, err_vertex = [], [], []
        errors: dict[str, list[float]] = {k: [] for k in CANDIDATES}
        for _ in range(reps):
            b_noise = math.exp(rng.uniform(math.log(16), math.log(128)))
            grid = synthetic(form, b_noise, rng, noise, hard)
            t = time.perf_counter()
            g = fit_grid(grid)
            t_full += time.perf_counter() - t
            t = time.perf_counter()
            optima, _ = locate_all(grid)
            fit_form(Form("surge"), optima, n_boot=0)
            t_surge += time.perf_counter() - t
            t = time.perf_counter()
            base_bn = _curve_fit(*_best_cells(grid))
            t_base += time.perf_counter() - t
            picked += g.law == form
            for k, v in g.cv_errors.items():
                errors[k].append(v)
            if form == "surge":
                surge = g.fits["surge"]
                lo, hi = surge.intervals["b_noise"]
                hits_bn += lo <= b_noise <= hi
                lo, hi = surge.intervals["eps_max"]
                hits_eps += lo <= 3e-3 <= hi
                err_bn.append(abs(math.log(surge.params["b_noise"] / b_noise)))
                err_cells.append(abs(math.log(base_bn / b_noise)))
                err_vertex.append(abs(math.log(_curve_fit(*_vertices(grid)) / b_noise)))
        out[form] = {
            "picked": picked / reps, "full_ms": 1e3 * t_full / reps, "surge_ms": 1e3 * t_surge / reps,
            "baseline_ms": 1e3 * t_base / reps, "lobo": {k: float(np.mean(v)) for k, v in errors.items()},
            **({"coverage_b_noise": hits_bn / reps, "coverage_eps_max": hits_eps / reps,
                "b_noise_error": float(np.mean(err_bn)), "cells_b_noise_error": float(np.mean(err_cells)),
                "vertex_b_noise_error": float(np.mean(err_vertex))}
               if form == "surge" else {}),
        }  # fmt: skip
    return out


def real_grid(path, group) -> dict:
    out = {}
    for key, grid in load_grids(path, group).items():
        optima, _ = locate_all(grid.final())
        out[",".join(key) or "all"] = {k: cv_error(Form(k), optima) for k in CANDIDATES}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--noise", type=float, default=0.005)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", default=None, help="CSV batch_size,steps[,GROUP] (default: the bundled table)")
    ap.add_argument("--group", action="append", default=None, help="group column of --steps (default: model)")
    ap.add_argument("--grid", default=None, help="a real LR x batch-size grid CSV")
    ap.add_argument("--grid-group", action="append", default=[])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    path = args.steps or root("critical_batch_size") / "steps_to_target.csv"
    group = args.group or (["model"] if args.steps is None else [])
    result = {
        "steps": steps_part(path, group),
        "grids": grids_part(args.reps, args.noise, args.seed, hard=False),
        "hard_grids": grids_part(args.reps, args.noise, args.seed, hard=True),
    }
    if args.grid:
        result["real_grid"] = real_grid(args.grid, args.grid_group)
    if args.json:
        print(json.dumps(result))
        return
    _print(result, args)


def _print(result: dict, args) -> None:
    con = Console(width=220)
    t = Table(title="steps to target: lrlab fit_steps vs baseline 'linear' (polyfit of 1/S on 1/E)")
    for col in ("group", "B_noise", "95% interval", "linear B_noise", "fit ms", "linear ms", "time ratio",
                "LOBO |log err|", "linear LOBO", "LOBO ratio"):  # fmt: skip
        t.add_column(col, justify="right")
    for name, r in result["steps"].items():
        t.add_row(name, f"{r['b_noise']:.4g}", f"[{r['interval'][0]:.4g}, {r['interval'][1]:.4g}]",
                  f"{r['linear_b_noise']:.4g}", f"{r['fit_ms']:.2f}", f"{r['linear_ms']:.3f}",
                  f"{r['fit_ms'] / r['linear_ms']:.0f}x", f"{r['lobo']:.4f}", f"{r['linear_lobo']:.4f}",
                  f"{r['lobo'] / r['linear_lobo']:.2f}")  # fmt: skip
    con.print(t)
    for part, what in (("grids", "8 LRs a factor 2 apart"), ("hard_grids", "uneven LRs, missing cells, divergence")):
        t = Table(title=f"synthetic grids, {what} ({args.reps} a form, noise {args.noise}): lrlab vs baseline "
                        "'curve_fit' (the surge formula on each batch size's best cell)")  # fmt: skip
        for col in ("generating form", "auto picked it", "fit_grid ms (3 laws, CV, bootstrap)", "surge fit ms",
                    "curve_fit ms", "surge / curve_fit time", *(f"LOBO {k} / power" for k in CANDIDATES),
                    "coverage B_noise", "coverage eps_max"):  # fmt: skip
            t.add_column(col, justify="right")
        for form, r in result[part].items():
            lobo = r["lobo"]
            times = (f"{r['full_ms']:.0f}", f"{r['surge_ms']:.1f}", f"{r['baseline_ms']:.1f}",
                     f"{r['surge_ms'] / r['baseline_ms']:.1f}x")  # fmt: skip
            ratios = (f"{lobo[k] / lobo['power']:.2f}" for k in CANDIDATES)
            cover = (f"{r.get(k, math.nan):.2f}" for k in ("coverage_b_noise", "coverage_eps_max"))
            t.add_row(form, f"{r['picked']:.2f}", *times, *ratios, *cover)
        con.print(t)
        surge = result[part]["surge"]
        ours, cells, vertex = (surge[k] for k in ("b_noise_error", "cells_b_noise_error", "vertex_b_noise_error"))
        con.print(
            f"surge grids: B_noise mean |log error| lrlab {ours:.4f}; curve_fit on the best cells {cells:.4f} "
            f"(lrlab / it {ours / cells:.2f}); curve_fit on 3-point parabola vertices {vertex:.4f} "
            f"(lrlab / it {ours / vertex:.2f})"
        )
        for form, r in result[part].items():
            con.print(f"  {form}: LOBO |log error| " + ", ".join(f"{k} {v:.4f}" for k, v in r["lobo"].items()))
    for name, r in result.get("real_grid", {}).items():
        con.print(f"grid {name}: LOBO |log error| " + ", ".join(f"{k} {v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
