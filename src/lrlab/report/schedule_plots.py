"""Plots of learning-rate schedules: LR against optimizer step, linear and log scale side by side."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lrlab.report.figures import save_figure
from lrlab.schedules import Schedule


def plot_schedules(schedules: Mapping[str, Schedule], steps: int, path: Path, title: str | None = None) -> Path:
    """Overlay ``schedules`` (label -> schedule) over steps 0..steps-1 and write a PNG to ``path``."""
    t = np.arange(steps)
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    ax_lin, ax_log = fig.subplots(1, 2)
    for label, schedule in schedules.items():
        lr = schedule(t)
        ax_lin.plot(t, lr, label=label, lw=1.4)
        positive = lr > 0
        ax_log.plot(t[positive], lr[positive], label=label, lw=1.4)
    ax_lin.set(xlabel="optimizer step t", ylabel="learning rate lr(t)", title="linear scale")
    ax_log.set(xlabel="optimizer step t", ylabel="learning rate lr(t)", title="log scale (LR > 0)", yscale="log")
    for ax in (ax_lin, ax_log):
        ax.grid(alpha=0.3)
    ax_lin.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
