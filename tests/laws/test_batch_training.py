"""Over training: steps to a target loss from records (interpolated, censored at the first record), and B_noise
recovered at each target from runs that obey the McCandlish relation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrlab.errors import InputError
from lrlab.laws.batch import Grid
from lrlab.laws.batch.training import default_targets, over_training, steps_to_target


def _grid(rows) -> Grid:
    lr, b, loss, steps = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    return Grid(lr, b, loss, steps)


def test_steps_to_target_interpolates_and_takes_the_fastest_lr():
    rows = [(1e-3, 8, 3.0, 10), (1e-3, 8, 2.0, 20), (2e-3, 8, 3.0, 10), (2e-3, 8, 2.5, 20), (2e-3, 8, 1.0, 30)]
    rows += [(1e-3, 16, 3.0, 10), (1e-3, 16, 2.2, 20), (1e-3, 16, 1.8, 30)]
    sizes, steps = steps_to_target(_grid(rows), 2.5)
    assert sizes.tolist() == [8, 16]
    assert steps.tolist() == pytest.approx([15.0, 16.25])  # 8: the 1e-3 run crosses 2.5 half-way


def test_a_target_reached_at_the_first_record_is_left_out():
    rows = [(1e-3, 8, 2.0, 10), (1e-3, 8, 1.5, 20), (1e-3, 16, 3.0, 10), (1e-3, 16, 1.5, 20)]
    sizes, _ = steps_to_target(_grid(rows), 2.5)
    assert sizes.tolist() == [16]


def test_b_noise_over_training_recovers_a_growing_noise_scale():
    """Runs whose steps to loss L follow S = S_min (1 + B_noise(L) / B) with B_noise growing as L falls: the
    by-target view recovers B_noise(L) at each target."""
    sizes = (8, 16, 32, 64, 128)

    def b_noise(loss):
        return 10 * math.exp(3 * (3.0 - loss))  # 10 at L = 3, growing as the loss falls

    rows = []
    targets = np.linspace(2.9, 2.3, 7)
    for b in sizes:
        for lr in (1e-3, 2e-3, 4e-3):
            penalty = 1 + 0.3 * abs(math.log(lr / 2e-3))  # off the best LR the run is slower
            for loss in np.linspace(3.2, 2.2, 41):
                s = penalty * 100 * (1 + b_noise(loss) / b) * (3.3 - loss)
                rows.append((lr, b, loss, s))
    grid = _grid(rows)
    _, by_target = over_training(grid, targets=targets[[1, 3, 5]], n_boot=20)
    for a in by_target:
        assert a.fit is not None, a.error
        assert a.fit.b_noise == pytest.approx(b_noise(a.target), rel=0.05)
    assert by_target[0].fit.b_noise < by_target[-1].fit.b_noise


def test_default_targets_lie_between_early_and_the_worst_best_final_loss():
    rows = [(lr, b, 4.0 - 0.01 * s * (1 + b / 64) - 0.1 * abs(math.log(lr / 1e-3)), s)
            for b in (8, 16, 32) for lr in (5e-4, 1e-3, 2e-3) for s in (10, 50, 100)]  # fmt: skip
    grid = _grid(rows)
    targets = default_targets(grid)
    worst_best = max(np.min(grid.final().at_batch(b)[1]) for b in (8, 16, 32))
    assert len(targets) == 4
    assert targets[-1] == pytest.approx(worst_best)
    assert np.all(np.diff(targets) < 0)


def test_default_targets_with_batch_sizes_recording_from_different_steps():
    """Batch size 8 first records at step 300, the others at 10: every target lies below what each batch size's
    fastest run had at its own first record, so no batch size is censored."""
    rows = []
    for b, first in ((8, 300), (16, 10), (32, 10)):
        for s in (first, 400, 800):
            for lr in (5e-4, 1e-3, 2e-3):
                rows.append((lr, b, 4.0 - 0.002 * s * (1 + b / 64) - 0.1 * abs(math.log(lr / 1e-3)), s))
    grid = _grid(rows)
    for target in default_targets(grid):
        sizes, _ = steps_to_target(grid, target)
        assert sizes.tolist() == [8, 16, 32]


def test_over_training_needs_steps():
    grid = Grid(np.array([1e-3, 2e-3]), np.array([8.0, 16.0]), np.array([2.0, 2.1]), np.full(2, np.nan))
    with pytest.raises(InputError, match="steps column"):
        over_training(grid)
