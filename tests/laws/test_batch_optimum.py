"""The best LR at one batch size: exact on known curves, bounds at the grid's edges, diverged cells as +inf,
intervals that cover, and the grid CSV reader's errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrlab.errors import InputError
from lrlab.laws.batch import Grid, load_grids, locate, locate_all


def _lrs(center: float, n: int = 8, factor: float = 2.0) -> np.ndarray:
    return np.exp(math.log(center) + math.log(factor) * (np.arange(n) - (n - 1) / 2))


@settings(max_examples=60, deadline=None)
@given(
    offset=st.floats(-0.45, 0.45),
    curvature=st.floats(0.02, 2.0),
    skew=st.floats(-0.3, 0.3),
    factor=st.floats(1.3, 3.5),
)
def test_exact_on_noise_free_cubics(offset, curvature, skew, factor):
    """A loss that is a cubic in log LR around its minimum is recovered exactly (to rounding), wherever the
    optimum sits between grid points and however the grid is spaced."""
    best = 3e-3
    lr = _lrs(best * factor**offset, factor=factor)
    d = np.log(lr / best)
    skew *= curvature  # keep the cubic's local minimum at d = 0 and within the window
    loss = 2.5 + curvature * d**2 + skew * d**3 / max(1.0, np.max(np.abs(d[2:-2])))
    o = locate(lr, loss)
    assert o.at_grid_edge is None
    assert o.best_lr == pytest.approx(best, rel=1e-6)
    assert o.loss == pytest.approx(2.5, abs=1e-9)


def test_parabola_when_a_wide_window_diverged():
    """With the LR above the best's neighbour diverged, three cells remain: a parabola, exact on a parabola."""
    lr = _lrs(1e-3, n=6)
    d = np.log(lr / 1.3e-3)
    loss = 2.0 + 0.2 * d**2
    best = int(np.argmin(loss))
    loss[best + 2 :] = np.inf
    o = locate(lr, loss)
    assert o.method == "parabola"
    assert o.best_lr == pytest.approx(1.3e-3, rel=1e-9)
    assert o.n_diverged == len(lr) - best - 2


def test_bounds_at_the_grid_edges():
    lr = _lrs(1e-3, n=5)
    rising = 2.0 + np.arange(5.0)
    low = locate(lr, rising)
    assert low.at_grid_edge == "low" and not low.is_value
    assert low.best_lr == pytest.approx(lr[0])
    assert low.interval[0] == 0 and low.interval[1] < lr[1]
    high = locate(lr, rising[::-1])
    assert high.at_grid_edge == "high" and not high.is_value
    assert high.interval[1] == math.inf


def test_diverged_cells_are_infinite_not_dropped():
    """The best cell next to a diverged one is bracketed: a value with the neighbours as its interval. Had the
    diverged cells been dropped, the best LR would be the grid's top edge."""
    lr = _lrs(1e-3, n=5)
    loss = np.array([3.0, 2.8, 2.6, np.nan, np.inf])
    o = locate(lr, loss)
    assert o.is_value and o.method == "cell"
    assert o.best_lr == pytest.approx(lr[2])
    assert o.interval == pytest.approx((lr[1], lr[3]))
    assert o.n_diverged == 2


def test_one_diverged_seed_makes_the_lr_diverged():
    lr = np.repeat(_lrs(1e-3, n=5), 2)
    loss = 2.0 + 0.1 * np.log(lr / 1e-3) ** 2
    loss[5] = np.inf  # one of the two seeds at the middle LR
    o = locate(lr, loss)
    # the middle LR counts as diverged: the best is its lower neighbour, bracketed by it (no polynomial)
    assert o.method == "cell" and o.best_lr == pytest.approx(lr[2])
    assert o.interval == pytest.approx((lr[0], lr[4]))
    assert o.n_diverged == 1


def test_every_cell_diverged_is_a_bound_below_the_grid():
    lr = _lrs(1e-3, n=4)
    o = locate(lr, np.full(4, np.inf))
    assert o.at_grid_edge == "low" and not o.is_value
    assert o.interval == (0.0, pytest.approx(lr[0]))
    assert o.n_diverged == 4


