"""Sharpness: the top eigenvalue of the minibatch loss Hessian, plain and Adam-preconditioned.

The preconditioned sharpness and the Adam threshold follow Kalra & Barkeshli 2024, arXiv:2406.09405.

- ``hessian_vector_product``: H v by double backward (the gradient graph is built once and reused).
- ``top_eigenvalue``: power iteration on a symmetric operator, stopped when the Rayleigh quotient changes by less
  than ``tol`` (relative) between iterations; when the dominant eigenvalue is negative, a second run on the
  shifted operator recovers the largest (most positive) one.
- Adam preconditioning: P = (sqrt(v_hat) + eps)(1 - b1^t) with v_hat = v / (1 - b2^t), from the optimizer's
  ``exp_avg_sq`` state. The eigenvalues of P^-1 H equal those of P^-1/2 H P^-1/2, which is symmetric, so the
  same power iteration applies.
- Stability thresholds: SGD is unstable when lr x sharpness > 2; Adam with momentum b1 when
  lr x preconditioned sharpness > (2 + 2 b1) / (1 - b1) (38 for b1 = 0.9).

Cost of one estimate: one forward, one backward with graph, and one extra backward per iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from lrlab.probes.base import Probe, log_rank0

Vectors = list[torch.Tensor]


def _dot(a: Vectors, b: Vectors) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b, strict=True))


def hessian_vector_product(loss: torch.Tensor, params: Vectors) -> Callable[[Vectors], Vectors]:
    """A function v -> H v for the Hessian of ``loss`` with respect to ``params`` (double backward)."""
    grads = torch.autograd.grad(loss, params, create_graph=True)

    def hvp(v: Vectors) -> Vectors:
        return list(torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True))

    return hvp


def _power_iteration(
    operator: Callable[[Vectors], Vectors], like: Vectors, iters: int, tol: float, seed: int
) -> tuple[float, int]:
    """(eigenvalue of largest magnitude, iterations) by power iteration from a private-generator start vector."""
    gen = torch.Generator().manual_seed(seed)
    v = [torch.randn(x.shape, generator=gen, dtype=torch.float32).to(x) for x in like]
    eig = 0.0
    for i in range(1, iters + 1):
        norm = _dot(v, v).sqrt()
        v = [x / norm for x in v]
        hv = operator(v)
        new = _dot(v, hv).item()
        v = [x.detach() for x in hv]
        if i > 1 and abs(new - eig) <= tol * abs(new):
            return new, i
        eig = new
    return eig, iters


def top_eigenvalue(
    operator: Callable[[Vectors], Vectors], like: Vectors, iters: int = 100, tol: float = 1e-4, seed: int = 0
) -> tuple[float, int]:
    """(largest eigenvalue, iterations used) of a symmetric linear operator, by power iteration.

    Power iteration finds the eigenvalue of largest magnitude, mu. When mu < 0 (a Hessian early in training can
    have a dominant negative direction), a second run on A - mu I, whose eigenvalues are all >= 0 and whose
    largest is lambda_max - mu, recovers lambda_max. The global RNG is untouched (``seed`` feeds a private one).
    """
    mu, used = _power_iteration(operator, like, iters, tol, seed)
    if mu >= 0:
        return mu, used

    def shifted(v: Vectors) -> Vectors:
        return [a - mu * x for a, x in zip(operator(v), v, strict=True)]

    top, more = _power_iteration(shifted, like, iters, tol, seed + 1)
    return top + mu, used + more


def adam_preconditioner(optimizer: torch.optim.Optimizer, params: Vectors) -> Vectors | None:
    """P = (sqrt(v / (1 - b2^t)) + eps)(1 - b1^t) per parameter, or None before Adam's first step."""
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    out = []
    for p in params:
        state = optimizer.state.get(p, {})
        if "exp_avg_sq" not in state or "betas" not in group_of[id(p)]:
            return None
        group = group_of[id(p)]
        b1, b2 = group["betas"]
        t = float(state["step"])
        v_hat = state["exp_avg_sq"].float() / (1 - b2**t)
        out.append((v_hat.sqrt() + group["eps"]) * (1 - b1**t))
    return out


def sharpness(
    loss_fn: Callable[[], torch.Tensor],
    params: Vectors,
    preconditioner: Vectors | None = None,
    iters: int = 20,
    tol: float = 1e-3,
) -> tuple[float, int]:
    """Top Hessian eigenvalue of ``loss_fn()`` (of P^-1 H when ``preconditioner`` P is given) and iterations used."""
    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):  # fused attention kernels lack double backward
        hvp = hessian_vector_product(loss_fn(), params)
        if preconditioner is None:
            return top_eigenvalue(hvp, params, iters, tol)
        inv_sqrt = [p.rsqrt() for p in preconditioner]

        def operator(v: Vectors) -> Vectors:
            return [
                s * h for s, h in zip(inv_sqrt, hvp([s * x for s, x in zip(inv_sqrt, v, strict=True)]), strict=True)
            ]

        return top_eigenvalue(operator, params, iters, tol)


class SharpnessProbe(Probe):
    """Logs ``sharpness`` (top Hessian eigenvalue on the step's first micro-batch) and ``sharpness/lr_x`` =
    lr x sharpness (unstable above 2 for SGD); with Adam-style state also ``sharpness/adam`` (preconditioned),
    ``sharpness/adam_lr_x`` and its threshold ``sharpness/adam_threshold`` = (2 + 2 b1) / (1 - b1).

    Measured after the backward pass, at the weights update ``t`` starts from. The CPU generator and those of the
    CUDA devices holding parameters are forked, so a model with dropout draws the same numbers as without the
    probe.
    """

    name = "sharpness"
    runs_forward_passes = True

    def __init__(self, every: int = 100, iters: int = 20, tol: float = 1e-3) -> None:
        super().__init__(every)
        self.iters, self.tol = iters, tol

    def after_backward(self, ctx: Any) -> None:
        if not self.active(ctx.step):
            return
        params = [p for p in ctx.model.parameters() if p.requires_grad]
        cuda = sorted({p.device.index for p in params if p.device.type == "cuda"})
        with torch.random.fork_rng(devices=cuda):  # dropout in these passes draws nothing from the run's streams
            top, used = sharpness(ctx.first_loss, params, None, self.iters, self.tol)
            values = {"sharpness": top, "sharpness/lr_x": ctx.lr * top, "sharpness/iters": used}
            pre = adam_preconditioner(ctx.optimizer, params)
            if pre is not None:
                top_pre, _ = sharpness(ctx.first_loss, params, pre, self.iters, self.tol)
                b1 = ctx.optimizer.param_groups[0]["betas"][0]
                values.update(
                    {
                        "sharpness/adam": top_pre,
                        "sharpness/adam_lr_x": ctx.lr * top_pre,
                        "sharpness/adam_threshold": (2 + 2 * b1) / (1 - b1),
                    }
                )
        log_rank0(ctx, values)
