"""lrlab's schedules against transformers' LR lambdas: the whole run vectorized, and one step at a time.

Baseline: the LambdaLR function ``lam`` of transformers' ``get_wsd_schedule`` / ``get_cosine_schedule_with_warmup``
(the way a trainer evaluates a schedule, one step at a time). Three ratios per schedule, each side timed
``--repeats`` times alternately in this process (the median is reported):

- vectorized: ``schedule(np.arange(N))`` against ``[peak * lam(t) for t in range(N)]`` (N = ``--steps``);
- per step: ``[schedule(t) for t in range(n)]`` (a Python int each: the block memo) against the same loop over
  ``lam`` (n = ``--per-step``), in microseconds per call;
- scheduler: ``ScheduleLR.step()`` against transformers' ``LambdaLR.step()`` on a one-parameter SGD, per call.

    python benchmarks/schedules.py [--steps 1000000] [--per-step 200000] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import transformers.optimization as hf

from lrlab.schedules import WSD, Cosine, parse
from lrlab.schedules.torch import ScheduleLR

PEAK, WARMUP = 3e-4, 2_000


def _hf_lambda(factory, **kwargs):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    return factory(opt, **kwargs).lr_lambdas[0]


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _scheduler_step_s(scheduler, n: int) -> float:
    scheduler.optimizer.step()  # after the scheduler is built, so torch does not warn that it stepped first
    step = scheduler.step
    return _time(lambda: [step() for _ in range(n)]) / n


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)


def measure(steps: int, per_step: int, repeats: int) -> dict[str, dict[str, float]]:
    cases = {
        "wsd": (
            WSD(peak=PEAK, warmup=WARMUP, total=steps, decay=0.2, shape="1-sqrt", warmup_offset=0),
            hf.get_wsd_schedule,
            dict(num_warmup_steps=WARMUP, num_decay_steps=round(0.2 * steps), num_training_steps=steps,
                 decay_type="1-sqrt"),
        ),
        "cosine": (
            Cosine(peak=PEAK, warmup=WARMUP, total=steps, warmup_offset=0),
            hf.get_cosine_schedule_with_warmup,
            dict(num_warmup_steps=WARMUP, num_training_steps=steps),
        ),
    }  # fmt: skip
    results = {}
    for name, (ours, factory, kwargs) in cases.items():
        lam = _hf_lambda(factory, **kwargs)
        t = np.arange(steps)
        times: dict[str, list[float]] = {k: [] for k in ("ours", "loop", "ours_1", "loop_1", "sched", "hf_sched")}
        for _ in range(repeats):  # alternate so that machine noise hits both sides alike
            times["ours"].append(_time(lambda ours=ours, t=t: ours(t)))
            times["loop"].append(_time(lambda lam=lam: [PEAK * lam(i) for i in range(steps)]))
            fresh = parse(str(ours))  # the same schedule with an empty memo
            times["ours_1"].append(_time(lambda s=fresh: [s(i) for i in range(per_step)]) / per_step)
            times["loop_1"].append(_time(lambda lam=lam: [PEAK * lam(i) for i in range(per_step)]) / per_step)
            times["sched"].append(_scheduler_step_s(ScheduleLR(_optimizer(), ours), per_step))
            times["hf_sched"].append(_scheduler_step_s(factory(_optimizer(), **kwargs), per_step))
        m = {k: statistics.median(v) for k, v in times.items()}
        sample = np.arange(0, steps, 997)  # the two sides must compute the same schedule
        np.testing.assert_allclose(ours(sample), [PEAK * lam(int(i)) for i in sample], rtol=1e-12, atol=1e-15 * PEAK)
        assert [ours(int(i)) for i in sample] == ours(sample).tolist()  # the per-step path: the same floats
        results[name] = {
            "lrlab_ms": m["ours"] * 1e3,
            "python_loop_ms": m["loop"] * 1e3,
            "speedup": m["loop"] / m["ours"],
            "per_step_us": m["ours_1"] * 1e6,
            "hf_lambda_us": m["loop_1"] * 1e6,
            "per_step_ratio": m["ours_1"] / m["loop_1"],
            "schedulelr_step_us": m["sched"] * 1e6,
            "hf_lambdalr_step_us": m["hf_sched"] * 1e6,
            "scheduler_ratio": m["sched"] / m["hf_sched"],
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--per-step", type=int, default=200_000, help="steps of the one-at-a-time loops")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results = measure(args.steps, args.per_step, args.repeats)
    if args.json:
        print(json.dumps(results))
        return
    print(f"median of {args.repeats} alternating runs; baseline: transformers' LambdaLR lambdas")
    print(f"vectorized, {args.steps:,} steps:")
    print(f"  {'schedule':<8} {'lrlab (ms)':>11} {'transformers loop (ms)':>23} {'speedup':>9}")
    for name, r in results.items():
        print(f"  {name:<8} {r['lrlab_ms']:>11.1f} {r['python_loop_ms']:>23.1f} {r['speedup']:>8.0f}x")
    print(f"one step at a time, {args.per_step:,} steps (us per call; ratio lrlab / transformers):")
    head = ("schedule", "lrlab s(t)", "lambda", "ratio", "ScheduleLR", "LambdaLR", "ratio")
    print("  {:<8} {:>11} {:>8} {:>6}   {:>10} {:>9} {:>6}".format(*head))
    for name, r in results.items():
        print(
            f"  {name:<8} {r['per_step_us']:>11.2f} {r['hf_lambda_us']:>8.2f} {r['per_step_ratio']:>6.2f}"
            f"   {r['schedulelr_step_us']:>10.2f} {r['hf_lambdalr_step_us']:>9.2f} {r['scheduler_ratio']:>6.2f}"
        )


if __name__ == "__main__":
    main()
