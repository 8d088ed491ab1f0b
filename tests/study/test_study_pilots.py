"""The pilot budget's split: the grid's batch sizes and every pilot's length, checked against the budget."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrlab.errors import InputError
from lrlab.study.pilots import (
    EXTRA_LR_COLUMNS,
    GRID_BATCHES,
    GRID_LRS,
    MIN_STEPS,
    SCHEDULE_PILOTS,
    grid_batches,
    plan_pilots,
)
from lrlab.study.spec import StudySpec
from lrlab.train.config import TrainConfig


def spec(tokens: int, batch: int = 16, max_batch: int = 32, share: float = 0.2, optimizers=("torch-adamw",)):
    base = TrainConfig(batch_size=batch, seq_len=128)
    return StudySpec("s", "s.toml", base, tokens, tuple(optimizers), max_batch, share)


@given(st.integers(1, 4096), st.integers(1, 8192))
def test_grid_batch_sizes_are_a_factor_two_apart_even_and_within_the_limits(base, extra):
    max_batch = base + extra - 1
    try:
        sizes = grid_batches(base, max_batch)
    except InputError as exc:
        assert exc.param == "max_batch_size" and min(2 * base, max_batch) < 8
        return
    assert len(sizes) == GRID_BATCHES
    assert all(b == 2 * a for a, b in itertools.pairwise(sizes))
    assert sizes[0] % 2 == 0 and sizes[-1] <= min(2 * base, max_batch)
    assert sizes[-1] > min(2 * base, max_batch) - 8  # the largest multiple of 8 that fits


@settings(max_examples=60)
@given(st.integers(10**6, 10**9), st.floats(0.05, 1.0), st.integers(1, 4))
def test_the_planned_pilots_with_the_reserved_lr_columns_never_exceed_the_share(tokens, share, n_opt):
    s = spec(tokens, share=share, optimizers=["torch-adamw", "giadamw", "lion", "lionar"][:n_opt])
    try:
        plan = plan_pilots(s)
    except InputError as exc:
        assert exc.param == "budget"
        return
    per_step = s.base.batch_size * s.seq_len
    step1 = n_opt * (plan.range_steps + plan.catapult_trials + 2 * plan.warmup_steps) * per_step
    grid = GRID_BATCHES * (GRID_LRS + plan.extra_lr_columns) * plan.grid_tokens
    planned = step1 + grid + SCHEDULE_PILOTS * plan.schedule_tokens
    assert planned <= share * tokens
    assert min(plan.range_steps, plan.warmup_steps, plan.grid_steps(plan.grid_batches[-1], s.seq_len)) >= MIN_STEPS


def test_a_budget_too_small_for_the_pilots_is_refused_naming_the_budget():
    with pytest.raises(InputError, match="at least 10 needed") as exc:
        plan_pilots(spec(100 * 16 * 128))
    assert exc.value.param == "budget"


def test_a_full_run_past_the_step_limit_is_refused_before_any_pilot():
    huge = spec(10**13)
    with pytest.raises(InputError, match="above lrlab's limit") as exc:
        plan_pilots(huge)
    assert exc.value.param == "budget"
    assert plan_pilots(replace(huge, tokens=4000 * 16 * 128)).grid_batches == (8, 16, 32)


@pytest.mark.parametrize(("steps", "extra"), [(4000, 1), (6000, 2), (40000, 2)])
def test_a_second_extra_lr_column_is_reserved_only_where_every_cell_keeps_min_steps(steps, extra):
    """The demo's budget (4,000 steps at batch 16) cannot give 15 cells 10 steps at batch size 32: it keeps the
    one extra column and cells of 1/12 of the grid's share; larger budgets reserve EXTRA_LR_COLUMNS."""
    plan = plan_pilots(spec(steps * 16 * 128))
    assert plan.extra_lr_columns == extra <= EXTRA_LR_COLUMNS
    assert plan.grid_tokens == int(0.35 * plan.pilot_tokens // (GRID_BATCHES * (GRID_LRS + extra)))
    assert plan.grid_steps(32, 128) >= MIN_STEPS


def test_a_budget_too_small_even_for_one_extra_column_names_the_grid_cell():
    with pytest.raises(InputError, match="each grid cell at batch size 32 8 steps") as exc:
        plan_pilots(spec(3000 * 16 * 128))
    assert exc.value.param == "budget"
