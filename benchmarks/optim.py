"""Step time of lrlab's optimizers on a ~5M-parameter GPT's parameter list, against named baselines.

Ratios of median step times, each pair measured alternately in one process (round-robin, one step of each
optimizer per round, on its own copy of the parameters with fixed random gradients). The baseline is torch's
fastest AdamW, ``torch.optim.AdamW(fused=True)`` (one kernel pass per tensor); ``foreach=True`` and the default
are printed for reference. Lion is also set against lion-pytorch's Lion and its foreach variant.

    giadamw_vs_fused_adamw          lrlab GIAdamW      / torch AdamW (fused)     (target <= 1.05)
    lion_vs_fused_adamw             lrlab Lion (fused)   / torch AdamW (fused)   (target <= 1.0)
    liona_vs_fused_adamw            lrlab LionA (fused)  / torch AdamW (fused)   (target <= 1.0)
    lionar_vs_fused_adamw           lrlab LionAR (fused) / torch AdamW (fused)   (target <= 1.3)
    lion_vs_lion_pytorch            lrlab Lion (fused)   / lion_pytorch.Lion
    lion_vs_lion_pytorch_foreach    lrlab Lion (fused)   / lion_pytorch.foreach.Lion

"(fused)" is the Lion family's ``fused=True``: torch.compile'd kernels (lrlab.optim._compiled), built before the
timed rounds; the seconds each optimizer's first step took (the compile, from an empty Inductor cache: this
script points TORCHINDUCTOR_CACHE_DIR at a new temporary folder) are printed, target < 20 s. A process's first
compile also pays Inductor's start-up; the script pays it first, on a one-line function, and prints it apart
(a worker that trains with a fused optimizer pays both). The foreach
variants (the default, ``fused=False``) are printed for reference.

Run:  python benchmarks/optim.py [--rounds 40] [--threads 1] [--device cpu] [--json]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable

if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:  # a cold compile, in a folder removed at exit
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="lrlab-inductor-")
    atexit.register(shutil.rmtree, os.environ["TORCHINDUCTOR_CACHE_DIR"], ignore_errors=True)

import torch
from lion_pytorch import Lion as LionPytorch
from lion_pytorch.foreach import Lion as LionPytorchForeach
from rich.console import Console
from rich.table import Table

from lrlab.optim import GIAdamW, Lion, LionA, LionAR

# the parameter shapes of a nanoGPT-style model: ~5.0M parameters
VOCAB, CONTEXT, WIDTH, LAYERS = 4096, 256, 256, 5


def gpt_shapes() -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = [(VOCAB, WIDTH), (CONTEXT, WIDTH)]
    for _ in range(LAYERS):
        shapes += [(WIDTH,), (WIDTH,)]  # ln_1 gain, bias
        shapes += [(3 * WIDTH, WIDTH), (3 * WIDTH,), (WIDTH, WIDTH), (WIDTH,)]  # attention qkv, proj
        shapes += [(WIDTH,), (WIDTH,)]  # ln_2
        shapes += [(4 * WIDTH, WIDTH), (4 * WIDTH,), (WIDTH, 4 * WIDTH), (WIDTH,)]  # mlp fc, proj
    shapes += [(WIDTH,), (WIDTH,)]  # ln_f
    return shapes


def make_params(device: str, seed: int = 0) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    params = []
    for shape in gpt_shapes():
        p = torch.nn.Parameter((torch.randn(shape, generator=gen) * 0.02 + (len(shape) == 1)).to(device))
        p.grad = torch.randn(shape, generator=gen).to(device) * 1e-3
        params.append(p)
    return params


OPTIMIZERS: dict[str, Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]] = {
    "torch AdamW (fused)": lambda ps: torch.optim.AdamW(ps, lr=3e-4, weight_decay=0.1, fused=True),
    "torch AdamW (foreach)": lambda ps: torch.optim.AdamW(ps, lr=3e-4, weight_decay=0.1, foreach=True),
    "torch AdamW (default)": lambda ps: torch.optim.AdamW(ps, lr=3e-4, weight_decay=0.1),
    "lrlab GIAdamW": lambda ps: GIAdamW(ps, lr=3e-4, weight_decay=0.1),
    "lrlab Lion (fused)": lambda ps: Lion(ps, lr=3e-5, weight_decay=0.1, fused=True),
    "lrlab LionA (fused)": lambda ps: LionA(ps, lr=3e-5, weight_decay=0.1, fused=True),
    "lrlab LionAR (fused)": lambda ps: LionAR(ps, lr=3e-5, weight_decay=0.1, fused=True),
    "lion-pytorch Lion": lambda ps: LionPytorch(ps, lr=3e-5, weight_decay=0.1),
    "lion-pytorch Lion (foreach)": lambda ps: LionPytorchForeach(ps, lr=3e-5, weight_decay=0.1),
    "lrlab Lion": lambda ps: Lion(ps, lr=3e-5, weight_decay=0.1),
    "lrlab LionA": lambda ps: LionA(ps, lr=3e-5, weight_decay=0.1),
    "lrlab LionAR": lambda ps: LionAR(ps, lr=3e-5, weight_decay=0.1),
    # not in a ratio: what the warmup-free recipe with the SNR factor costs
    "lrlab LionAR .98+N+IBC+SNR": lambda ps: LionAR(
        ps, lr=3e-5, weight_decay=0.1, beta=0.98, nesterov=True, inverse_bias_correction=True, snr_gain=16.0
    ),
}
BASELINE = "torch AdamW (fused)"
STARTUP = "Inductor start-up (a one-line function)"  # a key of first_step_seconds: paid once, first
RATIOS = {
    "giadamw_vs_fused_adamw": ("lrlab GIAdamW", BASELINE),
    "lion_vs_fused_adamw": ("lrlab Lion (fused)", BASELINE),
    "liona_vs_fused_adamw": ("lrlab LionA (fused)", BASELINE),
    "lionar_vs_fused_adamw": ("lrlab LionAR (fused)", BASELINE),
    "lion_vs_lion_pytorch": ("lrlab Lion (fused)", "lion-pytorch Lion"),
    "lion_vs_lion_pytorch_foreach": ("lrlab Lion (fused)", "lion-pytorch Lion (foreach)"),
}


def measure(device: str, rounds: int, warmup: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds per step of every optimizer, stepping them round-robin, and each one's first step."""
    optimizers = {name: make(make_params(device)) for name, make in OPTIMIZERS.items()}
    times: dict[str, list[float]] = {name: [] for name in optimizers}
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    start = time.perf_counter()
    torch.compile(lambda x: x * 2.0 + 1.0, fullgraph=True)(torch.ones(4))
    first = {STARTUP: time.perf_counter() - start}
    for name, opt in optimizers.items():  # the first step compiles the fused kernels
        start = time.perf_counter()
        opt.step()
        sync()
        first[name] = time.perf_counter() - start
    for round_ in range(warmup + rounds):
        for name, opt in optimizers.items():
            sync()
            start = time.perf_counter()
            opt.step()
            sync()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40, help="timed steps per optimizer")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per optimizer first")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine may be shared)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="print only the ratios as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    medians, first = measure(args.device, args.rounds, args.warmup)
    ratios = {key: medians[ours] / medians[base] for key, (ours, base) in RATIOS.items()}
    if args.json:
        print(json.dumps({**ratios, "first_step_seconds": first}))
        return
    n_params = sum(torch.Size(s).numel() for s in gpt_shapes())
    table = Table(title=f"optimizer step, {n_params / 1e6:.2f}M parameters, {args.device}, {args.threads} thread(s)")
    table.add_column("optimizer")
    table.add_column("median ms/step", justify="right")
    table.add_column("vs torch AdamW (fused)", justify="right")
    table.add_column("first step s (compile)", justify="right")
    for name, seconds in medians.items():
        table.add_row(name, f"{seconds * 1e3:.2f}", f"{seconds / medians[BASELINE]:.3f}", f"{first[name]:.2f}")
    console = Console()
    console.print(table)
    console.print(f"{STARTUP}, before the first steps above: {first[STARTUP]:.1f} s")
    ratio_table = Table(title=f"ratios of median step times ({args.rounds} alternating rounds)")
    for column in ("ratio", "ours", "baseline", "value"):
        ratio_table.add_column(column, justify="right" if column == "value" else "left")
    for key, (ours, base) in RATIOS.items():
        ratio_table.add_row(key, ours, base, f"{ratios[key]:.3f}")
    console.print(ratio_table)


if __name__ == "__main__":
    main()
