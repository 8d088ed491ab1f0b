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

from lrlab.files import write_json
from lrlab.train import Trainer, load_config
from lrlab.train.metrics import MemorySink

STUDY_SETTINGS = ("threads=1", "device='cpu'")


@dataclass(frozen=True)
class StudyRun:
    label: str
    optimizer: str
    schedule: str
    rows: list[dict]
    status: str
    meta: dict  # the trainer's run metadata: config and environment (run.json's "meta")

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
    return StudyRun(label, optimizer, schedule, sink.rows, result.status, sink.meta.get("meta", {}))


ENVIRONMENT_KEYS = ("torch_version", "torch_commit", "threads", "cpu_capability", "mkl", "onednn", "numpy_version")
ENVIRONMENT_KEYS += ("python_version", "machine", "kernel_env", "device", "data", "data_fingerprint")


def write_environment(out_dir: Path, runs: list[StudyRun]) -> Path:
    """``environment.json``: the torch build, threads, CPU path, device and corpus fingerprint of the study's
    runs, read from what the trainer recorded for them (so it states what they ran with, not what was asked)."""
    recorded = next((run.meta for run in runs if run.meta), {})
    path = out_dir / "environment.json"
    write_json(path, {k: recorded.get(k) for k in ENVIRONMENT_KEYS})
    return path
