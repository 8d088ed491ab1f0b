"""Typed training configuration: dataclasses loaded from TOML and ``--set key=value`` overrides.

A TOML file holds the top-level keys of :class:`TrainConfig` plus two tables: ``[model]`` (:class:`ModelConfig`)
and ``[optimizer_options]`` (free keyword arguments for the optimizer). An override ``key=value`` uses the same
dotted names (``model.n_layer=4``, ``optimizer_options.betas=[0.9, 0.95]``); its value is read as a TOML value,
and a value that is not valid TOML (``schedule=cosine:peak=1e-3,...``) is taken as a string. An unknown key or a
value of the wrong type is an :class:`~lrlab.errors.InputError` naming the key and where it came from.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrlab.errors import InputError, clip
from lrlab.files import read_toml
from lrlab.schedules.base import MAX_DENSE_STEPS
from lrlab.train.budget import MAX_SEQ_LEN
from lrlab.train.model import PRESETS, GPTConfig, preset_config

#: Upper bounds of the sizes a config may ask for (each must also be >= 1). Larger values are typos or runs this
#: trainer is not built for; they are refused before anything is allocated.
LIMITS: dict[str, int] = {
    "batch_size": 1 << 20,
    "seq_len": MAX_SEQ_LEN,
    "grad_accum": 1 << 20,
    "eval_batches": 10_000,
    "eval_batch_size": 1 << 20,
    "steps": MAX_DENSE_STEPS,  # the laws evaluate a run's schedule step by step
    "tokens": MAX_DENSE_STEPS * (1 << 30),
    "model.n_layer": 1024,
    "model.n_head": 1024,
    "model.n_embd": 65_536,
    "model.vocab_size": 1 << 20,
}


MAX_CONFIG_BYTES = 1 << 20


@dataclass
class ModelConfig:
    """A :data:`~lrlab.train.model.PRESETS` entry; any size given here overrides the preset's."""

    preset: str = "tiny"
    n_layer: int | None = None
    n_head: int | None = None
    n_embd: int | None = None
    vocab_size: int | None = None  # None: 256 for text (bytes), 50304 for .bin token files
    bias: bool = False
    qk_norm: bool = False


