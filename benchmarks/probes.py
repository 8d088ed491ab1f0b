"""Step-time overhead of the probes on the tiny GPT, against the same trainer without probes.

Baselines, each measured in the same round as its probe run (rounds alternate, so machine noise hits both):
- ``overhead_every10`` / ``overhead_every1``: updates + angles + RRC (probes ``updates`` and ``rrc``) at cadence
  10 and 1, vs the plain trainer;
- ``overhead_gns``: the ``gns`` probe at cadence 1 with grad_accum=2, vs the plain trainer with grad_accum=2;
- ``sharpness_seconds``: one sharpness estimate (20 power iterations at most, tolerance 1e-3) on a training batch,
  and that cost in step times.

Each run trains ``--steps`` steps from scratch (no evaluation until the last step, no checkpoints); the time of
steps 1..n-1 is summed (step 0 warms up caches). Overheads are medians over rounds of (probe / base - 1).

    python benchmarks/probes.py [--steps 50] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from lrlab.probes import sharpness
from lrlab.train import Trainer, load_config


class StepClock:
    """Records the wall time at the start of every step (callbacks run after the probes' own hooks)."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_step_start(self, ctx) -> None:
        self.starts.append(time.perf_counter())

    def on_train_end(self, ctx) -> None:
        self.starts.append(time.perf_counter())

    def seconds(self) -> float:
        """Steps 1..n-2 (from the start of step 1 to the start of the last step, which also evaluates)."""
        return self.starts[-2] - self.starts[1]


def run_seconds(steps: int, *overrides: str) -> float:
    cfg = load_config(
        None,
        [f"steps={steps}", f"eval_every={10 * steps}", "schedule='constant:peak=3e-3,warmup=10'", *overrides],
        {"model.preset": "tiny"},
    )
    clock = StepClock()
    Trainer(cfg, callbacks=[clock]).run()
    return clock.seconds()


CASES = {
    "overhead_every10": (("probes=['updates', 'rrc']", "probe_every=10"), ()),
    "overhead_every1": (("probes=['updates', 'rrc']", "probe_every=1"), ()),
    "overhead_gns": (("probes=['gns']", "probe_every=1", "grad_accum=2"), ("grad_accum=2",)),
}


def sharpness_seconds(repeats: int = 3) -> tuple[float, int]:
    trainer = Trainer(load_config(None, [], {"model.preset": "tiny"}))
    x, y = trainer.train_micro_batches(0)[0]
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    times, iters = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        _, iters = sharpness(lambda: trainer.model(x, y), params, iters=20, tol=1e-3)
        times.append(time.perf_counter() - start)
    return statistics.median(times), iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ratios: dict[str, list[float]] = {name: [] for name in CASES}
    step_times: list[float] = []
    run_seconds(5)  # build the corpus cache and warm up before anything is timed
    for _ in range(args.rounds):
        for name, (probe, base) in CASES.items():
            plain = run_seconds(args.steps, *base)
            probed = run_seconds(args.steps, *probe)
            ratios[name].append(probed / plain - 1)
            if not base:
                step_times.append(plain / (args.steps - 2))
    results = {name: statistics.median(r) for name, r in ratios.items()}
    seconds, iters = sharpness_seconds()
    results["sharpness_seconds"] = seconds
    if args.json:
        print(json.dumps(results))
        return
    step = statistics.median(step_times)
    print(
        f"tiny GPT, {args.steps} steps a run, median of {args.rounds} alternating rounds, "
        f"plain step {step * 1e3:.1f} ms"
    )
    for name in CASES:
        spread = ", ".join(f"{r:+.1%}" for r in ratios[name])
        print(f"{name:18s} {results[name]:+7.1%}   (rounds: {spread})")
    print(f"sharpness_seconds  {seconds:.3f} s per estimate ({iters} iterations) = {seconds / step:.0f} plain steps")


if __name__ == "__main__":
    main()
