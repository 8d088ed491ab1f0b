"""Does an optimizer need warmup? Loss of a tiny GPT on synthetic Markov-chain text, with and without warmup.

A small, self-contained version of the comparison in Kosson et al. 2024 (arXiv:2410.23922): each
optimizer variant trains the same 2-block causal transformer from the same initialization on the same
batches, once with a linear warmup over ``--warmup-share`` of the steps and once without, both on a
trapezoid schedule (WSD with linear decay over the last half). The Lion-family variants are also run with
the SNR factor (``snr_gain``). Printed: final held-out loss per variant with and without warmup (mean over
seeds), the gap "no warmup - warmup" (positive: warmup helped) and the seed spread (largest max - min over
seeds of either arm; smaller gaps are not resolved); ``--json`` prints the same numbers and every seed's loss.

The text is drawn from a fixed random first-order Markov chain (each token has a few likely successors), so
the best achievable loss is the chain's entropy rate, printed as the floor.

Run:  python benchmarks/optim_warmup.py [--steps 400] [--seeds 3] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
from collections.abc import Callable

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import track
from rich.table import Table
from torch import nn

from lrlab.optim import AdamW, Lion, LionAR
from lrlab.schedules import WSD
from lrlab.schedules.torch import ScheduleLR

VOCAB, CONTEXT, WIDTH, HEADS, BLOCKS, BATCH = 64, 32, 64, 4, 2, 32


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        self.qkv, self.proj = nn.Linear(WIDTH, 3 * WIDTH), nn.Linear(WIDTH, WIDTH)
        self.fc, self.out = nn.Linear(WIDTH, 4 * WIDTH), nn.Linear(4 * WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln_1(x)).view(b, t, 3, HEADS, WIDTH // HEADS).permute(2, 0, 3, 1, 4)
        attention = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attention.transpose(1, 2).reshape(b, t, WIDTH))
        return x + self.out(F.gelu(self.fc(self.ln_2(x))))


class TinyGPT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tokens, self.positions = nn.Embedding(VOCAB, WIDTH), nn.Embedding(CONTEXT, WIDTH)
        self.blocks = nn.Sequential(*[Block() for _ in range(BLOCKS)])
        self.ln_f, self.head = nn.LayerNorm(WIDTH), nn.Linear(WIDTH, VOCAB, bias=False)
        for name, p in self.named_parameters():
            if p.ndim >= 2:
                nn.init.normal_(p, std=0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tokens(idx) + self.positions(torch.arange(idx.shape[1]))
        return self.head(self.ln_f(self.blocks(x)))


def markov_chain(seed: int) -> torch.Tensor:
    """Transition matrix: each token moves to one of 4 favoured successors most of the time."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(VOCAB, VOCAB, generator=gen)
    favoured = torch.randint(0, VOCAB, (VOCAB, 4), generator=gen)
    logits.scatter_add_(1, favoured, torch.full((VOCAB, 4), 4.0))
    return logits.softmax(dim=1)


def entropy_rate(transition: torch.Tensor) -> float:
    stationary = torch.linalg.matrix_power(transition, 200)[0]
    return float(-(stationary[:, None] * transition * transition.log()).sum())


