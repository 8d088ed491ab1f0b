"""Batch-size figures (matplotlib's Figure API: no pyplot, no backend change).

- :func:`plot_surge`: the loss over (log LR, log B) as a heatmap of the cells, the best LR of each batch size
  (with its interval; triangles for a bound at the grid's edge), and the fitted laws with their bands; a second
  panel, when given, of the best LR and B_noise as training proceeds.
- :func:`plot_steps`: steps vs examples to a target loss, the fitted hyperbola S = S_min + E_min / B.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from lrlab.laws.batch import GridFit
from lrlab.laws.batch.steps import StepsFit
from lrlab.laws.batch.training import AtStep, AtTarget
from lrlab.report.figures import save_figure

CURVE_POINTS = 200


def plot_surge(
    fits: list[GridFit], path: str | Path, title: str, training: list[tuple[list[AtStep], list[AtTarget]]] | None = None
) -> Path:
    """One column per grid (group): the loss heatmap with optima and laws; below it, when ``training`` is given,
    eps_max and B_noise against the step count of the refit."""
    rows = 2 if training else 1
    fig = Figure(figsize=(6.2 * len(fits), 5.2 * rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, len(fits), squeeze=False))
    for col, g in enumerate(fits):
        _heatmap(fig, axes[0, col], g)
        if training:
            _training(axes[1, col], *training[col])
    fig.suptitle(title)
    return save_figure(fig, path)


def _heatmap(fig: Figure, ax, g: GridFit) -> None:
    grid = g.grid.final()
    finite = np.isfinite(grid.loss)
    lo, hi = (np.min(grid.loss[finite]), np.quantile(grid.loss[finite], 0.9)) if finite.any() else (0, 1)
    norm = Normalize(lo, max(hi, lo + 1e-9))
    art = ax.scatter(grid.lr[finite], grid.batch_size[finite], c=grid.loss[finite], cmap="viridis_r", norm=norm,
                     marker="s", s=260, edgecolors="none")  # fmt: skip
    ax.scatter(grid.lr[~finite], grid.batch_size[~finite], marker="x", color="0.4", s=40, label="diverged")
    fig.colorbar(art, ax=ax, label="final loss (clipped at the 90th percentile)")
    b = np.geomspace(grid.batch_sizes.min() / 1.5, grid.batch_sizes.max() * 1.5, CURVE_POINTS)
    for i, (name, fit) in enumerate(g.fits.items()):
        pred, lo_b, hi_b = fit.band(b)
        chosen = name == g.law
        label = f"{name}{' (chosen)' if chosen else ''}: " + ", ".join(f"{k} {v:.3g}" for k, v in fit.params.items())
        ax.plot(pred, b, "-" if chosen else "--", color=f"C{i + 1}", lw=2 if chosen else 1.2, label=label)
        if chosen or name == "sgd" or name == "surge":
            ax.fill_betweenx(b, lo_b, hi_b, color=f"C{i + 1}", alpha=0.15 if chosen else 0.07, lw=0)
    for o in g.optima:
        if o.is_value:
            ax.errorbar(o.best_lr, o.batch_size, xerr=[[o.best_lr - o.interval[0]], [o.interval[1] - o.best_lr]],
                        fmt="o", color="k", ms=5, capsize=3)  # fmt: skip
        else:
            ax.plot(o.best_lr, o.batch_size, "<" if o.at_grid_edge == "low" else ">", color="r", ms=8)
    ax.set_xscale("log")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel("batch size")
    ax.set_title(g.name or "grid", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=1, frameon=False)


def _training(ax, by_step: list[AtStep], by_target: list[AtTarget]) -> None:
    """B_noise (from the law's peak at each step count, and from steps vs examples at each target loss) and
    eps_max, against the loss reached: the best run's loss at that step count, or the target."""
    peaks = [a.fit for a in by_step if a.fit and "b_noise" in a.fit.fit.params]
    if peaks:
        reached = [min(o.loss for o in g.optima) for g in peaks]
        ax.plot(reached, [g.fit.params["b_noise"] for g in peaks], "o-", color="C1", label="B_noise: law's peak")
        twin = ax.twinx()
        twin.plot(reached, [g.fit.params["eps_max"] for g in peaks], "s--", color="C2", label="eps_max")
        twin.set_ylabel("eps_max (best LR at the peak)")
        twin.set_yscale("log")
        twin.legend(fontsize=7, loc="lower right")
    steps = [a for a in by_target if a.fit is not None]
    if steps:
        ax.errorbar([a.target for a in steps], [a.fit.b_noise for a in steps],
                    yerr=np.array([[a.fit.b_noise - a.fit.intervals["b_noise"][0],
                                    a.fit.intervals["b_noise"][1] - a.fit.b_noise] for a in steps]).T,
                    fmt="^-", color="C3", capsize=3, label="B_noise: steps vs examples")  # fmt: skip
    ax.invert_xaxis()  # training runs left to right: the loss falls
    ax.set_xlabel("loss reached (best run) / target loss")
    ax.set_yscale("log")
    ax.set_ylabel("B_noise (batch units)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def plot_steps(fits: dict[str, StepsFit], path: str | Path, title: str) -> Path:
    """Steps against examples (log-log) for every group, the fitted hyperbola, and each group's B_noise."""
    fig = Figure(figsize=(8, 6), layout="constrained")
    ax = fig.subplots()
    for i, (name, f) in enumerate(fits.items()):
        color = f"C{i % 10}"
        ax.plot(f.steps * f.batch_size, f.steps, "o", color=color, ms=5)
        b = np.geomspace(f.batch_size.min() / 2, f.batch_size.max() * 2, CURVE_POINTS)
        ax.plot(f.examples_at(b), f.steps_at(b), "-", color=color, lw=1.2,
                label=f"{name or 'all'}: B_noise {f.b_noise:.3g} [{f.intervals['b_noise'][0]:.3g}, "
                      f"{f.intervals['b_noise'][1]:.3g}]")  # fmt: skip
        ax.axhline(f.s_min, color=color, lw=0.5, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("examples E = steps x batch size")
    ax.set_ylabel("steps S to the target loss")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, path)
