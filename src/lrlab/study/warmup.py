"""Study step 1: a first LR and the warmup, per optimizer, from the initial weights and two short runs.

For each optimizer:

1. an LR range test (Smith 2017, arXiv:1506.01186) from the initial weights gives the reference LR: its
   ``valley`` suggestion (lrlab.probes.range_test);
2. a catapult search (Kalra & Barkeshli 2024, arXiv:2406.09405) from LR/64 finds eta_c, the smallest LR at which
   one step raises the loss of its batch;
3. two short runs at that LR (cosine to 10%), one without warmup and one with a linear warmup over the first
   quarter, record the relative update size ||dW|| / ||W|| and the relative representation change (Kosson et al.
   2024, arXiv:2410.23922: warmup exists to keep these early updates small).

Warmup is dropped when the run without it ends within ``WARMUP_TOLERANCE`` (0.5%) of the run with it (the
optimizer keeps its own early updates small: GI-Adam, LionAR). Otherwise the recommended warmup is the no-warmup
run's transient, the steps until its update size settles within ``SETTLE_FACTOR`` (2x) of its median over the
second half, and never shorter than the warmup tested, nor longer than ``MAX_WARMUP_SHARE`` (10%) of the full run.
The optimizer the study keeps is the one with the lowest final loss of its better run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lrlab.errors import InputError
from lrlab.store.db import Store
from lrlab.study.pilots import PilotPlan
from lrlab.study.runs import Executor, check_finished, final_loss, recorded, run_cells, variant
from lrlab.study.spec import StudySpec
from lrlab.sweep.study import Cell
from lrlab.train.config import TrainConfig

RANGE_LR = (1e-5, 1.0)
CATAPULT_START = 1 / 64  # of the range test's LR
WARMUP_TOLERANCE = 0.005
WARMUP_TEST_SHARE = 0.25  # of the short run
SETTLE_FACTOR = 2.0
MAX_WARMUP_SHARE = 0.1
SHORT_FINAL_RATIO = 0.1
SUGGESTION = "valley"


@dataclass
class OptimizerEvidence:
    """Step 1's measurements for one optimizer and what they say."""

    optimizer: str
    range_lr: float
    eta_c: float | None
    range_run: dict[str, Any]
    catapult_run: dict[str, Any] | None
    runs: dict[str, dict[str, Any]]  # "no warmup", "warmup": the run records
    warmup_tested: int
    losses: dict[str, float]
    early_update: dict[str, float]  # largest ||dW||/||W|| in the first quarter of each run
    needs_warmup: bool
    warmup: int  # recommended warmup steps for the full run
    transient: int | None
    notes: list[str] = field(default_factory=list)

    @property
    def best_loss(self) -> float:
        return min(self.losses.values())


@dataclass
class WarmupResult:
    evidence: list[OptimizerEvidence]
    chosen: OptimizerEvidence

    @property
    def optimizer(self) -> str:
        return self.chosen.optimizer


def _search_config(cfg: TrainConfig, method: str, **params: Any) -> dict[str, Any]:
    return {"probe": method, "train": cfg.to_dict(), **params}


def _range_test(spec: StudySpec, store: Store, cfg: TrainConfig, steps: int, dry: bool) -> dict[str, Any]:
    from lrlab.train.lr_search import find_lr

    lo, hi = RANGE_LR

    def measure():
        search = find_lr(cfg, "range", lo, hi, steps)
        r = search.result
        rows = [
            {"step": i, "range_lr": float(a), "range_loss": float(b), "range_smoothed": float(c)}
            for i, (a, b, c) in enumerate(zip(r.lrs, r.losses, r.smoothed, strict=True))
        ]
        final = {
            "suggestions": r.suggestions,
            "stopped_early": r.stopped_early,
            "tokens": len(r.lrs) * cfg.tokens_per_step,
        }
        return final, rows

    config = _search_config(cfg, "range", lr_min=lo, lr_max=hi, steps=steps)
    return recorded(store, spec, "lr", config, {"optimizer": cfg.optimizer, "probe": "range"}, measure, dry)


def _catapult(
    spec: StudySpec, store: Store, cfg: TrainConfig, lr_start: float, trials: int, dry: bool
) -> dict[str, Any]:
    from lrlab.probes.catapult import NoCatapult
    from lrlab.train.lr_search import find_lr

    def measure():
        try:
            search = find_lr(cfg, "catapult", lr_start, k=1, max_trials=trials)
        except NoCatapult as exc:  # a result, recorded as such (the study goes on); a bad argument still raises
            return {"eta_c": None, "why": exc.message, "tokens": trials * cfg.tokens_per_step}, []
        r = search.result
        rows = [
            {"step": i, "catapult_lr": t.lr, "catapult_loss": t.losses[-1], "catapult_start": t.start_loss}
            for i, t in enumerate(r.trials)
        ]
        final = {"eta_c": r.eta_c, "stable_lr": r.stable_lr, "catapult_lr": r.catapult_lr}
        return final | {"tokens": len(r.trials) * cfg.tokens_per_step}, rows

    config = _search_config(cfg, "catapult", lr_start=lr_start, max_trials=trials)
    return recorded(store, spec, "lr", config, {"optimizer": cfg.optimizer, "probe": "catapult"}, measure, dry)


