"""Checkpoints: ``ckpt-00000300.pt`` files written atomically, the newest ``keep_last`` kept.

A checkpoint is a plain dict of tensors, numbers, strings and lists (model and optimizer state dicts, the
step, the config), saved with ``torch.save`` and read back with ``torch.load(weights_only=True)``, so loading a
file never runs code. Writing goes to a temporary file that is flushed, fsynced and renamed over the final name
(and the folder fsynced), so a crash leaves either the old or the new checkpoint, never half of one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from lrlab.errors import InputError

_NAME = re.compile(r"^ckpt-(\d{8})\.pt$")


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"ckpt-{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoints in ``folder``, oldest step first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep_last: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(folder, step)
    tmp = path.with_name(f"{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
    for old in list_checkpoints(folder)[:-keep_last]:
        old.unlink()
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The state saved by :func:`save_checkpoint`; a damaged or foreign file is an :class:`InputError`."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError... for damaged files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"checkpoint {path} is corrupted or not an lrlab checkpoint ({reason})") from None
    if not isinstance(state, dict) or not {"step", "model", "optimizer"} <= state.keys():
        raise InputError(f"checkpoint {path} is not an lrlab checkpoint (missing step/model/optimizer)")
    return state
