"""How a study shares its pilot budget among its steps, and what it spent.

The pilot budget is ``pilot_share`` x the full run's training tokens (compute at a fixed model is 6 N x tokens,
Kaplan et al. 2020, arXiv:2001.08361). It is split in fixed shares, chosen before any result was seen (the
second reserved LR column of step 2 was added later, after the benchmark's seed-2 runs, docs/study.md):

- step 1 (first LR and warmup), 15%: per optimizer, an LR range test (30% of that optimizer's part), a catapult
  search (at most 10%: its trials are single steps on one batch) and two short runs with and without warmup
  (30% each);
- step 2 (batch size and peak LR), 35%: a 3 x 3 grid of batch sizes and LRs, every cell the same tokens, and two
  more LR columns kept in reserve for when a batch size's best LR lies at the grid's edge (unspent otherwise; one
  where two would leave cells shorter than ``MIN_STEPS``);
- step 3 (schedule), 50%: a constant and a cosine pilot at the chosen batch size and LR, 25% each: the laws
  extrapolate from them to the full run, so they get the largest share.

Evaluation batches are not counted (they are the same few batches for every run and no update is made).
"""

from __future__ import annotations

from dataclasses import dataclass

from lrlab.errors import InputError
from lrlab.study.spec import StudySpec
from lrlab.train.config import LIMITS

STEP_SHARES = {"warmup": 0.15, "grid": 0.35, "schedule": 0.5}
RANGE_PART, CATAPULT_PART, WARMUP_RUN_PART = 0.3, 0.1, 0.3  # of one optimizer's step-1 tokens
GRID_BATCHES, GRID_LRS = 3, 3
# LR columns the grid may add, one at a time, beyond the edge a batch size's best LR sits at (budget allowing)
EXTRA_LR_COLUMNS = 2
SCHEDULE_PILOTS = 2
MIN_STEPS = 10  # the shortest pilot run the study trusts to say anything
MIN_CATAPULT_TRIALS = 6


@dataclass(frozen=True)
class PilotPlan:
    """Every pilot run's length, in optimizer steps, fixed before the first run."""

    pilot_tokens: int
    range_steps: int  # LR range test, at the base batch size
    catapult_trials: int  # most single-step catapult trials
    warmup_steps: int  # each with/without-warmup run, at the base batch size
    grid_batches: tuple[int, ...]
    grid_tokens: int  # each grid cell
    extra_lr_columns: int  # LR columns reserved beyond the first GRID_LRS: EXTRA_LR_COLUMNS, or 1 on a small budget
    schedule_tokens: int  # each schedule pilot

    def grid_steps(self, batch_size: int, seq_len: int) -> int:
        return max(self.grid_tokens // (batch_size * seq_len), 1)

    def schedule_steps(self, batch_size: int, seq_len: int) -> int:
        return max(self.schedule_tokens // (batch_size * seq_len), 1)


def grid_batches(base_batch: int, max_batch: int) -> tuple[int, ...]:
    """Three batch sizes exactly a factor 2 apart, the largest min(2 x base, max_batch) rounded down to a multiple
    of 8, so that the smallest is even (the gradient-noise probe splits each step into two micro-batches)."""
    unit = 2 ** (GRID_BATCHES - 1) * 2
    top = min(2 * base_batch, max_batch) // unit * unit
    if top < unit:
        raise InputError(
            f"the grid needs {GRID_BATCHES} batch sizes a factor 2 apart, the smallest even: base batch_size and"
            f" max_batch_size must allow {unit} or more",
            "max_batch_size",
        )
    return tuple(top // 2**k for k in reversed(range(GRID_BATCHES)))


def _grid_cell_tokens(pilot: int, extra_columns: int) -> int:
    return int(STEP_SHARES["grid"] * pilot // (GRID_BATCHES * (GRID_LRS + extra_columns)))


def plan_pilots(spec: StudySpec) -> PilotPlan:
    """Each pilot's length from the budget; a budget too small for pilots of ``MIN_STEPS`` steps is refused."""
    pilot = int(spec.pilot_share * spec.tokens)
    seq, base = spec.seq_len, spec.base.batch_size
    per_optimizer = STEP_SHARES["warmup"] * pilot / len(spec.optimizers)
    batches = grid_batches(base, spec.max_batch_size)
    # the grid's share is split among the cells it may run; a second extra column only where cells keep MIN_STEPS
    extra = EXTRA_LR_COLUMNS
    while extra > 1 and _grid_cell_tokens(pilot, extra) // (batches[-1] * seq) < MIN_STEPS:
        extra -= 1
    plan = PilotPlan(
        pilot_tokens=pilot,
        range_steps=int(RANGE_PART * per_optimizer // (base * seq)),
        catapult_trials=int(CATAPULT_PART * per_optimizer // (base * seq)),
        warmup_steps=int(WARMUP_RUN_PART * per_optimizer // (base * seq)),
        grid_batches=batches,
        grid_tokens=_grid_cell_tokens(pilot, extra),
        extra_lr_columns=extra,
        schedule_tokens=int(STEP_SHARES["schedule"] * pilot // SCHEDULE_PILOTS),
    )
    shortest = {
        "the LR range test": plan.range_steps,
        "each warmup run": plan.warmup_steps,
        f"each grid cell at batch size {batches[-1]}": plan.grid_steps(batches[-1], seq),
    }
    shortest[f"each schedule pilot at batch size {batches[-1]} (needs {2 * MIN_STEPS})"] = (
        plan.schedule_steps(batches[-1], seq) // 2
    )
    longest = spec.full_steps(batches[0])
    if longest > LIMITS["steps"]:
        raise InputError(
            f"the full run at batch size {batches[0]} would take {longest:,} steps, above lrlab's limit of"
            f" {LIMITS['steps']:,}: lower the budget or raise the base batch_size",
            "budget",
        )
    for what, steps in shortest.items():
        if steps < MIN_STEPS:
            raise InputError(
                f"pilot_share x the budget ({pilot:,} tokens) leaves {what} {steps} steps (at least {MIN_STEPS}"
                " needed): raise the budget or pilot_share, or lower the base batch_size",
                "budget",
            )
    if plan.catapult_trials < MIN_CATAPULT_TRIALS:
        raise InputError(
            f"pilot_share x the budget leaves the catapult search {plan.catapult_trials} trials (at least"
            f" {MIN_CATAPULT_TRIALS} needed): raise the budget or pilot_share",
            "budget",
        )
    return plan
