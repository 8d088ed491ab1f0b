"""A study's runs as LR x batch-size grids: one cell per validation step, diverged runs +inf from where they
diverged, unfinished runs counted as missing, groups from cell or config keys, the gns probe summarised."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrlab.errors import InputError
from lrlab.store import Store
from lrlab.store.grid import study_grids


def _run(store: Store, study: int, lr: float, batch: int, status: str, losses: dict[int, float], **extra) -> int:
    schedule = f"cosine:peak={lr},warmup=2,total=20"
    optimizer = extra.pop("optimizer", "torch-adamw")
    config = {
        "batch_size": batch,
        "seq_len": 16,
        "steps": 20,
        "eval_every": 10,
        "schedule": schedule,
        "optimizer": optimizer,
    }
    run = store.add_run(study, config, {"lr": lr, "batch_size": batch})
    store.claim(run, meta={"n_params": 1000, "total_steps": 20})
    store.log_metrics(run, [{"step": s, "val_loss": v, **extra} for s, v in losses.items()])
    if status != "running":
        store.finish_run(run, status, {"diverged_at": 14 if status == "diverged" else None})
    return run


def test_grid_cells_statuses_and_groups(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        sid = store.study("s")
        _run(store, sid, 1e-3, 8, "done", {9: 3.0, 19: 2.5}, gns=40.0)
        _run(store, sid, 2e-3, 8, "diverged", {9: 3.1})
        _run(store, sid, 4e-3, 8, "running", {9: 3.3})
        _run(store, sid, 1e-3, 16, "done", {9: 2.9, 19: 2.4}, optimizer="lion")
        (grid,), gns = study_grids(store, "s")[0].values(), study_grids(store, "s")[1]
        assert grid.missing == 1
        assert sorted(grid.steps.tolist()) == [10, 10, 10, 20, 20, 20]
        final = grid.final()
        assert final.loss.tolist().count(math.inf) == 1  # the diverged run, at its last planned step
        assert sorted(final.loss[np.isfinite(final.loss)].tolist()) == [2.4, 2.5]
        assert grid.at_steps(10).loss.tolist().count(math.inf) == 0  # it diverged after step 10
        assert list(gns.values()) == [40.0]
        assert np.all(grid.d[grid.steps == 20] == 20 * np.where(grid.batch_size[grid.steps == 20] == 8, 8, 16) * 16)
        by_opt, _ = study_grids(store, "s", ["optimizer"])
        assert set(by_opt) == {("torch-adamw",), ("lion",)}
        tokens, gns_tokens = study_grids(store, "s", unit="tokens")
        assert sorted(np.unique(tokens[()].batch_size).tolist()) == [128.0, 256.0]
        assert gns_tokens[()] == 40.0 * 16


def test_errors(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        sid = store.study("s")
        store.study("empty")
        _run(store, sid, 1e-3, 8, "running", {9: 3.0})
        with pytest.raises(InputError, match="no runs"):
            study_grids(store, "empty")
        with pytest.raises(InputError, match="no finished run"):
            study_grids(store, "s")
        with pytest.raises(InputError, match=r"model\.preset"):
            _run(store, sid, 2e-3, 8, "done", {9: 3.0})
            study_grids(store, "s", ["model.preset"])
        with pytest.raises(InputError, match="nope"):
            study_grids(store, "nope")
