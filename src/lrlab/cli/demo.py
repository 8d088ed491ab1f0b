"""``lrlab demo``: the main job a new user runs first (``make demo``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lrlab.cli.common import console, flags, say
from lrlab.errors import InputError
from lrlab.files import check_output_dir, make_dirs
from lrlab.schedules.base import MAX_DENSE_STEPS

PARTS = ("schedules", "warmup", "laws")
MIN_STEPS = 20  # the gallery warms up over steps // 20 steps, and its inverse-sqrt schedule needs a warmup
MIN_TRAIN_STEPS, MAX_TRAIN_STEPS = 20, 100_000  # 20: the law study evaluates every steps // 40 from 2 x warmup


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the plots and tables.")] = Path("out/demo"),
    parts: Annotated[str, typer.Option(help="Comma-separated parts to run: schedules, warmup, laws.")] = ",".join(
        PARTS
    ),
    steps: Annotated[int, typer.Option(help="Length of the gallery schedules in optimizer steps.")] = 10_000,
    train_steps: Annotated[int, typer.Option(help="Steps of each tiny-GPT run (warmup: this, laws: 4/3 of it).")] = 300,
    peak: Annotated[float, typer.Option(help="Peak learning rate of the tiny-GPT runs.")] = 1e-2,
) -> None:
    """Run the lrlab study on this machine (about a minute on 2 CPU cores) and write plots and tables to --out.

    schedules: standard schedules as a plot and a table (schedules.png, schedules.csv).
    warmup: the tiny GPT with AdamW with and without warmup and GI-AdamW without, with the updates probe:
    loss and relative update size (warmup.png, warmup.csv).
    laws: loss-curve laws fitted on a constant and a cosine run predict a held-out WSD run (laws.png, laws.csv).

    Example:

      lrlab demo --out out/demo

      lrlab demo --parts schedules --out out/gallery
    """
    chosen = [p.strip() for p in parts.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PARTS]
    if unknown or not chosen:
        raise InputError(f"--parts {parts!r}: choose from {', '.join(PARTS)}")
    # every flag is checked before the folder is made or a run starts
    if not MIN_STEPS <= steps <= MAX_DENSE_STEPS:
        raise InputError(f"--steps must lie in [{MIN_STEPS}, {MAX_DENSE_STEPS:,}], got {steps}")
    if not MIN_TRAIN_STEPS <= train_steps <= MAX_TRAIN_STEPS:
        raise InputError(f"--train-steps must lie in [{MIN_TRAIN_STEPS}, {MAX_TRAIN_STEPS:,}], got {train_steps}")
    if not (math.isfinite(peak) and peak > 0):
        raise InputError(f"--peak must be finite and > 0, got {peak}")
    make_dirs(check_output_dir(out, "--out"), "--out")
    if "schedules" in chosen:
        _schedules(out, steps, warmup=steps // 20, peak=1e-3)
    if "warmup" in chosen:
        _warmup(out, train_steps, peak)
    if "laws" in chosen:
        _laws(out, train_steps * 4 // 3, peak)
    if "warmup" in chosen or "laws" in chosen:
        say(f"{out / 'environment.json'}: the torch build, threads, CPU path and corpus the runs ran with")


def _print_table(title: str, columns: list[str], rows: list[list[str]], files: list[Path]) -> None:
    """A rich table whose first column is left-aligned and the rest right-aligned, then the files written."""
    table = Table(title=title, show_edge=False)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    say(f"wrote {' and '.join(str(f) for f in files)}")


def _schedules(out: Path, steps: int, warmup: int, peak: float) -> None:
    from lrlab.report.schedule_demo import schedule_demo

    summaries = schedule_demo(out, total=steps, warmup=warmup, peak=peak)
    probe_steps = list(summaries[0].lr_at)
    _print_table(
        f"Standard schedules ({steps} steps, warmup {warmup}, peak {peak:g})",
        ["schedule", *(f"lr({t})" for t in probe_steps), "area S1"],
        [[s.name, *(f"{s.lr_at[t]:.3g}" for t in probe_steps), f"{s.area:.4g}"] for s in summaries],
        [out / "schedules.png", out / "schedules.csv"],
    )


def _warmup(out: Path, steps: int, peak: float) -> None:
    from lrlab.report.warmup_study import EARLY_STEPS, warmup_study

    console.print(f"training the tiny GPT three times ({steps} steps each, peak LR {peak:g}) ...")
    rows = warmup_study(out, steps=steps, peak=peak)
    _print_table(
        "Warmup keeps early updates small",
        ["run", "final val loss", "first ||dW||/||W||", f"max ||dW||/||W||, steps < {EARLY_STEPS}"],
        [
            [
                r["run"] + ("" if r["status"] == "done" else f" ({r['status']})"),
                _fmt(r["final_val_loss"]),
                _fmt(r["first_update_rel"]),
                _fmt(r["max_early_update_rel"]),
            ]
            for r in rows
        ],
        [out / "warmup.png", out / "warmup.csv"],
    )


def _laws(out: Path, steps: int, peak: float) -> None:
    from lrlab.report.law_study import law_study

    console.print(f"training constant, cosine and WSD runs ({steps} steps each) and fitting the laws ...")
    with flags(peak="--peak"):
        rows = law_study(out, steps=steps, peak=peak)
    _print_table(
        "Predicting a held-out WSD run from a constant and a cosine run",
        ["law", "fit PredE", "held-out PredE", "decay PredE", "final loss: observed", "predicted", "error"],
        [
            [
                f"auto ({r['chosen']})" if r["law"] == "auto" else r["law"],
                "-" if math.isnan(r["fit_prede"]) else f"{r['fit_prede']:.2%}",
                f"{r['heldout_prede']:.2%}",
                f"{r['decay_prede']:.2%}",
                f"{r['final_loss']:.4f}",
                f"{r['final_pred']:.4f}",
                f"{r['final_error']:.2%}",
            ]
            for r in rows
        ],
        [out / "laws.png", out / "laws.csv"],
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
