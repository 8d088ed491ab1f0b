"""``lrlab demo``: the main job a new user runs first (``make demo``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lrlab.cli.common import console


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the plots and tables.")] = Path("out/demo"),
    steps: Annotated[int, typer.Option(help="Length of the demo schedules in optimizer steps.")] = 10_000,
    warmup: Annotated[int, typer.Option(help="Warmup steps of the demo schedules.")] = 500,
    peak: Annotated[float, typer.Option(help="Peak learning rate of the demo schedules.")] = 1e-3,
) -> None:
    """Run the lrlab study on this machine and write its plots and tables to --out.

    Today the study is the schedule gallery: standard schedules as a plot (schedules.png) and a table
    (schedules.csv), with each schedule's LR at key steps and its LR area S1 printed.

    Example:

      lrlab demo --out out/demo
    """
    from lrlab.report.schedule_demo import schedule_demo

    summaries = schedule_demo(out, total=steps, warmup=warmup, peak=peak)
    table = Table(title=f"Standard schedules ({steps} steps, warmup {warmup}, peak {peak:g})", show_edge=False)
    table.add_column("schedule")
    probe_steps = list(summaries[0].lr_at)
    for t in probe_steps:
        table.add_column(f"lr({t})", justify="right")
    table.add_column("area S1", justify="right")
    for s in summaries:
        table.add_row(s.name, *(f"{s.lr_at[t]:.3g}" for t in probe_steps), f"{s.area:.4g}")
    console.print(table)
    console.print(f"wrote {out / 'schedules.png'} and {out / 'schedules.csv'}")
