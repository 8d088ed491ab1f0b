"""What decides a run's floating-point results beyond its config, recorded with every run so that numbers can be
compared across machines.

A short run at a high LR is chaotic: a last-bit difference in one kernel grows into a different final loss. For a
fixed torch build, CPU model, thread count, CPU kernel path and corpus the trainer is bit-for-bit deterministic; each of
those moved the demo's 400-step WSD run (peak LR 1e-2) on one machine: thread count 1/2/3/4/8 and the CPU
kernel path (ATen default/avx2/avx512, MKL's and oneDNN's instruction sets) by up to 0.02 in final validation
loss (sd 0.006 over 11 settings), one small file more or less in the corpus by up to 0.13, seeds by sd 0.10
(measured with one-off scripts setting those variables around the demo's former law study; not in the repository).
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
from collections.abc import Iterator

import numpy as np
import torch

# environment variables that change which CPU kernels torch, MKL or oneDNN run
KERNEL_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS")
KERNEL_VARIABLES += ("DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA")


def numerics() -> dict[str, object]:
    """The torch build and CPU settings a run's numbers depend on (see the module doc)."""
    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([\d.]+)", config)
    onednn = re.search(r"MKL-DNN v([\w.]+)", config)
    return {
        "torch_version": torch.__version__,
        "torch_commit": torch.version.git_version,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl": mkl.group(1) if mkl else None,
        "onednn": onednn.group(1) if onednn else None,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "kernel_env": {k: os.environ[k] for k in KERNEL_VARIABLES if k in os.environ},
    }


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; else what the platform says). Two machines with the same torch
    build, thread count and kernel path but different CPUs (an AMD EPYC and an earlier session's machine, both
    AVX512) gave the demo's WSD run final losses 2.1098 and 2.1224 with the same code: libraries such as MKL
    choose code paths by CPU model, not only by instruction set."""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's CPU thread count set to ``n`` for the block (0 keeps it), and restored after."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