def short_run(cfg: TrainConfig, peak: float, steps: int, warmup: int) -> TrainConfig:
    """A step-1 run: cosine to 10% over ``steps`` with ``warmup`` steps, the updates and rrc probes on."""
    schedule = f"cosine:peak={peak!r},warmup={warmup},total={steps},final_ratio={SHORT_FINAL_RATIO}"
    every = max(steps // 30, 1)
    return variant(
        cfg,
        steps=steps,
        schedule=schedule,
        probes=["updates", "rrc"],
        probe_every=every,
        eval_every=max(steps // 5, 1),
        ckpt_every=0,
    )


def transient(steps: np.ndarray, update_rel: np.ndarray) -> int | None:
    """Steps until the relative update size first falls within SETTLE_FACTOR of its median over the second half
    of the run; None when there is no record."""
    ok = np.isfinite(update_rel)
    steps, update_rel = steps[ok], update_rel[ok]
    if not len(steps):
        return None
    late = float(np.median(update_rel[len(update_rel) // 2 :]))
    settled = np.flatnonzero(update_rel <= SETTLE_FACTOR * late)
    return int(steps[settled[0]]) + 1 if len(settled) else int(steps[-1]) + 1


def _early(store: Store, run: dict[str, Any], steps: int) -> float:
    at, rel = store.curve(run["id"], "update_rel")
    keep = (at < max(steps // 4, 1)) & np.isfinite(rel)
    return float(rel[keep].max()) if np.any(keep) else math.nan


def measure_warmup(spec: StudySpec, store: Store, plan: PilotPlan, where: Executor) -> WarmupResult:
    """Step 1 for every optimizer of the study (the searches in this process, the short runs on the executor)."""
    searches = {}
    for name in spec.optimizers:
        cfg = variant(spec.base, optimizer=name)
        rng = _range_test(spec, store, cfg, plan.range_steps, where.dry)
        lr = rng["final"]["suggestions"].get(SUGGESTION) or rng["final"]["suggestions"].get("steepest")
        if lr is None:
            raise InputError(f"the LR range test of {name} found no falling stretch of the loss", "optimizers")
        cat = _catapult(spec, store, cfg, lr * CATAPULT_START, plan.catapult_trials, where.dry)
        searches[name] = (cfg, float(lr), rng, cat)
    test_warmup = max(round(WARMUP_TEST_SHARE * plan.warmup_steps), 1)
    cells = []
    for name, (cfg, lr, _, _) in searches.items():
        for w in (0, test_warmup):
            cells.append(Cell({"optimizer": name, "warmup": w}, short_run(cfg, lr, plan.warmup_steps, w)))
    runs = run_cells(spec, store, "warmup", cells, where)
    check_finished(runs, "warmup", spec.retries)
    by_cell = {(r["cell"]["optimizer"], r["cell"]["warmup"]): r for r in runs}
    full_steps = spec.full_steps(spec.base.batch_size)
    evidence = []
    for name, (_cfg, lr, rng, cat) in searches.items():
        pair = {"no warmup": by_cell[(name, 0)], "warmup": by_cell[(name, test_warmup)]}
        losses = {k: final_loss(r) for k, r in pair.items()}
        early = {k: _early(store, r, plan.warmup_steps) for k, r in pair.items()}
        needs = not losses["no warmup"] <= losses["warmup"] * (1 + WARMUP_TOLERANCE)
        settle = transient(*store.curve(pair["no warmup"]["id"], "update_rel"))
        warmup = 0
        if needs:
            warmup = min(max(test_warmup, settle or 0), max(round(MAX_WARMUP_SHARE * full_steps), 1))
        eta_c = cat["final"].get("eta_c")
        notes = []
        if eta_c is not None and lr <= eta_c:
            notes.append(f"the LR {lr:.3g} is below eta_c = {eta_c:.3g}: one step at it does not raise the loss")
        if eta_c is None:
            notes.append(f"no catapult found from {lr * CATAPULT_START:.3g}: {cat['final'].get('why', '')}")
        evidence.append(
            OptimizerEvidence(name, lr, eta_c, rng, cat, pair, test_warmup, losses, early, needs, warmup, settle, notes)
        )
    finite = [e for e in evidence if math.isfinite(e.best_loss)]
    if not finite:
        raise InputError("every step-1 run diverged: lower the base LR range or check the model", "optimizers")
    chosen = min(finite, key=lambda e: e.best_loss)
    return WarmupResult(evidence, chosen)
