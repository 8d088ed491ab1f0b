"""Step 2's LR column beyond the grid's edge, on a stand-in for the runs: added once, on the edge the chosen batch
size's best LR sat at, and said so."""

from __future__ import annotations

import math

import pytest

from lrlab.laws.batch.optimum import Optimum
from lrlab.study import batch
from lrlab.study.batch import _Measured, extend_lrs, grid_lrs


def _optimum(lr: float, edge: str | None) -> Optimum:
    return Optimum(16.0, lr, (lr / 2, lr * 2), math.nan if edge else 0.1, edge, 2.0, "cell", 3, 0)


def test_extend_lrs_adds_one_lr_a_factor_two_beyond_the_edge():
    lrs = grid_lrs(1e-3)
    assert lrs == (5e-4, 1e-3, 2e-3)
    assert extend_lrs(lrs, "low") == (2.5e-4, 5e-4, 1e-3, 2e-3)
    assert extend_lrs(lrs, "high") == (5e-4, 1e-3, 2e-3, 4e-3)


@pytest.mark.parametrize(("edges", "columns"), [((None,), 3), (("low", None), 4), (("high", "high"), 4)])
def test_measure_batch_extends_the_grid_at_most_once_and_notes_it(monkeypatch, edges, columns):
    seen = []

    def fake(spec, store, plan, step1, lrs, where):
        seen.append(lrs)
        edge = edges[len(seen) - 1]
        lr = {"low": min(lrs), "high": max(lrs), None: sorted(lrs)[1]}[edge]
        return _Measured([], None, [_optimum(lr, edge)], 0.01, _optimum(lr, edge), None, [])

    class Plan:
        grid_batches = (16,)

        def grid_steps(self, b, seq):
            return 10

    class Step1:
        class chosen:
            range_lr = 1e-3

    class Spec:
        seq_len = 8

    monkeypatch.setattr(batch, "_run_and_fit", fake)
    result = batch.measure_batch(Spec(), None, Plan(), Step1(), None)
    assert len(seen) == len(edges) and len(result.lrs) == columns
    assert [len(lrs) for lrs in seen] == [3, 4][: len(edges)]
    added = [n for n in result.notes if "was added" in n]
    assert len(added) == (columns == 4)
    if columns == 4:
        assert f"{edges[0]} edge" in added[0]
        assert (min(result.lrs) < 5e-4) == (edges[0] == "low")
    if edges[-1] == "high":  # still at the edge after the one extra column: a bound, and said so
        assert any("lies at the grid's high edge" in n for n in result.notes)
