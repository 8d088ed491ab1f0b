"""Step 2's LR columns beyond the grid's edge, on a stand-in for the runs: added one at a time, at most
EXTRA_LR_COLUMNS, on the edge a batch size's best LR sat at (the kept one's first, else the majority's, low on a
tie), and said so."""

from __future__ import annotations

import math

import pytest

from lrlab.laws.batch.optimum import Optimum
from lrlab.study import batch
from lrlab.study.batch import _Measured, edge_to_extend, extend_lrs, grid_lrs
from lrlab.study.pilots import EXTRA_LR_COLUMNS


def _optimum(lr: float, edge: str | None, batch_size: float = 16.0, loss: float = 2.0) -> Optimum:
    return Optimum(batch_size, lr, (lr / 2, lr * 2), math.nan if edge else 0.1, edge, loss, "cell", 3, 0)


def _measure_batch(batches: tuple[int, ...], reserved: int):
    """measure_batch on stand-ins for the spec, plan and step 1 (step 1's LR 1e-3; its runs are monkeypatched)."""

    class Plan:
        grid_batches = batches
        extra_lr_columns = reserved

        def grid_steps(self, b, seq):
            return 10

    class Step1:
        class chosen:
            range_lr = 1e-3

    class Spec:
        seq_len = 8

    return batch.measure_batch(Spec(), None, Plan(), Step1(), None)


def test_extend_lrs_adds_one_lr_a_factor_two_beyond_the_edge():
    lrs = grid_lrs(1e-3)
    assert lrs == (5e-4, 1e-3, 2e-3)
    assert extend_lrs(lrs, "low") == (2.5e-4, 5e-4, 1e-3, 2e-3)
    assert extend_lrs(lrs, "high") == (5e-4, 1e-3, 2e-3, 4e-3)


@pytest.mark.parametrize(
    ("reserved", "edges", "columns"),
    [
        (2, (None,), 3),
        (2, ("low", None), 4),
        (2, ("low", "low", None), 5),
        (2, ("high", "high", "high"), 5),
        (2, ("low", "high", "low"), 5),
        (1, ("low", "low"), 4),  # a small budget reserves one column: a bound after it, and said so
        (1, ("high", "high"), 4),
    ],
)
def test_measure_batch_extends_the_grid_as_often_as_the_plan_reserves_and_notes_it(
    monkeypatch, reserved, edges, columns
):
    assert reserved <= EXTRA_LR_COLUMNS
    seen = []

    def fake(spec, store, plan, step1, lrs, where):
        seen.append(lrs)
        edge = edges[len(seen) - 1]
        lr = {"low": min(lrs), "high": max(lrs), None: sorted(lrs)[1]}[edge]
        return _Measured([], None, [_optimum(lr, edge)], 0.01, _optimum(lr, edge), None, [])

    monkeypatch.setattr(batch, "_run_and_fit", fake)
    result = _measure_batch((16,), reserved)
    assert len(seen) == len(edges) and len(result.lrs) == columns
    assert [len(lrs) for lrs in seen] == [3, 4, 5][: len(edges)]
    added = [n for n in result.notes if "was added" in n]
    assert len(added) == columns - 3
    for note, edge in zip(added, edges, strict=False):
        assert f"{edge} edge" in note
    assert sorted(result.lrs) == list(result.lrs) and len(set(result.lrs)) == columns
    assert (min(result.lrs) < 5e-4) == ("low" in edges[: columns - 3])
    assert (max(result.lrs) > 2e-3) == ("high" in edges[: columns - 3])
    if columns == 3 + reserved and edges[-1] is not None:  # still at the edge after the reserve: a bound, said so
        assert any(f"lies at the grid's {edges[-1]} edge" in n for n in result.notes)


def _measured(pick_edge: str | None, *other_edges: str | None, diverged: str | None = None) -> _Measured:
    pick = _optimum(1e-3, pick_edge, batch_size=8.0)
    others = [_optimum(1e-3, e, batch_size=16.0 * 2**k) for k, e in enumerate(other_edges)]
    if diverged:  # every cell of this batch size diverged: optimum.py marks it "low", its loss infinite
        others.append(_optimum(1e-3, diverged, batch_size=1024.0, loss=math.inf))
    return _Measured([], None, [pick, *others], 0.01, pick, None, [])


@pytest.mark.parametrize(
    ("pick", "others", "diverged", "expected", "why"),
    [
        (None, (None, None), None, None, ""),  # every best inside: nothing to add
        (None, ("low", "low"), None, "low", "most"),  # seed 3's grid: the kept one inside, the others low
        (None, ("high", None), None, "high", "most"),
        (None, ("low", "high"), None, "low", "tie"),  # a tie: low, where a wrong LR costs less
        (None, ("low", "high", "high"), None, "high", "most"),  # the majority, against the first batch size's
        ("high", ("low", "low"), None, "high", "kept"),  # the kept batch size's own edge first
        ("low", (None, None), None, "low", "kept"),
        (None, (None, None), "low", "low", "most"),  # a batch size whose every cell diverged: the LRs are too high
    ],
)
def test_a_column_is_added_where_any_batch_sizes_best_lr_sits_at_an_edge(pick, others, diverged, expected, why):
    edge, reason, at = edge_to_extend(_measured(pick, *others, diverged=diverged))
    assert edge == expected
    assert why in reason
    sizes = [8.0] * (pick == expected) + [16.0 * 2**k for k, e in enumerate(others) if e == expected]
    sizes += [1024.0] * (diverged == expected)
    assert sorted(o.batch_size for o in at) == (sorted(sizes) if expected else [])


def test_measure_batch_extends_below_when_only_the_other_batch_sizes_sit_at_the_low_edge(monkeypatch):
    seen = []

    def fake(spec, store, plan, step1, lrs, where):
        seen.append(lrs)
        inside = len(lrs) > 3  # after one column every best lies inside
        pick = _optimum(sorted(lrs)[1], None, batch_size=8.0)
        others = [_optimum(min(lrs), None if inside else "low", batch_size=b) for b in (16.0, 32.0)]
        return _Measured([], None, [pick, *others], 0.01, pick, None, [])

    monkeypatch.setattr(batch, "_run_and_fit", fake)
    result = _measure_batch((8, 16, 32), 2)
    assert [len(lrs) for lrs in seen] == [3, 4]
    assert result.lrs == (2.5e-4, 5e-4, 1e-3, 2e-3)
    (note,) = [n for n in result.notes if "was added" in n]
    assert "batch sizes 16 and 32" in note and "low edge (0.0005" in note and "most batch sizes" in note
