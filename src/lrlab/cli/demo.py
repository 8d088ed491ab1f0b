"""``lrlab demo``: the schedule gallery (the main job, ``make demo``, is ``lrlab study``: cli/study.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lrlab.cli.common import console, say
from lrlab.errors import InputError
from lrlab.files import check_output_dir, make_dirs
from lrlab.schedules.base import MAX_DENSE_STEPS

PARTS = ("schedules",)  # the warmup and law parts became the study's steps (lrlab study examples/demo.toml)
MIN_STEPS = 20  # the gallery warms up over steps // 20 steps, and its inverse-sqrt schedule needs a warmup


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the plot and table.")] = Path("out/demo"),
    parts: Annotated[str, typer.Option(help="Comma-separated parts to run: schedules.")] = ",".join(PARTS),
    steps: Annotated[int, typer.Option(help="Length of the gallery schedules in optimizer steps.")] = 10_000,
) -> None:
    """The schedule gallery: standard schedules as a plot and a table (schedules.png, schedules.csv).

    The main job is the study (`make demo` runs `lrlab study examples/demo.toml --verify`); its report points here.

    Example:

      lrlab demo --parts schedules --out out/gallery
    """
    chosen = [p.strip() for p in parts.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PARTS]
    if unknown or not chosen:
        raise InputError(f"--parts {parts!r}: choose from {', '.join(PARTS)}")
    # every flag is checked before the folder is made
    if not MIN_STEPS <= steps <= MAX_DENSE_STEPS:
        raise InputError(f"--steps must lie in [{MIN_STEPS}, {MAX_DENSE_STEPS:,}], got {steps}")
    make_dirs(check_output_dir(out, "--out"), "--out")
    _schedules(out, steps, warmup=steps // 20, peak=1e-3)


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
