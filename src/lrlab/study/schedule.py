"""Study step 3: the decay schedule for the full run, chosen by loss-curve laws fitted on two pilots.

Two pilots at step 2's batch size and LR (the optimizer and warmup of step 1): a constant LR and a cosine to 10%,
each ``schedule_tokens`` long. Every law of ``lrlab.laws.select.CANDIDATES`` is fitted on both, and ``auto``, the
pilots-only protocol's choice among them, is found. Each law then optimizes each family for the full run
(``lrlab.laws.optimize``: WSD share and shape, cosine floor, free-form non-increasing), and every schedule so found,
with the cosine-to-10% baseline, gets every law's predicted final loss.

**Which schedule** (:func:`choose`): the one with the lowest final loss predicted by ``auto``'s law, among the WSD,
cosine and baseline candidates; a simpler family (WSD, then cosine) within ``SIMPLER_MARGIN`` (0.1%) of it is
preferred. Free-form schedules are shown but never chosen: a law's free-form optimum exploits that law's own
extrapolation error (on the tiny-GPT development study momentum-floor predicted 0.69 for its free-form run, which
ended at 2.03). If auto found no law, the median over the laws ranks instead.

**What loss** (:attr:`Candidate.loss`): the median over the laws of the predicted final loss, with their range
as the interval. The pilots are short (at the default share the full run is 10-25x longer) and over such a
stretch one law can run away; the median survives one.

How these were chosen, on development data only (docs/study.md): the ranking rule on
``benchmarks/schedule_choice.py`` (schedules-and-scaling curves, both pilots cut short; 23 decisions between the
runs of one length): ranking by auto's law picked the best measured run 20 times of 23 (mean regret 0.018%),
the median of the laws 10 times (0.069%). The median as the predicted loss, on that tiny-GPT study. The study
benchmark (benchmarks/study.py) at seed 0 had been seen before this rule was set (docs/study.md says what it
showed); the rule's test is a fresh seed there.
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
_ORDER = ("wsd", "cosine", "cosine to 10% (baseline)")  # the families the choice is among, simplest first


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

    def score(self, ranking_law: str) -> float:
        """What :func:`choose` ranks by: ``ranking_law``'s predicted final loss, or the median where it has none."""
        return self.by_law.get(ranking_law, self.loss)


@dataclass
class ScheduleResult:
    runs: list[dict[str, Any]]
    curves: list[Curve]
    fits: dict[str, Fit]  # every law that could be fitted
    auto: str  # the pilots-only protocol's pick, whose law ranks the candidates ("" if it found none)
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


def choose(candidates: list[Candidate], ranking_law: str) -> Candidate:
    """The recommended schedule: the lowest final loss predicted by ``ranking_law`` (the median of the laws where
    that law predicts none), among the families of ``_ORDER``; a simpler one within ``SIMPLER_MARGIN`` wins."""
    eligible = [c for c in candidates if c.name in _ORDER]
    if not eligible:
        raise InputError("no WSD, cosine or baseline schedule has a predicted final loss to rank", "study")
    best = min(c.score(ranking_law) for c in eligible)
    near = [c for c in eligible if c.score(ranking_law) <= best * (1 + SIMPLER_MARGIN)]
    return min(near, key=lambda c: (_ORDER.index(c.name), c.score(ranking_law)))


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
    chosen = choose(candidates, auto)
    return ScheduleResult(runs, curves, fits, auto, total, warmup, candidates, chosen)
