"""Plots of the initial-LR searches: the LR range test curve and the catapult search trials."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lrlab.probes import CatapultResult, RangeTestResult
from lrlab.report.figures import save_figure


def plot_range_test(result: RangeTestResult, path: Path) -> Path:
    """Loss (raw and smoothed) against LR on a log axis, with the suggestions marked."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(result.lrs, result.losses, color="0.7", lw=1, label="batch loss")
    ax.plot(result.lrs, result.smoothed, lw=2, label="smoothed")
    for (name, lr), color in zip(result.suggestions.items(), ("tab:red", "tab:green"), strict=False):
        ax.axvline(lr, color=color, ls="--", lw=1, label=f"{name}: {lr:.2e}")
    finite = result.smoothed[np.isfinite(result.smoothed)]
    if finite.size:  # from the lowest loss seen to twice the starting loss, so a blow-up does not flatten the rest
        low = np.nanmin(np.where(np.isfinite(result.losses), result.losses, np.nan))
        ax.set_ylim(low - 0.02 * abs(low), min(finite.max(), 2 * finite[0]) * 1.05)
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss", title="LR range test")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_catapult(result: CatapultResult, path: Path) -> Path:
    """Each trial's loss change (after / before) against its LR; catapults in red, eta_c marked."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    for trial in result.trials:
        worst = max(trial.losses)
        ratio = worst / trial.start_loss if worst == worst else float("inf")
        ax.scatter(trial.lr, min(ratio, 10.0), color="tab:red" if trial.catapult else "tab:blue", zorder=3)
    ax.axhline(1.0, color="0.5", lw=1)
    ax.axvline(result.eta_c, color="k", ls="--", lw=1, label=f"eta_c = {result.eta_c:.3g}")
    ax.set(
        xscale="log",
        xlabel="learning rate of the trial",
        ylabel="max loss after / loss before (capped at 10)",
        title="catapult search (red: loss rose)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
