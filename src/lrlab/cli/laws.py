"""``lrlab fit | predict | optimize``: loss-curve laws from the command line (see docs/laws.md)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from lrlab.cli.common import console, parse_int_list, print_json
from lrlab.errors import InputError
from lrlab.laws import LAWS, fit, load_curves, load_fit, make_law, optimize, save_fit
from lrlab.laws.areas import peak_index
from lrlab.laws.fitting import Fit
from lrlab.laws.plots import Series, plot_series
from lrlab.schedules import Schedule, load, write_csv

SPEC_HELP = "Schedule spec (e.g. 'cosine:peak=3e-4,warmup=2160,total=24000,final=3e-5') or a step,lr CSV file."
PREDICT_POINTS = 200  # steps evaluated when --at is not given


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_cmd)
    app.command("predict")(predict_cmd)
    app.command("optimize")(optimize_cmd)


def _law_options(law: str, lam: str, warmup: str | None, gamma: str | None = None) -> dict:
    given = {} if warmup is None else {"warmup": warmup}
    if gamma is not None:
        if law != "mpl-qexp":
            raise InputError(f"--gamma applies to mpl-qexp only, not {law}")
        return given | {"gamma": None if gamma == "fit" else _number("--gamma", gamma, "in [0, 1.5] or 'fit'")}
    if not law.startswith("momentum"):
        return given
    if lam == "fit":
        return {"lam": None} | given
    return {"lam": _number("--lam", lam, "in [0, 1) or 'fit'")} | given


def _number(flag: str, text: str, expected: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{flag} expects a number {expected}, got {text!r}") from None


def _n_params(values: list[float] | None, count: int) -> list[float | None]:
    if not values:
        return [None] * count
    if len(values) != count:
        raise InputError(f"got {len(values)} --n-params for {count} curves; give one per curve or none")
    return list(values)


def fit_cmd(
    curves: Annotated[list[Path], typer.Argument(help="Curve files: CSV (step,loss[,lr]) or JSONL.")],
    out: Annotated[Path, typer.Option(help="Write the fitted law here (JSON).")],
    law: Annotated[str, typer.Option(help=f"The law: {', '.join(LAWS)}.")] = "mpl",
    schedule: Annotated[list[str] | None, typer.Option(help=SPEC_HELP + " Once per curve, in order.")] = None,
    n_params: Annotated[list[float] | None, typer.Option(help="Model size per curve (momentum-size).")] = None,
    smooth: Annotated[int, typer.Option(help="Average the loss over blocks of K records (noisy logs).")] = 1,
    huber_delta: Annotated[float, typer.Option(help="Huber threshold on log loss.")] = 1e-3,
    lam: Annotated[str, typer.Option(help="Momentum law's lambda, or 'fit'.")] = "0.999",
    gamma: Annotated[
        str | None, typer.Option(help="mpl-qexp's kernel exponent: a number in [0, 1.5] (default 0) or 'fit'.")
    ] = None,
    warmup: Annotated[
        str | None,
        typer.Option(
            help="Warmup handling. Momentum laws: 'peak' (paper, default) or 'area' (S_W). "
            "mpl laws: 'count' (rises as negative drops, authors' code; the default) or 'skip' (the paper's formula)."
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(help="Fit search: 'lbfgs' (to convergence) or 'adam' (authors' early-stopped; mpl's default)."),
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG: observed vs fitted, residuals, LR.")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print parameters and per-curve PredE/WorstE/R^2.")] = False,
) -> None:
    """Fit a loss-curve law to one or more curves and save it as JSON.

    Each curve is a CSV (step,loss[,lr]) or JSONL file; its per-step LR comes from --schedule (once per curve, in
    order), else a NAME.lr.csv sidecar, else a dense lr column.

    Examples:

      lrlab fit constant.csv cosine.csv --law mpl --out fit.json --plot fit.png

      lrlab fit a.csv --schedule "cosine:peak=3e-4,warmup=2160,total=24000,final=3e-5" --law momentum --json
    """
    if smooth < 1:
        raise InputError(f"--smooth must be >= 1, got {smooth}")
    if not huber_delta > 0:
        raise InputError(f"--huber-delta must be > 0, got {huber_delta}")
    the_law = make_law(law, **_law_options(law, lam, warmup, gamma))
    loaded = load_curves([str(c) for c in curves], schedule)
    sizes = _n_params(n_params, len(loaded))
    loaded = [replace(c, n_params=n).smoothed(smooth) for c, n in zip(loaded, sizes, strict=True)]
    if len({c.name for c in loaded}) != len(loaded):
        raise InputError("two curves share a file name; rename one (curves are reported by name)")
    result = fit(the_law, loaded, huber_delta, method)
    result.info["n_params"] = {c.name: c.n_params for c in loaded}
    save_fit(result, out)
    if plot is not None:
        plot_series([_fitted_series(result, c) for c in loaded], plot, f"{law} fit")
    if json:
        print_json({"law": law, "params": result.theta, "curves": result.curves, "fit_seconds": result.seconds})
        return
    console.print(f"[bold]{law}[/] fitted in {result.seconds:.2f} s -> {out}")
    console.print("  " + ", ".join(f"{k}={v:.6g}" for k, v in result.theta.items()))
    table = Table(show_edge=False, pad_edge=False)
    for col in ("curve", "PredE %", "WorstE %", "R^2"):
        table.add_column(col, justify="right")
    for name, m in result.curves.items():
        table.add_row(name, f"{100 * m['prede']:.3f}", f"{100 * m['worste']:.3f}", f"{m['r2']:.5f}")
    console.print(table)


def _fitted_series(result: Fit, c) -> Series:
    steps = np.unique(np.linspace(0, c.steps[-1], 400).round().astype(np.int64))
    steps = steps[steps >= c.steps[0]]
    pred, lo, hi = result.band(c.lr, steps, c.n_params)
    obs = result.predict(c.lr, c.steps, c.n_params)
    return Series(c.name, c.lr, steps, pred, lo, hi, c.steps, c.loss, obs)


def _schedule_values(spec: str, steps: int) -> tuple[Schedule, np.ndarray]:
    if steps < 2:
        raise InputError(f"--steps must be >= 2, got {steps}")
    sched = load(spec)
    if sched.total is not None and sched.total < steps:
        raise InputError(f"the schedule {sched} covers {sched.total} steps, fewer than --steps {steps}")
    return sched, sched.values(steps)


def predict_cmd(
    fit_file: Annotated[Path, typer.Argument(help="A fit saved by 'lrlab fit'.", show_default=False)],
    schedule: Annotated[str, typer.Option(help=SPEC_HELP)],
    steps: Annotated[int, typer.Option(help="Total optimizer steps T (the last loss is at step T - 1).")],
    at: Annotated[
        str | None, typer.Option(help="Comma-separated steps to predict (default: 200 from warmup's end to T-1).")
    ] = None,
    n_params: Annotated[float | None, typer.Option(help="Model size (momentum-size law).")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of the predicted curve over the LR.")] = None,
    json: Annotated[bool, typer.Option("--json", help='Print {"steps", "loss", "lo", "hi"}.')] = False,
) -> None:
    """Predict the loss curve of a schedule with a saved fit, with an approximate 95% band.

    Examples:

      lrlab predict fit.json --schedule "wsd:peak=3e-4,warmup=2160,total=24000,decay=0.2" --steps 24000 --json

      lrlab predict fit.json --schedule my_lr.csv --steps 24000 --at 10000,23999 --plot pred.png
    """
    result = load_fit(fit_file)
    sched, lr = _schedule_values(schedule, steps)
    if at is not None:
        at_steps = np.array(parse_int_list(at, "--at"), dtype=np.int64)
        if at_steps.size == 0 or at_steps.min() < 0 or at_steps.max() >= steps:
            raise InputError(f"--at steps must lie in [0, {steps - 1}] (--steps {steps})")
    else:
        start = min(peak_index(lr), steps - 1)  # the laws describe training after warmup
        at_steps = np.unique(np.linspace(start, steps - 1, PREDICT_POINTS).round().astype(np.int64))
    pred, lo, hi = result.band(lr, at_steps, n_params)
    if plot is not None:
        plot_series([Series(str(sched), lr, at_steps, pred, lo, hi)], plot, f"{result.law.name} prediction")
    if json:
        print_json({"steps": at_steps.tolist(), "loss": pred.tolist(), "lo": lo.tolist(), "hi": hi.tolist()})
        return
    table = Table(show_edge=False, pad_edge=False)
    for col in ("step", "loss", "lo", "hi"):
        table.add_column(col, justify="right")
    shown = at_steps if at is not None else at_steps[np.linspace(0, len(at_steps) - 1, 12).round().astype(int)]
    for t in shown.tolist():
        i = int(np.searchsorted(at_steps, t)) if at is None else at_steps.tolist().index(t)
        table.add_row(str(t), f"{pred[i]:.4f}", f"{lo[i]:.4f}", f"{hi[i]:.4f}")
    console.print(f"{result.law.name} prediction for {sched}")
    console.print(table)


def optimize_cmd(
    fit_file: Annotated[Path, typer.Argument(help="A fit saved by 'lrlab fit'.", show_default=False)],
    steps: Annotated[int, typer.Option(help="Total optimizer steps T.")],
    peak_lr: Annotated[float, typer.Option(help="Peak learning rate.")],
    family: Annotated[str, typer.Option(help="wsd (decay share and shape), cosine (final ratio) or free.")] = "wsd",
    warmup: Annotated[int | None, typer.Option(help="Warmup steps (default: the fit's training warmup).")] = None,
    n_params: Annotated[float | None, typer.Option(help="Model size (momentum-size law).")] = None,
    out_csv: Annotated[Path | None, typer.Option(help="Write the chosen schedule as a step,lr CSV.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG: chosen vs cosine baseline, loss and LR.")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the choice and its predicted gain as JSON.")] = False,
) -> None:
    """Find the schedule with the lowest predicted final loss in a family; compare with cosine to 10%.

    Examples:

      lrlab optimize fit.json --steps 24000 --peak-lr 3e-4 --family wsd --plot opt.png

      lrlab optimize fit.json --steps 24000 --peak-lr 3e-4 --family free --out-csv best_lr.csv --json
    """
    result = load_fit(fit_file)
    w = int(result.info.get("warmup", 0)) if warmup is None else warmup
    choice = optimize(result, family, steps, peak_lr, w, n_params)
    if out_csv is not None:
        write_csv(choice.schedule, out_csv, steps)
    if plot is not None:
        at = np.unique(np.linspace(w, steps - 1, 300).round().astype(np.int64))
        series = []
        for name, s in (("best " + family, choice.schedule), ("cosine baseline", choice.baseline)):
            lr = s.values(steps)
            series.append(Series(name, lr, at, result.predict(lr, at, n_params)))
        plot_series(series, plot, f"{result.law.name}: optimized {family} schedule")
    summary = choice.to_dict()
    if family == "free":
        summary["schedule"] = str(out_csv) if out_csv is not None else "free-form (see knots; --out-csv writes it)"
    if json:
        print_json(summary)
        return
    console.print(f"best {family}: {summary['schedule']}")
    console.print(f"  predicted final loss {choice.loss:.4f}; cosine baseline {choice.baseline_loss:.4f}")
    console.print(f"  predicted gain over cosine: {choice.gain:.4f} ({100 * choice.gain / choice.baseline_loss:.2f}%)")
