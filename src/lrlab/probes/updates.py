"""Update sizes: L2 norm, relative norm and per-neuron angle of each weight matrix's update.

These are the update-size measures of Kosson, Messmer, Jaggi 2024, arXiv:2410.23922.

For a weight W (rows = neurons, higher-dim tensors flattened to rows) and its update dW = W_{t+1} - W_t:

- ``update_norm/<param>`` = ||dW||_F and ``update_rel/<param>`` = ||dW||_F / ||W_t||_F;
- ``angle/<param>/mean`` and ``angle/<param>/max`` over rows i of angle(w_i, w_i') in radians, computed as
  2 atan2(||a - b||, ||a + b||) with a, b the unit rows (exact for small angles, where arccos of a dot product
  loses half the digits);
- ``update_norm`` and ``update_rel``: the same over all matrices together.

Cost on a probe step: one copy of the matrices before the optimizer step and a few foreach passes after it.
"""

from __future__ import annotations

from typing import Any

import torch

from lrlab.probes.base import Probe, log_rank0, matrices


def row_angles(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Angle in radians between corresponding rows of two tensors (flattened to 2-d), in float32."""
    a = before.reshape(before.shape[0], -1).float()
    b = after.reshape(after.shape[0], -1).float()
    a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-30)
    b = b / b.norm(dim=1, keepdim=True).clamp_min(1e-30)
    return 2 * torch.atan2((a - b).norm(dim=1), (a + b).norm(dim=1))


class UpdateProbe(Probe):
    """Logs update norms, relative norms and per-neuron angles of every weight matrix at probe steps."""

    name = "updates"

    def __init__(self, every: int = 10) -> None:
        super().__init__(every)
        self._before: list[torch.Tensor] | None = None

    def on_step_start(self, ctx: Any) -> None:
        self._params = matrices(ctx.model)
        self._before = [p.detach().clone() for _, p in self._params] if self.active(ctx.step) else None

    def after_step(self, ctx: Any) -> None:
        if self._before is None:
            return
        after = [p.detach() for _, p in self._params]
        delta = torch._foreach_sub(after, self._before)
        d_norm = torch.stack(torch._foreach_norm(delta)).float()
        w_norm = torch.stack(torch._foreach_norm(self._before)).float()
        angles = [row_angles(b, a) for b, a in zip(self._before, after, strict=True)]
        stats = torch.stack([torch.stack([x.mean(), x.max()]) for x in angles]).tolist()
        values = {"update_norm": d_norm.norm().item(), "update_rel": (d_norm.norm() / w_norm.norm()).item()}
        for (name, _), dn, wn, (mean, worst) in zip(self._params, d_norm.tolist(), w_norm.tolist(), stats, strict=True):
            values[f"update_norm/{name}"] = dn
            values[f"update_rel/{name}"] = dn / wn if wn > 0 else float("inf")
            values[f"angle/{name}/mean"] = mean
            values[f"angle/{name}/max"] = worst
        log_rank0(ctx, values)
        self._before = None
