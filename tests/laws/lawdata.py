"""Helpers for the loss-law tests: synthetic schedules and the public data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# CI clones the repo beside shared/, so the data must be there: a missing folder fails loudly, never skips.
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "loss_curves" / "multipowerlaw"


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
