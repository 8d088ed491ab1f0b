"""Study part 3: predict a schedule's loss curve from two cheap runs (the momentum law, Tissue et al. 2024,
arXiv:2408.11029; the multi-power law, Luo et al. 2025, arXiv:2503.12811).

The tiny GPT is trained with a constant and a cosine schedule; each loss-curve law (and ``auto``, the law
``lrlab fit`` chooses by default, lrlab.laws.select) is fitted to those two validation curves and then predicts
a third schedule (WSD, linear decay over the last 20%) before that run is looked at. The held-out run is then
trained and the prediction scored: PredE = mean |pred - y| / y over its evaluations, the same over the decay
phase alone (the last 20%, the only part where WSD and constant differ), and the relative error of the final
loss. Fits and scores use the evaluations from step 2 x warmup on: the laws
describe training after warmup, as in the papers' data.

The baseline row, "no law: constant run", predicts the held-out run by the constant run's own curve: WSD and
constant train alike (same seed, same batches) until the decay starts, so over the whole run that baseline is
hard to beat, and a law earns its keep on the decay phase and the final loss.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lrlab.errors import InputError
from lrlab.files import atomic_write
from lrlab.laws import Curve, curve_metrics, fit, make_law
from lrlab.laws.select import select
from lrlab.report.figures import save_figure
from lrlab.report.study_runs import StudyRun, train_in_memory, write_environment
from lrlab.schedules import parse

LAW_NAMES = ("momentum", "mpl", "mpl-qexp", "momentum-floor", "auto")  # auto: lrlab fit's default choice
BASELINE = "no law: constant run"  # predicts the held-out run by the constant run's curve
DECAY_SHARE = 0.2  # the held-out WSD run's decay phase: its last 20% of steps


def _curve(run: StudyRun, steps: int, first: int) -> Curve:
    """The run's validation curve from step ``first`` on (the laws model training after warmup)."""
    if run.status != "done":
        raise InputError(f"the {run.label} run ended {run.status}: no curve to fit; lower the peak LR", "peak")
    at, val = run.series("val_loss")
    keep = at >= first
    return Curve(run.label, at[keep], val[keep], parse(run.schedule).values(steps), run.schedule)


def law_study(out_dir: Path, steps: int = 400, peak: float = 1e-2) -> list[dict]:
    """Train, fit, predict and score; write ``laws.png`` and ``laws.csv``; returns one summary row per law."""
    warmup = max(steps // 10, 1)
    common = f"peak={peak!r},warmup={warmup},total={steps}"
    overrides = (f"eval_every={max(steps // 40, 1)}", "eval_batches=4")
    specs = {
        "constant": f"constant:{common}",
        "cosine": f"cosine:{common},final_ratio=0.1",
        "WSD 20% (held out)": f"wsd:{common},decay={DECAY_SHARE},shape=linear,final_ratio=0.1",
    }
    runs = {label: train_in_memory(label, "torch-adamw", spec, steps, *overrides) for label, spec in specs.items()}
    write_environment(out_dir, list(runs.values()))
    curves = {label: _curve(run, steps, first=2 * warmup) for label, run in runs.items()}
    train_curves = [curves["constant"], curves["cosine"]]
    held_out = curves["WSD 20% (held out)"]
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    ax_fit, ax_pred = fig.subplots(1, 2)
    decay = held_out.steps >= parse(specs["WSD 20% (held out)"]).decay_start
    summary = []
    for k, name in enumerate(LAW_NAMES):
        fitted = select(train_curves) if name == "auto" else fit(make_law(name), train_curves)
        pred = fitted.predict(held_out.lr, held_out.steps)
        fit_prede = float(np.mean([fitted.curves[c.name]["prede"] for c in train_curves]))
        summary.append(_scores(name, fit_prede, pred, held_out.loss, decay) | {"chosen": fitted.law.name})
        color = f"C{k + 1}"
        ax_pred.plot(held_out.steps, pred, color=color, label=f"{name}: PredE {summary[-1]['heldout_prede']:.2%}")
        for c in train_curves:
            ax_fit.plot(
                c.steps, fitted.predict(c.lr, c.steps), color=color, lw=1, label=name if c is train_curves[0] else None
            )
    constant = curves["constant"]  # same evaluation steps as the held-out run
    summary.append(_scores(BASELINE, float("nan"), constant.loss, held_out.loss, decay) | {"chosen": ""})
    ax_pred.plot(held_out.steps, constant.loss, color="0.6", ls="--", label=BASELINE)
    for c in train_curves:
        ax_fit.plot(c.steps, c.loss, "k.", ms=3)
    ax_pred.plot(held_out.steps, held_out.loss, "k.", ms=4, label="observed (not used in the fit)")
    ax_fit.set(xlabel="optimizer step", ylabel="validation loss", title="fit: constant and cosine runs")
    ax_pred.set(xlabel="optimizer step", ylabel="validation loss", title="prediction: WSD 20% linear decay")
    for ax in (ax_fit, ax_pred):
        ax.set_ylim(min(held_out.loss.min(), *(c.loss.min() for c in train_curves)) - 0.05, held_out.loss[0] + 0.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, out_dir / "laws.png")
    with atomic_write(out_dir / "laws.csv") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(summary[0]))
        writer.writeheader()
        writer.writerows(summary)
    return summary


def _scores(name: str, fit_prede: float, pred: np.ndarray, observed: np.ndarray, decay: np.ndarray) -> dict:
    whole = curve_metrics(pred, observed)
    return {
        "law": name,
        "fit_prede": fit_prede,
        "heldout_prede": whole["prede"],
        "heldout_worste": whole["worste"],
        "decay_prede": curve_metrics(pred[decay], observed[decay])["prede"],
        "final_loss": float(observed[-1]),
        "final_pred": float(pred[-1]),
        "final_error": abs(float(pred[-1]) / float(observed[-1]) - 1),
    }
