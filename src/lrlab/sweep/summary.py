"""The table a sweep ends with: for every combination of the other axes (batch size, schedule, ...), the final
loss at each learning rate, diverged and failed cells marked, and the best LR."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lrlab.store.db import Store, hashable

MARKS = {"diverged": "div", "failed": "fail", "interrupted": "stop", "running": "run", "pending": "-"}


@dataclass(frozen=True)
class Summary:
    """The table's content: one row per combination of the non-LR axes."""

    group_keys: list[str]  # the axes other than lr
    lrs: list[float]  # the columns (empty when the study does not sweep lr)
    rows: list[dict[str, Any]]  # {"group": {...}, "cells": {lr: text}, "best_lr": lr or None, "best": loss}
    metric: str


def summarize(store: Store, study: str | int, metric: str = "final_val_loss", run_ids=None) -> Summary:
    """The end-of-sweep table of a study's runs, or of only ``run_ids`` (a sweep's plan: a study edited since
    an earlier sweep keeps that sweep's runs, which are not this plan's cells). The best LR of a row is the
    done run with the lowest ``metric``."""
    runs = store.runs(study)
    if run_ids is not None:
        wanted = set(run_ids)
        runs = [r for r in runs if r["id"] in wanted]
    keys = list(dict.fromkeys(k for r in runs for k in r["cell"]))
    group_keys = [k for k in keys if k != "lr"]
    lrs = sorted({r["cell"]["lr"] for r in runs if "lr" in r["cell"]})
    groups: dict[tuple, dict[str, Any]] = {}
    for r in runs:
        group = tuple(hashable(r["cell"].get(k)) for k in group_keys)
        row = groups.setdefault(group, {"group": dict(zip(group_keys, group, strict=True)), "cells": {}})
        value = r["final"].get(metric)
        ok = r["status"] == "done" and isinstance(value, int | float) and math.isfinite(value)
        text = f"{value:.4f}" if ok else MARKS.get(r["status"], r["status"])
        lr = r["cell"].get("lr")
        row["cells"][lr] = text
        if ok and value < row.get("best", math.inf):
            row["best"], row["best_lr"] = float(value), lr
    rows = [{"best_lr": None, "best": None} | row for row in groups.values()]
    return Summary(group_keys, lrs, rows, metric)
