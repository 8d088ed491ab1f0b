"""``lrlab fit | predict | optimize``: loss-curve laws from the command line (see docs/laws.md)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.table import Table

from lrlab.cli.common import console, flags, parse_int_list, plot_path, print_json, say, table_text, warn
from lrlab.datasets import EXAMPLES
from lrlab.errors import InputError
from lrlab.files import check_distinct, check_output
from lrlab.laws import LAWS, load_curves, load_fit, make_law, optimize, save_fit
from lrlab.laws.areas import peak_index
from lrlab.laws.curves import sidecar_path
from lrlab.laws.select import fit_measured, select
from lrlab.schedules import Schedule, load, write_csv
from lrlab.schedules.base import check_dense_steps

if TYPE_CHECKING:
    from lrlab.laws.fitting import Fit
    from lrlab.report.law_plots import Series

MAX_N_PARAMS = 1e15
SPEC_HELP = "Schedule spec (e.g. 'cosine:peak=3e-4,warmup=2160,total=24000,final=3e-5') or a step,lr CSV file."
PREDICT_POINTS = 200  # steps evaluated when --at is not given
LAW_FLAGS = {"lam": "--lam", "gamma": "--gamma", "warmup": "--warmup", "law": "--law"}


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_cmd)
    app.command("predict")(predict_cmd)
    app.command("optimize")(optimize_cmd)


def _law_options(**given: str | None) -> dict:
    """The law options given on the command line: 'fit' (fit this parameter) -> None, numbers -> float, other
    words stay strings; which law takes which option is the registry's business (``make_law``)."""
    out: dict = {}
    for key, text in given.items():
        if text is None:
            continue
        if text == "fit":
            out[key] = None
            continue
        try:
            value = float(text)
        except ValueError:
            out[key] = text
            continue
        if not math.isfinite(value):
            raise InputError(f"must be a finite number or 'fit', got {text!r}", key)
        out[key] = value
    return out


def _n_params(values: list[float] | None, count: int) -> list[float | None]:
    if not values:
        return [None] * count
    if len(values) != count:
        raise InputError(f"got {len(values)} --n-params for {count} curves; give one per curve or none")
    for v in values:
        _check_size(v)
    return list(values)


def _check_size(n_params: float | None) -> None:
    if n_params is not None and not (math.isfinite(n_params) and 0 < n_params <= MAX_N_PARAMS):
        raise InputError(f"--n-params must be a parameter count in (0, {MAX_N_PARAMS:.0e}], got {n_params}")


def _file_inputs(specs: list[str] | None) -> dict[str, Path]:
    """The schedule CSV files among --schedule values (inputs that an output must not replace)."""
    return {f"--schedule {s}": Path(s) for s in specs or () if s.lower().endswith(".csv") or Path(s).is_file()}


def _warn_extrapolation(result: Fit, lr: np.ndarray) -> None:
    """A prediction at a peak LR far from the curves the law was fitted on is an extrapolation: say so."""
    fitted = result.info.get("peak_lr")
    peak = float(lr.max()) if lr.size else 0.0
    if isinstance(fitted, int | float) and fitted > 0 and peak > 0 and not 0.1 <= peak / fitted <= 10:
        warn(f"peak LR {peak:.3g} is {peak / fitted:.3g}x the fitted curves' {fitted:.3g}: an extrapolation")


