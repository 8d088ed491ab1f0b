"""Batches as a pure function of ``(seed, stream, index)``: a run needs no data-loader state to resume.

Batch ``index`` of a stream draws its sequence starts uniformly from ``[0, n_tokens - seq_len - 1]`` with a
PCG64 generator seeded by ``SeedSequence([seed, stream, index])``. Training batch ``t`` is the data of optimizer
step ``t``; evaluation reuses the same ``eval_batches`` validation batches at every evaluation, so successive
validation losses differ only by the model. Every process draws the whole global batch and keeps its own rows,
so the data of a step does not depend on the number of processes or micro-batches.
"""

from __future__ import annotations

import numpy as np
import torch

from lrlab.errors import InputError

TRAIN, VAL = 0, 1


def batch_starts(n_tokens: int, seq_len: int, batch_size: int, seed: int, stream: int, index: int) -> np.ndarray:
    """int64 start offsets of the ``batch_size`` sequences of batch ``index`` in ``stream``."""
    if n_tokens < seq_len + 2:
        raise InputError(f"data has {n_tokens} tokens, fewer than seq_len + 2 = {seq_len + 2}")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, index])))
    return rng.integers(0, n_tokens - seq_len, size=batch_size, dtype=np.int64)


def get_batch(tokens: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``x[i] = tokens[s_i : s_i + seq_len]`` and next-token targets ``y[i] = x[i]`` shifted by one."""
    rows = tokens[starts[:, None] + np.arange(seq_len + 1)].astype(np.int64)
    window = torch.from_numpy(rows)
    return window[:, :-1], window[:, 1:]
