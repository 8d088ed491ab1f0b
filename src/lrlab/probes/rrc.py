"""Relative representation change (RRC) of every Linear layer (Kosson, Messmer, Jaggi 2024, arXiv:2410.23922).

For a layer y = W x and its update dW, on the inputs x the layer saw in this step's first micro-batch:

    rrc/<layer> = mean_x ||dW x|| / mean_x ||W x||          (bias excluded: it does not depend on x)

``rrc`` is the mean over layers. Inputs are captured with forward pre-hooks registered only on probe steps and
removed after the backward pass; at most ``max_rows`` (256) evenly strided rows (tokens) per layer are kept, in
float32. Cost on a probe step: the captured rows, one copy of the Linear weights, and one small matmul per layer.
Early in training, when the gradient SNR is high, updates align with the inputs and RRC is far larger than the
relative update norm suggests; that gap is what warmup (or LionAR's SNR factor) controls.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lrlab.probes.base import Probe, log_rank0


def relative_representation_change(w_before: torch.Tensor, w_after: torch.Tensor, x: torch.Tensor) -> float:
    """mean_rows ||(W' - W) x|| / mean_rows ||W x|| for inputs ``x`` of shape (rows, in_features)."""
    w = w_before.float()
    both = x.float() @ torch.cat([w_after.float() - w, w]).T  # one matmul: [dW x, W x] side by side
    change, base = both.split(w.shape[0], dim=1)
    return (change.norm(dim=1).mean() / base.norm(dim=1).mean()).item()


class RRCProbe(Probe):
    """Logs ``rrc/<layer>`` for every ``nn.Linear`` and their mean ``rrc`` at probe steps."""

    name = "rrc"

    def __init__(self, every: int = 10, max_rows: int = 256) -> None:
        super().__init__(every)
        self.max_rows = max_rows
        self._inputs: dict[str, torch.Tensor] = {}
        self._weights: dict[str, torch.Tensor] = {}

    def _capture(self, name: str):
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            if name in self._inputs:  # keep the first micro-batch only
                return
            x = args[0].detach().reshape(-1, args[0].shape[-1])
            stride = max(1, x.shape[0] // self.max_rows)
            self._inputs[name] = x[::stride][: self.max_rows].float().clone()

        return hook

    def on_step_start(self, ctx: Any) -> None:
        self.remove_hooks()
        self._inputs, self._weights = {}, {}
        if not self.active(ctx.step):
            return
        self._modules = {name: m for name, m in ctx.model.named_modules() if isinstance(m, nn.Linear)}
        for name, module in self._modules.items():
            self._weights[name] = module.weight.detach().clone()
            self._handles.append(module.register_forward_pre_hook(self._capture(name)))

    def after_backward(self, ctx: Any) -> None:
        self.remove_hooks()  # evaluation passes later in the step must not be captured

    def after_step(self, ctx: Any) -> None:
        if not self._weights:
            return
        values = {
            f"rrc/{name}": relative_representation_change(w, self._modules[name].weight.detach(), self._inputs[name])
            for name, w in self._weights.items()
            if name in self._inputs
        }
        if values:
            values["rrc"] = sum(values.values()) / len(values)
            log_rank0(ctx, values)
        self._inputs, self._weights = {}, {}
