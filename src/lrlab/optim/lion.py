"""Lion and LionA, with the warmup-reducing options shared by the Lion family (lion_rotational.LionAR too)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from lrlab.optim import _compiled
from lrlab.optim._foreach import ForeachOptimizer, check_betas, check_range, compute_dtype
from lrlab.optim.snr import snr_factors

_FAMILY_OPTIONS = """
    Options shared by the Lion family (Lion, LionA, LionAR), with b2 the momentum's EMA coefficient:

    - ``beta``: one momentum coefficient for both betas (``betas=(beta, beta)``), the paper's "momentum 0.98".
    - ``nesterov``: take the direction from the momentum *after* this step's update,
      c_t = b1 m_t + (1 - b1) g_t = b1 b2 m_{t-1} + (1 - b1 b2) g_t; with b1 = b2 = beta this is the sign of
      Nesterov momentum.
    - ``inverse_bias_correction``: multiply the update (not the weight decay) by 1 - b2^t, restoring the slow
      start that un-corrected momentum gives a magnitude-sensitive optimizer: a built-in ramp over about
      1 / (1 - b2) steps.
    - ``snr_gain`` k >= 1: multiply each tensor's update by the SNR factor s = sqrt((1 + rho)/(1 + k rho)),
      rho the tensor's estimated gradient signal-to-noise ratio (see :mod:`lrlab.optim.snr` for the estimate
      and its cost); k = 1 (default) switches it off.
    - ``maximize``: ascend instead of descend.
    - ``fused``: update each group's large contiguous float CPU tensors in one call (LionA, LionAR: two, row sums
      first) of kernels that torch.compile builds on the first step (:mod:`lrlab.optim._compiled`: the same
      formulas, equal up to float rounding;
      10-40 s of compiling in a fresh process, a few seconds with Inductor's on-disk cache, and a C++
      compiler; without one it warns once and keeps the foreach path); other tensors, and other devices, keep
      the foreach path. Worth it for long CPU runs; default False.
