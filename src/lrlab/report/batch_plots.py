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
from matplotlib.ticker import FuncFormatter, NullFormatter

from lrlab.laws.batch import GridFit
from lrlab.laws.batch.steps import StepsFit
from lrlab.laws.batch.training import AtStep, AtTarget
from lrlab.report.figures import save_figure

CURVE_POINTS = 200
MAX_PANELS = 12  # groups drawn in one figure; more would make an image no one can read
COLUMNS = 3


def plain(text: object) -> str:
    """User text (a group name) for a figure: ``$`` escaped, so matplotlib never reads it as math."""
    return str(text).replace("$", r"\$")


def plot_surge(
    fits: list[GridFit], path: str | Path, title: str, training: list[tuple[list[AtStep], list[AtTarget]]] | None = None
) -> Path:
    """The first :data:`MAX_PANELS` grids (groups), :data:`COLUMNS` a row: the loss heatmap with optima and laws;
    below each, when ``training`` has records for it, B_noise and eps_max against the loss reached."""
    fits = fits[:MAX_PANELS]
    cols = min(len(fits), COLUMNS)
    per_group = 2 if training else 1
    rows = per_group * -(-len(fits) // cols)
    fig = Figure(figsize=(6.2 * cols, 5.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for i, g in enumerate(fits):
        row, col = per_group * (i // cols), i % cols
        axes[row, col].set_visible(True)
        _heatmap(fig, axes[row, col], g)
        if training and (training[i][0] or training[i][1]):
            axes[row + 1, col].set_visible(True)
            _training(axes[row + 1, col], *training[i])
    fig.suptitle(title)
    return save_figure(fig, path)


def _heatmap(fig: Figure, ax, g: GridFit) -> None:
    grid = g.grid.final()
    finite = np.isfinite(grid.loss)
    lo, hi = (np.min(grid.loss[finite]), np.quantile(grid.loss[finite], 0.9)) if finite.any() else (0, 1)
    norm = Normalize(lo, max(hi, lo + 1e-9))
    art = ax.scatter(grid.lr[finite], grid.batch_size[finite], c=grid.loss[finite], cmap="viridis_r", norm=norm,
                     marker="s", s=260, edgecolors="none")  # fmt: skip
    if not finite.all():
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
    ax.set_title(plain(g.name or "grid"), fontsize=10)
    ax.xaxis.set_minor_formatter(NullFormatter())  # decade labels only: minor labels overlap on narrow ranges
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=1, frameon=False)


def _training(ax, by_step: list[AtStep], by_target: list[AtTarget]) -> None:
    """B_noise (the surge law's peak at each step count; steps vs examples at each target loss) and the surge
    law's eps_max, against the loss reached: the best run's loss at that step count, or the target. Hollow
    markers: a peak beyond the measured batch sizes (a bound)."""
    surge = [(a, a.fit.fits["surge"]) for a in by_step if a.fit is not None and "surge" in a.fit.fits]
    if surge:
        reached = np.array([min(o.loss for o in a.fit.optima) for a, _ in surge])
        peak = np.array([f.params["b_noise"] for _, f in surge])
        bound = np.array([f.b_noise_bound is not None for _, f in surge])
        ax.plot(reached, peak, "-", color="C1", lw=1)
        ax.plot(reached[~bound], peak[~bound], "o", color="C1", label="B_noise: surge peak")
        if bound.any():
            ax.plot(reached[bound], peak[bound], "o", mfc="none", color="C1", label="surge peak beyond the grid")
        twin = ax.twinx()
        twin.plot(reached, [f.params["eps_max"] for _, f in surge], "s--", color="C2", label="eps_max (surge)")
        twin.set_ylabel("eps_max (best LR at the peak)")
        twin.set_yscale("log")
        twin.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        twin.yaxis.set_minor_formatter(NullFormatter())
        twin.legend(fontsize=7, loc="lower right")
    steps = [a for a in by_target if a.fit is not None and np.isfinite(a.fit.b_noise) and a.fit.b_noise > 0]
    if steps:
        value = np.array([a.fit.b_noise for a in steps])
        lo = np.array([a.fit.intervals["b_noise"][0] for a in steps])
        hi = np.array([a.fit.intervals["b_noise"][1] for a in steps])
        hi = np.where(np.isfinite(hi), hi, 10 * value)  # an unbounded end drawn as a long bar
        ax.errorbar([a.target for a in steps], value, yerr=[value - np.maximum(lo, value / 10), hi - value],
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
                label=f"{plain(name or 'all')}: B_noise {f.b_noise:.3g} [{f.intervals['b_noise'][0]:.3g}, "
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
