"""A study's runs in the store: each step's training runs as a sweep (so they resume like one), and the in-process
LR searches recorded as runs of their own, so an interrupted study finds every finished piece and redoes none.

A step's runs are the store study ``NAME/STEP`` (``demo/grid``); a run is found again by its config's hash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrlab.errors import InputError, clip
from lrlab.store.db import FINISHED, Store
from lrlab.study.spec import StudySpec
from lrlab.sweep.driver import Listener, execute
from lrlab.sweep.study import Cell, Study
from lrlab.train.config import TrainConfig, config_from_dict

STEPS = ("lr", "warmup", "grid", "schedule", "verify")


@dataclass(frozen=True)
class Executor:
    """Where a study's runs go: the executor, workers at a time, the listener that shows their progress."""

    executor: str = "local"
    workers: int = 2
    listener: Listener | None = None
    dry: bool = False  # only read what the store has (the report): a step with runs to do is an error


def _not_run(spec: StudySpec, step: str) -> InputError:
    return InputError(
        f"the study {clip(spec.name, 80)!r} has not finished its {step} step in this store: run `lrlab study"
        f" {clip(spec.source, 120)}` first",
        "study",
    )


def step_study(spec: StudySpec, step: str) -> str:
    """The store study that holds one step's runs."""
    return f"{spec.name}/{step}"


def variant(base: TrainConfig, **changes: Any) -> TrainConfig:
    """``base`` with config keys changed (dotted keys reach into ``model``), validated again."""
    table = base.to_dict()
    for key, value in changes.items():
        if key.startswith("model."):
            table["model"][key[6:]] = value
        else:
            table[key] = value
    return config_from_dict(table)


def run_cells(spec: StudySpec, store: Store, step: str, cells: list[Cell], where: Executor) -> list[dict[str, Any]]:
    """Run the step's cells that are not finished (a sweep of them) and return every cell's run record."""
    study = Study(step_study(spec, step), spec.source, "steps", spec.retries, {}, [], cells)
    if where.dry:
        found = [store.find_run(study.name, c.config.to_dict()) for c in cells]
        if any(r is None or r["status"] not in FINISHED for r in found):
            raise _not_run(spec, step)
        return found
    plan = execute(study, store, where.executor, where.workers, listener=where.listener)
    return [store.run(r["id"]) for r in plan.runs]


def recorded(
    store: Store,
    spec: StudySpec,
    step: str,
    config: dict[str, Any],
    cell: dict[str, Any],
    measure: Callable,
    dry: bool = False,
) -> dict[str, Any]:
    """An in-process measurement recorded as a done run: ``measure()`` returns (final, rows) and runs only when
    the store has no finished run of this config (a resumed study reuses the record)."""
    if dry:
        found = store.find_run(step_study(spec, step), config)
        if found is None or found["status"] not in FINISHED:
            raise _not_run(spec, step)
        return found
    sid = store.study(step_study(spec, step), {"source": spec.source})
    run_id = store.add_run(sid, config, cell)
    run = store.run(run_id)
    if run["status"] in FINISHED:
        return run
    store.claim(run_id)
    try:
        final, rows = measure()
    except InputError as exc:
        store.finish_run(run_id, "failed", error=exc.message)
        raise
    except BaseException as exc:
        store.finish_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", error=str(exc))
        raise
    store.log_metrics(run_id, rows)
    store.finish_run(run_id, "done", final)
    return store.run(run_id)


def final_loss(run: dict[str, Any]) -> float:
    """A run's last validation loss; +inf when it diverged or recorded none."""
    value = run["final"].get("final_val_loss")
    if run["status"] != "done" or not isinstance(value, int | float) or not np.isfinite(value):
        return float("inf")
    return float(value)


def check_finished(runs: list[dict[str, Any]], step: str, retries: int) -> None:
    """Every run of a step ended done or diverged (else the study cannot decide; a rerun continues it, except a
    run that failed more than ``retries`` times, which a sweep no longer retries)."""
    bad = [r for r in runs if r["status"] not in FINISHED]
    if bad:
        r = bad[0]
        why = clip((r["error"] or "").splitlines()[0] if r["error"] else r["status"], 160)
        again = (
            f"it failed {r['failures']} times, more than retries = {retries}: fix the cause, then raise retries in"
            " the study file to try again"
            if r["status"] == "failed" and r["failures"] > retries
            else "run the study again to retry them"
        )
        raise InputError(
            f"{len(bad)} of the {step} step's {len(runs)} runs did not finish (run {r['id']}: {why}); {again}",
            "study",
        )


def spent_tokens(runs: list[dict[str, Any]]) -> int:
    """Training tokens the runs took: steps done x tokens per step (a diverged run counts to where it stopped)."""
    total = 0
    for run in runs:
        cfg = run["config"]
        if "batch_size" not in cfg:  # an LR search: its final says what it took
            total += int(run["final"].get("tokens", 0))
            continue
        total += int(run["final"].get("steps_done", 0)) * int(cfg["batch_size"]) * int(cfg["seq_len"])
    return total
