"""A study's runs as LR x batch-size grids for the batch-size laws (:mod:`lrlab.laws.batch`).

Each finished run gives one cell per validation step (the loss as training went), keyed by its peak LR (the
``lr`` the sweep set, else the schedule's peak) and its batch size (sequences, or tokens = sequences x seq_len).
A diverged run's cell is +infinity from the step it diverged at to its last planned step. Runs that failed or
have not finished are counted as missing. ``group`` names cell or config keys (``optimizer``, ``model.preset``)
whose values split the study into separate grids. The probe ``gns`` (B_simple, in sequences), when a run
recorded it, is summarised per grid as the median over runs of the median of each run's last quarter.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lrlab.errors import InputError, clip
from lrlab.laws.batch.grid import UNITS, Grid
from lrlab.schedules import load
from lrlab.store.db import Store, hashable

LOSS_METRIC = "val_loss"


def study_grids(
    store: Store,
    study: str,
    group: tuple[str, ...] | list[str] = (),
    unit: str = "sequences",
    run_ids: list[int] | None = None,
) -> tuple[dict[tuple, Grid], dict[tuple, float | None]]:
    """(grids, gns) for ``study``: one :class:`Grid` per group value, and the gns probe's B_simple (in ``unit``)
    per group, None where no run recorded it. ``run_ids`` keeps only those runs (a study file's own cells, when
    the store also holds the runs of an earlier version of it)."""
    if unit not in UNITS:
        raise InputError(f"must be one of {', '.join(UNITS)}, got {clip(unit, 40)!r}", "unit")
    for g in group:
        if g in ("lr", "batch_size", "loss"):
            raise InputError(f"'{g}' is a grid column, not a group", "group")
    cells: dict[tuple, list[tuple]] = {}
    missing: dict[tuple, int] = {}
    gns: dict[tuple, list[float]] = {}
    runs = store.runs(study)
    if run_ids is not None:
        runs = [r for r in runs if r["id"] in set(run_ids)]
    if not runs:
        raise InputError(f"study {clip(study, 80)!r} has no runs", "study")
    for run in runs:
        key = tuple(_key_value(run, g) for g in group)
        cells.setdefault(key, [])
        if run["status"] not in ("done", "diverged"):
            missing[key] = missing.get(key, 0) + 1
            continue
        cfg = run["config"]
        lr = _peak(run)
        scale = cfg.get("seq_len", 1) if unit == "tokens" else 1
        batch = float(cfg["batch_size"]) * scale
        steps, loss = store.curve(run["id"], LOSS_METRIC)
        steps = steps + 1  # the store's step t is the record after update t: t + 1 updates done
        if run["status"] == "diverged":
            at = run["final"].get("diverged_at")
            stop = int(at) + 1 if isinstance(at, int) else int(steps[-1]) if len(steps) else 1
            finite = steps < stop
            steps, loss = steps[finite], loss[finite]
            planned = _eval_steps(cfg, run["meta"].get("total_steps"))
            late = planned[planned >= stop] if np.any(planned >= stop) else np.array([max(stop, 1)])
            steps, loss = np.concatenate([steps, late]), np.concatenate([loss, np.full(len(late), np.inf)])
        n = float(run["meta"].get("n_params") or math.nan)
        tokens_per_step = float(cfg["batch_size"]) * cfg.get("seq_len", 1)
        for s, value in zip(steps.tolist(), loss.tolist(), strict=True):
            cells[key].append(
                (lr, batch, value if math.isfinite(value) else math.inf, float(s), n, s * tokens_per_step)
            )
        _, b_simple = store.curve(run["id"], "gns")
        b_simple = b_simple[np.isfinite(b_simple)]
        if len(b_simple):
            gns.setdefault(key, []).append(float(np.median(b_simple[len(b_simple) * 3 // 4 :])) * scale)
    grids = {}
    for key, rows in cells.items():
        name = ", ".join(f"{g}={v}" for g, v in zip(group, key, strict=True))
        if not rows:
            raise InputError(f"study {clip(study, 80)!r}{' ' + name if name else ''}: no finished run", "study")
        lr, batch, loss, steps, n, d = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
        grids[key] = Grid(lr, batch, loss, steps, n, d, missing.get(key, 0), name)
    return grids, {k: float(np.median(gns[k])) if k in gns else None for k in grids}


def _key_value(run: dict[str, Any], key: str) -> str:
    """A group key's value: the run's cell value, else its config value (dotted for tables)."""
    if key in run["cell"]:
        value = run["cell"][key]
    else:
        value: Any = run["config"]
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise InputError(f"run {run['id']} has no {clip(key, 80)!r} (a cell or config key)", "group")
            value = value[part]
    return str(hashable(value))


def _peak(run: dict[str, Any]) -> float:
    if isinstance(run["cell"].get("lr"), int | float):
        return float(run["cell"]["lr"])
    peak = getattr(load(run["config"]["schedule"]), "peak", None)
    if not isinstance(peak, int | float) or not peak > 0:
        raise InputError(f"run {run['id']}: its schedule has no single peak LR; sweep 'lr' instead", "study")
    return float(peak)


def _eval_steps(cfg: dict[str, Any], total_steps: Any) -> np.ndarray:
    """The validation steps (updates done) a run would have recorded: every eval_every, and the last."""
    total = int(total_steps if isinstance(total_steps, int) else cfg.get("steps") or 0)
    every = int(cfg.get("eval_every") or total or 1)
    return np.unique(np.append(np.arange(every, total + 1, every), total)) if total else np.array([1])
