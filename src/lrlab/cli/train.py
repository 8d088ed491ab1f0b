"""``lrlab train``: run the training lab from a TOML config, a preset, or both, with overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from lrlab.cli.common import fail, flags, say
from lrlab.errors import InputError, first_line
from lrlab.files import check_output

# config keys set by a flag of `lrlab train` / `lrlab find-lr` -> that flag (their errors name it)
TRAIN_FLAGS = {
    "model.preset": "--preset",
    "steps": "--steps",
    "optimizer": "--optimizer",
    "schedule": "--schedule",
    "seed": "--seed",
    "batch_size": "--batch-size",
    "probes": "--probe",
    "probe_every": "--probe-every",
    "overrides": "--set",
}


def train_command(
    config: Annotated[Path | None, typer.Argument(help="TOML config (see examples/tiny.toml).")] = None,
    preset: Annotated[str | None, typer.Option(help="Model preset: tiny, mini, small, medium.")] = None,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps to run (total, counting resumed ones).")] = None,
    optimizer: Annotated[str | None, typer.Option(help="torch-adamw or an lrlab.optim name (lion, ...).")] = None,
    schedule: Annotated[str | None, typer.Option(help="Schedule spec or step,lr CSV, e.g. 'cosine:peak=...'.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the initial weights and of the batches.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Sequences per optimizer step (global).")] = None,
    probe: Annotated[
        str | None, typer.Option(help="Comma-separated probes to attach: updates, rrc, gns, sharpness.")
    ] = None,
    probe_every: Annotated[int | None, typer.Option(help="Probe cadence in optimizer steps (default 10).")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="Override any config key: --set model.n_layer=4."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder: metrics.jsonl, run.json, checkpoints/.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its newest checkpoint.")] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an earlier run in --out (by default such a folder is refused).")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    store: Annotated[
        Path | None, typer.Option(help="Also record the run in this run store (SQLite), found by its config.")
    ] = None,
    study: Annotated[str, typer.Option(help="The store's study the run belongs to.")] = "train",
) -> None:
    """Train a small GPT; a diverged run is a result (exit 0, status diverged in run.json).

    Examples:

      lrlab train --preset tiny --steps 300 --out runs/tiny

      lrlab train examples/small.toml --optimizer lionar --schedule "constant:peak=3e-3" --out runs/lionar

      lrlab train --preset tiny --steps 200 --probe updates,rrc,gns --probe-every 10 --set grad_accum=2

      lrlab train examples/tiny.toml --steps 600 --out runs/tiny --resume

      lrlab train examples/tiny.toml --out runs/tiny2 --store runs.db --study my-runs

      torchrun --nproc_per_node=2 -m lrlab train examples/tiny.toml --out runs/ddp
    """
    from lrlab.train import ddp, load_config
    from lrlab.train.loop import Trainer

    given = {
        "model.preset": preset,
        "steps": steps,
        "optimizer": optimizer,
        "schedule": schedule,
        "seed": seed,
        "batch_size": batch_size,
        "probes": [p.strip() for p in probe.split(",") if p.strip()] if probe is not None else None,
        "probe_every": probe_every,
    }
    if resume and out is None:
        fail("--resume needs --out DIR (the folder of the run to continue)")
    trainer = None
    try:
        with flags(**TRAIN_FLAGS):
            cfg = load_config(config, set_ or (), {k: v for k, v in given.items() if v is not None})
        sink = _store_sink(store, study, cfg, out, resume, overwrite) if store is not None else None
        with flags(out_dir="--out", resume="--resume", overwrite="--overwrite"):
            trainer = Trainer(cfg, out, resume, sink=sink, progress=progress, overwrite=overwrite)
            result = trainer.run()
    except InputError as exc:
        fail(str(exc))
    except Exception as exc:
        where = [str(p) for p in (out / "run.json" if out else None, store) if p is not None]
        if trainer is None or not trainer.recorded or not where:
            raise  # nothing recorded it: the traceback is the report (a bug, or an environment failure)
        reason = f"{type(exc).__name__}: {first_line(exc)[:300]}"
        fail(f"training failed: {reason} (recorded with its traceback in {' and '.join(where)})", code=1)
    ddp.teardown()  # only after success: after an error the other processes may never reach its barrier
    if os.environ.get("RANK", "0") != "0":  # under torchrun, one summary from rank 0
        return
    losses = f"train loss {result.final_train_loss}, val loss {result.final_val_loss}"
    say(f"{result.status}: {result.steps_done} steps, {losses}" + (f", records in {out}" if out else ""))
    if result.status == "diverged":
        say(f"diverged at step {result.diverged_at}: a result, recorded as status 'diverged'")
    if result.status == "interrupted":
        if not trainer.recorded:
            say("interrupted before the first step was done: nothing recorded, nothing changed")
        else:
            say(f"interrupted: checkpoint saved; continue with --resume --out {out}" if out else "interrupted")
        raise typer.Exit(code=130)


def _store_sink(path: Path, study: str, cfg, out: Path | None, resume: bool, overwrite: bool):
    """The sink that records the run in the store (beside metrics.jsonl when there is --out); None off rank 0.

    Checked here without writing: the store already holding this config in the study is refused unless --resume or
    --overwrite. The store (even its file) is written only once the run's first step has run."""
    if os.environ.get("RANK", "0") != "0":
        return None
    from lrlab.store import Store, StoreSink
    from lrlab.train.metrics import JsonlSink, TeeSink

    check_output(path, "--store")
    if not study.strip():
        raise InputError("--study needs a name")
    if path.exists():
        with flags(store="--store"), Store(path) as db:
            found = db.find_run(study, cfg.to_dict())
        if found is not None and found["status"] != "pending" and not (resume or overwrite):
            raise InputError(
                f"--store {path}: study {study!r} already holds this config as run {found['id']} ({found['status']});"
                " --resume continues it (with its --out), --overwrite replaces its records"
            )
    sink = StoreSink(path, study=study, config=cfg.to_dict())
    return TeeSink([JsonlSink(out), sink]) if out is not None else sink


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
