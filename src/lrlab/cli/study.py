"""``lrlab study STUDY.toml``: pilots -> fitted laws -> a recommended configuration and its report; ``lrlab report``
writes the report again from the store."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lrlab.cli.common import console, flags, say, table_text
from lrlab.files import check_output, check_output_dir, make_dirs, require_file, write_text

SCHEDULE_CSV = "schedule.csv"


def register(app: typer.Typer) -> None:
    app.command("study")(study_command)
    app.command("report")(report_command)


def _spec_with(study_file: Path, executor: str | None, workers: int | None):
    from lrlab.study import load_spec
    from lrlab.study.pilots import plan_pilots
    from lrlab.sweep.driver import check_options

    spec = load_spec(study_file)
    changes = {k: v for k, v in (("executor", executor), ("workers", workers)) if v is not None}
    spec = replace(spec, **changes)
    with flags(executor="--executor", workers="--workers"):
        check_options(spec.executor, spec.workers, 0.0)
    plan_pilots(spec)  # a budget too small for the pilots is refused before anything is made
    return spec


def study_command(
    study_file: Annotated[Path, typer.Argument(help="Study file (TOML), e.g. examples/demo.toml.")],
    out: Annotated[Path, typer.Option(help="Folder for recommendation.toml, report.html and the store.")] = Path(
        "out/study"
    ),
    store: Annotated[Path | None, typer.Option(help="Run store (SQLite); default OUT/runs.db.")] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Train the recommendation and score the prediction.")
    ] = False,
    executor: Annotated[str | None, typer.Option(help="local or ray (default: the study file's).")] = None,
    workers: Annotated[int | None, typer.Option(help="Runs at a time (default: the study file's).")] = None,
) -> None:
    """Spend a share of the budget on pilot runs, fit the laws, and recommend the full run's warmup, optimizer,
    batch size, peak LR and schedule with its predicted final loss (see docs/study.md).

    Every run lands in the store: run the same command again after a crash or Ctrl-C and it continues.

    Examples:

      lrlab study examples/demo.toml --verify --out out/demo

      lrlab study my-study.toml --executor ray --workers 8 --store runs.db
    """
    from lrlab.cli.sweep import SweepDisplay
    from lrlab.report.study_report import write_report
    from lrlab.store import Store
    from lrlab.study import Executor, run_study
    from lrlab.study.recommend import toml_text

    spec = _spec_with(study_file, executor, workers)
    out = check_output_dir(out, "--out")
    store = check_output(store if store is not None else out / "runs.db", "--store")
    make_dirs(out, "--out")
    t0 = time.monotonic()
    with flags(store="--store"):
        db = Store(store)
    with db:
        display = SweepDisplay()
        try:
            with display, flags(budget="budget", max_batch_size="max_batch_size"):
                result = run_study(
                    spec,
                    db,
                    Executor(spec.executor, spec.workers, display),
                    verify_run=verify,
                    schedule_csv=out / SCHEDULE_CSV,
                    on_step=lambda name: display.bar.console.print(name, markup=False, highlight=False),
                )
        except KeyboardInterrupt:
            say("stopped: every finished run is recorded; run the same command again to continue")
            raise typer.Exit(code=130) from None
        rec = out / "recommendation.toml"
        header = (
            f"lrlab study {spec.name}: the recommended full run ({study_file})\n"
            f"predicted final validation loss {result.schedule.chosen.loss:.4f}"
            f" (laws' range {result.schedule.chosen.band[0]:.4f} to {result.schedule.chosen.band[1]:.4f})\n"
            f"run it: lrlab train {rec} --out runs/recommended"
        )
        write_text(rec, toml_text(result.config, header))
        report = write_report(result, db, out / "report.html")
    _print_summary(result, rec, report, store, time.monotonic() - t0)


def _print_summary(result, rec: Path, report: Path, store: Path, seconds: float) -> None:
    from lrlab.report.study_report import recommendation_rows

    table = Table(title=f"lrlab study {table_text(result.spec.name)}: recommendation", show_edge=False)
    for col in ("", "recommended", "evidence"):
        table.add_column(col)
    for row in recommendation_rows(result):
        table.add_row(*(table_text(x) for x in row))
    console.print(table)
    spent = sum(result.spent().values())
    say(
        f"pilots spent {spent:,} training tokens, {result.pilot_share_spent:.1%} of the full run's"
        f" {result.spec.tokens:,} (limit {result.spec.pilot_share:.0%}); {seconds:.0f} s here"
    )
    say(f"wrote {rec} (lrlab train runs it as is) and {report}; runs in {store}")


def report_command(
    study_file: Annotated[Path, typer.Argument(help="The study file the study ran.")],
    store: Annotated[Path, typer.Option(help="Run store (SQLite) the study wrote.")] = Path("out/study/runs.db"),
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
) -> None:
    """Write the study's self-contained HTML report from the store (no run is started).

    Example:

      lrlab report examples/demo.toml --store out/demo/runs.db --out demo.html
    """
    from lrlab.report.study_report import write_report
    from lrlab.store import Store
    from lrlab.study import Executor, run_study

    spec = _spec_with(study_file, None, None)
    out = check_output(out, "--out", (".html",))
    with flags(store="--store"):
        require_file(store, "store")
        db = Store(store)
    with db:
        result = run_study(spec, db, Executor(dry=True))
        write_report(result, db, out)
    say(f"wrote {out}")
