"""The main job's first part: a gallery of standard schedules written as a plot, a CSV table and a summary.

Later parts of the study (fitted loss laws, probes, sweeps) add their own sections next to this one.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrlab.files import atomic_write
from lrlab.report.schedule_plots import plot_schedules
from lrlab.schedules import Schedule, parse


def standard_schedules(peak: float = 1e-3, warmup: int = 500, total: int = 10_000) -> dict[str, Schedule]:
    """The schedules people pretrain Transformers with, at one peak LR, warmup and length."""
    common = f"peak={peak!r},warmup={warmup},total={total}"
    cycle = total // 4
    specs = {
        "constant": f"constant:{common}",
        "cosine to 10%": f"cosine:{common},final_ratio=0.1",
        "linear to 0": f"linear:{common},final=0",
        "WSD linear 20%": f"wsd:{common},decay=0.2,shape=linear,final=0",
        "WSD 1-sqrt 20%": f"wsd:{common},decay=0.2,shape=1-sqrt,final=0",
        "inverse sqrt": f"invsqrt:{common}",
        "multi-step": f"multistep:{common},milestones={int(0.6 * total)}/{int(0.85 * total)},gamma=0.316",
        "cosine restarts x4": f"cosine:peak={peak!r},warmup={warmup // 4},total={cycle},final_ratio=0.1,cycles=4",
    }
    return {name: parse(spec) for name, spec in specs.items()}


@dataclass(frozen=True)
class ScheduleSummary:
    name: str
    spec: str
    lr_at: dict[int, float]
    area: float  # S1 = sum of lr(t): the "forward area" of the momentum law (Tissue et al. 2024, arXiv:2408.11029)


def schedule_demo(out_dir: Path, total: int = 10_000, warmup: int = 500, peak: float = 1e-3) -> list[ScheduleSummary]:
    """Write ``schedules.png`` and ``schedules.csv`` (LR every 50 steps and at phase boundaries) to ``out_dir``."""
    schedules = standard_schedules(peak, warmup, total)
    plot_schedules(
        schedules, total, out_dir / "schedules.png", title=f"standard schedules: peak {peak:g}, {total} steps"
    )
    keys = {k for s in schedules.values() for k in s.key_steps() if k < total}
    rows = np.array(sorted(keys | set(range(0, total, 50))), dtype=np.int64)
    with atomic_write(out_dir / "schedules.csv") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", *schedules])
        columns = [s(rows) for s in schedules.values()]
        writer.writerows([int(t), *(repr(float(c[i])) for c in columns)] for i, t in enumerate(rows))
    probe_steps = [0, warmup - 1, total // 2, int(0.9 * total), total - 1]
    return [
        ScheduleSummary(
            name,
            str(s),
            dict(zip(probe_steps, s(np.array(probe_steps)).tolist(), strict=True)),
            float(s.values(total).sum()),
        )
        for name, s in schedules.items()
    ]
