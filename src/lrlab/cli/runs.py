"""``lrlab runs list|show|export``: look into the run store."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lrlab.cli.common import console, flags, print_json, say, table_text
from lrlab.errors import InputError
from lrlab.files import check_output

runs_app = typer.Typer(help="List, show and export the runs in a run store.", no_args_is_help=True)
STORE_HELP = "The run store (SQLite file)."


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")


def _open(store: Path):
    from lrlab.store import Store

    if not store.is_file():
        raise InputError(f"--store {store}: no such run store")
    with flags(store="--store"):
        return Store(store)


def _when(seconds: float | None) -> str:
    return "" if seconds is None else datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


@runs_app.command("list")
def list_runs(
    study: Annotated[str | None, typer.Argument(help="A study: list its runs (default: list the studies).")] = None,
    store: Annotated[Path, typer.Option(help=STORE_HELP)] = Path("runs.db"),
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The studies in a store, or the runs of one study (status, cell, final losses).

    Examples:

      lrlab runs list --store runs.db

      lrlab runs list tiny-lr-bs --json
    """
    with _open(store) as db, flags(study="study"):
        if study is None:
            rows = db.studies()
            if json:
                print_json(rows)
                return
            table = Table(show_edge=False)
            counted = ("runs", "done", "diverged", "failed", "interrupted", "running", "pending")
            for col in ("id", "study", *counted, "created"):
                table.add_column(col)
            for r in rows:
                counts = [str(r.get(k, 0)) for k in counted]
                table.add_row(str(r["id"]), table_text(r["name"]), *counts, _when(r["created"]))
            console.print(table)
            return
        rows = db.table(study)
    if json:
        print_json(rows)
        return
    keys = list(dict.fromkeys(k for r in rows for k in r))
    table = Table(show_edge=False)
    for key in keys:
        table.add_column(table_text(key))
    for r in rows:
        table.add_row(*(table_text(_text(r.get(k))) for k in keys))
    console.print(table)


def _text(value) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


@runs_app.command("show")
def show_run(
    run_id: Annotated[int, typer.Argument(help="The run's id (lrlab runs list STUDY).")],
    store: Annotated[Path, typer.Option(help=STORE_HELP)] = Path("runs.db"),
    json: Annotated[bool, typer.Option("--json", help="Print JSON (with every metric's curve).")] = False,
) -> None:
    """One run: status, attempts, where and when it ran, its config, final losses and error.

    Examples:

      lrlab runs show 3 --store runs.db

      lrlab runs show 3 --json | jq .curves.val_loss
    """
    with _open(store) as db, flags(run="RUN_ID"):
        run = db.run(run_id) | {"artifacts": db.artifacts(run_id)}
        curves = {}
        for name in db.metric_names(run_id):
            steps, values = db.curve(run_id, name)
            curves[name] = {"steps": steps.tolist(), "values": values.tolist()}
    if json:
        print_json(run | {"curves": curves})
        return
    say(f"run {run['id']} of study {run['study']}: {run['status']} after {run['attempts']} attempt(s)")
    say(f"  host {run['host']}, pid {run['pid']}, started {_when(run['started'])}, finished {_when(run['finished'])}")
    say(f"  cell {run['cell']}")
    say(f"  final {run['final']}")
    listed = ", ".join(f"{name} ({len(curve['steps'])} steps)" for name, curve in curves.items())
    say(f"  metrics: {listed or 'none'}")
    say(f"  config {run['config']}")
    for artifact in run["artifacts"]:
        say(f"  {artifact['kind']}: {artifact['path']}")
    if run["error"]:
        say(f"  error: {run['error']}")


@runs_app.command("export")
def export_runs(
    study: Annotated[str, typer.Argument(help="The study to export.")],
    out: Annotated[Path, typer.Option(help="A .csv file, or .parquet (needs pyarrow: pip install 'lrlab[parquet]').")],
    store: Annotated[Path, typer.Option(help=STORE_HELP)] = Path("runs.db"),
) -> None:
    """A study's runs as a table (one row a run: status, cell values, final metrics).

    Examples:

      lrlab runs export tiny-lr-bs --out runs.csv

      lrlab runs export tiny-lr-bs --out runs.parquet
    """
    from lrlab.store import export

    check_output(out, "--out", (".csv", ".parquet"))
    with _open(store) as db, flags(study="study", path="--out"):
        n = export(db, study, out)
    say(f"wrote {n} runs to {out}")
