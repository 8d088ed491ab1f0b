"""The study from end to end: step 1 (first LR, warmup, optimizer), step 2 (batch size, peak LR), step 3
(schedule), the recommendation, and --verify. Every run lands in the store before the next step reads it, so a
study stopped anywhere continues where it stopped, and the same store always gives the same recommendation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lrlab.store.db import Store
from lrlab.study.batch import BatchResult, measure_batch
from lrlab.study.pilots import PilotPlan, plan_pilots
from lrlab.study.recommend import Verification, recommended_config, verify, write_schedule_csv
from lrlab.study.runs import STEPS, Executor, spent_tokens
from lrlab.study.schedule import ScheduleResult, measure_schedule
from lrlab.study.spec import StudySpec
from lrlab.study.warmup import WarmupResult, measure_warmup
from lrlab.train.config import TrainConfig


@dataclass
class StudyResult:
    spec: StudySpec
    plan: PilotPlan
    warmup: WarmupResult
    batch: BatchResult
    schedule: ScheduleResult
    config: TrainConfig  # the recommendation
    verification: Verification | None

    def spent(self) -> dict[str, int]:
        """Training tokens each step's pilots took (the LR searches are part of step 1)."""
        step1 = [e.range_run for e in self.warmup.evidence] + [e.catapult_run for e in self.warmup.evidence]
        step1 += [r for e in self.warmup.evidence for r in e.runs.values()]
        return {
            "warmup": spent_tokens([r for r in step1 if r is not None]),
            "grid": spent_tokens(self.batch.runs),
            "schedule": spent_tokens(self.schedule.runs),
        }

    @property
    def pilot_share_spent(self) -> float:
        return sum(self.spent().values()) / self.spec.tokens


def run_study(
    spec: StudySpec,
    store: Store,
    where: Executor,
    verify_run: bool = False,
    schedule_csv: Path | None = None,
    on_step: Callable[[str], None] | None = None,
) -> StudyResult:
    """Run (or, with ``where.dry``, read back) every step; ``on_step(name)`` is told as each begins.

    ``schedule_csv`` is where a free-form recommended schedule is written before --verify trains it."""
    say = on_step or (lambda _name: None)
    plan = plan_pilots(spec)
    if not where.dry:  # the report only reads the store
        store.study(spec.name, {"source": spec.source, "steps": [f"{spec.name}/{s}" for s in STEPS]})
    say("step 1: first LR and warmup")
    step1 = measure_warmup(spec, store, plan, where)
    say("step 2: batch size and peak LR")
    step2 = measure_batch(spec, store, plan, step1, where)
    say("step 3: schedule")
    step3 = measure_schedule(spec, store, plan, step1, step2, where)
    cfg = recommended_config(spec, step1.optimizer, step2.batch_size, step3, schedule_csv)
    if schedule_csv is not None and not where.dry:  # the TOML names it, with or without --verify
        write_schedule_csv(schedule_csv, step3)
    checked = None
    if verify_run or where.dry:
        if not where.dry:
            say("verify: training the recommendation")
        checked = verify(spec, store, cfg, step3, where)
    return StudyResult(spec, plan, step1, step2, step3, cfg, checked)
