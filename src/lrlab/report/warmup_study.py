"""Study part 2: does warmup exist to keep early updates small? (Kosson et al. 2024, arXiv:2410.23922; Kalra &
Barkeshli 2024, arXiv:2406.09405)

Three runs of the tiny GPT at one peak LR, measured with the ``updates`` probe: AdamW with a short linear
warmup, AdamW without warmup, and GI-AdamW (second moment initialised with g_0^2) without warmup. Without
warmup AdamW's first updates are far larger relative to the weights; GI-AdamW's are small from the start.
"""

from __future__ import annotations

import csv
from pathlib import Path

from matplotlib.figure import Figure

from lrlab.files import atomic_write
from lrlab.report.figures import save_figure
from lrlab.report.study_runs import StudyRun, train_in_memory, write_environment

EARLY_STEPS = 50  # "early" updates: the first 50


def warmup_runs(steps: int, peak: float, warmup: int) -> list[StudyRun]:
    def spec(w: int) -> str:
        return f"cosine:peak={peak!r},warmup={w},total={steps},final_ratio=0.1"

    probe = ("probes=['updates']", "probe_every=2", f"eval_every={max(steps // 10, 1)}")
    return [
        train_in_memory(f"AdamW, {warmup}-step warmup", "torch-adamw", spec(warmup), steps, *probe),
        train_in_memory("AdamW, no warmup", "torch-adamw", spec(0), steps, *probe),
        train_in_memory("GI-AdamW, no warmup", "giadamw", spec(0), steps, *probe),
    ]


def summarize(runs: list[StudyRun]) -> list[dict]:
    """Per run: final validation loss and the largest relative update in the first EARLY_STEPS steps."""
    out = []
    for run in runs:
        steps, rel = run.series("update_rel")
        _, val = run.series("val_loss")
        out.append(
            {
                "run": run.label,
                "status": run.status,
                "final_val_loss": float(val[-1]) if val.size else None,
                "max_early_update_rel": float(rel[steps < EARLY_STEPS].max()) if rel.size else None,
                "first_update_rel": float(rel[0]) if rel.size else None,
            }
        )
    return out


def plot_warmup(runs: list[StudyRun], path: Path, peak: float) -> Path:
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    ax_loss, ax_upd = fig.subplots(1, 2)
    for run in runs:
        steps, val = run.series("val_loss")
        ax_loss.plot(steps, val, marker="o", ms=3, label=run.label)
        steps, rel = run.series("update_rel")
        ax_upd.plot(steps, rel, label=run.label)
    ax_loss.set(xlabel="optimizer step", ylabel="validation loss (nats/byte)", title=f"tiny GPT, peak LR {peak:g}")
    ax_upd.set(
        xlabel="optimizer step",
        ylabel="||dW|| / ||W|| over all matrices",
        yscale="log",
        title="relative update size (updates probe)",
    )
    for ax in (ax_loss, ax_upd):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def warmup_study(out_dir: Path, steps: int = 300, peak: float = 1e-2) -> list[dict]:
    """Run the three trainings (warmup: the first 10% of steps), write ``warmup.png`` and ``warmup.csv``."""
    runs = warmup_runs(steps, peak, max(steps // 10, 1))
    write_environment(out_dir, runs)
    plot_warmup(runs, out_dir / "warmup.png", peak)
    summary = summarize(runs)
    with atomic_write(out_dir / "warmup.csv") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(summary[0]))
        writer.writeheader()
        writer.writerows(summary)
    return summary
