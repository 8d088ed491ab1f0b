"""The Lion family's ``fused=True`` path: a parameter group's update in one or two compiled calls (torch.compile).

Why: on the CPU the foreach path makes about six passes over each tensor (lerp, lerp_, sign_, decay, add, and
LionAR's row reductions), where torch's fused AdamW makes one. The update is memory bound, so passes are what
costs: Lion's kernel reads a tensor's weights, gradient and momentum once and writes weights and momentum once
(5 tensor-sized memory streams, against fused AdamW's 7). LionA and LionAR need a row's sums before any of its
weights moves, so they take two calls: a read-only pass of row sums (LionA: g and m, 2 streams; LionAR: w, g
and m, 3), then Lion's read-and-write pass with each row's coefficients (5). One call covers every large tensor
of the group: a call per tensor would spend tens of microseconds each in torch.compile's guards and wrappers.

- Each kernel takes lists of tensors and is compiled on its first call with the sizes it sees fixed (torch's
  automatic dynamic shapes, ``dynamic=None``): a training run steps one model, and fixed sizes make the step
  faster (LionAR 1.9x torch's fused AdamW against 2.37x with ``dynamic=True``, benchmarks/optim.py). A call
  whose sizes differ recompiles with the dimensions that changed made symbolic (another model, or a second group
  with as many large tensors); calls that match an earlier graph's fixed sizes keep running it
  (``automatic_dynamic_exclusion_guard``). Each compile takes seconds (LionAR's two kernels about 16 s here,
  plus about 9 s of Inductor start-up for a process's first compile); Inductor's on-disk cache makes a later
  process's compile of the same sizes a few seconds, but a sweep over model sizes compiles each size anew.
  The CPU backend needs a C++ compiler; where compiling fails, :func:`run` says so in one warning and the optimizer
  keeps its foreach path.
- Hyperparameters enter as tensors (``hyper``, and one scale per tensor), so a new LR every step (a schedule)
  or a new SNR factor recompiles nothing.
- Only contiguous float32/float64 CPU tensors of at least ``MIN_ELEMENTS`` entries take this path
  (:func:`fusable`): the small ones (biases, gains) are a sliver of the work, and on GPUs the foreach ops are
  already horizontally fused.

Formulas (per tensor; the optimizers' docstrings give the references): ``kappa`` is b1, or b1 b2 with Nesterov
(then c_t = sign(b1 b2 m_{t-1} + (1 - b1 b2) g_t), the same direction as the foreach path's two lerps). The
interpolation is ``lerp(m, g, 1 - kappa)`` with 1 - kappa computed in float64, as the foreach path's
``_foreach_lerp(m, g, 1 - b1)``: the other order rounds differently, and where b1 m + (1 - b1) g is within
rounding of 0 its sign (so the update of that entry, 2 eta apart) could differ between the two paths.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import torch
from torch._dynamo.exc import BackendCompilerFailed, FailOnRecompileLimitHit
from torch._inductor.exc import CppCompileError

MIN_ELEMENTS = 1 << 14  # smaller tensors stay on the foreach path
# LionAR's row statistics (lion_rotational imports them from here)
RMS_EMA = 0.9  # r: EMA coefficient of the squared update norm per row
RMS_EPS = 1e-8
DEGENERATE = 1e-5  # ||d||^2 below this share of ||c||^2 is rounding residue (float32 eps times row length)


def lion(ws, gs, ms, hyper, scales) -> None:
    """Per tensor i (1-D views): w <- decay w - scales[i] sign(kappa m + (1 - kappa) g);  m <- m + (1 - b2)(g - m).

    ``hyper`` = (1 - kappa, 1 - b2, decay)."""
    one_minus_kappa, one_minus_b2, decay = hyper[0], hyper[1], hyper[2]
    for i, (w, g, m) in enumerate(zip(ws, gs, ms, strict=True)):
        c = torch.sign(torch.lerp(m, g, one_minus_kappa))
        w.copy_(w * decay - scales[i] * c)
        m.copy_(torch.lerp(m, g, one_minus_b2))


def sign_counts(gs, ms, hyper) -> list[torch.Tensor]:
    """LionA's first pass (reads g and m only): ||c||^2 of each row (R, C) of c = sign(lerp(m, g, 1 - kappa)),
    its nonzero count, as an (R, 1) tensor per tensor. The whole row's count must be known before any of its
    weights is written, hence two passes; a reduction that also writes its inputs in place does not compile
    (Inductor 2.13, a KeyError in its CPU outer-loop fusion)."""
    counts = []
    for g, m in zip(gs, ms, strict=True):
        c = torch.sign(torch.lerp(m, g, hyper[0]))
        counts.append((c * c).sum(dim=1, keepdim=True))
    return counts


def lion_normalized(ws, gs, ms, counts, hyper, scales) -> None:
    """LionA's second pass on rows (R, C): u = c sqrt(C) / max(||c||_row, 1), w <- decay w - scales[i] u, and
    m <- m + (1 - b2)(g - m); ``counts`` from :func:`sign_counts`. Both passes compute c by the same ops from the
    same inputs (elementwise, so the same rounding): the count is that of the c applied here."""
    one_minus_kappa, one_minus_b2, decay = hyper[0], hyper[1], hyper[2]
    for i, (w, g, m, count) in enumerate(zip(ws, gs, ms, counts, strict=True)):
        c = torch.sign(torch.lerp(m, g, one_minus_kappa))
        w.copy_(w * decay - scales[i] * c * torch.rsqrt(count.clamp(min=1.0) / c.shape[1]))
        m.copy_(torch.lerp(m, g, one_minus_b2))


def rotation_coefficients(ws, gs, ms, row_norms, update_sq_emas, hyper, angles):
    """LionAR's first pass (reads w, g and m): per row (R, C), the coefficients of w' = (a w + b - s c) z, [a, b,
    s, z], and the new ``update_sq_ema``, each tensor's rows stacked in order: (sum R, 4) and (sum R, 1).
    ``hyper`` = (1 - kappa, 1 - b2, decay, 1 - r^t).

    The formulas of ``lion_rotational._rotate`` (d = c - mean(c) - k w, k = <c, w>/n0^2, the step s along -d),
    except the final rescale z = n0 / ||a w + b - s c||: ||a w + b - s c||^2 = a^2 S_ww + C b^2 + s^2 S_cc +
    2ab S_w - 2as S_cw - 2bs S_c comes from row sums of this pass (S_xy = sum_row x y, S_x = sum_row x), so the
    second pass (:func:`lion_rotational`) reads each tensor once more and writes it once. Like the measured norm of
    the foreach path, this keeps rounding from making the norm drift.
    """
    one_minus_kappa, rms_bias = hyper[0], hyper[3]
    sums, lengths, row_angles = [], [], []
    for i, (w, g, m, row_norm) in enumerate(zip(ws, gs, ms, row_norms, strict=True)):
        c = torch.sign(torch.lerp(m, g, one_minus_kappa))
        row_sums = (c, c * c, c * w, w, w * w)
        sums.append(torch.cat([x.sum(dim=1, keepdim=True) for x in row_sums], dim=1))
        lengths.append(torch.full_like(row_norm, w.shape[1]))
        row_angles.append(angles[i].expand_as(row_norm))
    # the per-row algebra once on every tensor's rows stacked: one small kernel to compile, not one per tensor
    s_c, s_cc, s_cw, s_w, s_ww = torch.cat(sums).split(1, dim=1)
    length, row_norm, angle = torch.cat(lengths), torch.cat(row_norms), torch.cat(row_angles)
    n0_sq = row_norm * row_norm
    mean_c = s_c / length
    radial = s_cw / n0_sq
    d_sq = s_cc - length * mean_c * mean_c - radial * radial * n0_sq
    moving = d_sq > DEGENERATE * s_cc
    ema = torch.lerp(torch.cat(update_sq_emas), torch.where(moving, d_sq, 0.0), 1 - RMS_EMA)
    step = torch.where(moving, row_norm * angle / (torch.sqrt(ema / rms_bias) + RMS_EPS), 0.0)
    a, b = 1 + step * radial, step * mean_c
    moved_sq = a * a * s_ww + length * b * b + step * step * s_cc + 2 * (a * b * s_w - a * step * s_cw - b * step * s_c)
    # stacked, not split: views of an intermediate as outputs would be rebuilt in Python on every call
    return torch.cat((a, b, step, row_norm * torch.rsqrt(moved_sq)), dim=1), ema


def lion_rotational(ws, gs, ms, coefficients, hyper) -> None:
    """LionAR's second pass on rows (R, C): w <- (a w + b - s c) z with [a, b, s, z] from
    :func:`rotation_coefficients` (every tensor's rows stacked), and m <- m + (1 - b2)(g - m)."""
    one_minus_kappa, one_minus_b2 = hyper[0], hyper[1]
    per_tensor = coefficients.split([w.shape[0] for w in ws])
    for w, g, m, k in zip(ws, gs, ms, per_tensor, strict=True):
        c = torch.sign(torch.lerp(m, g, one_minus_kappa))
        w.copy_((w * k[:, 0:1] + k[:, 1:2] - k[:, 2:3] * c) * k[:, 3:4])
        m.copy_(torch.lerp(m, g, one_minus_b2))


_KERNELS: dict[str, Callable[..., object]] = {
    "lion": lion,
    "sign_counts": sign_counts,
    "lion_normalized": lion_normalized,
    "rotation_coefficients": rotation_coefficients,
    "lion_rotational": lion_rotational,
}
_failed: set[str] = set()  # kernels that could not be compiled in this process
_warned: set[tuple[str, str]] = set()  # (kernel, reason) already warned about
# raised before a compiled kernel runs (nothing written): the caller's foreach path can take the call instead
_COMPILE_FAILURES = (BackendCompilerFailed, CppCompileError)  # no C++ compiler, an unsupported build


@functools.cache
def _compiled(name: str) -> Callable[..., object]:
    return torch.compile(_KERNELS[name], dynamic=None, fullgraph=True)


def per_tensor(value: float, factors: list[torch.Tensor] | None, n: int, dtype: torch.dtype) -> torch.Tensor:
    """The kernels' ``scales`` (or ``angles``): ``value`` for each of ``n`` tensors, times its SNR factor if given."""
    if factors is None:
        return torch.full((n,), value, dtype=dtype)
    return torch.stack(factors).to(dtype) * value


def fusable(*tensors: torch.Tensor) -> bool:
    """Whether this update can run in a compiled kernel: contiguous float32/float64 CPU tensors, large enough."""
    first = tensors[0]
    return (
        first.device.type == "cpu"
        and first.dtype in (torch.float32, torch.float64)
        and first.numel() >= MIN_ELEMENTS
        and all(t.is_contiguous() and t.dtype == first.dtype for t in tensors)
    )


def available(*names: str) -> bool:
    """Whether none of the kernels ``names`` has failed to compile in this process (a two-pass update checks both
    before its first pass)."""
    return not _failed.intersection(names)


def run(name: str, *args: object) -> tuple[bool, object]:
    """Call kernel ``name``: (True, what it returns), or (False, None), after one warning per process and reason,
    where it cannot be compiled here (then never tried again) or a call needs one compile more than
    torch._dynamo's recompile limit allows (a new number of tensors, dtype or pattern of equal sizes, or a new
    size in a dimension not yet symbolic; later calls with a compiled signature still run compiled). Any other
    error is raised."""
    if name in _failed:
        return False, None
    try:
        # a graph compiled for new sizes must not take over calls that an earlier graph with fixed sizes serves
        # (two groups, or models, with as many tensors): the faster graph keeps them
        with torch._dynamo.config.patch(automatic_dynamic_exclusion_guard=True):
            return True, _compiled(name)(*args)
    except FailOnRecompileLimitHit:
        _warn(name, "was compiled for as many call signatures as torch._dynamo's recompile_limit allows")
    except _COMPILE_FAILURES as exc:
        _failed.add(name)
        _warn(name, f"could not be compiled ({type(exc).__name__}: {str(exc)[:200]})")
    return False, None


def _warn(name: str, reason: str) -> None:
    if (name, reason) not in _warned:
        _warned.add((name, reason))
        warnings.warn(f"lrlab: fused=True: the {name} kernel {reason}; using the foreach path", RuntimeWarning, 4)
