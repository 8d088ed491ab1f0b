"""Gradient noise scale B_simple = tr(Sigma) / |G|^2 from two batch sizes (McCandlish et al. 2018, arXiv:1812.06162).

With |G_small|^2 the mean squared norm of gradients over batches of B_small examples and |G_big|^2 the squared norm
of the gradient over B_big examples, the unbiased estimates are

    |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)

Each is noisy (the |G|^2 estimate can even be negative), so the probe keeps a bias-corrected EMA of each and
reports B_simple = EMA(tr Sigma) / EMA(|G|^2), in sequences (the trainer's batch unit; x seq_len for tokens).
It also reports ``grad_snr`` = |G|^2 / (tr(Sigma) / B_big) = B_big / B_simple, the signal-to-noise ratio of the
step's gradient (above 1: the gradient is mostly signal, the regime where warmup matters most).
"""

from __future__ import annotations

from typing import Any

import torch

from lrlab.errors import InputError
from lrlab.probes.base import Probe, log_rank0


def noise_scale_estimates(small_sq: float, big_sq: float, b_small: float, b_big: float) -> tuple[float, float]:
    """(|G|^2, tr Sigma) estimates from mean |G_small|^2 at B_small and |G_big|^2 at B_big (B_big > B_small)."""
    if not b_big > b_small > 0:
        raise InputError(f"noise scale needs 0 < B_small < B_big, got {b_small} and {b_big}")
    g2 = (b_big * big_sq - b_small * small_sq) / (b_big - b_small)
    trace = (small_sq - big_sq) / (1 / b_small - 1 / b_big)
    return g2, trace


class BiasCorrectedEMA:
    """m_n = beta m_{n-1} + (1 - beta) x_n, reported as m_n / (1 - beta^n) so early values are not pulled to 0."""

    def __init__(self, beta: float) -> None:
        self.beta, self.value, self.count = beta, 0.0, 0

    def update(self, x: float) -> float:
        self.count += 1
        self.value = self.beta * self.value + (1 - self.beta) * x
        return self.value / (1 - self.beta**self.count)


class GNSProbe(Probe):
    """B_simple from the micro-batches of gradient accumulation: small = one micro-batch, big = the whole step.

    On probe steps a post-accumulate-grad hook on every parameter records each micro-batch's contribution to
    ``.grad`` (one extra copy of the gradients, and a subtraction and a norm per parameter per micro-batch). It
    assumes the trainer's convention that ``.grad`` after the backward passes is the mean of the micro-batch
    gradients (each micro-batch loss divided by the number of micro-batches), so micro-batch i's own gradient is
    A x its contribution. Needs A >= 2 micro-batches a step. Under DDP each process records its own micro-batches
    (the hook sees ``.grad`` before DDP writes the all-reduced mean into it, at the end of the backward pass), the
    squared norms are averaged over every process's micro-batches (one all-reduce of A numbers), and the big batch
    is the all-reduced global one (B_big = A x processes x micro-batch rows): the estimate equals one process's
    with A x processes micro-batches of the same rows.
    """

    name = "gns"

    def __init__(self, every: int = 1, beta: float = 0.95) -> None:
        super().__init__(every)
        self.g2, self.trace = BiasCorrectedEMA(beta), BiasCorrectedEMA(beta)

    def on_step_start(self, ctx: Any) -> None:
        self.remove_hooks()
        self._micro_sq = None
        if not self.active(ctx.step):
            return
        if len(ctx.batch) < 2:
            raise InputError("the gns probe needs gradient accumulation (grad_accum >= 2) to compare batch sizes")
        params = [p for p in ctx.model.parameters() if p.requires_grad]
        self._micro_sq = torch.zeros(len(ctx.batch), dtype=torch.float64)
        self._seen: dict[int, int] = {}
        self._prev: dict[int, torch.Tensor] = {}
        self._handles = [p.register_post_accumulate_grad_hook(self._record) for p in params]

    def _record(self, p: torch.Tensor) -> None:
        key = id(p)
        micro = self._seen.get(key, 0)
        grad = p.grad.detach()
        prev = self._prev.get(key)
        contribution = grad if prev is None else grad - prev
        self._micro_sq[micro] += contribution.float().pow(2).sum().item()
        self._prev[key] = grad.clone()
        self._seen[key] = micro + 1

    def after_backward(self, ctx: Any) -> None:
        self.remove_hooks()
        if self._micro_sq is None:
            return
        a = len(ctx.batch)
        rows = ctx.batch[0][0].shape[0]
        micro_sq = self._micro_sq
        if getattr(ctx, "world_size", 1) > 1:  # every process's micro-batches, not only this one's
            micro_sq = micro_sq.to(next(ctx.model.parameters()).device)
            torch.distributed.all_reduce(micro_sq)
            micro_sq = micro_sq.cpu() / ctx.world_size
        small_sq = (a * a * micro_sq).mean().item()  # micro gradient = A x its contribution
        big_sq = sum(p.grad.detach().float().pow(2).sum().item() for p in ctx.model.parameters() if p.grad is not None)
        b_small, b_big = rows, rows * a * getattr(ctx, "world_size", 1)
        g2_now, trace_now = noise_scale_estimates(small_sq, big_sq, b_small, b_big)
        g2, trace = self.g2.update(g2_now), self.trace.update(trace_now)
        values = {"gns/grad_sq": g2, "gns/trace": trace}
        if g2 > 0:
            values["gns"] = trace / g2
            values["grad_snr"] = b_big * g2 / trace if trace > 0 else float("inf")
        log_rank0(ctx, values)
        self._prev, self._micro_sq = {}, None
