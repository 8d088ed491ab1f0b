"""Checkpoints: ``ckpt-00000300.pt`` files written atomically, the newest ``keep_last`` kept.

A checkpoint is a plain dict of tensors, numbers, strings and lists (model and optimizer state dicts, the
step, the config), saved with ``torch.save`` and read back with ``torch.load(weights_only=True)``, so loading a
file never runs code. Writing goes through :func:`lrlab.files.atomic_write` (a temporary file, fsynced, renamed
over the final name), so a crash leaves either the old or the new checkpoint, never half of one.
"""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from lrlab.errors import InputError, clip, first_line
from lrlab.files import atomic_write, make_dirs

_NAME = re.compile(r"^ckpt-(\d{8})\.pt$")


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"ckpt-{step:08d}.pt"


def checkpoint_step(path: Path) -> int:
    """The steps done when the checkpoint at ``path`` (named by :func:`checkpoint_path`) was written."""
    match = _NAME.match(path.name)
    if match is None:
        raise ValueError(f"{path.name} is not a checkpoint name")
    return int(match[1])


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoints in ``folder``, oldest step first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep_last: int) -> Path:
    make_dirs(folder)
    for stale in folder.glob(".ckpt-*.tmp"):  # a run killed while writing left it (one run writes a folder)
        stale.unlink(missing_ok=True)
    path = checkpoint_path(folder, step)
    with atomic_write(path, "wb") as f:
        torch.save(state, f)
    for old in list_checkpoints(folder)[:-keep_last]:
        old.unlink()
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The state saved by :func:`save_checkpoint`; a damaged, foreign or code-carrying file is an
    :class:`InputError` (``weights_only=True`` refuses anything but tensors and plain data)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... for damaged files
        if isinstance(exc, pickle.UnpicklingError):
            # torch's message suggests weights_only=False, never advice to give about a file someone else made
            if "GLOBAL" in str(exc):  # the pickle names a Python callable or class: code, not data
                raise InputError(
                    f"checkpoint {path} holds Python objects other than tensors and plain data; refused, since "
                    "loading them could run code (lrlab checkpoints never hold such objects)"
                ) from None
            raise InputError(f"checkpoint {path} is corrupted or not an lrlab checkpoint (not a tensor file)") from None
        raise InputError(
            f"checkpoint {path} is corrupted or not an lrlab checkpoint ({clip(first_line(exc), 120)})"
        ) from None
    if not isinstance(state, dict) or not {"step", "model", "optimizer", "scheduler"} <= state.keys():
        raise InputError(f"checkpoint {path} is not an lrlab checkpoint (missing step/model/optimizer/scheduler)")
    step, initial = state["step"], state.get("initial_loss")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise InputError(f"checkpoint {path}: step must be a whole number >= 0, got {clip(repr(step))}")
    if initial is not None and not (isinstance(initial, float) and math.isfinite(initial) and initial > 0):
        raise InputError(f"checkpoint {path}: initial_loss must be a positive number, got {clip(repr(initial))}")
    return state
