"""Short training runs for the demo study: the tiny GPT with a schedule and optimizer, rows kept in memory.

The runs are pinned to the CPU and one torch thread (the one setting every machine has): with a fixed torch
build, CPU kernel path and corpus they are then bit-for-bit the same everywhere, and ``environment.json`` in the
output folder records what they depended on (:func:`lrlab.train.environment.numerics` and the corpus
fingerprint), so that two machines' numbers can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrlab.train import Trainer, load_config
from lrlab.train.corpus import load_data
from lrlab.train.environment import numerics
from lrlab.train.metrics import MemorySink, write_json_atomic

STUDY_SETTINGS = ("threads=1", "device='cpu'")


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
        [f"steps={steps}", f"schedule='{schedule}'", f"optimizer='{optimizer}'", *STUDY_SETTINGS, *overrides],
        {"model.preset": "tiny"},
    )
    sink = MemorySink()
    result = Trainer(cfg, sink=sink).run()
    return StudyRun(label, optimizer, schedule, sink.rows, result.status)


def write_environment(out_dir: Path) -> Path:
    """``environment.json``: the torch build, CPU settings and corpus the study's runs ran with."""
    settings = dict(numerics(), threads=1)  # what the runs use (STUDY_SETTINGS), not this process's default
    data = load_data("stdlib")
    path = out_dir / "environment.json"
    corpus = {"corpus": data.source, "fingerprint": data.fingerprint(), "tokens": [len(data.train), len(data.val)]}
    write_json_atomic(path, {**settings, "device": "cpu", **corpus})
    return path
