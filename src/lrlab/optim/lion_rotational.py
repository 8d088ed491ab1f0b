"""LionAR: rotational Lion, which fixes each neuron's weight norm and sets its angular update directly."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from lrlab.errors import InputError
from lrlab.optim import _compiled
from lrlab.optim._compiled import DEGENERATE, RMS_EMA, RMS_EPS
from lrlab.optim.lion import _FAMILY_OPTIONS, Lion, LionStep


def is_rotational(p: torch.Tensor, group: dict[str, Any]) -> bool:
    """Matrices and conv kernels (ndim >= 2, rows of two or more entries) rotate; the rest get plain Lion."""
    return group["rotational"] and p.ndim >= 2 and p.numel() >= 2 * p.shape[0] > 0


def equilibrium_angle(lr: float, weight_decay: float, betas: tuple[float, float], nesterov: bool) -> float:
    """eta_r = sqrt(pi/2) sqrt(2 eta lambda) sqrt((1 - kappa)^2 + kappa^2 (1 - b2)/(1 + b2)), in radians.

    kappa is the weight of m_{t-1} in the interpolated momentum: b1, or b1 b2 with Nesterov. The last root is
    the stationary standard deviation of that interpolation for unit white-noise gradients. With kappa = b1 this
    is the rotational-Lion formula of Kosson, Messmer, Jaggi, "Rotational Equilibrium" (arXiv:2305.17212).
    """
    beta1, beta2 = betas
    kappa = beta1 * beta2 if nesterov else beta1
    spread = (1 - kappa) ** 2 + kappa**2 * (1 - beta2) / (1 + beta2)
    return math.sqrt(math.pi / 2) * math.sqrt(2 * lr * weight_decay) * math.sqrt(spread)


class LionAR(Lion):
    __doc__ = (
        r"""LionAR: rotational Lion (Kosson, Messmer, Jaggi 2024, arXiv:2410.23922); foreach.

    It builds on the rotational Lion of the same authors' earlier "Rotational Equilibrium: How Weight Decay
    Balances Learning Across Neural Networks" (arXiv:2305.17212).

    Each matrix (ndim >= 2) is viewed as rows w (neurons: the first dimension indexes them; the rest is the
    row). At its first step each row is made zero-mean and its norm n0 is stored; then, per step t >= 1:

        c   = sign(b1 m_{t-1} + (1 - b1) g_t)                 (Nesterov: sign(b1 m_t + (1 - b1) g_t))
        d   = c - mean_row(c);   d <- d - w <d, w>_row / n0^2  (zero-mean, orthogonal to w)
        a  <- r a + (1 - r) ||d||^2_row,   a_hat = sqrt(a / (1 - r^t))                    (r = 0.9)
        eta_r = sqrt(pi/2) sqrt(2 eta lambda) sqrt((1 - kappa)^2 + kappa^2 (1 - b2)/(1 + b2))
        w  <- w - f_t eta_r n0 d / (a_hat + 1e-8);   w <- w n0 / ||w||_row
        m_t = b2 m_{t-1} + (1 - b2) g_t

    kappa = b1 (b1 b2 with Nesterov); f_t = 1 unless ``inverse_bias_correction`` or ``snr_gain`` shrink it.
    Every row keeps norm n0 and mean zero, and turns by the angle atan(f_t eta_r ||d|| / a_hat), which is
    f_t eta_r up to O(eta_r^3) once ||d|| is steady: the rotational equilibrium of Lion with weight decay
    lambda, reached from the first step. ``weight_decay`` (> 0) therefore sets the angular update and is not
    applied as a decay to matrices; the projection replaces it. Vectors and scalars (biases, gains), rows of
    one entry and the tensors of groups with ``rotational=False`` get plain :class:`Lion` (with decay).

    The first ``step`` modifies the weights: each matrix row is centred (rows that are then zero raise an
    InputError; put such tensors in a group with ``rotational=False``).
    """
        + _FAMILY_OPTIONS
        + """
    Extra argument: ``rotational`` (default True; per group). State per rotating tensor adds ``row_norm`` (n0)
    and ``update_sq_ema`` (a), both of shape (rows, 1, ...).
    """
    )

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        weight_decay: float = 0.1,
        *,
        rotational: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, lr, weight_decay=weight_decay, _extra={"rotational": rotational}, **kwargs)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        super()._init_state(p, group)
        if not is_rotational(p, group):
            return
        if group["weight_decay"] <= 0:
            raise InputError(
                f"LionAR: weight_decay={group['weight_decay']!r} gives matrices (here of shape {tuple(p.shape)}) "
                "no angular update; use weight_decay > 0 or rotational=False for that group"
            )
        dims = tuple(range(1, p.ndim))
        work = p.float() if p.dtype in (torch.bfloat16, torch.float16) else p
        p.copy_(work - work.mean(dims, keepdim=True))
        row_norm = torch.linalg.vector_norm(p, dim=dims, keepdim=True, dtype=work.dtype)
        if not bool((row_norm > 0).all()):
            raise InputError(
                f"LionAR: a parameter of shape {tuple(p.shape)} has a row that is constant (zero after "
                "centring), so it has no direction to rotate; initialize it randomly or use rotational=False"
            )
        state = self.state[p]
        state["row_norm"] = row_norm
        state["update_sq_ema"] = torch.zeros_like(row_norm)

    def _apply(self, step: LionStep) -> None:
        """Rotate each matrix's rows by f_i eta_r (see the class docstring); the other tensors get Lion's update."""
        plain = [i for i, s in enumerate(step.states) if "row_norm" not in s]
        rotating = [i for i, s in enumerate(step.states) if "row_norm" in s]
        if plain:
            super()._apply(step.subset(plain))
        group = step.group
        angle = equilibrium_angle(group["lr"], group["weight_decay"], group["betas"], group["nesterov"])
        if group["inverse_bias_correction"]:
            angle *= 1 - group["betas"][1] ** step.t
        rms_bias = 1 - RMS_EMA**step.t
        for i in rotating:
            state = step.states[i]
            factor = angle if step.factors is None else angle * step.factors[i]
            _rotate(step.params[i], step.direction[i], state["row_norm"], state["update_sq_ema"], factor, rms_bias)

    def _fused_batch(self, group, t, params, grads, states, factors) -> list[int]:
        """Rotating matrices' whole steps in two compiled calls (rows as (rows, row length)); the other tensors get
        Lion's. Hyperparameters: Lion's, 1 - r^t, and per matrix the angle eta_r f_i (times 1 - b2^t with inverse
        bias correction)."""
        undone = []
        for rotates in (False, True):
            part = [i for i, s in enumerate(states) if ("row_norm" in s) == rotates]
            if not part:
                continue
            pick = [[xs[i] for i in part] for xs in (params, grads, states)]
            part_factors = None if factors is None else [factors[i] for i in part]
            if not rotates:
                undone += [part[j] for j in super()._fused_batch(group, t, *pick, part_factors)]
            elif not self._fused_rotate(group, t, *pick, part_factors):
                undone += part
        return undone

    def _fused_rotate(self, group, t, params, grads, states, factors) -> bool:
        """The rotation of each matrix in ``params`` in two compiled calls (row sums, then the update); False if it
        cannot be compiled here (then nothing has been written)."""
        if not _compiled.available("rotation_coefficients", "lion_rotational"):
            return False
        dtype = params[0].dtype
        angle = equilibrium_angle(group["lr"], group["weight_decay"], group["betas"], group["nesterov"])
        if group["inverse_bias_correction"]:
            angle *= 1 - group["betas"][1] ** t
        hyper = torch.cat((self._fused_hyper(group, dtype), torch.tensor([1 - RMS_EMA**t], dtype=dtype)))
        momenta = [s["exp_avg"] for s in states]
        rows = [(w.shape[0], -1) for w in params]
        views = [[x.view(r) for x, r in zip(xs, rows, strict=True)] for xs in (params, grads, momenta)]
        emas = [s["update_sq_ema"].view(w.shape[0], 1) for s, w in zip(states, params, strict=True)]
        norms = [s["row_norm"].view(w.shape[0], 1) for s, w in zip(states, params, strict=True)]
        angles = _compiled.per_tensor(angle, factors, len(params), dtype)
        ok, sums = _compiled.run("rotation_coefficients", *views, norms, emas, hyper, angles)
        if not ok:
            return False
        coefficients, new_emas = sums
        ok, _ = _compiled.run("lion_rotational", *views, coefficients, hyper)
        if ok:
            torch._foreach_copy_(emas, list(new_emas.split([w.shape[0] for w in params])))
        return ok


def _rotate(
    w: torch.Tensor,
    c: torch.Tensor,
    row_norm: torch.Tensor,
    update_sq_ema: torch.Tensor,
    angle: float | torch.Tensor,
    rms_bias: float,
) -> None:
    """One rotational step of the rows of ``w`` (in place) towards -d, with d built from ``c``.

    Uses mean_row(w) = 0 and ||w||_row = n0 (kept by every previous step) to get d's coefficients from row
    reductions instead of materializing d: d = c - mean(c) - k w with k = <c, w>/n0^2, and
    ||d||^2 = ||c||^2 - C mean(c)^2 - k^2 n0^2 (C the row length). The final rescale uses the measured norm,
    so rounding (bfloat16 weights above all) cannot make the norm drift. Rows whose d vanishes stay put.
    """
    dims = tuple(range(1, w.ndim))
    row_length = w.numel() // w.shape[0]
    n0_sq = row_norm.square()
    mean_c = c.mean(dims, keepdim=True)
    radial = (c * w).sum(dims, keepdim=True) / n0_sq
    c_sq = torch.linalg.vector_norm(c, dim=dims, keepdim=True).square_()
    d_sq = c_sq - row_length * mean_c.square() - radial.square() * n0_sq
    # d = 0 (c constant along the row, or parallel to w; always so for rows of two) shows up as rounding
    # residue of the subtraction above: such rows do not move
    moving = d_sq > DEGENERATE * c_sq
    d_sq.mul_(moving)
    update_sq_ema.lerp_(d_sq, 1 - RMS_EMA)
    step = (update_sq_ema / rms_bias).sqrt_().add_(RMS_EPS).reciprocal_().mul_(row_norm).mul_(angle)
    step.mul_(moving)
    # w - step * d = w (1 + step k) + step mean(c) - step c
    w.mul_(1 + step * radial).add_(step * mean_c).addcmul_(c, step, value=-1.0)
    w.mul_(row_norm / torch.linalg.vector_norm(w, dim=dims, keepdim=True))
