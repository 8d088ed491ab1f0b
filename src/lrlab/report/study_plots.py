"""The study report's figures (matplotlib's object API): one function a figure, each reading a StudyResult."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from lrlab.store.db import Store
from lrlab.study import StudyResult

WIDE, TALL = (11.0, 3.8), (11.0, 4.4)


def _finish(*axes) -> None:
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)


def lr_search(result: StudyResult, store: Store) -> Figure:
    """Range-test loss against LR per optimizer, with the chosen LR and eta_c marked."""
    fig = Figure(figsize=WIDE, layout="constrained")
    ax = fig.subplots()
    for k, e in enumerate(result.warmup.evidence):
        _, lrs = store.curve(e.range_run["id"], "range_lr")
        _, smoothed = store.curve(e.range_run["id"], "range_smoothed")
        ax.plot(lrs, smoothed, color=f"C{k}", label=f"{e.optimizer}: range test (smoothed)")
        ax.axvline(e.range_lr, color=f"C{k}", ls="--", lw=1, label=f"{e.optimizer}: chosen LR {e.range_lr:.3g}")
        if e.eta_c:
            ax.axvline(e.eta_c, color=f"C{k}", ls=":", lw=1, label=f"{e.optimizer}: catapult eta_c {e.eta_c:.3g}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss", title="LR range test from the initial weights")
    _finish(ax)
    return fig


def warmup_runs(result: StudyResult, store: Store) -> Figure:
    """Loss, relative update size and RRC of the short runs with and without warmup."""
    fig = Figure(figsize=(11.0, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    metrics = (("val_loss", "validation loss"), ("update_rel", "||dW|| / ||W||"), ("rrc", "relative repr. change"))
    for k, e in enumerate(result.warmup.evidence):
        for label, run in e.runs.items():
            ls = "-" if label == "warmup" else "--"
            for ax, (name, _) in zip(axes, metrics, strict=True):
                steps, values = store.curve(run["id"], name)
                ax.plot(
                    steps,
                    values,
                    color=f"C{k}",
                    ls=ls,
                    marker="o" if name == "val_loss" else None,
                    ms=3,
                    label=f"{e.optimizer}, {label}",
                )
    for ax, (_, ylabel) in zip(axes, metrics, strict=True):
        ax.set(xlabel="optimizer step", ylabel=ylabel)
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    _finish(*axes)
    return fig


def lr_batch_heatmap(result: StudyResult) -> Figure:
    """Final loss of every grid cell (LR x batch size), each batch size's best LR, and the fitted law."""
    b = result.batch
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    lrs, batches = list(b.lrs), sorted(b.steps)
    table = np.full((len(lrs), len(batches)), np.nan)
    for run in b.runs:
        value = run["final"].get("final_val_loss")
        if run["status"] == "done" and isinstance(value, int | float):
            table[lrs.index(run["cell"]["lr"]), batches.index(run["cell"]["batch_size"])] = value
    mesh = ax.imshow(table, origin="lower", aspect="auto", cmap="viridis_r")
    fig.colorbar(mesh, ax=ax, label="final validation loss (blank: diverged)")
    ax.set_xticks(range(len(batches)), [str(x) for x in batches])
    ax.set_yticks(range(len(lrs)), [f"{x:.3g}" for x in lrs])
    log_lr = np.log(lrs)

    def y_of(lr):  # an LR on the heatmap's index axis (the LRs are geometric)
        return np.interp(np.log(lr), log_lr, np.arange(len(lrs)), left=-0.5, right=len(lrs) - 0.5)

    optima = [o for o in b.optima if np.isfinite(o.loss)]
    ax.plot(
        [batches.index(int(o.batch_size)) for o in optima],
        [y_of(o.best_lr) for o in optima],
        "wo",
        mec="k",
        label="best LR per batch size",
    )
    if b.grid_fit is not None:
        x = np.linspace(0, len(batches) - 1, 50)
        ax.plot(
            x,
            y_of(b.grid_fit.fit.best_lr(np.exp(np.interp(x, range(len(batches)), np.log(batches))))),
            "w-",
            label=f"{b.grid_fit.law} law",
        )
    ax.plot([batches.index(b.batch_size)], [y_of(b.lr)], "r*", ms=14, label="recommended")
    ax.set(xlabel="batch size (sequences)", ylabel="peak LR", title="grid at equal tokens")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def noise_scale(result: StudyResult, store: Store) -> Figure:
    """The gradient noise scale B_simple (gns probe) over each grid run, by batch size."""
    fig = Figure(figsize=WIDE, layout="constrained")
    ax = fig.subplots()
    for k, batch in enumerate(sorted(result.batch.steps)):
        for i, run in enumerate(r for r in result.batch.runs if r["cell"]["batch_size"] == batch):
            tokens_per_step = run["config"]["batch_size"] * run["config"]["seq_len"]
            steps, values = store.curve(run["id"], "gns")
            ax.plot(
                steps * tokens_per_step,
                values,
                color=f"C{k}",
                alpha=0.7,
                label=f"batch size {batch}" if i == 0 else None,
            )
    ax.axhline(result.batch.batch_size, color="k", ls="--", lw=1, label="recommended batch size")
    ax.set(xlabel="training tokens", ylabel="B_simple (sequences)", yscale="log", title="gradient noise scale")
    _finish(ax)
    return fig


