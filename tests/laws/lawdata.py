"""Helpers for the loss-law tests: synthetic schedules and the public data folder (bundled with lrlab)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lrlab.datasets import root

# The multi-power-law authors' public curves ship inside the package (lrlab.datasets): a missing folder fails
# loudly, never skips.
DATA: Path = root("multipowerlaw")


def warmup_cosine(total: int, warmup: int, peak: float = 3e-4, final: float = 3e-5) -> np.ndarray:
    t = np.arange(total)
    q = np.clip((t - warmup) / (total - warmup), 0, 1)
    lr = final + 0.5 * (peak - final) * (1 + np.cos(np.pi * q))
    lr[:warmup] = peak * (t[:warmup] + 1) / warmup
    return lr


def two_stage(total: int, warmup: int, switch: int, low: float, peak: float = 3e-4) -> np.ndarray:
    t = np.arange(total)
    lr = np.where(t < switch, peak, low)
    lr[:warmup] = peak * (t[:warmup] + 1) / warmup
    return lr.astype(float)
