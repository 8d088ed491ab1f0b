"""``lrlab sweep STUDY.toml``: run a study's grid of training runs into the run store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lrlab.cli.common import console, flags, say, table_text, warn
from lrlab.files import check_output, check_output_dir


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)


def sweep_command(
    study_file: Annotated[Path, typer.Argument(help="Study file (TOML), e.g. examples/sweep-tiny.toml.")],
    executor: Annotated[str, typer.Option(help="local (worker processes) or ray.")] = "local",
    workers: Annotated[int, typer.Option(help="Runs at the same time.")] = 2,
    store: Annotated[Path, typer.Option(help="The run store (SQLite file).")] = Path("runs.db"),
    runs_dir: Annotated[
        Path | None, typer.Option(help="Checkpoints of each run (default: STORE's name + .runs/ beside it).")
    ] = None,
    address: Annotated[str | None, typer.Option(help="Ray: join this cluster instead of starting one.")] = None,
    gpus: Annotated[float, typer.Option(help="Ray: GPUs per run.")] = 0.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the cells and their compute; run nothing.")] = False,
) -> None:
    """Run every cell of a study (a base config crossed with axes of values), resuming an interrupted study.

    Done and diverged runs are skipped on a re-run; interrupted ones continue from their last checkpoint; failed
    ones are retried up to the study's retries. Ctrl-C stops the workers after their current step.

    Examples:

      lrlab sweep examples/sweep-tiny.toml --workers 2

      lrlab sweep examples/sweep-tiny.toml --dry-run

      lrlab sweep study.toml --executor ray --address auto --store runs.db
    """
    from lrlab.store import Store
    from lrlab.sweep import execute, load_study, summarize
    from lrlab.sweep.driver import check_options, cores

    with flags(executor="--executor", workers="--workers", gpus="--gpus", address="--address"):
        check_options(executor, workers, gpus, address)
    if executor == "local" and workers > cores():
        warn(f"--workers {workers} is more than the {cores()} CPU cores here: runs will share cores (1 thread each)")
    study = load_study(study_file)
    if dry_run:
        _print_cells(study)
        return
    check_output(store, "--store")
    if runs_dir is not None:
        check_output_dir(runs_dir, "--runs-dir")
    with flags(store="--store"):
        db = Store(store)
    with db:
        display = SweepDisplay()
        try:
            with (
                flags(executor="--executor", workers="--workers", gpus="--gpus", store="--store", address="--address"),
                display,
            ):
                plan = execute(study, db, executor, workers, runs_dir, address, gpus, listener=display)
        except KeyboardInterrupt:
            say("stopped: every finished run is recorded; run the same command again to continue")
            raise typer.Exit(code=130) from None
        ids = [r["id"] for r in plan.runs]
        _print_summary(summarize(db, study.name, run_ids=ids))
        statuses = [db.run(i)["status"] for i in ids]
        counts = {s: statuses.count(s) for s in ("done", "diverged", "failed", "interrupted")}
        others = len(db.runs(study.name)) - len(ids)
        say(
            f"{study.name}: {len(ids)} runs in {store} ({counts['done']} done, {counts['diverged']} diverged, "
            f"{counts['failed']} failed; {len(plan.todo)} ran now)"
            + (f"; the store also holds {others} runs of earlier versions of this study" if others else "")
        )
        for run in plan.skipped:
            say(f"  skipped run {run['id']} ({run['status']}): out of retries or running elsewhere")
        if counts["failed"]:
            say("  see a failure with: lrlab runs show RUN_ID --store " + str(store))
            raise typer.Exit(code=1)  # as `lrlab train` does for a failed run


class SweepDisplay:
    """A progress bar over the runs and a live line per running run (step, train loss)."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[int, Any] = {}

    def __enter__(self):
        self.bar.start()
        self.overall = self.bar.add_task("runs", total=None, info="")
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()

    def planned(self, todo: int) -> None:
        done = self.bar.tasks[self.overall].completed  # a study plans several sweeps into one display
        self.bar.update(self.overall, total=done + todo)

    def started(self, run: dict[str, Any], total_steps: int) -> None:
        from lrlab.sweep.study import short_value

        label = table_text(" ".join(f"{k}={short_value(v)}" for k, v in run["cell"].items()) or f"run {run['id']}")
        self.tasks[run["id"]] = self.bar.add_task(f"  {run['id']}: {label}", total=total_steps, info="")

    def progress(self, live: dict[int, tuple[int, Any]]) -> None:
        for run_id, (step, loss) in live.items():
            if run_id in self.tasks:
                info = f"loss {loss:.4f}" if isinstance(loss, float) else ""
                self.bar.update(self.tasks[run_id], completed=step + 1, info=info)

    def finished(self, run: dict[str, Any]) -> None:
        task = self.tasks.pop(run["id"], None)
        if task is not None:
            self.bar.remove_task(task)
        self.bar.advance(self.overall)
        loss = run["final"].get("final_val_loss")
        text = f"{loss:.4f}" if isinstance(loss, float) else ""
        self.bar.console.print(f"  run {run['id']} {run['status']} {text}", markup=False, highlight=False)


def _print_cells(study) -> None:
    from lrlab.schedules import load as load_schedule
    from lrlab.sweep.study import short_value
    from lrlab.train.budget import gpt_params

    table = Table(title=f"{table_text(study.name)}: {len(study.cells)} cells", show_edge=False)
    keys = list(dict.fromkeys(k for c in study.cells for k in c.values))
    for col in [*keys, "steps", "tokens", "params", "PFLOP"]:
        table.add_column(col, justify="right")
    total_flops = 0.0
    for cell in study.cells:
        cfg = cell.config
        steps = cfg.total_steps(load_schedule(cfg.schedule).total)
        tokens = steps * cfg.tokens_per_step
        params = gpt_params(cfg.gpt_config(256))
        flops = 6.0 * params * tokens  # forward + backward, the usual 6 N T (Kaplan et al. 2020, arXiv:2001.08361)
        total_flops += flops
        values = [table_text(short_value(cell.values.get(k, ""))) for k in keys]
        table.add_row(*values, str(steps), f"{tokens:,}", f"{params / 1e6:.2f}M", f"{flops / 1e15:.3g}")
    console.print(table)
    say(f"total: {total_flops / 1e15:.3g} PFLOP (6 x parameters x tokens; byte vocabulary assumed for the count)")


def _print_summary(summary) -> None:
    from lrlab.sweep.study import short_value

    if not summary.rows:
        return
    title = f"final {summary.metric} by LR (div: diverged, fail: failed; * best)"
    table = Table(title=title, show_edge=False)
    for key in summary.group_keys:
        table.add_column(table_text(key))
    for lr in summary.lrs:
        table.add_column(f"lr {lr:.3g}", justify="right")
    if not summary.lrs:
        table.add_column(summary.metric, justify="right")
    table.add_column("best lr", justify="right")
    for row in summary.rows:
        cells = []
        for lr in summary.lrs or [None]:
            text = row["cells"].get(lr, "")
            cells.append(f"*{text}" if lr is not None and lr == row["best_lr"] else text)
        best = "" if row["best_lr"] is None else f"{row['best_lr']:.3g}"
        table.add_row(*(table_text(short_value(row["group"][k])) for k in summary.group_keys), *cells, best)
    console.print(table)
