"""Loss curves over the LR schedule that produced them (matplotlib's Figure API: no pyplot, no backend change).

Stacked panels share the step axis: the loss (observed points, the law's curve and its band), the relative
residual (pred - y) / y in percent (only when there are observations), and the LR schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lrlab.report.figures import save_figure


@dataclass
class Series:
    """One schedule's curve: the law at ``steps`` (``lo``/``hi`` optional band), observations optional."""

    name: str
    lr: np.ndarray
    steps: np.ndarray
    pred: np.ndarray
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    obs_steps: np.ndarray | None = None
    obs_loss: np.ndarray | None = None
    obs_pred: np.ndarray | None = None  # the law at obs_steps, for residuals


def plot_series(series: list[Series], path: str | Path, title: str) -> Path:
    """Write the figure for ``series`` to ``path`` (format from the suffix: .png, .svg or .pdf)."""
    observed = any(s.obs_pred is not None for s in series)
    ratios = [3, 1.2, 1.2] if observed else [3, 1.2]
    fig = Figure(figsize=(9, 9), layout="constrained")
    axes = fig.subplots(len(ratios), 1, sharex=True, gridspec_kw={"height_ratios": ratios})
    ax_loss, ax_lr = axes[0], axes[-1]
    ax_res = axes[1] if observed else None
    for i, s in enumerate(series):
        color = f"C{i % 10}"
        if s.obs_steps is not None:
            ax_loss.plot(s.obs_steps, s.obs_loss, ".", ms=3, color=color, alpha=0.6)
            if ax_res is not None and s.obs_pred is not None:
                ax_res.plot(s.obs_steps, 100 * (s.obs_pred - s.obs_loss) / s.obs_loss, "-", lw=1, color=color)
        ax_loss.plot(s.steps, s.pred, "-", lw=1.2, color=color, label=s.name)
        if s.lo is not None and s.hi is not None:
            ax_loss.fill_between(s.steps, s.lo, s.hi, color=color, alpha=0.15, lw=0)
        ax_lr.plot(np.arange(len(s.lr)), s.lr, "-", lw=1, color=color)
    lows = [np.min(s.pred) for s in series] + [np.min(s.obs_loss) for s in series if s.obs_loss is not None]
    highs = [np.quantile(s.pred, 0.98) for s in series]
    pad = 0.05 * (max(highs) - min(lows))
    ax_loss.set_ylim(min(lows) - pad, max(highs) + pad)
    ax_loss.set_ylabel("loss")
    ax_loss.set_title(title)
    ax_loss.legend(fontsize=8)
    if ax_res is not None:
        ax_res.axhline(0.0, color="k", lw=0.5)
        ax_res.set_ylabel("(pred - y) / y  [%]")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("optimizer step")
    for ax in axes:
        ax.grid(alpha=0.3)
    return save_figure(fig, path)