"""


@dataclass(frozen=True)
class LionStep:
    r"""One Lion-family update of a run of tensors from one param group, as ``Lion._update`` hands it on.

    ``Lion._update`` computes the direction (the sign vectors c_t) and the factors; ``_apply(step)`` then moves
    the weights, and is the one hook that LionA and LionAR override. Plain Lion applies, per tensor i,

        w_i <- w_i (1 - eta lambda) - scale f_i u_i

    with u_i = ``direction[i]``, f_i = ``factors[i]`` (1 when ``factors`` is None), eta and lambda the group's
    ``lr`` and ``weight_decay``, and ``scale`` = eta (1 - b2^t) with ``inverse_bias_correction``, else eta.

    - ``params``: the float32 (or float64) working copies, updated in place.
    - ``direction``: u_i, one tensor per parameter; ``_apply`` may overwrite it.
    - ``factors``: 0-d tensors (the SNR factor) or None.
    - ``states``: the per-parameter state dicts; ``t``: the 1-based step count of this update.
    """

    group: dict[str, Any]
    params: list[torch.Tensor]
    direction: list[torch.Tensor]
    factors: list[torch.Tensor] | None
    scale: float
    states: list[dict[str, torch.Tensor]]
    t: int

    def subset(self, indices: Sequence[int]) -> LionStep:
        """The same step restricted to the tensors at ``indices`` (in that order)."""

        def take(values: list[Any]) -> list[Any]:
            return [values[i] for i in indices]

        return replace(
            self,
            params=take(self.params),
            direction=take(self.direction),
            factors=None if self.factors is None else take(self.factors),
            states=take(self.states),
        )


class Lion(ForeachOptimizer):
    __doc__ = (
        r"""Lion (Chen et al. 2023, arXiv:2302.06675): sign of interpolated momentum, decoupled weight decay; foreach.

    For each parameter w with gradient g_t at the 1-based step t (lr eta, weight decay lambda):

        c_t = sign(b1 m_{t-1} + (1 - b1) g_t)
        w  <- w (1 - eta lambda) - eta f_t c_t
        m_t = b2 m_{t-1} + (1 - b2) g_t

    with m_0 = 0 and f_t = 1 unless ``inverse_bias_correction`` or ``snr_gain`` make it smaller. With the
    defaults this is ``lion_pytorch.Lion``. Each element moves by eta per step, so the update's L2 norm is
    eta sqrt(number of nonzero entries of c_t).
    """
        + _FAMILY_OPTIONS
        + """
    State per parameter: ``step`` (CPU scalar), ``exp_avg`` (m); with ``snr_gain > 1`` also ``snr_signal`` and
    ``snr_noise`` (scalars, from step 2 on). Float32 for bfloat16 and float16 parameters.
    """
    )

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        beta: float | None = None,
        nesterov: bool = False,
        inverse_bias_correction: bool = False,
        snr_gain: float = 1.0,
        maximize: bool = False,
        fused: bool = False,
        _extra: dict[str, Any] | None = None,
    ) -> None:
        name = type(self).__name__
        if beta is not None:
            betas = (beta, beta)
        check_range(name, "lr", lr, 0.0, float("inf"), open_low=True)
        check_betas(name, betas)
        check_range(name, "weight_decay", weight_decay, 0.0, float("inf"))
        check_range(name, "snr_gain", snr_gain, 1.0, float("inf"))
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            weight_decay=weight_decay,
            nesterov=nesterov,
            inverse_bias_correction=inverse_bias_correction,
            snr_gain=snr_gain,
            maximize=maximize,
            fused=bool(fused),
            **(_extra or {}),  # subclasses' own options, so that every param group carries them
        )
        super().__init__(params, defaults)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        state = self._new_step_state(p)
        state["exp_avg"] = torch.zeros_like(p, dtype=compute_dtype(p), memory_format=torch.preserve_format)

    def _update(
        self,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, torch.Tensor]],
        t: int,
    ) -> None:
        beta1, beta2 = group["betas"]
        momenta = [s["exp_avg"] for s in states]
        factors = None
        if group["snr_gain"] > 1.0:
            factors = snr_factors(grads, momenta, states, beta2, t, group["snr_gain"])
        if group.get("fused", False):
            rest = self._fused(group, params, grads, states, factors, t)
            if not rest:
                return
            params, grads, states, momenta = ([x[i] for i in rest] for x in (params, grads, states, momenta))
            factors = None if factors is None else [factors[i] for i in rest]
        if group["nesterov"]:
            torch._foreach_lerp_(momenta, grads, 1 - beta2)
            direction = torch._foreach_lerp(momenta, grads, 1 - beta1)
        else:
            direction = torch._foreach_lerp(momenta, grads, 1 - beta1)
            torch._foreach_lerp_(momenta, grads, 1 - beta2)
        torch._foreach_sign_(direction)
        scale = group["lr"] * (1 - beta2**t if group["inverse_bias_correction"] else 1.0)
        self._apply(LionStep(group, params, list(direction), factors, scale, states, t))

    def _fused(
        self,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, torch.Tensor]],
        factors: list[torch.Tensor] | None,
        t: int,
    ) -> list[int]:
        """``fused=True``: update the tensors that :func:`_compiled.fusable` admits in compiled calls per dtype;
        return the indices of the rest, for the foreach path."""
        rest, by_dtype = [], {}
        for i, (w, g, state) in enumerate(zip(params, grads, states, strict=True)):
            if _compiled.fusable(w, g, state["exp_avg"]):
                by_dtype.setdefault(w.dtype, []).append(i)
            else:
                rest.append(i)
        for batch in by_dtype.values():
            pick = [params[i] for i in batch], [grads[i] for i in batch], [states[i] for i in batch]
            undone = self._fused_batch(group, t, *pick, None if factors is None else [factors[i] for i in batch])
            rest += [batch[j] for j in undone]
        return sorted(rest)

    def _fused_batch(
        self,
        group: dict[str, Any],
        t: int,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, torch.Tensor]],
        factors: list[torch.Tensor] | None,
    ) -> list[int]:
        """Lion's update of fusable tensors of one dtype in one compiled call; returns the indices it did not
        update (all of them if the kernel cannot be compiled here). Hyperparameters: 1 - kappa (kappa = b1, or
        b1 b2 with Nesterov), 1 - b2, the decay factor 1 - eta lambda, and per tensor the scale eta f_i (times
        1 - b2^t with inverse bias correction)."""
        flat = [[x.view(-1) for x in xs] for xs in (params, grads, [s["exp_avg"] for s in states])]
        hyper = self._fused_hyper(group, params[0].dtype)
        ok, _ = _compiled.run("lion", *flat, hyper, self._fused_scales(group, t, factors, params))
        return [] if ok else list(range(len(params)))

    @staticmethod
    def _fused_hyper(group: dict[str, Any], dtype: torch.dtype) -> torch.Tensor:
        """(1 - kappa, 1 - b2, 1 - eta lambda) as one tensor: a new LR recompiles nothing."""
        beta1, beta2 = group["betas"]
        kappa = beta1 * beta2 if group["nesterov"] else beta1
        return torch.tensor([1 - kappa, 1 - beta2, 1 - group["lr"] * group["weight_decay"]], dtype=dtype)

    @staticmethod
    def _fused_scales(group: dict[str, Any], t: int, factors: list[torch.Tensor] | None, params) -> torch.Tensor:
        """Per tensor of ``params``: eta (times 1 - b2^t with inverse bias correction) times its SNR factor."""
        scale = group["lr"] * (1 - group["betas"][1] ** t if group["inverse_bias_correction"] else 1.0)
        return _compiled.per_tensor(scale, factors, len(params), params[0].dtype)

    def _apply(self, step: LionStep) -> None:
        """w_i <- w_i (1 - eta lambda) - scale f_i u_i, in three foreach calls (overwrites ``step.direction``)."""
        if step.factors is not None:
            torch._foreach_mul_(step.direction, step.factors)
        if step.group["weight_decay"] != 0:
            torch._foreach_mul_(step.params, 1 - step.group["lr"] * step.group["weight_decay"])
        torch._foreach_add_(step.params, step.direction, alpha=-step.scale)


class LionA(Lion):
    __doc__ = (
        r"""LionA: Lion whose update has an exactly controlled L2 norm (per tensor, or per neuron).

    Lion's sign update has norm sqrt(number of nonzero entries), which drops when the momentum has exact
    zeros (unused embedding rows, masked weights, low-precision underflow). LionA rescales the sign vector
    to the norm of a full one:

        c_t = sign(b1 m_{t-1} + (1 - b1) g_t)
        u_t = c_t sqrt(n) / ||c_t||        per tensor (n = numel), or per neuron with ``per_neuron=True``
                                           (each row of the tensor viewed as (shape[0], -1); n = row length)
        w  <- w (1 - eta lambda) - eta f_t u_t
        m_t = b2 m_{t-1} + (1 - b2) g_t

    so ||w update|| = eta f_t sqrt(n) exactly (per tensor or per row) whenever c_t is not all zero (an all-zero
    c_t gives no update). Vectors (ndim < 2) are always normalized per tensor.
    """
        + _FAMILY_OPTIONS
        + """
    Extra argument: ``per_neuron`` (default False). State as for :class:`Lion`.
    """
    )

    def __init__(self, params: Iterable[Any], lr: float = 1e-4, *, per_neuron: bool = False, **kwargs: Any):
        super().__init__(params, lr, _extra={"per_neuron": per_neuron}, **kwargs)

    def _apply(self, step: LionStep) -> None:
        """u_i = c_i sqrt(n) / ||c_i|| (per tensor, or per row with ``per_neuron``), then Lion's update."""
        if step.group["per_neuron"]:
            for u in step.direction:
                row_dims = tuple(range(1, u.ndim)) if u.ndim >= 2 else None
                norms = torch.linalg.vector_norm(u, dim=row_dims, keepdim=True)
                row_length = u.numel() // max(u.shape[0], 1) if u.ndim >= 2 else u.numel()
                u.mul_(row_length**0.5 / norms.clamp_(min=1.0))
        else:
            # per tensor, sqrt(n) / ||c|| joins the factors (one multiplication of the direction, not two)
            norms = torch._foreach_norm(step.direction)
            # a nonzero sign vector has norm >= 1, so clamping at 1 only guards the all-zero case
            torch._foreach_clamp_min_(norms, 1.0)
            torch._foreach_reciprocal_(norms)
            torch._foreach_mul_(norms, [u.numel() ** 0.5 for u in step.direction])
            step = replace(step, factors=norms if step.factors is None else torch._foreach_mul(norms, step.factors))
        super()._apply(step)

    def _fused_batch(self, group, t, params, grads, states, factors) -> list[int]:
        """LionA's update in two compiled calls (the rows' sign counts, then the update), on rows (``per_neuron``
        matrices) or on each whole tensor as one row."""
        rows = [(w.shape[0], -1) if group["per_neuron"] and w.ndim >= 2 else (1, -1) for w in params]
        momenta = [s["exp_avg"] for s in states]
        ws, gs, ms = ([x.view(r) for x, r in zip(xs, rows, strict=True)] for xs in (params, grads, momenta))
        hyper = self._fused_hyper(group, params[0].dtype)
        ok = _compiled.available("sign_counts", "lion_normalized")
        if ok:  # the first call only reads: a failure of either leaves nothing half done
            ok, counts = _compiled.run("sign_counts", gs, ms, hyper)
        if ok:
            scales = self._fused_scales(group, t, factors, params)
            ok, _ = _compiled.run("lion_normalized", ws, gs, ms, counts, hyper, scales)
        return [] if ok else list(range(len(params)))
