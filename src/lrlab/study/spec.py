"""Study files: what to train, the full budget, the optimizers to consider, the hardware limit and the executor.

    name = "demo"                      # the study's name in the store (its steps are studies NAME/lr, NAME/warmup...)
    optimizers = ["torch-adamw", "giadamw"]   # the optimizers to consider (lrlab.optim names or torch-adamw)
    max_batch_size = 64                # the largest batch (sequences per step) that fits the hardware
    pilot_share = 0.2                  # pilot runs spend at most this share of the full run's training tokens
    executor = "local"                 # or "ray": where the pilot runs (and --verify's run) execute
    workers = 2                        # runs at a time

    [budget]                           # the full run: tokens = N, or steps = N (counted at the base batch size)
    steps = 6000

    [base]                             # the training config: a file and/or config keys over it (as a sweep's base)
    file = "tiny.toml"
    seq_len = 128

The budget is compute: the study holds the full run's training tokens fixed whichever batch size it recommends
(``steps`` are converted at the base config's batch size). A bad file, key or value is one
:class:`InputError` naming the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lrlab.errors import InputError, clip
from lrlab.files import check_keys, read_toml
from lrlab.sweep.driver import EXECUTORS
from lrlab.sweep.study import base_source, flatten_keys
from lrlab.train.config import LIMITS, TrainConfig, load_config, optimizer_names
from lrlab.train.corpus import check_data_path

KEYS = ("name", "base", "budget", "optimizers", "max_batch_size", "pilot_share", "executor", "workers", "retries")
MAX_STUDY_BYTES = 1 << 20
MAX_OPTIMIZERS = 4
MIN_SHARE, MAX_SHARE = 0.01, 1.0


@dataclass(frozen=True)
class StudySpec:
    """A study file read and validated (see the module doc). ``tokens`` is the full run's training-token budget."""

    name: str
    source: str
    base: TrainConfig
    tokens: int
    optimizers: tuple[str, ...]
    max_batch_size: int
    pilot_share: float = 0.2
    executor: str = "local"
    workers: int = 2
    retries: int = 1

    @property
    def seq_len(self) -> int:
        return self.base.seq_len

    def full_steps(self, batch_size: int) -> int:
        """Optimizer steps of the full run at ``batch_size`` sequences per step (the token budget rounded up)."""
        return -(-self.tokens // (batch_size * self.seq_len))


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study file."""
    path = Path(path)
    table = read_toml(path, "study", MAX_STUDY_BYTES)
    where = f"study {path}"
    check_keys(table, KEYS, where)
    name = table.get("name", path.stem)
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or not name.isprintable():
        # printable: the name goes into the recommendation's TOML comment, where control characters are invalid
        raise InputError(f"{where}: name must be a non-empty printable string of at most 200 characters")
    base_file, inline = base_source(table.get("base"), path, where)
    try:
        base = load_config(base_file, (), flatten_keys(inline))
        check_data_path(base.data, base.val_data)
    except InputError as exc:
        raise InputError(f"{where}: base: {exc}") from None
    if base.grad_accum != 1:
        raise InputError(f"{where}: base.grad_accum must be 1 (the study sets micro-batches itself)")
    tokens = _budget(table.get("budget"), base, where)
    optimizers = _optimizers(table.get("optimizers", [base.optimizer]), where)
    # step 1 trains at the base batch size, so it must fit too
    max_batch = _whole(table, "max_batch_size", base.batch_size, base.batch_size, LIMITS["batch_size"], where)
    base = _one_validation_set(base, max_batch, where)
    share = table.get("pilot_share", 0.2)
    if not _number(share) or not MIN_SHARE <= share <= MAX_SHARE:
        raise InputError(f"{where}: pilot_share must be a number in [{MIN_SHARE}, {MAX_SHARE}], got {_show(share)}")
    executor = table.get("executor", "local")
    if executor not in EXECUTORS:
        raise InputError(f"{where}: executor must be one of {', '.join(EXECUTORS)}, got {_show(executor)}")
    workers = _whole(table, "workers", 2, 1, 1024, where)
    retries = _whole(table, "retries", 1, 0, 100, where)
    return StudySpec(name, str(path), base, tokens, optimizers, max_batch, float(share), executor, workers, retries)


def _one_validation_set(base: TrainConfig, max_batch: int, where: str) -> TrainConfig:
    """``base`` whose validation batches are fixed: by default the validation set is drawn at each run's own
    batch size, so runs of the study's other batch sizes would be scored on other sequences (and at this scale
    the sequences move the loss by more than the batch size does). The default: the base batch size, rounded down
    to even (the grid's runs take two micro-batches a step)."""
    rows = base.eval_batch_size
    if rows is None:
        return replace(base, eval_batch_size=max(base.batch_size - base.batch_size % 2, 2))
    if rows % 2 or rows > max_batch:
        raise InputError(
            f"{where}: base.eval_batch_size must be even (the grid's runs take two micro-batches) and at most"
            f" max_batch_size = {max_batch}, got {rows}"
        )
    return base


def _budget(value: Any, base: TrainConfig, where: str) -> int:
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ("tokens", "steps"):
        raise InputError(f"{where}: budget must be a table with one key, tokens = N or steps = N")
    key, n = next(iter(value.items()))
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"{where}: budget.{key} must be a whole number >= 1, got {_show(n)}")
    tokens = n if key == "tokens" else n * base.tokens_per_step
    if tokens > LIMITS["tokens"]:
        raise InputError(f"{where}: budget.{key} = {n:,} is above lrlab's limit of {LIMITS['tokens']:,} tokens")
    return tokens


def _optimizers(value: Any, where: str) -> tuple[str, ...]:
    known = optimizer_names()
    if not isinstance(value, list) or not value or len(value) > MAX_OPTIMIZERS:
        raise InputError(f"{where}: optimizers must be a list of 1 to {MAX_OPTIMIZERS} names ({', '.join(known)})")
    for name in value:
        if name not in known:
            raise InputError(f"{where}: optimizers: unknown optimizer {_show(name)} (known: {', '.join(known)})")
    if len(set(value)) != len(value):
        raise InputError(f"{where}: optimizers: a name is listed twice")
    return tuple(value)


def _whole(table: dict, key: str, default: int, lo: int, hi: int, where: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InputError(f"{where}: {key} must be a whole number in [{lo}, {hi:,}], got {_show(value)}")
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _show(value: Any) -> str:
    return clip(repr(value), 60)