def test_nearly_equal_lrs_are_one_lr():
    """Seeds logged at 3 and at 5 significant digits (0.00316 and 0.0031623) are one LR: the optimum is the same
    as with one copy of each LR, not a cubic fitted between two points a hair apart."""
    lr = _lrs(2.4e-3 * 1.3)
    loss = 2.0 + 0.2 * np.log(lr / 2.4e-3) ** 2 + 0.05 * np.log(lr / 2.4e-3) ** 3 / 4
    rounded = np.array([float(f"{v:.3g}") for v in lr])
    both = locate(np.concatenate([lr, rounded]), np.concatenate([loss, loss]))
    one = locate(lr, loss)
    assert both.best_lr == pytest.approx(one.best_lr, rel=0.01)
    assert both.loss >= loss.min() - 0.01


def test_merging_does_not_chain():
    """30 LRs 0.95 % apart (a 32 % range) are not one LR: a cell more than 1 % above the first of its LR starts
    the next one."""
    lr = 1e-3 * 1.0095 ** np.arange(30)
    o = locate(lr, 2 + np.log(lr / 1.15e-3) ** 2)
    assert o.at_grid_edge is None and o.best_lr == pytest.approx(1.15e-3, rel=0.02)


def test_single_lr_is_a_bound():
    o = locate([1e-3, 1e-3], [2.0, 2.1])
    assert o.at_grid_edge == "single" and not o.is_value


def test_bracket_spread_does_not_depend_on_the_level():
    lr = _lrs(1e-3, n=5)
    loss = np.array([3.0, 2.8, 2.6, np.inf, np.inf])
    assert locate(lr, loss, level=0.5).log_sd == locate(lr, loss, level=0.99).log_sd


def test_seeds_average_and_give_the_noise():
    """Several seeds per LR: the fit goes through their means, and the pooled residual noise is their spread."""
    rng = np.random.default_rng(0)
    lr = np.repeat(_lrs(2e-3, n=7), 8)
    loss = 2.0 + 0.3 * np.log(lr / 2e-3) ** 2 + 0.01 * rng.standard_normal(len(lr))
    grid = Grid(lr, np.full(len(lr), 32.0), loss, np.full(len(lr), np.nan))
    (o,), sigma = locate_all(grid)
    assert sigma == pytest.approx(0.01, rel=0.3)
    assert o.interval[0] < 2e-3 < o.interval[1]


def test_intervals_cover_at_their_level():
    """Over 300 noisy grids (noise 0.005 on a curvature of 0.15 per log-unit^2, skewed), the 95 % interval of
    the best LR covers the truth in 88-99 % of them."""
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(300):
        lr = _lrs(1e-3 * 2.0 ** rng.uniform(-0.5, 0.5))
        d = np.log(lr / 1e-3)
        loss = 3.0 + 0.15 * d**2 + 0.03 * d**3 + 0.005 * rng.standard_normal(len(lr))
        o = locate(lr, loss, loss_noise=0.005)
        hits += o.interval[0] <= 1e-3 <= o.interval[1]
    assert 0.88 <= hits / 300 <= 0.99


def test_bad_noise_and_level():
    lr = _lrs(1e-3, n=5)
    loss = 2 + np.log(lr / 1e-3) ** 2
    with pytest.raises(InputError, match="loss_noise"):
        locate(lr, loss, loss_noise=-1.0)
    with pytest.raises(InputError, match="level"):
        locate(lr, loss, level=1.0)


def test_reader_refuses_seq_len_on_some_rows_only(tmp_path):
    path = _csv(tmp_path, "lr,batch_size,loss,seq_len\n1e-3,8,2.5,512\n1e-3,16,2.4,\n")
    with pytest.raises(InputError, match="seq_len is given on some rows only"):
        load_grids(path, unit="tokens")
    assert len(load_grids(path)[()].lr) == 2  # in sequences seq_len is not needed


