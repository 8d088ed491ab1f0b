"""Study step 3: the decay schedule for the full run, chosen by loss-curve laws fitted on two pilots.

Two pilots at step 2's batch size and LR (the optimizer and warmup of step 1): a constant LR and a cosine to 10%,
each ``schedule_tokens`` long. Every law of ``lrlab.laws.select.CANDIDATES`` is fitted on both (and ``auto``, the
pilots-only protocol's choice, is recorded). Each law then optimizes each family for the full run
(``lrlab.laws.optimize``: WSD share and shape, cosine floor, free-form non-increasing), and every schedule so found,
with the cosine-to-10% baseline, is scored by the **median over the laws** of its predicted final loss; its
interval is the range of the laws' predictions.

Why the median of the laws and not the protocol's one law: the pilots are short (at the default share the full
run is 10-25x longer), and over such a stretch a law can run away. On the tiny-GPT development study
(``examples/demo.toml`` at a smaller scale) momentum-floor, auto's pick, predicted 0.69 for a free-form run
that ended at 2.03, while the other three laws were within 6%; the protocol, which extrapolates only 1.4x inside
the pilots, scored all four within 2.5% of each other. This rule was set after seeing that development run; the
test of it is the benchmark (benchmarks/study.py) and --verify.

The recommendation is the schedule with the lowest median; a simpler family (WSD, then cosine, then free-form)
within ``SIMPLER_MARGIN`` (0.1%) of it is preferred.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lrlab.errors import InputError
from lrlab.laws import Curve
from lrlab.laws.fitting import Fit, fit
from lrlab.laws.optimize import FAMILIES, baseline, optimize
from lrlab.laws.registry import make_law
from lrlab.laws.select import CANDIDATES, select
from lrlab.schedules import Schedule, load
from lrlab.store.db import Store
from lrlab.study.batch import BatchResult
from lrlab.study.pilots import PilotPlan
from lrlab.study.runs import Executor, check_finished, run_cells, variant
from lrlab.study.spec import StudySpec
from lrlab.study.warmup import SHORT_FINAL_RATIO, WarmupResult
from lrlab.sweep.study import Cell
from lrlab.train.config import TrainConfig

SIMPLER_MARGIN = 0.001
EVALS_PER_PILOT = 20
_ORDER = ("wsd", "cosine", "free", "cosine to 10% (baseline)")


@dataclass(frozen=True)
class Candidate:
    """One schedule for the full run: the family, the law that found it, every law's predicted final loss, their
    median (``loss``) and range (``band``)."""

    name: str
    law: str
    schedule: Schedule
    by_law: dict[str, float]

    @property
    def loss(self) -> float:
        return float(np.median(list(self.by_law.values())))

    @property
    def band(self) -> tuple[float, float]:
        return min(self.by_law.values()), max(self.by_law.values())


@dataclass
class ScheduleResult:
    runs: list[dict[str, Any]]
    curves: list[Curve]
    fits: dict[str, Fit]  # every law that could be fitted
    auto: str  # the pilots-only protocol's pick, for the record
    total: int
    warmup: int
    candidates: list[Candidate]
    chosen: Candidate

    def predicted_curve(self, candidate: Candidate, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(median, lo, hi) over the laws of ``candidate``'s loss at ``steps`` (updates done): the laws its final
        loss is the median of (a law that predicts no finite loss for it is left out there and here)."""
        lr = candidate.schedule.values(self.total)
        preds = np.array([self.fits[law].predict(lr, steps) for law in candidate.by_law])
        return np.median(preds, axis=0), preds.min(axis=0), preds.max(axis=0)


def pilot_configs(spec: StudySpec, plan: PilotPlan, optimizer: str, warmup: int, batch: int, lr: float):
    steps = plan.schedule_steps(batch, spec.seq_len)
    w = min(warmup, steps // 4)
    specs = {
        "constant": f"constant:peak={lr!r},warmup={w}",
        "cosine": f"cosine:peak={lr!r},warmup={w},total={steps},final_ratio={SHORT_FINAL_RATIO}",
    }
    common = dict(optimizer=optimizer, batch_size=batch, steps=steps, eval_every=max(steps // EVALS_PER_PILOT, 1))
    return {name: variant(spec.base, schedule=s, ckpt_every=0, **common) for name, s in specs.items()}


def _curve(store: Store, run: dict[str, Any], cfg: TrainConfig) -> Curve:
    steps, loss = store.curve(run["id"], "val_loss")
    keep = np.isfinite(loss)
    total = cfg.steps
    return Curve(run["cell"]["schedule"], steps[keep], loss[keep], load(cfg.schedule).values(total), cfg.schedule)


def _candidate(fits: dict[str, Fit], name: str, law: str, schedule: Schedule, total: int) -> Candidate:
    lr, last = schedule.values(total), np.array([total - 1])
    by_law = {k: float(f.predict(lr, last)[0]) for k, f in fits.items()}
    return Candidate(name, law, schedule, {k: v for k, v in by_law.items() if np.isfinite(v) and v > 0})


def fit_laws(curves: list[Curve]) -> tuple[dict[str, Fit], str]:
    """Every candidate law fitted on the pilots (those that cannot be are left out), and auto's pick."""
    fits = {}
    for name in CANDIDATES:
        try:
            fits[name] = fit(make_law(name), curves)
        except InputError:
            continue
    if not fits:
        raise InputError("no loss-curve law could be fitted on the schedule pilots (too few records)", "study")
    try:
        auto = select(curves).law.name
    except InputError:
        auto = ""
    return fits, auto


def measure_schedule(
    spec: StudySpec, store: Store, plan: PilotPlan, step1: WarmupResult, step2: BatchResult, where: Executor
) -> ScheduleResult:
    warmup = step1.chosen.warmup
    configs = pilot_configs(spec, plan, step1.optimizer, warmup, step2.batch_size, step2.lr)
    cells = [Cell({"schedule": name}, cfg) for name, cfg in configs.items()]
    runs = run_cells(spec, store, "schedule", cells, where)
    check_finished(runs, "schedule", spec.retries)
    if any(r["status"] != "done" for r in runs):
        raise InputError(f"a schedule pilot diverged at LR {step2.lr:.3g}: the grid's LR is too high", "study")
    curves = [_curve(store, r, configs[r["cell"]["schedule"]]) for r in runs]
    fits, auto = fit_laws(curves)
    total = spec.full_steps(step2.batch_size)
    candidates = []
    for family in FAMILIES:
        for law, f in fits.items():
            try:
                choice = optimize(f, family, total, step2.lr, warmup)
            except InputError:  # this law predicts no finite loss for the family: the others still can
                continue
            candidates.append(_candidate(fits, family, law, choice.schedule, total))
    candidates.append(_candidate(fits, "cosine to 10% (baseline)", "", baseline(total, step2.lr, warmup), total))
    candidates = [c for c in candidates if c.by_law]
    if not candidates:
        raise InputError(
            f"no law predicts a finite loss for any schedule of {total:,} steps at LR {step2.lr:.3g}", "study"
        )
    best = min(c.loss for c in candidates)
    chosen = min(
        (c for c in candidates if c.loss <= best * (1 + SIMPLER_MARGIN)), key=lambda c: (_ORDER.index(c.name), c.loss)
    )
    return ScheduleResult(runs, curves, fits, auto, total, warmup, candidates, chosen)
