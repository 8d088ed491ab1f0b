"""Shared fixtures: a small text corpus and a fast config, so loop tests take milliseconds per step."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path

import pytest

import lrlab.train.loop
from lrlab.train import TrainConfig, load_config


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Corpus caches go to a per-session folder, never the user's ~/.cache."""
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path_factory.getbasetemp() / "lrlab-cache"))


@pytest.fixture(scope="session")
def text_file(tmp_path_factory) -> Path:
    """~60 KB of Python source as a one-file text corpus (last 5% is validation)."""
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(inspect.getsource(lrlab.train.loop) * 3 + inspect.getsource(json) * 2)
    return path


@pytest.fixture
def fast_config(text_file) -> Callable[..., TrainConfig]:
    """``fast_config("steps=9", ...)``: the tiny preset at seq_len 32, 4 sequences per step on ``text_file``."""
    return lambda *overrides: load_config(None, [*_FAST, f"data='{text_file}'", *overrides])


_FAST = [
    "seq_len=32",
    "batch_size=4",
    "steps=6",
    "eval_every=3",
    "eval_batches=1",
    "schedule='constant:peak=3e-3,warmup=2'",
]


@pytest.fixture
def read_metrics() -> Callable[[Path], list[dict]]:
    """The rows of ``DIR/metrics.jsonl``."""
    return lambda out: [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