def test_reader_statuses_and_tokens(tmp_path):
    """A failed run with a loss is still missing; d falls back on tokens; -inf is refused."""
    path = _csv(tmp_path, "lr,batch_size,loss,status,tokens\n1e-3,8,2.5,failed,100\n1e-3,16,2.4,done,200\n")
    (grid,) = load_grids(path).values()
    assert grid.missing == 1 and grid.loss.tolist() == [2.4] and grid.d.tolist() == [200.0]
    with pytest.raises(InputError, match="-inf"):
        load_grids(_csv(tmp_path, "lr,batch_size,loss\n1e-3,8,-inf\n"))
    finished = load_grids(_csv(tmp_path, "lr,batch_size,loss,status\n1e-3,8,2.5,Finished\n"))[()]
    assert finished.loss.tolist() == [2.5]
    with pytest.raises(InputError, match="unknown status 'weird'"):
        load_grids(_csv(tmp_path, "lr,batch_size,loss,status\n1e-3,8,2.5,weird\n"))


def test_reader_collects_empty_groups_when_asked(tmp_path):
    path = _csv(tmp_path, "lr,batch_size,loss,opt,status\n1e-3,8,2.5,a,done\n1e-3,8,,b,failed\n")
    with pytest.raises(InputError, match="opt=b has no cell"):
        load_grids(path, ["opt"])
    empty: dict = {}
    assert list(load_grids(path, ["opt"], empty=empty)) == [("a",)]
    assert empty == {"opt=b": 1}


def test_grid_refuses_non_positive_values():
    with pytest.raises(InputError, match="lr"):
        Grid(np.array([0.0, 1e-3]), np.array([8.0, 8.0]), np.array([2.0, 2.1]), np.full(2, np.nan))
    with pytest.raises(InputError, match="batch_size"):
        Grid(np.array([1e-3, 2e-3]), np.array([8.0, -8.0]), np.array([2.0, 2.1]), np.full(2, np.nan))


def _csv(tmp_path, text: str):
    path = tmp_path / "grid.csv"
    path.write_text(text)
    return path


def test_reader_groups_statuses_and_final(tmp_path):
    path = _csv(
        tmp_path,
        "LR,Batch_Size,loss,steps,optimizer,status\n"
        "1e-3,8,2.5,100,adam,done\n1e-3,8,2.4,200,adam,done\n2e-3,8,,200,adam,diverged\n"
        "3e-3,8,,,adam,failed\n1e-3,8,2.9,200,lion,\n",
    )
    grids = load_grids(path, ["optimizer"])
    adam = grids[("adam",)]
    assert adam.missing == 1 and adam.diverged == 1
    final = adam.final()
    assert sorted(final.loss.tolist()) == [2.4, math.inf]
    assert adam.at_steps(100).loss.tolist() == [2.5]
    assert len(grids[("lion",)].lr) == 1


def test_reader_tokens_unit(tmp_path):
    path = _csv(tmp_path, "lr,batch_size,loss,seq_len\n1e-3,8,2.5,512\n")
    (grid,) = load_grids(path, unit="tokens").values()
    assert grid.batch_size.tolist() == [4096.0]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("lr,loss\n1e-3,2\n", "batch_size"),
        ("lr,batch_size,loss\n-1e-3,8,2\n", "lr must be finite and > 0"),
        ("lr,batch_size,loss\n1e-3,0,2\n", "batch_size must lie in"),
        ("lr,batch_size,loss\n1e-3,8,\n", "empty loss"),
        ("lr,batch_size,loss\nabc,8,2\n", "lr must be a number"),
        ("lr,batch_size,loss,n\n1e-3,8,2,-5\n", "n must be finite and > 0"),
        ("lr,batch_size,loss,steps\n1e-3,8,2,-1\n", "steps must be >= 0"),
        ("lr,batch_size,loss,status\n1e-3,8,,failed\n", "no cell with a loss"),
        ("lr,batch_size,loss\n", "no rows"),
    ],
)
def test_reader_errors(tmp_path, text, match):
    with pytest.raises(InputError, match=match):
        load_grids(_csv(tmp_path, text))


def test_reader_group_errors(tmp_path):
    path = _csv(tmp_path, "lr,batch_size,loss,opt\n1e-3,8,2,\n")
    with pytest.raises(InputError, match="empty 'opt'"):
        load_grids(path, ["opt"])
    with pytest.raises(InputError, match="grid column"):
        load_grids(path, ["lr"])
    with pytest.raises(InputError, match="unit"):
        load_grids(path, unit="bytes")
