"""Short training runs for the demo study: the tiny GPT with a schedule and optimizer, rows kept in memory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lrlab.train import Trainer, load_config
from lrlab.train.metrics import MemorySink


@dataclass(frozen=True)
class StudyRun:
    label: str
    optimizer: str
    schedule: str
    rows: list[dict]
    status: str

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of every row that has ``key``."""
        rows = [r for r in self.rows if r.get(key) is not None]
        return np.array([r["step"] for r in rows]), np.array([r[key] for r in rows], dtype=np.float64)


def train_in_memory(label: str, optimizer: str, schedule: str, steps: int, *overrides: str) -> StudyRun:
    """Train the tiny preset for ``steps`` updates (seed 0) and return its metrics rows."""
    cfg = load_config(
        None,
        [f"steps={steps}", f"schedule='{schedule}'", f"optimizer='{optimizer}'", *overrides],
        {"model.preset": "tiny"},
    )
    sink = MemorySink()
    result = Trainer(cfg, sink=sink).run()
    return StudyRun(label, optimizer, schedule, sink.rows, result.status)
