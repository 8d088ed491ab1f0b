"""What a run will need, estimated before anything is allocated, so that a typo in a config (``seq_len=100000``,
``n_embd=1000000``) is a one-line error naming the limit instead of a hang or an out-of-memory kill.

Parameters of the GPT (``model.GPT``), with d = n_embd, L = n_layer, V = vocab, T = block size:

    P = V d + T d + L (12 d^2 + 4 d + 2 h [qk_norm]) + d        (+ L 9 d + d biases with ``bias``; LayerNorm
                                                                  weights count d each, their biases only with bias)

Training memory, in bytes, for one micro-batch of b sequences in float32:

    16 P                                      weights, gradients and two optimizer moments
    + 4 b T (L (34 d + H T) + 3 V)            activations kept for backward: per layer about 34 d numbers per token
                                              (Korthikanti et al. 2022, arXiv:2205.05198, counted in fp32) plus one
                                              attention row per head (H T per token); the logits, their softmax and
                                              gradient

Measured against the peak resident memory of two AdamW steps (1 thread, torch 2.13 CPU): tiny 128 x 16 0.4x
(the allocator's own overhead dominates), medium 256 x 16 1.6x, small 1024 x 8 2.8x. A run is refused only when
the estimate exceeds the memory the device has free. ``seq_len`` is also capped at :data:`MAX_SEQ_LEN`: attention
costs O(seq_len^2) time per sequence, so a longer window on this trainer is a step that never ends.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from lrlab.errors import InputError
from lrlab.train.model import GPTConfig

MAX_SEQ_LEN = 16_384


def gpt_params(cfg: GPTConfig) -> int:
    """The parameter count of ``GPT(cfg)`` (the tied output layer counted once), computed without building it."""
    d, layers = cfg.n_embd, cfg.n_layer
    ln = d * (2 if cfg.bias else 1)
    per_layer = 12 * d * d + 2 * ln
    if cfg.bias:
        per_layer += 3 * d + d + 4 * d + d
    if cfg.qk_norm:
        per_layer += 2 * (d // cfg.n_head) * (2 if cfg.bias else 1)
    return cfg.vocab_size * d + cfg.block_size * d + layers * per_layer + ln


def training_bytes(cfg: GPTConfig, rows: int) -> int:
    """Estimated peak bytes of training ``cfg`` on micro-batches of ``rows`` sequences (see the module doc)."""
    t = cfg.block_size
    activations = 4 * rows * t * (cfg.n_layer * (34 * cfg.n_embd + cfg.n_head * t) + 3 * cfg.vocab_size)
    return 16 * gpt_params(cfg) + activations


def free_bytes(device: torch.device) -> int | None:
    """Memory free for a new run on ``device``: MemAvailable on Linux CPUs, the CUDA allocator's free memory on
    GPUs; None where it cannot be read (the check is then skipped)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(cfg: GPTConfig, rows: int, device: torch.device) -> None:
    """An :class:`InputError` when a run of ``cfg`` with ``rows`` sequences per micro-batch cannot fit."""
    need = training_bytes(cfg, rows)
    free = free_bytes(device)
    if free is not None and need > free:
        raise InputError(
            f"config: this model ({gpt_params(cfg) / 1e6:,.1f}M parameters, seq_len {cfg.block_size}, {rows} "
            f"sequences per micro-batch) needs about {need / 2**30:,.1f} GiB to train, more than the "
            f"{free / 2**30:,.1f} GiB free on {device}; make it smaller or raise grad_accum"
        )
