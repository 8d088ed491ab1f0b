"""What a run will need, estimated before anything is allocated, so that a typo in a config (``n_embd=1000000``,
``batch_size=1000000``) is a one-line error naming the limit instead of an out-of-memory kill.

Parameters of the GPT (``model.GPT``), with d = n_embd, L = n_layer, V = vocab, T = block size, h = d / n_head:

    P = V d + T d + L (12 d^2 + 2 d) + d        (the two LayerNorm gains a layer and the final one; with ``bias``
                                                 also L 11 d + d biases; with ``qk_norm`` L 2 h more, twice with bias)

Training memory, in bytes, for one micro-batch of b sequences in float32:

    16 P                       weights, gradients and two optimizer moments
    + 4 b T (17 L d + 3 V)     activations kept for backward: about 17 numbers per token, layer and hidden unit
                               (Korthikanti et al. 2022, arXiv:2205.05198: 34 bytes at 16 bits, without the
                               attention matrices, which scaled_dot_product_attention does not store); the logits,
                               their softmax and their gradient

Measured against the growth of peak resident memory over two AdamW steps (1 thread, torch 2.13 CPU): tiny
128 x 16 0.2x (allocator overhead dominates tiny runs), tiny 8192 x 2 0.5x, small 1024 x 8 0.7x, medium 256 x 16
0.9x: a low estimate on purpose, so that the check stops only runs that clearly cannot fit, never one that would.
A run is refused when the estimate is more than the memory this process may still use (the machine's available
memory, or its cgroup's limit when that is lower; shared among the processes of a torchrun on the node);
``check_memory = false`` turns the check off.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from lrlab.errors import InputError
from lrlab.train.model import GPTConfig

MAX_SEQ_LEN = 16_384  # attention costs O(seq_len^2) time per sequence: a longer window here is a step that never ends


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
    activations = 4 * rows * cfg.block_size * (17 * cfg.n_layer * cfg.n_embd + 3 * cfg.vocab_size)
    return 16 * gpt_params(cfg) + activations


def free_bytes(device: torch.device) -> int | None:
    """Memory a new run may use on ``device``: the CUDA allocator's free memory on GPUs; on Linux CPUs the
    smaller of MemAvailable and what this process's cgroup (a container's limit) has left; None where unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    known = [v for v in (_meminfo_available(), _cgroup_left()) if v is not None]
    return min(known) if known else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_left() -> int | None:
    """The cgroup memory limit minus its usage (cgroup v2, then v1), or None without a limit."""
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            text = Path(limit).read_text().strip()
            if text == "max" or int(text) >= 1 << 60:  # no limit (v1 writes a huge number)
                return None
            return max(int(text) - int(Path(usage).read_text().strip()), 0)
        except (OSError, ValueError):
            continue
    return None


def check_fits(cfg: GPTConfig, rows: int, device: torch.device, evaluation: bool = False) -> None:
    """An :class:`InputError` when a run of ``cfg`` with ``rows`` sequences per micro-batch cannot fit
    (``evaluation``: an evaluation micro-batch, estimated as a training one: an upper bound)."""
    need = training_bytes(cfg, rows)
    free = free_bytes(device)
    if free is None:
        return
    sharing = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if device.type == "cpu" else 1  # torchrun, same node
    share = free // max(sharing, 1)
    if need > share:
        what, fix = ("to evaluate", "make eval_batch_size smaller") if evaluation else ("to train", "make it smaller")
        raise InputError(
            f"config: this model ({gpt_params(cfg) / 1e6:,.1f}M parameters, seq_len {cfg.block_size}, {rows} "
            f"sequences per micro-batch) needs about {need / 2**30:,.1f} GiB {what}, more than the "
            f"{share / 2**30:,.1f} GiB this process may use on {device}; {fix}, raise grad_accum, or set "
            "check_memory = false"
        )
