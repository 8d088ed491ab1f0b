"""AdamW with a choice of second-moment start: zero (standard) or the first gradient squared (GI-Adam)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from lrlab.errors import InputError
from lrlab.optim._foreach import ForeachOptimizer, check_betas, check_range, compute_dtype

V_INITS = ("zero", "grad")
#: devices where the update runs in torch's fused AdamW kernel (elsewhere: the foreach ops below, same math)
FUSED_DEVICES = ("cpu", "cuda")


class AdamW(ForeachOptimizer):
    r"""AdamW (decoupled weight decay), with ``v_init`` choosing how the second moment starts.

    For each parameter w with gradient g_t at the 1-based step t (lr eta, weight decay lambda):

        w <- w (1 - eta lambda)
        m_t = beta1 m_{t-1} + (1 - beta1) g_t
        v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        w <- w - eta (m_t / (1 - beta1^t)) / (sqrt(v_t / (1 - beta2^t)) + eps)

    with m_0 = 0 and

    - ``v_init="zero"``: v_0 = 0, which is ``torch.optim.AdamW``. On CPU and CUDA the update runs in torch's
      own fused AdamW kernel (for float32 parameters bit for bit ``torch.optim.AdamW(fused=True)``; bfloat16 and
      float16 parameters keep float32 state here), elsewhere, and for non-contiguous tensors, in foreach ops of
      ``torch.optim.AdamW(foreach=True)``'s order;
    - ``v_init="grad"`` (GI-Adam, Kalra & Barkeshli 2024, arXiv:2406.09405): v_0 = g_0^2, bias correction
      kept. Early on v_t / (1 - beta2^t) is then about g^2 / (1 - beta2^t), so the first updates are about
      sqrt(1 - beta2^t) times Adam's: a built-in warmup over roughly 1 / (1 - beta2) steps.

    Where g_0 comes from: by default the gradient of the first ``step()`` call (no extra cost; it is then
    also g_1, so v_1 = g_1^2). The paper measured g_0 on a separate batch; to do that, call
    :meth:`init_second_moment` once before training with a closure that computes that batch's gradients.

    Args:
        params: parameters or parameter groups, as for any ``torch.optim`` optimizer.
        lr: learning rate eta (> 0).
        betas: (beta1, beta2), each in [0, 1).
        eps: added to the root of the corrected second moment (>= 0).
        weight_decay: decoupled weight decay lambda (>= 0); the per-step shrink is eta * lambda.
        v_init: ``"zero"`` or ``"grad"``.
        maximize: ascend instead of descend.

    State per parameter: ``step`` (CPU scalar), ``exp_avg`` (m), ``exp_avg_sq`` (v); float32 for bfloat16
    and float16 parameters.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        *,
        v_init: str = "zero",
        maximize: bool = False,
    ) -> None:
        name = type(self).__name__
        check_range(name, "lr", lr, 0.0, float("inf"), open_low=True)
        check_betas(name, betas)
        check_range(name, "eps", eps, 0.0, float("inf"))
        check_range(name, "weight_decay", weight_decay, 0.0, float("inf"))
        if v_init not in V_INITS:
            raise InputError(f"{name}: v_init={v_init!r} is not one of {', '.join(V_INITS)}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, v_init=v_init, maximize=maximize)
        super().__init__(params, defaults)

    cpu_chunks = False  # on the CPU the update is torch's fused kernel: one pass per tensor, nothing to keep in cache

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        state = self._new_step_state(p)
        dtype = compute_dtype(p)
        state["exp_avg"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
        if group["v_init"] == "grad":
            grad = p.grad.to(dtype)
            state["exp_avg_sq"] = grad * grad  # the sign of g (maximize) does not matter here
        else:
            state["exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)

    @torch.no_grad()
    def init_second_moment(self, closure: Callable[[], Any] | None = None) -> Any:
        """Set v_0 = g^2 for every parameter that has a gradient and has not stepped yet (GI-Adam's g_0).

        ``closure`` (optional) computes a loss and calls ``backward()`` on a batch of your choice, as for
        ``step``; without it the gradients already in ``.grad`` are used. Gradients are left as they are
        (zero them before the first training step as usual). Returns the closure's loss. Works for any
        ``v_init``: an explicit initialization wins over the lazy one.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if self.state[p] and int(self.state[p]["step"]) > 0:
                    raise InputError(
                        f"{type(self).__name__}.init_second_moment: a parameter of shape {tuple(p.shape)} has "
                        "already taken steps; call it before the first step()"
                    )
                self.state[p] = {}
                self._init_state(p, {**group, "v_init": "grad"})
        return loss

    def _update(
        self,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, torch.Tensor]],
        t: int,
    ) -> None:
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        exp_avgs = [s["exp_avg"] for s in states]
        exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        if _fusable(params, grads, exp_avgs, exp_avg_sqs):
            # torch's fused AdamW kernel: the same update in one pass over each tensor, one call per dtype. It
            # reads the step count (bias corrections) from a tensor on the parameters' device and does not
            # advance it; torch.full fills it on the device (no host-to-device copy, no sync on CUDA).
            step = torch.full((), float(t), dtype=torch.float32, device=params[0].device)
            for idx in _by_dtype(params):
                torch._fused_adamw_(
                    [params[i] for i in idx], [grads[i] for i in idx], [exp_avgs[i] for i in idx],
                    [exp_avg_sqs[i] for i in idx], [], [step] * len(idx), amsgrad=False, lr=lr, beta1=beta1,
                    beta2=beta2, weight_decay=wd, eps=eps, maximize=False,
                )  # fmt: skip
            return
        if wd != 0:
            torch._foreach_mul_(params, 1 - lr * wd)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        step_size = -lr / (1 - beta1**t)
        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denom, (1 - beta2**t) ** 0.5)
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, exp_avgs, denom, step_size)


def _fusable(*lists: list[torch.Tensor]) -> bool:
    """Whether torch's fused kernel computes this update: a device that has it, and every tensor contiguous
    (the kernel walks the storage, so a gradient laid out unlike its parameter, e.g. transposed or expanded,
    would be paired with the wrong elements; autograd's gradients are laid out like their parameters)."""
    return lists[0][0].device.type in FUSED_DEVICES and all(x.is_contiguous() for xs in lists for x in xs)


def _by_dtype(params: list[torch.Tensor]) -> list[list[int]]:
    """Indices of ``params`` grouped by dtype (the kernel takes one dtype per call)."""
    groups: dict[torch.dtype, list[int]] = {}
    for i, p in enumerate(params):
        groups.setdefault(p.dtype, []).append(i)
    return list(groups.values())


class GIAdamW(AdamW):
    """GI-AdamW: :class:`AdamW` with ``v_init="grad"`` (second moment starts at the first gradient squared)."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, **kwargs: Any) -> None:
        kwargs.setdefault("v_init", "grad")
        super().__init__(params, lr, **kwargs)