def pilots_and_fits(result: StudyResult) -> Figure:
    """The schedule pilots' validation curves and every law's fit."""
    s = result.schedule
    fig = Figure(figsize=WIDE, layout="constrained")
    ax = fig.subplots()
    for k, c in enumerate(s.curves):
        ax.plot(c.steps, c.loss, "o", color=f"C{k}", ms=3, label=f"pilot: {c.name}")
        for j, (law, f) in enumerate(s.fits.items()):
            ax.plot(
                c.steps,
                f.predict(c.lr, c.steps),
                color=f"C{k}",
                lw=1,
                ls=("-", "--", ":", "-.")[j % 4],
                label=law if k == 0 else None,
            )
    ax.set(xlabel="optimizer step", ylabel="validation loss", title="schedule pilots and the laws fitted on them")
    _finish(ax)
    return fig


def candidates(result: StudyResult) -> Figure:
    """Each family's best schedule (by the ranking law, as the choice is made) and its predicted loss curve: the
    median of the laws, with their range."""
    s = result.schedule
    best = {}
    for c in s.candidates:
        if c.name not in best or c.score(s.auto) < best[c.name].score(s.auto):
            best[c.name] = c
    fig = Figure(figsize=TALL, layout="constrained")
    ax_lr, ax_loss = fig.subplots(1, 2)
    t = np.arange(s.total)
    steps = np.unique(np.linspace(max(2 * s.warmup, 1), s.total - 1, 60).astype(int))
    for k, c in enumerate(best.values()):
        mark = " (recommended)" if c is s.chosen else ""
        ax_lr.plot(t, c.schedule.values(s.total), color=f"C{k}", label=f"{c.name}{mark}")
        pred, lo, hi = s.predicted_curve(c, steps)
        ax_loss.plot(steps, pred, color=f"C{k}", label=f"{c.name}: {c.loss:.4f}")
        ax_loss.fill_between(steps, lo, hi, color=f"C{k}", alpha=0.12)
    ax_lr.set(xlabel="optimizer step", ylabel="learning rate", title="the best schedule of each family")
    ax_loss.set(
        xlabel="optimizer step", ylabel="predicted validation loss", title="median of the laws, and their range"
    )
    _finish(ax_lr, ax_loss)
    return fig


def verification(result: StudyResult) -> Figure:
    """The recommendation's observed curve against the predicted one and the laws' range."""
    v, s = result.verification, result.schedule
    fig = Figure(figsize=WIDE, layout="constrained")
    ax = fig.subplots()
    steps = np.unique(np.linspace(max(2 * s.warmup, 1), s.total - 1, 80).astype(int))
    pred, lo, hi = s.predicted_curve(s.chosen, steps)
    ax.plot(steps, pred, color="C1", label="predicted (median of the laws)")
    ax.fill_between(steps, lo, hi, color="C1", alpha=0.15, label="range of the laws")
    ax.plot(v.steps, v.observed, "k.", ms=4, label="observed")
    ax.set(xlabel="optimizer step", ylabel="validation loss", title="--verify: the recommendation trained to the end")
    _finish(ax)
    return fig
