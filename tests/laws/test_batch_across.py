"""Across scale: a group's best (LR, batch size), with grid-edge bounds never fitted as values, and the power
laws over groups (a feature proportional to another fitted alone, with a note)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrlab.laws.batch import Grid
from lrlab.laws.batch.across import fit_across, group_optimum

FACTORS = 2.0 ** (np.arange(7) - 3)  # LRs a factor 2 apart, centred on the best


def _group(n: float, d: float, eta: float, b_opt: float, batch_sizes, lr_factors=FACTORS) -> Grid:
    rows = []
    for b in batch_sizes:
        for lr in eta * lr_factors:
            rows.append((lr, b, 3 + 0.1 * math.log(lr / eta) ** 2 + 0.05 * math.log(b / b_opt) ** 2))
    lr, batch, loss = (np.array(c) for c in zip(*rows, strict=True))
    return Grid(lr, batch, loss, np.full(len(lr), np.nan), np.full(len(lr), n), np.full(len(lr), d), name=f"{n:g}")


def test_group_optimum_finds_the_best_lr_and_batch():
    g = group_optimum(_group(1e6, 1e8, 3e-3, 64, 2.0 ** np.arange(3, 10)))
    assert g.best_batch == pytest.approx(64, rel=0.02)
    assert g.best_lr == pytest.approx(3e-3, rel=0.02)
    assert not g.lr_is_bound


def test_batch_sizes_whose_best_lr_is_a_bound_do_not_locate_b_opt():
    """At B = 512 the LR grid stops below the best LR (a bound, its loss only an upper bound): B_opt comes from
    the other batch sizes alone, and B_opt at their edge is a bound, not a value."""
    grid = _group(1e6, 1e8, 3e-3, 1e4, [64, 128, 256, 512])
    shifted = np.where(grid.batch_size == 512, grid.lr / 64, grid.lr)  # 512's LRs all far below the best
    g = group_optimum(Grid(shifted, grid.batch_size, grid.loss, grid.steps, grid.n, grid.d, name="x"))
    assert g.batch is not None and not g.batch.is_value
    assert g.best_batch is None


def test_one_batch_size_at_the_lr_edge_is_a_bound():
    g = group_optimum(_group(1e6, 1e8, 3e-3, 64, [64], lr_factors=2.0 ** np.arange(1, 6)))
    assert g.lr_is_bound and g.best_batch is None


def test_proportional_features_are_fitted_alone_with_a_note():
    groups = [_group(n, 20 * n, 1.79 * n**-0.713 * (20 * n) ** 0.307, 0.58 * (20 * n) ** 0.571,
                     0.58 * (20 * n) ** 0.571 * 2.0 ** np.arange(-3, 4)) for n in (1e6, 4e6, 16e6, 64e6)]  # fmt: skip
    result = fit_across(groups)
    assert result.lr_law is not None and result.lr_law.features == ("N",)
    assert any("proportional" in note for note in result.notes)
    assert result.batch_law.exponents["D"] == pytest.approx(0.571, abs=0.02)
    assert result.published[0][0]["name"] == "Step Law"
