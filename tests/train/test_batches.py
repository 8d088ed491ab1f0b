"""Batches are a pure function of (seed, stream, index) and independent of how the batch is split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lrlab.errors import InputError
from lrlab.train.batches import TRAIN, VAL, batch_starts, get_batch


@given(
    n=st.integers(10, 10_000),
    seq_len=st.integers(1, 8),
    batch=st.integers(1, 16),
    seed=st.integers(0, 2**32 - 1),
    index=st.integers(0, 10**6),
)
def test_starts_are_reproducible_and_in_range(n, seq_len, batch, seed, index):
    starts = batch_starts(n, seq_len, batch, seed, TRAIN, index)
    assert np.array_equal(starts, batch_starts(n, seq_len, batch, seed, TRAIN, index))
    assert starts.min() >= 0 and starts.max() + seq_len + 1 <= n  # the target window fits


def test_steps_seeds_and_streams_give_different_batches():
    draw = [
        batch_starts(10**6, 32, 8, seed, stream, i)
        for seed, stream, i in [(0, TRAIN, 0), (0, TRAIN, 1), (1, TRAIN, 0), (0, VAL, 0)]
    ]
    assert all(not np.array_equal(a, b) for k, a in enumerate(draw) for b in draw[k + 1 :])


def test_targets_are_inputs_shifted_by_one():
    tokens = np.arange(100, dtype=np.uint16)
    x, y = get_batch(tokens, np.array([0, 10, 87]), 12)
    assert x.dtype == torch.int64 and x.shape == (3, 12)
    assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(x[:, 0], torch.tensor([0, 10, 87]))
    assert y[-1, -1].item() == 99


def test_corpus_shorter_than_a_window_is_an_input_error():
    with pytest.raises(InputError, match="fewer than seq_len"):
        batch_starts(10, 9, 1, 0, TRAIN, 0)
