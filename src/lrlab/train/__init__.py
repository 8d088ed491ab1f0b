"""A small GPT trainer on an embedded corpus: deterministic, checkpointed, divergence-aware, DDP-ready.

    from lrlab.train import load_config, train
    result = train(load_config("examples/tiny.toml", ["steps=100"]), out_dir="runs/tiny")
    result.status, result.steps_done  # "done", 100

``python -m lrlab train CONFIG.toml`` (also under ``torchrun``) and ``lrlab train`` run the same thing; see
docs/train.md.
"""

from lrlab.train.callbacks import Callback, StepContext
from lrlab.train.config import ModelConfig, TrainConfig, load_config
from lrlab.train.corpus import TokenData, load_data
from lrlab.train.loop import RunResult, Trainer, train
from lrlab.train.model import GPT, PRESETS, GPTConfig

__all__ = [
    "GPT",
    "PRESETS",
    "Callback",
    "GPTConfig",
    "ModelConfig",
    "RunResult",
    "StepContext",
    "TokenData",
    "TrainConfig",
    "Trainer",
    "load_config",
    "load_data",
    "train",
]
