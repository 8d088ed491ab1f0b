"""Vectorized schedule evaluation vs a plain Python loop over transformers' LR lambdas, 10^6 steps.

Baseline: ``[peak * lam(t) for t in range(N)]`` with ``lam`` the LambdaLR function of transformers'
``get_wsd_schedule`` / ``get_cosine_schedule_with_warmup`` (the way a trainer evaluates them, one step at a time).
Each side is timed ``--repeats`` times alternately in this process; the median is reported.

    python benchmarks/schedules.py [--steps 1000000] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import transformers.optimization as hf

from lrlab.schedules import WSD, Cosine

PEAK, WARMUP = 3e-4, 2_000


def _hf_lambda(factory, **kwargs):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    return factory(opt, **kwargs).lr_lambdas[0]


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(steps: int, repeats: int) -> dict[str, dict[str, float]]:
    cases = {
        "wsd": (
            WSD(peak=PEAK, warmup=WARMUP, total=steps, decay=0.2, shape="1-sqrt", warmup_offset=0),
            _hf_lambda(
                hf.get_wsd_schedule,
                num_warmup_steps=WARMUP,
                num_decay_steps=round(0.2 * steps),
                num_training_steps=steps,
                decay_type="1-sqrt",
            ),
        ),
        "cosine": (
            Cosine(peak=PEAK, warmup=WARMUP, total=steps, warmup_offset=0),
            _hf_lambda(hf.get_cosine_schedule_with_warmup, num_warmup_steps=WARMUP, num_training_steps=steps),
        ),
    }
    results = {}
    for name, (ours, lam) in cases.items():
        t = np.arange(steps)
        ours_s, loop_s = [], []
        for _ in range(repeats):  # alternate so that machine noise hits both sides alike
            ours_s.append(_time(lambda ours=ours, t=t: ours(t)))
            loop_s.append(_time(lambda lam=lam: [PEAK * lam(i) for i in range(steps)]))
        mine, base = statistics.median(ours_s), statistics.median(loop_s)
        sample = np.arange(0, steps, 997)  # the two sides must compute the same schedule
        np.testing.assert_allclose(ours(sample), [PEAK * lam(int(i)) for i in sample], rtol=1e-12, atol=1e-15 * PEAK)
        results[name] = {"lrlab_ms": mine * 1e3, "python_loop_ms": base * 1e3, "speedup": base / mine}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results = measure(args.steps, args.repeats)
    if args.json:
        print(json.dumps(results))
        return
    print(f"{args.steps:,} steps, median of {args.repeats} alternating runs")
    print(f"{'schedule':<8} {'lrlab (ms)':>11} {'transformers loop (ms)':>23} {'speedup':>9}")
    for name, r in results.items():
        print(f"{name:<8} {r['lrlab_ms']:>11.1f} {r['python_loop_ms']:>23.1f} {r['speedup']:>8.0f}x")


if __name__ == "__main__":
    main()
