"""Sweeps: how close local workers come to the ideal, the Ray executor's overhead, and run-store ingest speed.

Three comparisons, each against a baseline measured in this script, on this machine, in the same invocation:

- ``sweep_efficiency``: a study of ``--runs`` tiny-preset runs (``examples/tiny.toml``, ``--steps`` steps each, the
  cells differ only in seed) executed by :func:`lrlab.sweep.execute` on ``--workers`` local workers, against the
  ideal ``runs x alone / workers``, where ``alone`` is one of those runs trained alone in a local worker process
  the same way (a :class:`~lrlab.sweep.local.LocalPool` worker writing to a run store, with the thread count each
  sweep worker gets, ``threads_per_worker(workers)``), measured before and after the sweep (the mean is used).
  efficiency = ideal / sweep wall time; the target is >= 0.85. The forkserver the workers fork from is started
  once before anything is timed and its start-up reported apart (a sweep pays it once). A diagnostic beside it,
  ``scheduling_efficiency``, takes as baseline ``workers`` runs started at once in ``workers`` workers with no
  driver (``together``): ``runs / workers x together`` over the sweep's wall time leaves out what running side
  by side costs the machine (shared cores, caches, memory bandwidth, other jobs) and keeps the driver's own cost.
- ``ray_vs_local``: the same study on the Ray executor (a local Ray instance and its worker processes, with
  their imports done, started before the timing, as the local forkserver is) over the local executor's wall time;
  the target is <= 1.10. ``ray_vs_local_with_startup`` adds each executor's one-time start-up to its sweep.
- ``store_vs_jsonl``: metric rows per second of a ``--ingest-steps``-step run logging 5 metrics a step through
  :class:`~lrlab.store.StoreSink` (default batching) over the same rows through
  :class:`~lrlab.train.metrics.JsonlSink` (the baseline), median of ``--ingest-repeats`` paired repeats.

The machine may be shared with other jobs: the two "alone" runs bracket the sweep (their spread is printed), and
the load average at the start is printed.

    python benchmarks/sweep.py [--runs 8] [--steps 150] [--workers 2] [--no-ray] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrlab.store import Store, StoreSink
from lrlab.sweep import execute, load_study, threads_per_worker
from lrlab.sweep.driver import Listener
from lrlab.sweep.local import LocalPool
from lrlab.sweep.worker import Task
from lrlab.train import load_data
from lrlab.train.metrics import JsonlSink

TINY = Path(__file__).resolve().parents[1] / "examples" / "tiny.toml"


def write_study(folder: Path, runs: int, steps: int) -> Path:
    path = folder / "bench.toml"
    schedule = f"cosine:peak=3e-3,warmup={max(1, steps // 10)},total={steps},final=3e-4"
    path.write_text(
        f'name = "bench"\n[base]\nfile = {json.dumps(str(TINY))}\nsteps = {steps}\nschedule = "{schedule}"\n'
        f"[axes]\nseed = {list(range(runs))}\n"
    )
    return path


class Submits(Listener):
    """When the driver handed each run to a worker (wall clock, as the store's times)."""

    def __init__(self) -> None:
        self.at: dict[int, float] = {}

    def started(self, run: dict[str, Any], total_steps: int) -> None:
        self.at[run["id"]] = time.time()


def start_forkserver(folder: Path) -> float:
    """Start the local executor's forkserver (with its preload) and return how long that took."""
    with Store(folder / "warm.db") as store:
        LocalPool(store, 1)  # sets the forkserver's preload modules, as every sweep does
        t0 = time.perf_counter()
        proc = multiprocessing.get_context("forkserver").Process(target=os.getpid)
        proc.start()
        proc.join()
        return time.perf_counter() - t0


def run_in_workers(folder: Path, configs: list[dict[str, Any]], threads: int, name: str) -> dict[str, float]:
    """Runs started at once, one local worker each, as a sweep runs each of its runs: wall time from submit to the
    last worker's exit, and each run's start-up (submit to when its worker claims the run) and the rest."""
    with Store(folder / f"{name}.db") as store:
        study = store.study(name, {})
        ids = [store.add_run(study, config) for config in configs]
        pool = LocalPool(store, len(ids))
        t0 = time.time()
        for run_id, config in zip(ids, configs, strict=True):
            pool.submit(Task(run_id, config, str(folder / name / str(run_id)), threads))
        while pool.active:
            pool.poll()
            time.sleep(0.005)
        wall = time.time() - t0
        runs = [store.run(i) for i in ids]
    assert all(r["status"] == "done" for r in runs), runs
    return {
        "wall": wall,
        "startup": statistics.mean(r["started"] - t0 for r in runs),
        "train": statistics.mean(r["finished"] - r["started"] for r in runs),
    }


def run_sweep(study, folder: Path, executor: str, workers: int) -> dict[str, Any]:
    submits = Submits()
    with Store(folder / f"{executor}.db") as store:
        t0 = time.perf_counter()
        plan = execute(study, store, executor, workers, runs_root=folder / f"{executor}.runs", listener=submits)
        wall = time.perf_counter() - t0
        runs = store.runs(study.name)
    assert len(plan.todo) == len(study.cells) and all(r["status"] == "done" for r in runs), runs
    return {
        "wall": wall,
        # local workers claim a run once its first step ran; Ray's driver claims it when it submits the task
        "startup": statistics.mean(r["started"] - submits.at[r["id"]] for r in runs),
        "train": statistics.mean(r["finished"] - r["started"] for r in runs),
        "per_run": statistics.mean(r["finished"] - submits.at[r["id"]] for r in runs),
        "final": [r["final"]["final_val_loss"] for r in runs],
    }


def _warm() -> int:
    """A Ray worker's one-time imports (what the local forkserver preloads), then a pause so that each warm-up
    task lands on its own worker process."""
    import torch._dynamo  # noqa: F401

    import lrlab.sweep.worker  # noqa: F401

    time.sleep(0.5)
    return os.getpid()


def start_ray(cpus: int, workers: int, threads: int) -> float:
    """Start a local Ray instance and its worker processes with their imports done: the counterpart of the local
    executor's forkserver start-up, so that neither executor's one-time start is inside its sweep's timing."""
    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    warm = ray.remote(_warm).options(num_cpus=threads)
    assert len(set(ray.get([warm.remote() for _ in range(workers)]))) == workers
    return time.perf_counter() - t0


def ingest_rows(steps: int, seed: int = 0) -> list[dict[str, Any]]:
    """The rows of a ``steps``-step run logging 5 metrics every step (as the trainer's rows look)."""
    rng = np.random.default_rng(seed)
    loss = 5.0 * np.exp(-np.arange(steps) / steps) + 0.01 * rng.standard_normal(steps)
    return [
        {
            "step": t,
            "lr": 3e-3 * min(1.0, (t + 1) / 100),
            "train_loss": float(loss[t]),
            "grad_norm": float(abs(rng.standard_normal()) + 0.5),
            "tokens": (t + 1) * 2048,
            "elapsed_s": 0.03 * (t + 1),
        }
        for t in range(steps)
    ]


def time_sink(sink: Any, rows: list[dict[str, Any]]) -> float:
    t0 = time.perf_counter()
    sink.open({"config": {}, "meta": {}}, 0)
    for row in rows:
        sink.log(row)
    sink.close({"status": "done", "steps_done": len(rows)})
    return time.perf_counter() - t0


def measure_ingest(folder: Path, steps: int, repeats: int) -> dict[str, float]:
    rows = ingest_rows(steps)
    metrics = len(rows) * (len(rows[0]) - 1)
    store_s, jsonl_s = [], []
    for k in range(repeats):  # paired: each store repeat next to a jsonl repeat, in alternating order
        for kind in ("store", "jsonl") if k % 2 == 0 else ("jsonl", "store"):
            if kind == "store":
                with Store(folder / f"ingest-{k}.db") as store:
                    run_id = store.add_run(store.study("ingest", {}), {"repeat": k})
                    store_s.append(time_sink(StoreSink(store, run_id), rows))
                    (stored,) = store.db.execute("SELECT COUNT(*) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()
                assert stored == metrics, (stored, metrics)
            else:
                jsonl_s.append(time_sink(JsonlSink(folder / f"jsonl-{k}"), rows))
                assert sum(1 for _ in open(folder / f"jsonl-{k}" / "metrics.jsonl")) == len(rows)
    store_rate, jsonl_rate = metrics / statistics.median(store_s), metrics / statistics.median(jsonl_s)
    return {"rows": metrics, "store_rows_per_s": store_rate, "jsonl_rows_per_s": jsonl_rate}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8, help="runs in the study (cells differing in seed)")
    ap.add_argument("--steps", type=int, default=150, help="steps of each run (tiny preset)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-ray", action="store_true", help="leave out the Ray executor")
    ap.add_argument("--ingest-steps", type=int, default=10_000)
    ap.add_argument("--ingest-repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    threads = threads_per_worker(args.workers)
    load = os.getloadavg()[0]  # other jobs on a shared machine slow runs that run side by side
    load_data("stdlib")  # build the corpus cache before anything is timed

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        study = load_study(write_study(folder, args.runs, args.steps))
        forkserver_s = start_forkserver(folder)
        configs = [cell.config.to_dict() for cell in study.cells[: args.workers]]
        alone = [run_in_workers(folder, configs[:1], threads, "alone-before")]
        local = run_sweep(study, folder, "local", args.workers)
        together = run_in_workers(folder, configs, threads, "together")
        alone.append(run_in_workers(folder, configs[:1], threads, "alone-after"))
        ray = None
        if not args.no_ray:
            ray_startup = start_ray(args.workers * threads, args.workers, threads)
            try:
                ray = run_sweep(study, folder, "ray", args.workers)
            finally:
                import ray as ray_module

                ray_module.shutdown()
            assert ray["final"] == local["final"], "Ray and local runs gave different final losses"
            ray["startup_s"] = ray_startup
        ingest = measure_ingest(folder, args.ingest_steps, args.ingest_repeats)

    alone_s = statistics.mean(a["wall"] for a in alone)
    ideal = args.runs * alone_s / args.workers
    ideal_together = args.runs / args.workers * together["wall"]
    out: dict[str, Any] = {
        "sweep_efficiency": ideal / local["wall"],
        "scheduling_efficiency": ideal_together / local["wall"],
        "together_s": together["wall"],
        "load_average": load,
        "local_sweep_s": local["wall"],
        "ideal_s": ideal,
        "alone_s": [a["wall"] for a in alone],
        "alone_worker_startup_s": statistics.mean(a["startup"] for a in alone),
        "sweep_worker_startup_s": local["startup"],
        "alone_train_s": statistics.mean(a["train"] for a in alone),
        "sweep_train_s": local["train"],
        "sweep_run_s": local["per_run"],
        "forkserver_startup_s": forkserver_s,
        "store_vs_jsonl": ingest["store_rows_per_s"] / ingest["jsonl_rows_per_s"],
        **ingest,
    }
    if ray is not None:
        out |= {
            "ray_vs_local": ray["wall"] / local["wall"],
            "ray_vs_local_with_startup": (ray["wall"] + ray["startup_s"]) / (local["wall"] + forkserver_s),
            "ray_sweep_s": ray["wall"],
            "ray_startup_s": ray["startup_s"],
            "ray_task_s": ray["per_run"],
        }
    if args.json:
        print(json.dumps(out))
        return
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.workers} workers x {threads} thread(s); "
        f"load average {load:.2f} at the start (the machine may be shared)"
    )
    print(f"study: {args.runs} tiny-preset runs of {args.steps} steps (seeds 0..{args.runs - 1})")
    print(f"  forkserver start-up (once a sweep, not timed below): {forkserver_s:.2f} s")
    print(
        "  one run alone in a worker (baseline): "
        + ", ".join(f"{a['wall']:.2f} s" for a in alone)
        + f" (before/after the sweep; start-up {out['alone_worker_startup_s']:.2f} s of each)"
    )
    print(f"  ideal sweep = {args.runs} x {alone_s:.2f} / {args.workers} = {ideal:.2f} s")
    print(
        f"  local sweep: {local['wall']:.2f} s (per run: start-up {local['startup']:.2f} s, training "
        f"{local['train']:.2f} s vs {out['alone_train_s']:.2f} s alone)"
    )
    print(f"sweep_efficiency = {out['sweep_efficiency']:.3f} (ideal / local sweep wall time; >= 0.85 wanted)")
    print(
        f"  {args.workers} runs at once in {args.workers} workers, no driver: {together['wall']:.2f} s (training "
        f"{together['train']:.2f} s each): the machine's own cost of running them side by side"
    )
    print(
        f"scheduling_efficiency = {out['scheduling_efficiency']:.3f} ({args.runs}/{args.workers} x that / local "
        "sweep wall time: what the driver's scheduling costs)"
    )
    if ray is not None:
        print(
            f"  ray sweep: {ray['wall']:.2f} s (per task: {ray['per_run']:.2f} s from submit to recorded, vs "
            f"{local['per_run']:.2f} s a local run); Ray start-up (instance and warm workers): {ray['startup_s']:.2f} s"
        )
        print(
            f"ray_vs_local = {out['ray_vs_local']:.3f} (Ray sweep / local sweep wall time; <= 1.10 wanted; "
            f"{out['ray_vs_local_with_startup']:.3f} with each executor's start-up)"
        )
    print(f"ingest of a {args.ingest_steps:,}-step run, 5 metrics a step ({ingest['rows']:,} rows):")
    print(f"  JsonlSink (baseline): {ingest['jsonl_rows_per_s']:,.0f} rows/s")
    print(f"  StoreSink:            {ingest['store_rows_per_s']:,.0f} rows/s")
    print(f"store_vs_jsonl = {out['store_vs_jsonl']:.3f} (StoreSink rows/s over JsonlSink rows/s)")


if __name__ == "__main__":
    main()