@dataclass
class TrainConfig:
    """Everything that defines a run. Units: ``batch_size`` in sequences per optimizer step (global, summed over
    processes and micro-batches); a step is one optimizer update; ``tokens`` per step = batch_size * seq_len."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: str = "stdlib"  # "stdlib", a text file, a folder of text files, or a uint16 .bin token file
    val_data: str = ""  # a .bin file of validation tokens (for a .bin `data`)
    val_fraction: float = 0.05
    batch_size: int = 16
    seq_len: int = 128
    grad_accum: int = 1  # micro-batches per optimizer step (per process)
    steps: int | None = None  # None: the token budget, else the schedule's total
    tokens: int | None = None  # token budget; steps = ceil(tokens / tokens_per_step)
    optimizer: str = "torch-adamw"
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    schedule: str = "cosine:peak=3e-3,warmup=30,total=300,final=3e-4"
    weight_decay: float = 0.1
    decay_embeddings: bool = True  # matrices always decay; biases and norm gains never do
    grad_clip: float = 1.0  # max global gradient L2 norm; 0 disables clipping
    seed: int = 0
    eval_every: int = 50
    eval_batches: int = 4
    # The validation set: eval_batches batches of eval_batch_size sequences drawn with eval_seed (None: the run's
    # batch_size and seed). Fix both to score runs of other batch sizes or seeds on the same sequences.
    eval_batch_size: int | None = None
    eval_seed: int | None = None
    ckpt_every: int = 0  # 0: checkpoint only at the end of the run
    keep_last: int = 2
    divergence_factor: float = 3.0  # diverged when loss > factor * initial loss (or not finite)
    probes: list[str] = field(default_factory=list)  # names from lrlab.probes.PROBES (updates, rrc, gns, sharpness)
    probe_every: int = 10  # probe cadence in optimizer steps
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda", "cuda:1", ...
    precision: str = "fp32"  # "fp32" or "bf16" (autocast; for GPUs)
    threads: int = 0  # CPU threads for torch during the run (torch.set_num_threads); 0 keeps torch's default
    check_memory: bool = True  # refuse a model whose estimated training memory exceeds what is free (train/budget)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def validation_set(self) -> tuple[int, int, int]:
        """(batches, sequences per batch, seed) of the validation batches every evaluation scores."""
        return validation_set_of(vars(self))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def gpt_config(self, data_vocab: int) -> GPTConfig:
        m = self.model
        sizes = {k: v for k, v in (("n_layer", m.n_layer), ("n_head", m.n_head), ("n_embd", m.n_embd)) if v}
        try:
            return preset_config(
                m.preset,
                vocab_size=data_vocab if m.vocab_size is None else m.vocab_size,
                block_size=self.seq_len,
                bias=m.bias,
                qk_norm=m.qk_norm,
                **sizes,
            )
        except ValueError as exc:
            raise InputError(f"config [model]: {exc}") from None

    def total_steps(self, schedule_total: int | None) -> int:
        """Steps to run: ``steps``, else from the token budget, else the schedule's own total (at most
        ``LIMITS["steps"]``)."""
        if self.steps is not None:
            return self.steps
        if self.tokens is not None:
            steps = -(-self.tokens // self.tokens_per_step)
        elif schedule_total is None:
            raise InputError("config: set steps or tokens (the schedule has no total)")
        else:
            steps = schedule_total
        if steps > LIMITS["steps"]:
            raise InputError(f"config: the run would take {steps:,} steps, above lrlab's limit of {LIMITS['steps']:,}")
        return steps

    def validate(self) -> None:
        """Checks that need no data or torch: sizes within lrlab's limits, known names, consistent batch split."""
        for name, high in LIMITS.items():
            value = getattr(self.model, name[6:]) if name.startswith("model.") else getattr(self, name)
            if value is not None and not 1 <= value <= high:
                raise InputError(f"config: {name} must lie in [1, {high:,}], got {value:,}")
        for name in ("eval_every", "keep_last", "probe_every"):
            if getattr(self, name) < 1:
                raise InputError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if value is not None and value % self.grad_accum:
                raise InputError(f"config: {name}={value} is not divisible by grad_accum={self.grad_accum}")
        if not 0 <= self.val_fraction < 1:
            raise InputError(f"config: val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.divergence_factor <= 1:
            raise InputError(f"config: divergence_factor must be > 1, got {self.divergence_factor}")
        if self.grad_clip < 0 or self.weight_decay < 0 or self.ckpt_every < 0:
            raise InputError("config: grad_clip, weight_decay and ckpt_every must be >= 0")
        if not 0 <= self.threads <= 1024:
            raise InputError(f"config: threads must lie in [0, 1024] (0: torch's default), got {self.threads}")
        if self.model.preset not in PRESETS:
            raise InputError(f"config: unknown model.preset {self.model.preset!r} (known: {', '.join(PRESETS)})")
        for name in ("seed", "eval_seed"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 2**63:
                raise InputError(f"config: {name} must lie in [0, 2**63), got {value}")
        if "gns" in self.probes and self.grad_accum < 2:
            raise InputError("config: the gns probe compares micro-batches: set grad_accum >= 2")
        known = optimizer_names()
        if self.optimizer not in known:
            raise InputError(f"config: unknown optimizer {clip(self.optimizer)!r} (known: {', '.join(known)})")
        if self.precision not in ("fp32", "bf16"):
            raise InputError(f"config: precision must be 'fp32' or 'bf16', got {self.precision!r}")
        self.gpt_config(data_vocab=256)  # the model sizes fit together (the data's vocabulary comes later)


def validation_set_of(table: dict[str, Any]) -> tuple[int, int, int]:
    """(batches, sequences per batch, seed) of the validation set of a config's keys (a config saved before
    ``eval_batch_size`` and ``eval_seed`` existed has the run's own batch size and seed)."""
    rows, seed = table.get("eval_batch_size"), table.get("eval_seed")
    return table["eval_batches"], table["batch_size"] if rows is None else rows, table["seed"] if seed is None else seed


def optimizer_names() -> tuple[str, ...]:
    """The ``optimizer`` values a config may name: torch's AdamW and every lrlab.optim optimizer."""
    from lrlab.optim import OPTIMIZERS

    return ("torch-adamw", *OPTIMIZERS)


def _type_name(tp: Any) -> str:
    """``int | None`` -> "int or None"; ``list[str]`` -> "list[str]"."""
    options = typing.get_args(tp) if isinstance(tp, types.UnionType) else (tp,)
    return " or ".join("None" if o is type(None) else str(o) if typing.get_args(o) else o.__name__ for o in options)


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """``value`` checked against the annotation ``tp`` (int | None, float, list[str], dict, ...)."""
    options = typing.get_args(tp) if isinstance(tp, types.UnionType) else (tp,)
    for opt in options:
        origin = typing.get_origin(opt) or opt
        if opt is type(None) and (value is None or value == "none"):  # TOML has no null: "none" unsets
            return None
        if origin is float and isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise InputError(f"config {where}: key {key!r} must be a finite number, got {value!r}")
            return float(value)
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin is list and isinstance(value, list):
            (item,) = typing.get_args(opt)
            if all(isinstance(v, item) for v in value):
                return list(value)
        if origin in (str, bool, dict) and isinstance(value, origin):
            return value
    raise InputError(f"config {where}: key {key!r} expects {_type_name(tp)}, got {type(value).__name__} {value!r}")


def _set(cfg: TrainConfig, key: str, value: Any, where: str) -> None:
    """Assign the dotted ``key`` on ``cfg`` (``seed``, ``model.n_layer``, ``optimizer_options.betas``)."""
    head, _, rest = key.partition(".")
    hints = typing.get_type_hints(TrainConfig)
    if head not in hints:
        raise InputError(f"config {where}: unknown key {head!r} (known: {', '.join(hints)})")
    if head == "model" and rest:
        model_hints = typing.get_type_hints(ModelConfig)
        if rest not in model_hints:
            raise InputError(f"config {where}: unknown key 'model.{rest}' (known: {', '.join(model_hints)})")
        setattr(cfg.model, rest, _coerce(value, model_hints[rest], key, where))
    elif head == "model":
        if not isinstance(value, dict):
            raise InputError(f"config {where}: key 'model' expects a table, got {value!r}")
        for k, v in value.items():
            _set(cfg, f"model.{k}", v, where)
    elif head == "optimizer_options" and rest:
        cfg.optimizer_options[rest] = value
    elif rest:
        raise InputError(f"config {where}: key {head!r} has no sub-key {rest!r}")
    else:
        setattr(cfg, head, _coerce(value, hints[head], key, where))


def parse_override(text: str) -> tuple[str, Any]:
    """``"model.n_layer=4"`` -> ``("model.n_layer", 4)``; a value that is not TOML stays a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise InputError(f"config override {clip(text)!r}: expected key=value")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError:
        raise InputError(f"config override {clip(text)!r}: value nested too deeply") from None
    return key.strip(), value


def load_config(
    path: str | Path | None = None,
    overrides: typing.Sequence[str] = (),
    flags: dict[str, Any] | None = None,
) -> TrainConfig:
    """The defaults, then the TOML file at ``path`` (if any), then ``flags`` (dotted key -> typed value, from
    CLI options such as ``--steps``), then each ``key=value`` override in order. An error in a flag is about the
    parameter named by its key, an error in an override about ``overrides``."""
    cfg = TrainConfig()
    if path is not None:
        table = read_toml(Path(path), "config", MAX_CONFIG_BYTES)
        for key, value in table.items():
            if key == "optimizer_options" and isinstance(value, dict):
                cfg.optimizer_options.update(value)
            else:
                _set(cfg, key, value, str(path))
    for key, value in (flags or {}).items():
        try:
            _set(cfg, key, value, f"option {key}")
        except InputError as exc:
            raise InputError(exc.message, key) from None
    for text in overrides:
        try:
            key, value = parse_override(text)
            _set(cfg, key, value, f"override {clip(text)!r}")
        except InputError as exc:
            raise InputError(exc.message, "overrides") from None
    cfg.validate()
    return cfg


def config_from_dict(table: dict[str, Any]) -> TrainConfig:
    """The config that :meth:`TrainConfig.to_dict` gave (as a run store keeps it), validated again."""
    return load_config(None, (), table)
