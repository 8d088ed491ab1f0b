"""The study against an exhaustive grid at the full budget, on the tiny GPT (prints numbers; not a timed test).

Baseline: every cell of the study's own space, LR (the study's grid LRs: three, or up to five when its grid added
columns beyond an edge) x batch size (its three) x
schedule (cosine to 10%, cosine to 0, WSD with a 20% linear decay to 0), each trained for the full token budget.
Printed: the grid's best cell and its final validation loss, the study's recommendation and its final loss
(its --verify run), their ratio (target: within 0.5%), the compute of each (training tokens; target: the study's
pilots plus its verify run at most 20% of the grid's), and the study's predicted against observed final loss.

One run is one draw: between training seeds the final loss of one configuration moves by 0.1-0.4% here (on one
validation set), and the grid's best cell is the minimum of 27-45 such draws (lucky on the seed that chose it). So
with ``--seeds K`` (default 3) the grid's best cell and the study's recommendation are also trained on K - 1 more
seeds (the base seed + 1, + 2, ...: other initial weights and training batches, the same for both; the validation
set stays the base seed's), and the ratio of their mean final losses over all K seeds, each with its spread, is
the headline (the base seed's draw included, which favours the grid). The study itself is not rerun: its pilots
saw the base seed only.

    python benchmarks/study.py --workers 2                      # examples/demo.toml's budget: about an hour here
    python benchmarks/study.py --workers 2 --pilot-share 1.0    # pilots as long as one full run: still <= 8%
    python benchmarks/study.py --steps 2000 --pilot-share 0.4   # a smaller budget (the pilots need >= 10 steps)
    python benchmarks/study.py --workers 2 --pilot-share 1.0 --seed 1   # another seed: every run is new
    python benchmarks/study.py --workers 2 --seeds 1                    # one draw of each
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from lrlab.store import Store
from lrlab.study import Executor, load_spec, run_study
from lrlab.study.runs import check_finished, final_loss, run_cells, spent_tokens, variant
from lrlab.sweep.study import Cell

ROOT = Path(__file__).resolve().parents[1]


def grid_schedules(lr: float, steps: int) -> dict[str, str]:
    return {
        "cosine to 10%": f"cosine:peak={lr!r},total={steps},final_ratio=0.1",
        "cosine to 0": f"cosine:peak={lr!r},total={steps},final_ratio=0",
        "wsd 20% linear": f"wsd:peak={lr!r},total={steps},decay=0.2,shape=linear,final=0",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", type=Path, default=ROOT / "examples" / "demo.toml")
    ap.add_argument("--steps", type=int, default=None, help="full budget in steps at the base batch size")
    ap.add_argument("--pilot-share", type=float, default=None)
    ap.add_argument("--seed", type=int, default=None, help="the base config's seed (weights and batches)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds of the grid's best and the study's choice")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--store", type=Path, default=None, help="run store (default: a temporary file)")
    ap.add_argument("--json", action="store_true", help="also print the numbers as one JSON object")
    args = ap.parse_args()
    if args.seeds < 1:
        ap.error("--seeds must be at least 1")
    spec = load_spec(args.study)
    if args.steps is not None:
        spec = replace(spec, tokens=args.steps * spec.base.tokens_per_step)
    if args.pilot_share is not None:
        spec = replace(spec, pilot_share=args.pilot_share)
    if args.seed is not None:
        spec = replace(spec, base=replace(spec.base, seed=args.seed))
    name = f"bench-{spec.name}-{spec.tokens}-{spec.pilot_share}-seed{spec.base.seed}"
    spec = replace(spec, name=name, workers=args.workers)
    store_path = args.store or Path(tempfile.mkdtemp()) / "bench.db"
    with Store(store_path) as store:
        where = Executor("local", args.workers)
        result = run_study(spec, store, where, verify_run=True, schedule_csv=store_path.with_suffix(".csv"))
        warmup = result.warmup.chosen.warmup
        cells = []
        for lr, batch in itertools.product(result.batch.lrs, sorted(result.batch.steps)):
            steps = spec.full_steps(batch)
            for name, schedule in grid_schedules(lr, steps).items():
                schedule = schedule.replace(",total=", f",warmup={warmup},total=")
                cfg = variant(result.config, batch_size=batch, steps=steps, schedule=schedule)
                cells.append(Cell({"lr": lr, "batch_size": batch, "schedule": name}, cfg))
        print(f"exhaustive grid: {len(cells)} full runs ({spec.tokens:,} tokens each) on {args.workers} workers ...")
        grid = run_cells(spec, store, "exhaustive", cells, where)
        finished = [r for r in grid if r["status"] == "done"]
        best = min(finished, key=lambda r: r["final"]["final_val_loss"])
        best_cfg = next(c.config for c in cells if c.values == best["cell"])
        arms = {"grid": (best_cfg, best), "study": (result.config, result.verification.run)}
        losses = reseeded(spec, store, where, arms, args.seeds)
    report(args, spec, result, grid, best, losses)


def reseeded(spec, store: Store, where: Executor, arms: dict, k: int) -> dict[str, list[float]]:
    """Each arm's final validation loss (+inf if it diverged) on the base seed (its run already made) and on k - 1
    more seeds, all scored on the base seed's validation set. Arms with one config share their extra runs."""
    seed = spec.base.seed
    configs = {arm: cfg for arm, (cfg, _) in arms.items()}
    same = configs["grid"].to_dict() == configs["study"].to_dict()
    extra = [
        Cell({"arm": arm, "seed": seed + j}, variant(cfg, seed=seed + j, eval_seed=cfg.validation_set[2]))
        for j in range(1, k)
        for arm, cfg in configs.items()
        if not (same and arm == "study")
    ]
    if extra:
        print(f"reseeded: the grid's best and the study's choice on {k - 1} more seeds ({len(extra)} full runs) ...")
    runs = run_cells(spec, store, "reseeded", extra, where) if extra else []
    check_finished(runs, "reseeded", spec.retries)
    losses = {arm: [final_loss(run)] for arm, (_, run) in arms.items()}
    for run in runs:
        losses[run["cell"]["arm"]].append(final_loss(run))
    if same:
        losses["study"] += losses["grid"][1:]
    return losses


