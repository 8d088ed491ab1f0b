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

import math
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

    Micro-batch i's contribution to ``.grad`` is the gradient sum after its backward pass minus the sum before
    it. On probe steps a forward pre-hook on the model (or, where the loop reports them, ``on_micro_batch``)
    marks each micro-batch's start, where B_small is read (the rows of the first micro-batch's first batched
    input) and the contribution of the one before is ``.grad`` minus a copy kept at the previous start (one
    foreach subtraction, norm and copy over all parameters, no per-parameter Python); the last contribution is
    taken in ``after_backward``. It assumes the trainer's convention that ``.grad`` after the backward passes is
    the mean of the micro-batch gradients (each micro-batch loss divided by the number of micro-batches), so
    micro-batch i's own gradient is A x its contribution. Needs A >= 2 micro-batches a step (``ctx.accumulation``);
    a step that ran another number of passes than announced (a short last batch of an epoch), a micro-batch that
    contributed nothing (skipped: no backward pass) or a non-finite estimate (an fp16 overflow) logs nothing and
    leaves the EMAs as they were.

    Where ``.grad`` is no longer the raw sum at ``after_backward``, the last pass is read from a
    post-accumulate-grad hook on every parameter during that pass: under DDP (the last pass writes the
    all-reduced mean; the hook sees this process's sum before DDP replaces it), and where the loop changes the
    gradients first (``ctx.grads_changed_before_after_backward``: the Hugging Face Trainer clips before its
    first hook), where the hook also gives |G_big|^2. Under DDP the squared norms are averaged over every
    process's micro-batches (one all-reduce of A numbers), and the big batch is the all-reduced global one
    (B_big = A x processes x micro-batch rows): the estimate equals one process's with A x processes
    micro-batches of the same rows.

    Cost per probe step, beyond the step itself: about 2 + 3 (A - 1) passes over the gradients (norms, one
    subtraction and one copy per micro-batch boundary) and one gradient-sized buffer; it grows with the model
    as the gradients do, about like one optimizer step's memory traffic.
    """

    name = "gns"

    def __init__(self, every: int = 1, beta: float = 0.95) -> None:
        super().__init__(every)
        self.g2, self.trace = BiasCorrectedEMA(beta), BiasCorrectedEMA(beta)
        self._micro_sq: list[torch.Tensor] | None = None

    def on_step_start(self, ctx: Any) -> None:
        self.remove_hooks()
        self._micro_sq = None
        if not self.active(ctx.step):
            return
        if ctx.accumulation < 2:
            raise InputError(
                "the gns probe needs gradient accumulation (grad_accum >= 2 micro-batches a step) to compare "
                "batch sizes"
            )
        self._params = [p for p in ctx.model.parameters() if p.requires_grad]
        self._index = {id(p): i for i, p in enumerate(self._params)}
        self._micro_sq, self._prev, self._starts, self._rows = [], None, 0, 0
        # the last pass's per-parameter |contribution|^2 and |grad|^2, where hooks read it (see the class doc)
        # (a hook can fire twice for one parameter, e.g. under reentrant checkpointing: the last firing holds it all)
        self._last_parts: dict[int, torch.Tensor] = {}
        self._full_parts: dict[int, torch.Tensor] = {}
        self._count, self._distributed = ctx.accumulation, getattr(ctx, "world_size", 1) > 1
        self._hook_last = self._distributed or ctx.grads_changed_before_after_backward
        if not ctx.reports_micro_batches:
            self._handles = [ctx.model.register_forward_pre_hook(self._micro_start, with_kwargs=True)]

    def on_micro_batch(self, ctx: Any) -> None:
        """A micro-batch starts, in a loop that reports them (instead of the forward pre-hook)."""
        if self._micro_sq is not None:
            self._micro_start(ctx.model, (ctx.micro_batch,), {})

    def _grads(self) -> list[torch.Tensor]:
        """The gradient sums so far (zeros for a parameter that has none yet)."""
        return [p.grad.detach() if p.grad is not None else torch.zeros_like(p) for p in self._params]

    def _contribution_sq(self, grads: list[torch.Tensor]) -> torch.Tensor:
        """|the micro-batch's contribution|^2 = |grads - grads at its start|^2, over all parameters."""
        return _sum_sq(grads if self._prev is None else torch._foreach_sub(grads, self._prev))

    def _micro_start(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        i, self._starts = self._starts, self._starts + 1
        if i == 0:
            self._rows = _rows((args, kwargs))
            return
        grads = self._grads()
        self._micro_sq.append(self._contribution_sq(grads))
        self._prev = [g.clone() for g in grads]
        if i == self._count - 1 and self._hook_last:
            self._handles += [p.register_post_accumulate_grad_hook(self._record_last) for p in self._params]

    def _record_last(self, p: torch.Tensor) -> None:
        grad, i = p.grad.detach(), self._index[id(p)]  # on its device: no sync per parameter
        self._last_parts[i] = (grad - self._prev[i]).double().pow(2).sum()
        if not self._distributed:
            self._full_parts[i] = grad.double().pow(2).sum()

    def after_backward(self, ctx: Any) -> None:
        self.remove_hooks()
        if self._micro_sq is None:
            return
        a, self._micro_sq, micro = self._count, None, self._micro_sq
        if self._starts != a:
            self._prev = None
            return
        if self._hook_last:
            last = _sum_sq(list(self._last_parts.values()), squared=True)
        else:
            last = self._contribution_sq(self._grads())
        self._prev = None
        micro_sq = torch.stack([*micro, last]).double().cpu()
        # a micro-batch that contributed nothing was skipped (its loop ran no backward pass): no estimate
        skipped = torch.tensor([float((micro_sq == 0).any())], dtype=torch.float64)
        if self._distributed:  # every process's micro-batches, not only this one's (and any process's skip)
            both = torch.cat([micro_sq, skipped]).to(next(ctx.model.parameters()).device)
            torch.distributed.all_reduce(both)
            micro_sq, skipped = both[:-1].cpu() / ctx.world_size, both[-1:].cpu()
        if skipped.item() > 0:
            return
        small_sq = (a * a * micro_sq).mean().item()  # micro gradient = A x its contribution
        if self._hook_last and not self._distributed:
            big_sq = _sum_sq(list(self._full_parts.values()), squared=True).item()
        else:
            big_sq = _sum_sq([p.grad.detach() for p in ctx.model.parameters() if p.grad is not None]).item()
        b_small, b_big = self._rows, self._rows * a * getattr(ctx, "world_size", 1)
        g2_now, trace_now = noise_scale_estimates(small_sq, big_sq, b_small, b_big)
        if not (math.isfinite(g2_now) and math.isfinite(trace_now)):  # an fp16 overflow step: keep the EMAs clean
            return
        g2, trace = self.g2.update(g2_now), self.trace.update(trace_now)
        values = {"gns/grad_sq": g2, "gns/trace": trace}
        if g2 > 0:
            values["gns"] = trace / g2
            values["grad_snr"] = b_big * g2 / trace if trace > 0 else float("inf")
        log_rank0(ctx, values)


def _rows(inputs: Any) -> int:
    """The batch dimension of a forward call's inputs: the first dimension of the first tensor with one, looked
    for depth first through tuples, lists and dicts."""
    if isinstance(inputs, torch.Tensor) and inputs.ndim >= 1:
        return inputs.shape[0]
    for x in inputs.values() if isinstance(inputs, dict) else inputs if isinstance(inputs, (tuple, list)) else ():
        try:
            return _rows(x)
        except InputError:
            continue
    raise InputError("the gns probe found no batched tensor among the model's inputs")


def _sum_sq(tensors: list[torch.Tensor], squared: bool = False) -> torch.Tensor:
    """sum_i |t_i|^2 (or sum_i t_i for 0-d ``squared`` parts) as a float64 0-d CPU tensor: one foreach norm (in
    float32 at least) and one transfer per device."""
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for t in tensors:
        by_device.setdefault(t.device, []).append(t)
    total = torch.zeros((), dtype=torch.float64)
    for group in by_device.values():
        if squared:
            total += torch.stack(group).double().sum().cpu()
            continue
        dtype = torch.float64 if any(t.dtype == torch.float64 for t in group) else torch.float32
        total += torch.stack(torch._foreach_norm(group, 2, dtype=dtype)).double().pow(2).sum().cpu()
    return total
