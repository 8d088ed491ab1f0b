"""``lrlab schedule show|compare``: look at schedules as tables, JSON and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from lrlab.cli.common import console, flags, parse_int_list, plot_path, print_json, say
from lrlab.errors import InputError
from lrlab.files import check_distinct
from lrlab.schedules import Schedule, load
from lrlab.schedules.base import check_dense_steps

SPEC_HELP = "A schedule spec (e.g. 'cosine:peak=1e-3,warmup=100,total=1000,final=1e-4') or a step,lr CSV file."
TABLE_ROWS = 12  # evenly spaced rows added to the phase boundaries in the default table
MAX_TABLE_ROWS = 10_000  # a terminal table longer than this is a mistake (rich would take minutes); --json is not

schedule_app = typer.Typer(help="Show, compare and plot learning-rate schedules.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(schedule_app, name="schedule")


def _length(schedules: list[Schedule], steps: int | None, at: list[int] | None) -> int:
    """Steps to cover: --steps if given, else the longest schedule's total, else (with --at) up to the last
    step asked for; an unbounded schedule without --at needs --steps."""
    if steps is not None:
        if steps < 1:
            raise InputError(f"--steps must be >= 1, got {steps}")
        return steps
    totals = [s.total for s in schedules]
    if all(t is not None for t in totals):
        return max(totals)
    if at:
        return max(at) + 1
    raise InputError("the schedule has no total length; pass --steps N (or --at STEPS)")


def _select_steps(schedules: list[Schedule], n: int, at: list[int] | None, every: int | None, full: bool):
    """The steps to print: --at, --every, all steps (``full``), or phase boundaries plus an even spread."""
    if at is not None:
        return np.array(at, dtype=np.int64)
    with flags(steps="--steps"):
        check_dense_steps(n)
    if every is not None:
        if every < 1:
            raise InputError(f"--every must be >= 1, got {every}")
        return np.arange(0, n, every)
    if full:
        return np.arange(n)
    keys = {k for s in schedules for k in s.key_steps()}
    spread = np.linspace(0, n - 1, TABLE_ROWS).round().astype(int)
    return np.array(sorted(k for k in keys | set(spread.tolist()) if k < n), dtype=np.int64)


def _at_steps(at: str | None, every: int | None) -> list[int] | None:
    if at is not None and every is not None:
        raise InputError("give --at or --every, not both")
    if at is None:
        return None
    steps = parse_int_list(at, "--at")
    if not steps:
        raise InputError(f"--at names no steps: {at!r}")
    return steps


def _plot_path(plot: Path | None, n: int, specs: list[str]) -> Path | None:
    """--plot checked before the work: a writable file of a known format, not one of the schedule CSVs, and a
    length the plot can evaluate step by step."""
    if plot is None:
        return None
    with flags(steps="--steps"):
        check_dense_steps(n)
    inputs = {f"the schedule {s}": Path(s) for s in specs if s.lower().endswith(".csv")}
    check_distinct({"--plot": plot}, inputs)
    return plot_path(plot)


def _check_rows(steps: np.ndarray, json: bool) -> np.ndarray:
    if not json and len(steps) > MAX_TABLE_ROWS:
        raise InputError(f"{len(steps):,} rows is more than a table shows ({MAX_TABLE_ROWS:,}); use --json or --every")
    return steps


def _table(steps: np.ndarray, columns: dict[str, np.ndarray]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("step", justify="right", style="cyan")
    for name in columns:
        table.add_column(name, justify="right")
    for i, t in enumerate(steps.tolist()):
        table.add_row(str(t), *(f"{col[i]:.6g}" for col in columns.values()))
    return table


@schedule_app.command("show")
def show(
    spec: Annotated[str, typer.Argument(help=SPEC_HELP, show_default=False)],
    steps: Annotated[int | None, typer.Option(help="Steps to cover (default: the schedule's total).")] = None,
    at: Annotated[str | None, typer.Option(help="Comma-separated steps to print, e.g. 0,1,99,100.")] = None,
    every: Annotated[int | None, typer.Option(help="Print every K-th step.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG plot of the schedule to this file.")] = None,
    json: Annotated[
        bool, typer.Option("--json", help='Print {"steps": [...], "lr": [...]} (all steps by default).')
    ] = False,
) -> None:
    """Print a schedule's LR at its phase boundaries (or chosen steps); optionally plot it.

    Examples:

      lrlab schedule show "cosine:peak=1e-3,warmup=100,total=1000,final=1e-4"

      lrlab schedule show "wsd:peak=1e-3,warmup=100,total=1000,decay=0.2,shape=1-sqrt,final=0" --plot wsd.png

      lrlab schedule show "constant:peak=1e-3,warmup=100" --steps 500 --json --at 0,1,99,100

      lrlab schedule show my_lr.csv --every 100
    """
    at_steps = _at_steps(at, every)
    schedule = load(spec)
    n = _length([schedule], steps, at_steps)
    plot = _plot_path(plot, n, [spec])
    chosen = _check_rows(_select_steps([schedule], n, at_steps, every, full=json), json)
    lr = schedule(chosen)
    if json:
        print_json({"steps": chosen.tolist(), "lr": lr.tolist()})
    else:
        say(f"{schedule}  total={schedule.total}")
        console.print(_table(chosen, {"lr": lr}))
    if plot is not None:
        from lrlab.report.schedule_plots import plot_schedules

        plot_schedules({str(schedule): schedule}, n, plot)
        if not json:
            say(f"plot written to {plot}")


@schedule_app.command("compare")
def compare(
    specs: Annotated[list[str], typer.Argument(help=SPEC_HELP + " Give two or more.", show_default=False)],
    steps: Annotated[int | None, typer.Option(help="Steps to cover (default: the longest total).")] = None,
    at: Annotated[str | None, typer.Option(help="Comma-separated steps to print.")] = None,
    every: Annotated[int | None, typer.Option(help="Print every K-th step.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG overlay of all schedules to this file.")] = None,
    json: Annotated[
        bool, typer.Option("--json", help='Print {"specs": [...], "steps": [...], "lr": [[...], ...]}.')
    ] = False,
) -> None:
    """Compare several schedules side by side; optionally overlay them in one plot.

    Examples:

      lrlab schedule compare "cosine:peak=1e-3,warmup=100,total=1000" \
        "wsd:peak=1e-3,warmup=100,total=1000,decay=0.2" --plot cmp.png

      lrlab schedule compare "linear:peak=1e-3,total=1000" lr_from_my_run.csv --at 0,500,999
    """
    if len(specs) < 2:
        raise InputError("compare needs two or more schedules")
    at_steps = _at_steps(at, every)
    schedules = [load(s) for s in specs]
    n = _length(schedules, steps, at_steps)
    plot = _plot_path(plot, n, specs)
    chosen = _check_rows(_select_steps(schedules, n, at_steps, every, full=json), json)
    columns = {f"#{i + 1}": s(chosen) for i, s in enumerate(schedules)}
    if json:
        print_json(
            {
                "specs": [str(s) for s in schedules],
                "steps": chosen.tolist(),
                "lr": [c.tolist() for c in columns.values()],
            }
        )
    else:
        for name, s in zip(columns, schedules, strict=True):
            say(f"{name} {s}")
        console.print(_table(chosen, columns))
    if plot is not None:
        from lrlab.report.schedule_plots import plot_schedules

        plot_schedules({f"{k} {s}": s for k, s in zip(columns, schedules, strict=True)}, n, plot)
        if not json:
            say(f"plot written to {plot}")
