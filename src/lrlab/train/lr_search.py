"""Initial-LR searches on a training config (``lrlab find-lr``): the catapult search and the LR range test.

Both build the run's model, optimizer and batches exactly as ``lrlab train`` would, search from the initial
weights, and leave them untouched. The loss of a step is the mean over its micro-batches, like the trainer's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from lrlab.errors import InputError, clip
from lrlab.probes import CatapultResult, RangeTestResult, catapult_search, catapult_warmup, lr_range_test
from lrlab.schedules.families import Warmed
from lrlab.train.config import TrainConfig
from lrlab.train.environment import torch_threads
from lrlab.train.loop import Trainer

METHODS = ("range", "catapult")
MAX_RANGE_STEPS = 100_000  # batches of the range test (each one a training step)
MAX_CATAPULT_K = 1_000  # steps per catapult trial


@dataclass(frozen=True)
class LRSearch:
    method: str
    result: RangeTestResult | CatapultResult
    warmup_schedule: str | None  # the config's schedule warmed up from eta_c (catapult, when the schedule allows)

    def to_json(self) -> dict[str, Any]:
        r = self.result
        if isinstance(r, RangeTestResult):
            return {
                "method": self.method,
                "suggestions": r.suggestions,
                "stopped_early": r.stopped_early,
                "lrs": r.lrs.tolist(),
                "losses": r.losses.tolist(),
                "smoothed": r.smoothed.tolist(),
            }
        return {
            "method": self.method,
            "eta_c": r.eta_c,
            "stable_lr": r.stable_lr,
            "catapult_lr": r.catapult_lr,
            "schedule": self.warmup_schedule,
            "trials": [
                {"lr": t.lr, "start_loss": t.start_loss, "losses": list(t.losses), "catapult": t.catapult}
                for t in r.trials
            ],
        }


def _step_loss(trainer: Trainer, step: int) -> torch.Tensor:
    micro = trainer.train_micro_batches(step)
    with trainer.autocast:  # the run's precision, as in training
        return sum(trainer.model(x, y) for x, y in micro) / len(micro)


def find_lr(
    cfg: TrainConfig,
    method: str = "range",
    lr_min: float = 1e-6,
    lr_max: float = 1.0,
    steps: int = 100,
    k: int = 1,
    progress: bool = False,
    max_trials: int = 40,
) -> LRSearch:
    """Run ``method`` ("range" or "catapult") for ``cfg``'s model and optimizer on its training batches.

    range: ``steps`` batches at LRs from ``lr_min`` to ``lr_max``; catapult: at most ``max_trials`` trials of ``k``
    steps on training batch 0, starting at ``lr_min``.
    """
    if method not in METHODS:
        raise InputError(f"{clip(method)!r} is not one of {', '.join(METHODS)}", "method")
    for name, value in (("lr_min", lr_min), ("lr_max", lr_max)):
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"must be finite and > 0, got {value}", name)
    if method == "range" and not lr_min < lr_max:
        raise InputError(f"must exceed lr_min={lr_min:g}, got {lr_max:g}", "lr_max")
    if method == "range" and not 2 <= steps <= MAX_RANGE_STEPS:
        raise InputError(f"must lie in [2, {MAX_RANGE_STEPS:,}], got {steps}", "steps")
    if not 1 <= k <= MAX_CATAPULT_K:
        raise InputError(f"must lie in [1, {MAX_CATAPULT_K}], got {k}", "k")
    trainer = Trainer(cfg)
    with torch_threads(cfg.threads):
        if method == "range":
            result = lr_range_test(
                trainer.model,
                trainer.optimizer,
                lambda i: _step_loss(trainer, i),
                lr_min,
                lr_max,
                steps,
                progress=progress,
            )
            return LRSearch(method, result, None)
        result = catapult_search(
            trainer.model,
            trainer.optimizer,
            lambda: _step_loss(trainer, 0),
            lr_start=lr_min,
            k=k,
            max_trials=max_trials,
        )
    schedule = trainer.schedule
    warm = str(catapult_warmup(schedule, result.eta_c)) if isinstance(schedule, Warmed) else None
    return LRSearch(method, result, warm)
