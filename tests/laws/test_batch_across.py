"""Across scale: a group's best (LR, batch size), with grid-edge bounds never fitted as values, and the power
laws over groups (a feature proportional to another fitted alone, with a note)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrlab.errors import InputError
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


def test_features_that_move_together_are_fitted_alone_with_a_note():
    """D = 20 N rounded to whole steps of 2^18 tokens: not exactly proportional, but the exponents of N and D
    cannot be told apart; the law is fitted in N alone, with a note, instead of N^-190 D^190."""
    groups = []
    for n in (1e6, 4e6, 16e6, 64e6):
        d = round(20 * n / 2**18) * 2**18
        eta, b_opt = 1.79 * n**-0.713 * d**0.307, 0.58 * d**0.571
        groups.append(_group(n, d, eta, b_opt, b_opt * 2.0 ** np.arange(-3, 4)))
    result = fit_across(groups)
    assert result.lr_law is not None and result.lr_law.features == ("N",)
    assert result.lr_law.exponents["N"] == pytest.approx(-0.713 + 0.307, abs=0.02)
    assert any("move together" in note for note in result.notes)
    assert result.batch_law.exponents["D"] == pytest.approx(0.571, abs=0.02)
    assert result.published[0][0]["name"] == "Step Law"


def test_a_bad_option_is_not_a_bad_group():
    groups = [_group(n, 1e8, 3e-3, 64, 2.0 ** np.arange(3, 9)) for n in (1e6, 4e6)]
    with pytest.raises(InputError) as err:
        fit_across(groups, law="linear")
    assert err.value.param == "law"