def sample(transition: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    tokens = torch.empty(n, CONTEXT + 1, dtype=torch.long)
    tokens[:, 0] = torch.randint(0, VOCAB, (n,), generator=gen)
    for i in range(CONTEXT):
        tokens[:, i + 1] = torch.multinomial(transition[tokens[:, i]], 1, generator=gen).squeeze(1)
    return tokens


@functools.cache
def dataset(data_seed: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass of training sequences (every run sees each once, in its own order) and a held-out set."""
    transition = markov_chain(data_seed)
    gen = torch.Generator().manual_seed(data_seed + 1)
    return sample(transition, steps * BATCH, gen), sample(transition, 256, gen)


def groups(model: TinyGPT, weight_decay: float) -> list[dict]:
    """Weight decay (and LionAR's rotation) on hidden matrices and embeddings; none on biases and gains.

    The output head is not followed by a normalization, so its scale matters: LionAR, which fixes row norms,
    must not rotate it (it gets plain Lion with weight decay, like AdamW's decay).
    """
    head = [model.head.weight]
    matrices = [p for p in model.parameters() if p.ndim >= 2 and p is not model.head.weight]
    vectors = [p for p in model.parameters() if p.ndim < 2]
    return [
        {"params": matrices, "weight_decay": weight_decay},
        {"params": head, "weight_decay": weight_decay, "rotational": False},
        {"params": vectors, "weight_decay": 0.0, "rotational": False},
    ]


# variant -> (factory(param groups, peak lr), peak lr): the best of a coarse scan (3x steps, 200 steps, with
# warmup) for each base optimizer
Factory = Callable[[list[dict], float], torch.optim.Optimizer]
VARIANTS: dict[str, tuple[Factory, float]] = {
    "AdamW": (lambda g, lr: AdamW(g, lr=lr, betas=(0.9, 0.95)), 1e-2),
    "Lion": (lambda g, lr: Lion(g, lr=lr), 3e-3),
    "LionAR": (lambda g, lr: LionAR(g, lr=lr), 3e-3),
    "LionAR .98+N+IBC": (
        lambda g, lr: LionAR(g, lr=lr, beta=0.98, nesterov=True, inverse_bias_correction=True),
        1e-2,
    ),
}


def with_snr(factory: Factory, gain: float) -> Factory:
    def make(g: list[dict], lr: float) -> torch.optim.Optimizer:
        opt = factory(g, lr)
        for group in opt.param_groups:
            group["snr_gain"] = gain
        return opt

    return make


def train(factory: Factory, lr: float, warmup: int, steps: int, seed: int, data_seed: int) -> float:
    """Final held-out loss after ``steps`` updates on a trapezoid schedule with ``warmup`` steps."""
    torch.manual_seed(seed)
    model = TinyGPT()
    opt = factory(groups(model, 0.1), lr)
    scheduler = ScheduleLR(opt, WSD(peak=lr, warmup=warmup, total=steps, decay=0.5))
    train_set, held_out = dataset(data_seed, steps)
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(seed + 1000))
    for step in range(steps):
        batch = train_set[order[step * BATCH : (step + 1) * BATCH]]
        loss = F.cross_entropy(model(batch[:, :-1]).flatten(0, 1), batch[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        scheduler.step()
    with torch.no_grad():
        loss = F.cross_entropy(model(held_out[:, :-1]).flatten(0, 1), held_out[:, 1:].flatten())
    return loss.item() if math.isfinite(loss.item()) else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--warmup-share", type=float, default=0.1, help="warmup length as a share of --steps")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--snr-gain", type=float, default=16.0, help="snr_gain of the '+SNR' variants")
    parser.add_argument("--lr-scale", type=float, default=1.0, help="multiply every peak LR")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants = dict(VARIANTS)
    for name in ("Lion", "LionAR", "LionAR .98+N+IBC"):
        variants[f"{name} +SNR"] = (with_snr(VARIANTS[name][0], args.snr_gain), VARIANTS[name][1])
    warmups = {"no warmup": 0, "warmup": round(args.warmup_share * args.steps)}
    runs = [(v, w, s) for v in variants for w in warmups for s in range(args.seeds)]
    losses: dict[tuple[str, str], list[float]] = {}
    for name, warmup_name, seed in track(runs, description="training", disable=args.json):
        factory, lr = variants[name]
        loss = train(factory, lr * args.lr_scale, warmups[warmup_name], args.steps, seed, data_seed=0)
        losses.setdefault((name, warmup_name), []).append(loss)
    result = {}
    for name in variants:
        row = {w: statistics.mean(losses[(name, w)]) for w in warmups}
        row["gap"] = row["no warmup"] - row["warmup"]
        # the largest max - min over seeds of the two arms: gaps smaller than this are not resolved
        row["seed_spread"] = max(max(losses[(name, w)]) - min(losses[(name, w)]) for w in warmups)
        row["per_seed"] = {w: losses[(name, w)] for w in warmups}
        result[name] = row
    floor = entropy_rate(markov_chain(0))
    if args.json:
        print(json.dumps({"entropy_floor": floor, "steps": args.steps, "warmup": warmups["warmup"], **result}))
        return
    table = Table(title=f"held-out loss after {args.steps} steps, mean of {args.seeds} seeds (floor {floor:.3f} nats)")
    for column in ("variant", "peak lr", "no warmup", f"warmup {warmups['warmup']}", "gap", "seed spread"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for name, row in result.items():
        lr = variants[name][1] * args.lr_scale
        table.add_row(
            name,
            f"{lr:.0e}",
            f"{row['no warmup']:.4f}",
            f"{row['warmup']:.4f}",
            f"{row['gap']:+.4f}",
            f"{row['seed_spread']:.4f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