def fit_cmd(
    curves: Annotated[
        list[Path] | None, typer.Argument(help="Curve files: CSV (step,loss[,lr]) or JSONL.", show_default=False)
    ] = None,
    out: Annotated[Path, typer.Option(help="Write the fitted law here (JSON).", show_default=False)] = ...,
    example: Annotated[
        str | None,
        typer.Option(help=f"Fit a bundled public example instead of files: {', '.join(EXAMPLES)}."),
    ] = None,
    law: Annotated[
        str,
        typer.Option(
            help=f"The law: auto (chosen by a protocol on these curves alone, see docs/laws.md) or one of "
            f"{', '.join(LAWS)}."
        ),
    ] = "auto",
    from_step: Annotated[
        str,
        typer.Option(
            help="Fit the points at steps >= N only (the LR of every step still counts); 'auto': after the warmup "
            "and the transient that follows it (docs/laws.md)."
        ),
    ] = "auto",
    schedule: Annotated[list[str] | None, typer.Option(help=SPEC_HELP + " Once per curve, in order.")] = None,
    n_params: Annotated[list[float] | None, typer.Option(help="Model size per curve (momentum-size).")] = None,
    smooth: Annotated[int, typer.Option(help="Average the loss over blocks of K records (noisy logs).")] = 1,
    huber_delta: Annotated[float, typer.Option(help="Huber threshold on log loss.")] = 1e-3,
    lam: Annotated[str | None, typer.Option(help="Momentum laws' lambda (default 0.999), or 'fit'.")] = None,
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
    order), else a NAME.lr.csv sidecar, else a dense lr column. --example fits curves that ship with lrlab (the
    multi-power-law authors' TRAIN runs, Luo et al. 2025, arXiv:2503.12811, MIT licence) with their schedules.

    --law auto (the default) scores every candidate law by fitting the first 70% of each curve's window and
    predicting the rest, keeps momentum-floor unless another law scores under half its error (then the first such
    of mpl-qexp, mpl, momentum), and prints the scores; the largest held-out error widens the band.

    Examples:

      lrlab fit constant.csv cosine.csv --out fit.json --plot fit.png

      lrlab fit --example mpl-400 --law mpl-qexp --from-step 0 --out fit400.json

      lrlab fit a.csv --schedule "cosine:peak=3e-4,warmup=2160,total=24000,final=3e-5" --law momentum --json
    """
    if smooth < 1:
        raise InputError(f"--smooth must be >= 1, got {smooth}")
    if not (math.isfinite(huber_delta) and huber_delta > 0):
        raise InputError(f"--huber-delta must be finite and > 0, got {huber_delta}")
    check_output(out, "--out")
    plot = plot_path(plot)
    inputs = {f"the curve {c}": c for c in curves or ()}
    inputs |= {f"the sidecar {sidecar_path(c)}": sidecar_path(c) for c in curves or () if sidecar_path(c).exists()}
    check_distinct({"--out": out, "--plot": plot}, inputs | _file_inputs(schedule))
    with flags(from_step="--from-step"):
        window = _from_step(from_step)
    with flags(**LAW_FLAGS):
        options = _law_options(lam=lam, gamma=gamma, warmup=warmup)
        if law == "auto" and (options or method is not None):
            raise InputError("auto chooses among laws with their default options; name a law to set them", "law")
        the_law = None if law == "auto" else make_law(law, **options)
    loaded = _curves(curves, schedule, example)
    if n_params:
        sizes = _n_params(n_params, len(loaded))
        loaded = [replace(c, n_params=n) for c, n in zip(loaded, sizes, strict=True)]
    loaded = [c.smoothed(smooth) for c in loaded]
    if len({c.name for c in loaded}) != len(loaded):
        raise InputError("two curves share a file name; rename one (curves are reported by name)")
    try:
        with flags(method="--method", from_step="--from-step", law="--law"), console.status("fitting") as status:
            if the_law is None:
                result = select(
                    loaded,
                    from_step=window,
                    huber_delta=huber_delta,
                    on_law=lambda name: status.update(f"scoring {name} on held-out parts of the curves (--law auto)"),
                )
            else:
                result = fit_measured(the_law, loaded, window, huber_delta, method)
    except InputError as exc:
        if exc.param != "curves":
            raise
        raise InputError(f"{exc.message} (--smooth K averages blocks of K records)") from None
    result.info["n_params"] = {c.name: c.n_params for c in loaded}
    save_fit(result, out)
    if plot is not None:
        from lrlab.report.law_plots import plot_series

        plot_series([_fitted_series(result, c) for c in loaded], plot, f"{result.law.name} fit")
    chosen = result.law.name
    _warn_unchecked(result)
    if json:
        print_json(
            {
                "law": chosen,
                "params": result.theta,
                "curves": result.curves,
                "fit_seconds": result.seconds,
                "from_step": result.info["from_step"],
                "model_error": result.model_error,
                "selection": result.info["selection"],
            }
        )
        return
    _print_selection(result)
    check = result.info.get("check_seconds", 0.0)
    say(
        f"{chosen} fitted on steps >= {result.info['from_step']} in {result.seconds:.2f} s "
        f"({result.seconds + check:.2f} s with the held-out check) -> {out}"
    )
    console.print("  " + ", ".join(f"{k}={v:.6g}" for k, v in result.theta.items()))
    table = Table(show_edge=False, pad_edge=False)
    for col in ("curve", "PredE %", "WorstE %", "R^2"):
        table.add_column(col, justify="right")
    for name, m in result.curves.items():
        table.add_row(table_text(name), f"{100 * m['prede']:.3f}", f"{100 * m['worste']:.3f}", f"{m['r2']:.5f}")
    console.print(table)


def _from_step(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"must be a whole number of steps >= 0 or 'auto', got {text!r}", "from_step") from None
    if value < 0:
        raise InputError(f"must be a whole number of steps >= 0 or 'auto', got {value}", "from_step")
    return value


def _warn_unchecked(result: Fit) -> None:
    """Say when the chosen law's band lacks its model error (the check could not score it), and when auto's
    first choice could not be fitted on every record."""
    score = result.info["selection"]["candidates"][result.law.name]
    if not math.isfinite(score["prede"]):
        warn(
            f"the held-out check could not score {result.law.name} ({score.get('error', '')}): "
            "its band has no model error"
        )
    for failure in result.info.get("not_fitted", []):
        warn(f"auto could not fit {failure}; it fitted the next candidate")


def _print_selection(result: Fit) -> None:
    """Each candidate's pilots-only protocol error (the chosen law marked) and the band's model error."""
    table = Table(title="held-out error on the curves themselves (docs/laws.md)", show_edge=False, pad_edge=False)
    for col in ("law", "protocol PredE %", "largest error %", ""):
        table.add_column(col, justify="right")
    for name, score in result.info["selection"]["candidates"].items():
        mark = "chosen" if name == result.law.name else table_text(score.get("error", ""))
        finite = math.isfinite(score["prede"])
        prede = f"{100 * score['prede']:.3f}" if finite else "-"
        worst = f"{100 * score['model_error']:.3f}" if finite else "-"
        table.add_row(name, prede, worst, mark)
    console.print(table)


def _curves(paths: list[Path] | None, schedules: list[str] | None, example: str | None) -> list:
    """The curves to fit: the files given, or a bundled example (then neither files nor --schedule)."""
    if example is None:
        if not paths:
            raise InputError("give one or more curve files, or --example NAME")
        with flags(schedules="--schedule"):
            return load_curves([str(c) for c in paths], schedules)
    if paths or schedules:
        raise InputError("--example fits a bundled set with its own schedules: give no curve files or --schedule")
    from lrlab.datasets import example_curves

    with flags(name="--example"):
        return example_curves(example)


def _fitted_series(result: Fit, c) -> Series:
    from lrlab.report.law_plots import Series

    steps = np.unique(np.linspace(0, c.steps[-1], 400).round().astype(np.int64))
    steps = steps[steps >= c.steps[0]]
    pred, lo, hi = result.band(c.lr, steps, c.n_params)
    obs = result.predict(c.lr, c.steps, c.n_params)
    return Series(c.name, c.lr, steps, pred, lo, hi, c.steps, c.loss, obs)


def _schedule_values(spec: str, steps: int) -> tuple[Schedule, np.ndarray]:
    if steps < 2:
        raise InputError(f"--steps must be >= 2, got {steps}")
    with flags(steps="--steps"):
        check_dense_steps(steps)
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
    plot = plot_path(plot)
    check_distinct({"--plot": plot}, {"the fit file": fit_file} | _file_inputs([schedule]))
    _check_size(n_params)
    result = load_fit(fit_file)
    sched, lr = _schedule_values(schedule, steps)
    if at is not None:
        at_steps = np.array(parse_int_list(at, "--at"), dtype=np.int64)
        if at_steps.size == 0 or at_steps.max() >= steps:
            raise InputError(f"--at steps must lie in [0, {steps - 1}] (--steps {steps})")
    else:
        start = min(peak_index(lr), steps - 1)  # the laws describe training after warmup
        at_steps = np.unique(np.linspace(start, steps - 1, PREDICT_POINTS).round().astype(np.int64))
    with flags(schedule="--schedule"):
        pred, lo, hi = result.band(lr, at_steps, n_params)
    _warn_extrapolation(result, lr)  # after the work: a failing command prints its one error line only
    if plot is not None:
        from lrlab.report.law_plots import Series, plot_series

        plot_series([Series(str(sched), lr, at_steps, pred, lo, hi)], plot, f"{result.law.name} prediction")
    if json:
        print_json({"steps": at_steps.tolist(), "loss": pred.tolist(), "lo": lo.tolist(), "hi": hi.tolist()})
        return
    table = Table(show_edge=False, pad_edge=False)
    for col in ("step", "loss", "lo", "hi"):
        table.add_column(col, justify="right")
    spread = np.unique(np.linspace(0, len(at_steps) - 1, 12).round().astype(int))
    shown = at_steps if at is not None else at_steps[spread]
    for t in shown.tolist():
        i = int(np.searchsorted(at_steps, t)) if at is None else at_steps.tolist().index(t)
        table.add_row(str(t), f"{pred[i]:.4f}", f"{lo[i]:.4f}", f"{hi[i]:.4f}")
    say(f"{result.law.name} prediction for {sched}")
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
    if out_csv is not None:
        check_output(out_csv, "--out-csv")
    plot = plot_path(plot)
    check_distinct({"--out-csv": out_csv, "--plot": plot}, {"the fit file": fit_file})
    _check_size(n_params)
    result = load_fit(fit_file)
    w = int(result.info.get("warmup", 0)) if warmup is None else warmup
    with flags(family="--family", total="--steps", peak="--peak-lr", warmup="--warmup"):
        choice = optimize(result, family, steps, peak_lr, w, n_params)
    _warn_extrapolation(result, np.array([peak_lr]))
    if out_csv is not None:
        write_csv(choice.schedule, out_csv, steps)
    if plot is not None:
        from lrlab.report.law_plots import Series, plot_series

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
    say(f"best {family}: {summary['schedule']}")
    console.print(f"  predicted final loss {choice.loss:.4f}; cosine baseline {choice.baseline_loss:.4f}")
    console.print(f"  predicted gain over cosine: {choice.gain:.4f} ({100 * choice.gain / choice.baseline_loss:.2f}%)")
