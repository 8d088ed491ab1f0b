"""Shared fixtures for the optimizer tests: a small network and a deterministic training loop."""

import copy

import pytest
import torch
from optimdata import batches, flat, make_net, train


@pytest.fixture
def run():
    """run(make_optimizer, steps=50, seed=0) -> flattened parameters after training a fresh small net."""

    def _run(make, steps: int = 50, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        net = make_net(seed, dtype)
        train(net, make(net), batches(steps))
        return flat(net)

    return _run


@pytest.fixture
def fresh_net():
    return lambda seed=0, dtype=torch.float32: copy.deepcopy(make_net(seed, dtype))