def finite(value: float) -> float | None:
    """JSON has no inf or NaN: None stands for a diverged arm."""
    return value if math.isfinite(value) else None


def spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    each = ", ".join(f"{x:.4f}" for x in values)
    diverged = sum(not math.isfinite(x) for x in values)
    note = f", {diverged} diverged" if diverged else ""
    return f"mean {statistics.fmean(values):.4f} sd {sd:.4f} over {len(values)} seeds ({each}{note})"


def report(args, spec, result, grid, best, losses: dict[str, list[float]]) -> None:
    finished = [r for r in grid if r["status"] == "done"]
    grid_loss = best["final"]["final_val_loss"]
    v = result.verification
    study_tokens = sum(result.spent().values()) + spent_tokens([v.run])
    grid_tokens = spent_tokens(grid)
    print("every grid cell, best first:")
    for r in sorted(finished, key=lambda r: r["final"]["final_val_loss"]):
        c = r["cell"]
        print(f"  lr {c['lr']:.4g}  batch {c['batch_size']:>3}  {c['schedule']:<15} {r['final']['final_val_loss']:.4f}")
    print(f"grid best cell: {best['cell']} -> final val loss {grid_loss:.4f}")
    print(f"study's choice: {result.config.optimizer}, batch {result.config.batch_size}, {result.config.schedule}")
    print(f"study final val loss {v.final_observed:.4f}: ratio to the grid's best {v.final_observed / grid_loss:.4f}"
          f" on seed {spec.base.seed}")  # fmt: skip
    ratio = statistics.fmean(losses["study"]) / statistics.fmean(losses["grid"])  # inf or nan if one diverged
    print(f"grid's best: {spread(losses['grid'])}")
    print(f"study's choice: {spread(losses['study'])}")
    print(f"ratio of the means {ratio:.4f} (target <= 1.005)")
    print(f"compute: study {study_tokens:,} tokens (pilots + verify) against the grid's {grid_tokens:,}:"
          f" {study_tokens / grid_tokens:.1%} (target <= 20%)")  # fmt: skip
    print(f"predicted final loss {v.final_predicted:.4f} (laws' range {v.final_band[0]:.4f}-{v.final_band[1]:.4f}),"
          f" observed {v.final_observed:.4f}: error {v.final_error:+.2%}")  # fmt: skip
    if args.json:
        print(json.dumps({
            "grid_best": {"cell": best["cell"], "final_val_loss": grid_loss,
                          "seeds": [finite(x) for x in losses["grid"]]},
            "study": {"optimizer": result.config.optimizer, "batch_size": result.config.batch_size,
                      "schedule": result.config.schedule, "final_val_loss": v.final_observed,
                      "seeds": [finite(x) for x in losses["study"]], "predicted": v.final_predicted,
                      "laws_range": list(v.final_band)},
            "loss_ratio_one_seed": finite(v.final_observed / grid_loss),
            "loss_ratio": finite(ratio),
            "tokens": {"study": study_tokens, "grid": grid_tokens, "share": study_tokens / grid_tokens},
        }))  # fmt: skip


if __name__ == "__main__":
    main()
