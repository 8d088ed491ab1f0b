"""The study's answer: the full run's training config (a TOML file ``lrlab train`` runs as is), and --verify.

Verification trains that config to the end (the store study ``NAME/verify``) and scores the law's predicted curve
against it: PredE = mean |pred - y| / y over the validation records after 2 x warmup (docs/laws.md), the share of
records inside the 95% band, and the final loss predicted against observed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from lrlab.laws import curve_metrics
from lrlab.schedules import Tabulated
from lrlab.schedules.spec import write_csv
from lrlab.store.db import FINISHED, Store
from lrlab.study.runs import Executor, check_finished, run_cells, step_study, variant
from lrlab.study.schedule import ScheduleResult
from lrlab.study.spec import StudySpec
from lrlab.sweep.study import Cell
from lrlab.train.config import TrainConfig

EVALS = 40  # validation records of the full run
CHECKPOINTS = 10


def recommended_config(
    spec: StudySpec, optimizer: str, batch_size: int, step3: ScheduleResult, schedule_path: Path | None = None
) -> TrainConfig:
    """The full run: the base config with the chosen optimizer, batch size, steps and schedule. A free-form
    schedule is a table, so it lives in a ``step,lr`` CSV (``schedule_path``, absolute in the config)."""
    schedule = step3.chosen.schedule
    text = str(schedule)
    if isinstance(schedule, Tabulated):
        if schedule_path is None:
            text = f"{spec.name}-free-schedule.csv"  # placeholder name: the study writes it beside the TOML
        else:
            text = str(schedule_path.resolve())
    total = step3.total
    return variant(
        spec.base,
        optimizer=optimizer,
        batch_size=batch_size,
        steps=total,
        tokens=None,
        schedule=text,
        eval_every=max(total // EVALS, 1),
        ckpt_every=max(total // CHECKPOINTS, 1),
        probes=[],
    )


def toml_text(cfg: TrainConfig, header: str) -> str:
    """The config as TOML (keys at None are left out: they mean "the default")."""
    table = _without_none(cfg.to_dict())
    table.pop("threads", None)  # the machine's business, not the recommendation's
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + tomli_w.dumps(table)


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def write_schedule_csv(path: Path, step3: ScheduleResult) -> None:
    """The chosen schedule as a ``step,lr`` CSV, one row per step, when it is free-form (a table has no one-line
    spec)."""
    schedule = step3.chosen.schedule
    if isinstance(schedule, Tabulated):
        write_csv(schedule, path, step3.total)


@dataclass
class Verification:
    run: dict[str, Any]
    steps: np.ndarray
    observed: np.ndarray
    predicted: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    prede: float
    coverage: float
    final_observed: float
    final_predicted: float
    final_band: tuple[float, float]

    @property
    def final_error(self) -> float:
        return self.final_predicted / self.final_observed - 1


def _verified(store: Store, study: str, cfg: TrainConfig, free: bool) -> dict[str, Any] | None:
    """The newest finished verification run of exactly this recommendation, or None. For a free-form schedule
    its CSV path is not compared: the report does not know the folder the study wrote it to."""
    wanted = {k: v for k, v in cfg.to_dict().items() if not (free and k == "schedule")}
    names = {s["name"] for s in store.studies()}
    for run in reversed(store.runs(study) if study in names else []):
        if run["status"] in FINISHED and all(run["config"].get(k) == v for k, v in wanted.items()):
            return run
    return None


def verify(
    spec: StudySpec, store: Store, cfg: TrainConfig, step3: ScheduleResult, where: Executor
) -> Verification | None:
    """Train the recommendation and score the laws' prediction. For the report (``where.dry``): the store's
    verification run of this recommendation, None when there is none."""
    if where.dry:
        run = _verified(store, step_study(spec, "verify"), cfg, isinstance(step3.chosen.schedule, Tabulated))
        if run is None:
            return None
    else:
        (run,) = run_cells(spec, store, "verify", [Cell({"run": "recommendation"}, cfg)], where)
        check_finished([run], "verify", spec.retries)
    steps, loss = store.curve(run["id"], "val_loss")
    keep = np.isfinite(loss) & (steps >= 2 * step3.warmup)
    steps, loss = steps[keep], loss[keep]
    if not len(steps) or run["status"] != "done":
        nan = math.nan
        empty = np.array([])
        return Verification(run, empty, empty, empty, empty, empty, nan, nan, nan, step3.chosen.loss, step3.chosen.band)
    pred, lo, hi = step3.predicted_curve(step3.chosen, steps)
    inside = float(np.mean((loss >= lo) & (loss <= hi)))
    return Verification(
        run,
        steps,
        loss,
        pred,
        lo,
        hi,
        curve_metrics(pred, loss)["prede"],
        inside,
        float(run["final"].get("final_val_loss", loss[-1])),
        step3.chosen.loss,
        step3.chosen.band,
    )
