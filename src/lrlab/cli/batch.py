"""``lrlab surge | bnoise | scale``: the batch-size laws from the command line (see docs/batch.md)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from lrlab.cli.common import console, flags, plot_path, print_json, say, table_text, warn
from lrlab.errors import InputError
from lrlab.files import check_distinct, require_file
from lrlab.laws.batch import LAWS, Grid, GridFit, fit_grid, load_grids
from lrlab.laws.batch.grid import MAX_BATCH
from lrlab.laws.batch.select import b_noise_views, summary
from lrlab.laws.batch.steps import StepsFit, fit_steps, load_steps
from lrlab.laws.batch.training import AtStep, AtTarget, over_training

MAX_PREDICT = 1000
BATCH_FLAGS = {
    "law": "--law", "alpha": "--alpha", "loss_noise": "--loss-noise", "level": "--level", "unit": "--unit",
    "group": "--group", "study": "--study",
}  # fmt: skip

InputArg = Annotated[Path | None, typer.Argument(help="A CSV of runs: lr,batch_size,loss[,steps,n,d,status,GROUP...].")]
StoreOpt = Annotated[Path | None, typer.Option(help="Read a study from this run store instead of a CSV.")]
StudyOpt = Annotated[str | None, typer.Option(help="The study in --store.")]
GroupOpt = Annotated[
    list[str] | None, typer.Option(help="A column (or cell/config key) that splits the runs into grids; repeatable.")
]
UnitOpt = Annotated[
    str, typer.Option(help="The batch unit: sequences, or tokens (x seq_len where the input gives it).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
LawOpt = Annotated[str, typer.Option(help=f"The batch-size law: {', '.join(LAWS)} (auto: leave-one-batch-size-out).")]
NoiseOpt = Annotated[
    float | None, typer.Option(help="The loss noise (std) of one run; default: pooled from the grid's fits.")
]


def register(app: typer.Typer) -> None:
    app.command("surge")(surge_cmd)
    app.command("bnoise")(bnoise_cmd)
    app.command("scale")(scale_cmd)


def surge_cmd(
    input: InputArg = None,
    store: StoreOpt = None,
    study: StudyOpt = None,
    group: GroupOpt = None,
    unit: UnitOpt = "sequences",
    law: LawOpt = "auto",
    alpha: Annotated[str, typer.Option(help="The sgd law's exponent: a number (default 1) or 'fit'.")] = "1",
    loss_noise: NoiseOpt = None,
    level: Annotated[float, typer.Option(help="The intervals' level.")] = 0.95,
    predict_batch: Annotated[
        str | None, typer.Option(help="Batch sizes to predict the best LR for, e.g. 256,512,1024.")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a figure: the loss heatmap, optima and laws.")] = None,
    json: JsonOpt = False,
) -> None:
    """Fit the best LR vs batch size (the surge law, the SGD noise-scale law, a power law) to a grid of runs.

    For each batch size the best LR is the minimum of a cubic (or parabola) in log LR through the cells around the
    best one (diverged runs count as +infinity; a best LR at the grid's edge is a bound, not fitted). The law is
    chosen by leave-one-batch-size-out error unless --law names one. B_noise is reported three ways where the
    input allows: the surge law's peak, steps vs examples to a target loss (needs records at several steps) and
    the gns probe (a study whose runs recorded it). With records at several steps the law is refitted at each.

    Examples:

      lrlab surge grid.csv --group optimizer --predict-batch 256,512 --plot surge.png

      lrlab surge --store surge.db --study surge --group optimizer --json
    """
    with flags(**BATCH_FLAGS):
        alpha_value = _alpha(alpha)
        sizes = _batch_list(predict_batch)
        plot = plot_path(plot)
        grids, gns = _read(input, store, study, group or [], unit, plot)
        results, failed = [], {}
        with console.status("fitting") as status:
            for key, grid in grids.items():
                status.update(f"fitting {grid.name or 'the grid'}")
                try:
                    fit = fit_grid(grid.final(), law, alpha_value, loss_noise, level)
                    training = _training(grid, law, alpha_value, loss_noise)
                except InputError as exc:
                    if len(grids) == 1 or exc.param not in (None, "loss", "batch_size"):
                        raise
                    failed[key] = str(exc)  # one group's grid is bad: the others still stand
                    continue
                results.append((key, fit, training, gns.get(key)))
    if not results:
        raise InputError(f"no group could be fitted: {next(iter(failed.values()))}")
    if plot is not None:
        from lrlab.report.batch_plots import MAX_PANELS, plot_surge

        if len(results) > MAX_PANELS:
            warn(f"--plot draws the first {MAX_PANELS} of {len(results)} groups")
        trainings = [r[2] or ([], []) for r in results]
        with_training = any(t[0] or t[1] for t in trainings)
        plot_surge([r[1] for r in results], plot, "best LR vs batch size", trainings if with_training else None)
    objects = [_object(key, group or [], fit, training, b, sizes, unit) for key, fit, training, b in results]
    objects += [{"group": dict(zip(group or [], key, strict=True)), "error": why} for key, why in failed.items()]
    if json:
        print_json(objects[0] if not group else {"groups": objects})
        return
    for (_, fit, training, _), obj in zip(results, objects[: len(results)], strict=True):
        _print_grid(fit, obj, training)
    for key, why in failed.items():
        warn(f"{', '.join(f'{g}={v}' for g, v in zip(group or [], key, strict=True))} not fitted: {why}")
    if plot is not None:
        say(f"figure -> {plot}")


def _alpha(text: str) -> float | None:
    if text == "fit":
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"must be a number or 'fit', got {text[:40]!r}", "alpha") from None
    return value


def _batch_list(text: str | None) -> list[float]:
    if not text:
        return []
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--predict-batch expects comma-separated batch sizes, got {text[:80]!r}") from None
    if len(values) > MAX_PREDICT:
        raise InputError(f"--predict-batch takes at most {MAX_PREDICT} batch sizes")
    bad = [v for v in values if not (math.isfinite(v) and 0 < v <= MAX_BATCH)]
    if bad:
        raise InputError(f"--predict-batch: batch sizes must lie in (0, {MAX_BATCH:.0e}], got {bad[0]:g}")
    return values


def _read(input, store, study, group, unit, plot) -> tuple[dict[tuple, Grid], dict[tuple, float | None]]:
    if (input is None) == (store is None):
        raise InputError("give a CSV of runs or --store FILE --study NAME (one of them)")
    if store is None:
        if study is not None:
            raise InputError("--study reads from --store; a CSV holds one study")
        check_distinct({"--plot": plot}, {"the input": input})
        empty: dict[str, int] = {}
        grids = load_grids(input, group, unit, empty)
        for name, count in empty.items():
            warn(f"{name}: no cell with a loss ({count} missing); left out")
        return grids, {}
    if study is None:
        raise InputError("--store needs --study NAME (lrlab runs list shows the studies)")
    require_file(store, "--store")
    check_distinct({"--plot": plot}, {"the store": store})
    from lrlab.store import Store
    from lrlab.store.grid import study_grids

    with Store(store) as db:
        return study_grids(db, study, group, unit)


def _training(grid: Grid, law, alpha, loss_noise) -> tuple[list[AtStep], list[AtTarget]] | None:
    """Refits over training when the grid has records at several step counts."""
    if len(grid.step_counts()) < 2:
        return None
    return over_training(grid, law, alpha, loss_noise)


def _steps_fit(training) -> tuple[float | None, StepsFit | None]:
    """The steps-vs-examples fit at the lowest target loss that could be fitted."""
    if not training:
        return None, None
    fitted = [a for a in training[1] if a.fit is not None]
    return (fitted[-1].target, fitted[-1].fit) if fitted else (None, None)


def _object(key, group, fit: GridFit, training, gns, sizes, unit: str) -> dict:
    obj = {**summary(fit, sizes), "unit": unit}
    target, steps = _steps_fit(training)
    obj["b_noise"] = b_noise_views(fit, steps, gns)
    if target is not None:
        obj["b_noise"]["steps_to_target"]["target_loss"] = target
    if group:
        obj = {"group": dict(zip(group, key, strict=True)), **obj}
    if training:
        obj["over_training"] = {
            "by_steps": [
                {"steps": a.steps, "law": a.fit.law, "params": a.fit.fit.params, "intervals": a.fit.fit.intervals,
                 "surge": _surge(a.fit)}
                if a.fit else {"steps": a.steps, "error": a.error}
                for a in training[0]
            ],
            "by_target_loss": [
                {"target_loss": a.target, "b_noise": a.fit.b_noise, "interval": a.fit.intervals["b_noise"],
                 "s_min": a.fit.s_min, "batch_sizes": len(a.batch_size)}
                if a.fit else {"target_loss": a.target, "error": a.error}
                for a in training[1]
            ],
        }  # fmt: skip
    return obj


def _surge(fit: GridFit) -> dict | None:
    """The surge law's peak and eps_max: the same law at every step count, whatever ``auto`` chose there."""
    f = fit.fits.get("surge")
    if f is None:
        return None
    return {"b_noise": f.params["b_noise"], "interval": f.intervals["b_noise"], "eps_max": f.params["eps_max"],
            "bound": f.b_noise_bound}  # fmt: skip


def _g(value) -> str:
    """3 significant digits, exponents without padding (2.24e3): the tables stay narrow."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def _interval(pair) -> str:
    return f"[{_g(pair[0])}, {_g(pair[1])}]"


def _print_grid(fit: GridFit, obj: dict, training) -> None:
    grid = fit.grid
    say(
        f"{grid.name or 'grid'}: {len(grid.lr)} cells at {len(grid.batch_sizes)} batch sizes "
        f"({grid.diverged} diverged, {grid.missing} missing); loss noise {_g(fit.loss_noise)}"
    )
    table = Table(show_edge=False, pad_edge=False)
    for col in ("batch size", "cells", "best lr", f"{100 * fit.fit.level:g}% interval", "loss there", "note"):
        table.add_column(col, justify="right")
    for o in fit.optima:
        note = {"low": "below the grid (bound)", "high": "above the grid (bound)"}.get(o.at_grid_edge or "", "")
        note = note or ("bracketed by a diverged cell" if o.method == "cell" else "")
        table.add_row(_g(o.batch_size), str(o.n_cells), _g(o.best_lr), _interval(o.interval), _g(o.loss), note)
    console.print(table)
    scores = ", ".join(f"{k} {_g(v)}" for k, v in fit.cv_errors.items())
    how = "chosen by leave-one-batch-size-out |log error|" if fit.requested == "auto" else "as asked"
    say(f"law: {fit.law} ({how}: {scores})")
    say("  " + ", ".join(f"{k} {_g(v)} {_interval(fit.fit.intervals[k])}" for k, v in fit.fit.params.items()))
    for note in fit.notes:
        warn(f"{grid.name or 'grid'}: {note}")
    edges = [o for o in fit.optima if o.at_grid_edge]
    if edges:
        warn(f"{grid.name or 'grid'}: best LR at the grid's edge for batch size "
             f"{', '.join(_g(o.batch_size) for o in edges)}: widen the LR range there")  # fmt: skip
    views = obj["b_noise"]
    parts = []
    if views["surge_peak"]:
        parts.append(f"surge peak {_g(views['surge_peak']['value'])} {_interval(views['surge_peak']['interval'])}"
                     + (" (bound)" if views["surge_peak"]["bound"] else ""))  # fmt: skip
    if views["steps_to_target"]:
        s = views["steps_to_target"]
        parts.append(f"steps to loss {_g(s.get('target_loss'))}: {_g(s['value'])} {_interval(s['interval'])}")
    if views["gns"] is not None:
        parts.append(f"gns probe {_g(views['gns'])}")
    spread = f"; largest / smallest {views['spread']:.2f}" if views["spread"] else ""
    say(f"B_noise ({obj['unit']}): {'; '.join(parts) or '-'}{spread}")
    for p in obj["predicted"]:
        there = _g(p["loss"]) if p["loss"] is not None else "- (outside the measured batch sizes)"
        far = " (extrapolated)" if p["extrapolated"] else ""
        say(
            f"  batch {_g(p['batch_size'])}{far}: best lr {_g(p['best_lr'])} {_interval(p['interval'])}, "
            f"loss there {there}"
        )
    if training:
        _print_training(training)


def _print_training(training) -> None:
    by_step, by_target = training
    table = Table(title="over training (the surge law at each step count)", show_edge=False, pad_edge=False)
    for col in ("updates", "best loss", "B_noise (surge peak)", "interval", "eps_max", "auto's law"):
        table.add_column(col, justify="right")
    for a in by_step:
        if a.fit is None:
            table.add_row(_g(a.steps), "-", "-", table_text(a.error or ""), "-", "-")
            continue
        s = _surge(a.fit)
        bound = " (bound)" if s["bound"] else ""
        best = min(o.loss for o in a.fit.optima)
        table.add_row(_g(a.steps), _g(best), _g(s["b_noise"]) + bound, _interval(s["interval"]), _g(s["eps_max"]),
                      a.fit.law)  # fmt: skip
    console.print(table)
    table = Table(title="B_noise from steps vs examples", show_edge=False, pad_edge=False)
    for col in ("target loss", "batch sizes", "b_noise", "interval", "s_min"):
        table.add_column(col, justify="right")
    for a in by_target:
        if a.fit is None:
            table.add_row(_g(a.target), str(len(a.batch_size)), "-", table_text(a.error or ""), "-")
            continue
        table.add_row(_g(a.target), str(len(a.batch_size)), _g(a.fit.b_noise), _interval(a.fit.intervals["b_noise"]),
                      _g(a.fit.s_min))  # fmt: skip
    console.print(table)


def bnoise_cmd(
    steps_csv: Annotated[
        Path | None, typer.Argument(help="A CSV of batch_size,steps[,GROUP...]: steps to one target loss.")
    ] = None,
    group: GroupOpt = None,
    example: Annotated[
        bool, typer.Option("--example", help="Use the bundled public table (Zhang et al. 2024, 5 model sizes).")
    ] = False,
    level: Annotated[float, typer.Option(help="The intervals' level.")] = 0.95,
    plot: Annotated[Path | None, typer.Option(help="Write a figure: steps vs examples and the fits.")] = None,
    json: JsonOpt = False,
) -> None:
    """B_noise from the steps runs at several batch sizes took to reach one target loss (McCandlish et al. 2018):
    S(B) = S_min + E_min / B, B_noise = E_min / S_min, fitted in log S with profile-likelihood intervals.

    Examples:

      lrlab bnoise steps.csv --group model --plot bnoise.png

      lrlab bnoise --example --json
    """
    plot = plot_path(plot)
    if (steps_csv is None) == (not example):
        raise InputError("give a CSV of batch_size,steps or --example (one of them)")
    if example and group:
        raise InputError("--example is grouped by model; --group is for a CSV")
    if example:
        from lrlab.datasets import root

        steps_csv, group = root("critical_batch_size") / "steps_to_target.csv", ["model"]
    else:
        check_distinct({"--plot": plot}, {"the input": steps_csv})
    tables = load_steps(steps_csv, group or None)
    fits: dict[str, StepsFit] = {}
    with flags(level="--level"):
        for key, (batch, steps) in tables.items():
            name = ", ".join(f"{g}={v}" for g, v in zip(group or [], key, strict=True))
            try:
                fits[name] = fit_steps(batch, steps, level)
            except InputError as exc:
                raise InputError(f"{name + ': ' if name else ''}{exc.message}", exc.param) from None
    if plot is not None:
        from lrlab.report.batch_plots import plot_steps

        plot_steps(fits, plot, "steps vs examples to the target loss")
    rows = [
        {"group": dict(zip(group or [], key, strict=True)), "b_noise": f.b_noise, "interval": f.intervals["b_noise"],
         "s_min": f.s_min, "e_min": f.e_min, "intervals": f.intervals, "at_bound": f.at_bound,
         "linear_b_noise": f.linear_b_noise, "batch_sizes": int(np.unique(f.batch_size).size)}
        for key, f in zip(tables, fits.values(), strict=True)
    ]  # fmt: skip
    if json:
        print_json(rows[0] if not group else {"groups": rows})
        return
    table = Table(show_edge=False, pad_edge=False)
    for col in ("group", "batch sizes", "B_noise", f"{100 * level:g}% interval", "S_min", "E_min", "1/S-on-1/E"):
        table.add_column(col, justify="right")
    for name, row in zip(fits, rows, strict=True):
        cells = (_g(row["b_noise"]), _interval(row["interval"]), _g(row["s_min"]), _g(row["e_min"]))
        table.add_row(table_text(name or "all"), str(row["batch_sizes"]), *cells, _g(row["linear_b_noise"]))
    console.print(table)
    for name, row in zip(fits, rows, strict=True):
        if row["at_bound"]:
            warn(f"{name or 'the table'}: steps do not fall with the batch size: no noise scale")
    if plot is not None:
        say(f"figure -> {plot}")


def scale_cmd(
    input: InputArg = None,
    store: StoreOpt = None,
    study: StudyOpt = None,
    group: GroupOpt = None,
    unit: UnitOpt = "tokens",
    json: JsonOpt = False,
    law: LawOpt = "auto",
    loss_noise: NoiseOpt = None,
) -> None:
    """Fit eta_opt = c N^a D^b and B_opt = c D^k across groups of runs (model sizes N, token budgets D).

    Each group (--group, e.g. n and d, or a model column) is one LR x batch-size grid at one N and D (columns n
    and d: parameters and training tokens). Its best LR and batch size come from the lowest loss over the grid;
    the power laws are fitted in log space with leave-one-group-out error. The published Step Law and DeepSeek
    LLM formulas are printed beside each group for comparison (they expect B in tokens: --unit tokens, the
    default here).

    Example:

      lrlab scale grids.csv --group n --group d
    """
    from lrlab.laws.batch.across import fit_across

    with flags(**BATCH_FLAGS):
        grids, _ = _read(input, store, study, group or [], unit, None)
        with console.status("fitting each group"):
            result = fit_across(list(grids.values()), law, loss_noise)
    laws = {"eta_opt": result.lr_law, "B_opt": result.batch_law}
    obj = {
        "groups": [
            {"group": g.name, "n": g.n, "d": g.d, "best_lr": g.best_lr, "best_batch": g.best_batch,
             "batch_interval": g.batch.interval if g.batch is not None else None,
             "batch_at_edge": g.batch.at_grid_edge if g.batch is not None else None, "published": p}
            for g, p in zip(result.groups, result.published, strict=True)
        ],
        "laws": {
            k: None if f is None else {"coef": f.coef, "exponents": f.exponents, "intervals": f.intervals,
                                       "logo_error": f.logo_error, "n": f.n}
            for k, f in laws.items()
        },
        "notes": result.notes,
        "unit": unit,
    }  # fmt: skip
    if json:
        print_json(obj)
        return
    table = Table(show_edge=False, pad_edge=False)
    for col in ("group", "best lr", "best batch", "Step Law lr", "batch", "DeepSeek lr", "batch"):
        table.add_column(col, justify="right")
    for g in obj["groups"]:
        pub = {p["name"]: p for p in g["published"]}
        step, deep = pub.get("Step Law", {}), pub.get("DeepSeek LLM", {})
        edge = f" ({g['batch_at_edge']} edge)" if g["batch_at_edge"] else ""
        best = (_g(g["best_batch"]) if g["best_batch"] else "-") + edge
        theirs = (step.get("eta_opt"), step.get("B_opt"), deep.get("eta_opt"), deep.get("B_opt"))
        table.add_row(table_text(g["group"]), _g(g["best_lr"]), best, *map(_g, theirs))
    console.print(table)
    for name, f in laws.items():
        if f is None:
            continue
        terms = " ".join(f"{k}^{v:.3g} {_interval(f.intervals[k])}" for k, v in f.exponents.items())
        say(f"{name} = {f.coef:.3g} {terms}; leave-one-group-out |log error| {_g(f.logo_error)}")
    for note in result.notes:
        warn(note)
