"""Study step 2: the batch size and the peak LR, from a 3 x 3 grid of short runs at equal tokens.

The grid crosses three batch sizes a factor 2 apart (up to min(2 x base, max_batch_size)) with three LRs a factor
``LR_FACTOR`` (2) apart around step 1's LR, for the optimizer and warmup step 1 chose; every cell trains the same
tokens (cosine to 10%), with the gradient-noise-scale probe on (two micro-batches per step). When any batch size's
best LR lies at the grid's lowest or highest LR, the grid adds one LR column a factor 2 beyond that edge at every
batch size (its budget is reserved by lrlab.study.pilots) and is fitted again, up to twice (once on a budget whose
cells would otherwise fall below ``MIN_STEPS``): step 1's LR can be a factor 4-8 off, an LR at the grid's edge is
only a bound, and the batch-size law needs every batch size's optimum inside the grid. The edge is the chosen batch
size's when its best sits at one, else the one most batch sizes sit at (low on a tie: above the optimum the loss
rises faster than below it). Any batch size, not only the chosen one, because a short run's loss over LR can have a
second, shallow minimum: on the benchmark's seed 3 the chosen batch size's best sat inside the grid (1.34e-2 and
2.67e-2 within 0.2% of each other) while its short-run best was at least a factor 4 below the grid's lowest LR,
where the two other batch sizes' best LRs pointed (docs/study.md). A batch size whose every cell diverged counts for
the low edge (lrlab.laws.batch.optimum marks it so). With five columns each batch size's fit has residual degrees of
freedom, so the pooled loss noise (1-3 degrees of freedom) becomes finite and enters the intervals and the
larger-batch preference below; with three or four it is NaN and they use the bracket and no tolerance. The
batch-size laws (lrlab.laws.batch: the best LR at each batch size, then the surge / sgd / power forms, chosen by
leave-one-batch-size-out error) give the best LR at each batch size with an interval.

The recommended batch size is the one whose best cell has the lowest loss; a larger batch size within the loss
noise of it (the pooled sd of the grid's cells) is preferred, as it reaches the same loss in fewer steps. Its LR
is the fitted law's best LR at that batch size, with the law's bootstrap interval.

What this cannot see: the runs are short, so the best LR measured here is the best LR for a short run; with
Adam the best peak LR falls as training gets longer (the report shows how it moved over the grid's own runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lrlab.errors import InputError
from lrlab.laws.batch.optimum import Optimum, locate_all
from lrlab.laws.batch.select import GridFit, fit_grid
from lrlab.store.db import Store
from lrlab.store.grid import study_grids
from lrlab.study.pilots import PilotPlan
from lrlab.study.runs import Executor, check_finished, run_cells, step_study, variant
from lrlab.study.spec import StudySpec
from lrlab.study.warmup import SHORT_FINAL_RATIO, WarmupResult
from lrlab.sweep.study import Cell

LR_FACTOR = 2.0
GNS_MICRO_BATCHES = 2
N_BOOT = 200  # bootstrap replicates of the batch law's interval (a grid of 9-15 cells: more add nothing)


@dataclass
class BatchResult:
    grid_fit: GridFit | None  # None when no law could be fitted (best LRs at the grid's edges): optima alone
    optima: list[Optimum]
    loss_noise: float
    batch_size: int
    lr: float
    lr_interval: tuple[float, float]
    lrs: tuple[float, ...]
    steps: dict[int, int]  # each batch size's steps in the grid
    runs: list[dict[str, Any]]
    gns: float | None
    notes: list[str] = field(default_factory=list)


def grid_lrs(center: float) -> tuple[float, ...]:
    return tuple(float(f"{center * LR_FACTOR**k:.4g}") for k in (-1, 0, 1))


def extend_lrs(lrs: tuple[float, ...], edge: str) -> tuple[float, ...]:
    """``lrs`` with one more LR a factor ``LR_FACTOR`` beyond its ``edge`` (``"low"`` or ``"high"``)."""
    new = min(lrs) / LR_FACTOR if edge == "low" else max(lrs) * LR_FACTOR
    return tuple(sorted((*lrs, float(f"{new:.4g}"))))


def grid_cells(spec: StudySpec, plan: PilotPlan, step1: WarmupResult, lrs: tuple[float, ...]) -> list[Cell]:
    """The grid: each (batch size, LR) cell a cosine run of the same tokens with the gns probe on."""
    chosen = step1.chosen
    cells = []
    for b in plan.grid_batches:
        steps = plan.grid_steps(b, spec.seq_len)
        warmup = min(chosen.warmup, steps // 4)
        for lr in lrs:
            schedule = f"cosine:peak={lr!r},warmup={warmup},total={steps},final_ratio={SHORT_FINAL_RATIO}"
            cfg = variant(
                spec.base,
                optimizer=chosen.optimizer,
                batch_size=b,
                grad_accum=GNS_MICRO_BATCHES,
                steps=steps,
                schedule=schedule,
                probes=["gns"],
                probe_every=max(steps // 20, 1),
                eval_every=max(steps // 4, 1),
                ckpt_every=0,
            )
            cells.append(Cell({"batch_size": b, "lr": lr}, cfg))
    return cells


@dataclass
class _Measured:
    """One fit of the grid as it stands: its runs, the law (None: optima alone), the optima, the pick."""

    runs: list[dict[str, Any]]
    grid_fit: GridFit | None
    optima: list[Optimum]
    noise: float
    pick: Optimum
    gns: float | None
    notes: list[str]


def _run_and_fit(spec: StudySpec, store: Store, plan: PilotPlan, step1: WarmupResult, lrs, where) -> _Measured:
    runs = run_cells(spec, store, "grid", grid_cells(spec, plan, step1, lrs), where)
    check_finished(runs, "grid", spec.retries)
    grids, gns = study_grids(store, step_study(spec, "grid"), run_ids=[r["id"] for r in runs])
    grid = next(iter(grids.values())).final()
    if not np.any(np.isfinite(grid.loss)):
        raise InputError("every grid cell diverged: the LRs of step 1 are too high for this model", "study")
    notes = []
    try:
        g = fit_grid(grid, n_boot=N_BOOT)
        all_optima, noise = g.optima, g.loss_noise
        notes += g.notes
    except InputError as exc:
        g = None
        all_optima, noise = locate_all(grid)
        notes.append(f"no batch-size law was fitted ({exc.message}); the LR is the grid's own best")
    optima = [o for o in all_optima if math.isfinite(o.loss)]
    best = min(o.loss for o in optima)
    near = [o for o in optima if o.loss <= best + (noise if math.isfinite(noise) else 0.0)]
    pick = max(near, key=lambda o: o.batch_size)
    return _Measured(runs, g, all_optima, noise, pick, next(iter(gns.values())), notes)


def edge_to_extend(m: _Measured) -> tuple[str | None, str, list[Optimum]]:
    """The grid edge to add a column beyond (None: every batch size's best LR is inside), why that edge, and the
    batch sizes whose best sits there: the chosen batch size's edge if it has one, else the edge most batch sizes
    sit at, low on a tie (module docstring). A batch size whose every cell diverged sits at the low edge."""
    at = {e: [o for o in m.optima if o.at_grid_edge == e] for e in ("low", "high")}
    if m.pick.at_grid_edge in at:
        return m.pick.at_grid_edge, "the kept batch size's", at[m.pick.at_grid_edge]
    if not (at["low"] or at["high"]):
        return None, "", []
    if len(at["low"]) == len(at["high"]):
        return "low", "a tie between the edges: the low one", at["low"]
    edge = "low" if len(at["low"]) > len(at["high"]) else "high"
    return edge, "most batch sizes'", at[edge]


def measure_batch(spec: StudySpec, store: Store, plan: PilotPlan, step1: WarmupResult, where: Executor) -> BatchResult:
    lrs = grid_lrs(step1.chosen.range_lr)
    m = _run_and_fit(spec, store, plan, step1, lrs, where)
    added = []
    for _ in range(plan.extra_lr_columns):
        edge, why, at = edge_to_extend(m)
        if edge is None:
            break
        edge_lr = min if edge == "low" else max
        old_edge = edge_lr(lrs)
        lrs = extend_lrs(lrs, edge)
        sizes = [str(int(o.batch_size)) for o in at]
        who = f"batch sizes {', '.join(sizes[:-1])} and {sizes[-1]}" if len(sizes) > 1 else f"batch size {sizes[0]}"
        added.append(
            f"the best LR of {who} lay at the grid's {edge} edge ({old_edge:.3g}; {why}): a column at LR"
            f" {edge_lr(lrs):.3g} was added"
        )
        m = _run_and_fit(spec, store, plan, step1, lrs, where)
    pick, g, notes = m.pick, m.grid_fit, added + m.notes
    batch = int(pick.batch_size)
    lr, (lo, hi) = pick.best_lr, pick.interval
    if pick.at_grid_edge:
        notes.append(
            f"at batch size {batch} the best LR lies at the grid's {pick.at_grid_edge} edge ({pick.best_lr:.3g})"
        )
    if g is not None and pick.at_grid_edge not in ("low", "high"):  # the law cannot place an LR the grid only bounds
        lr, lo, hi = (float(v[0]) for v in g.fit.band([batch]))
        if not lo <= pick.best_lr <= hi:
            notes.append(
                f"the {g.law} law's LR {lr:.3g} disagrees with batch size {batch}'s own best {pick.best_lr:.3g}"
            )
    lr = float(f"{lr:.3g}")  # an LR finer than 3 digits is noise on a grid a factor 2 apart
    steps = {b: plan.grid_steps(b, spec.seq_len) for b in plan.grid_batches}
    return BatchResult(g, m.optima, m.noise, batch, lr, (lo, hi), lrs, steps, m.runs, m.gns, notes)
