"""``lrlab find-lr``: choose an initial or peak LR by measurement (catapult search or LR range test)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lrlab.cli.common import console, flags, print_json, say
from lrlab.cli.train import TRAIN_FLAGS
from lrlab.files import PLOT_FORMATS, check_output


def find_lr_command(
    config: Annotated[Path | None, typer.Argument(help="TOML training config (see examples/tiny.toml).")] = None,
    method: Annotated[str, typer.Option(help="range (LR range test) or catapult (critical initial LR).")] = "range",
    preset: Annotated[str | None, typer.Option(help="Model preset: tiny, mini, small, medium.")] = None,
    optimizer: Annotated[str | None, typer.Option(help="torch-adamw or an lrlab.optim name.")] = None,
    lr_min: Annotated[float, typer.Option(help="Lowest LR of the sweep; the catapult search starts here.")] = 1e-6,
    lr_max: Annotated[float, typer.Option(help="Highest LR of the range test.")] = 1.0,
    steps: Annotated[int, typer.Option(help="Batches in the range test.")] = 100,
    k: Annotated[int, typer.Option(help="Optimizer steps per catapult trial.")] = 1,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="Override any config key: --set batch_size=32."),
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of the sweep or the trials.")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Measure a good LR for a training config from its initial weights (the weights are not changed).

    range: an exponential LR sweep over --steps batches, suggesting the steepest-descent and valley LRs.
    catapult: the critical LR eta_c at which one step (or --k steps) raises the loss (Kalra & Barkeshli), and the
    config's schedule warmed up from eta_c instead of 0.

    Examples:

      lrlab find-lr examples/tiny.toml --plot lr_range.png

      lrlab find-lr --preset tiny --method catapult --json

      lrlab find-lr examples/tiny.toml --optimizer lion --lr-min 1e-7 --lr-max 1e-1 --steps 60
    """
    from lrlab.train import load_config
    from lrlab.train.lr_search import find_lr

    if plot is not None:
        plot = check_output(plot, "--plot", PLOT_FORMATS)
    given = {"model.preset": preset, "optimizer": optimizer}
    with flags(**TRAIN_FLAGS):
        cfg = load_config(config, set_ or (), {k: v for k, v in given.items() if v is not None})
    with flags(method="--method", lr_min="--lr-min", lr_max="--lr-max", steps="--steps", k="--k"):
        search = find_lr(cfg, method, lr_min, lr_max, steps, k, progress=not json)
    if plot is not None:
        from lrlab.report.lr_search_plots import plot_catapult, plot_range_test

        (plot_range_test if method == "range" else plot_catapult)(search.result, plot)
    if json:
        print_json(search.to_json())
        return
    data = search.to_json()
    if method == "range":
        stop = " (stopped early: the loss diverged)" if data["stopped_early"] else ""
        console.print(f"LR range test over {len(data['lrs'])} batches{stop}")
        for name, lr in data["suggestions"].items():
            console.print(f"  {name:9s} {lr:.3g}")
    else:
        console.print(f"catapult: eta_c = {data['eta_c']:.4g} after {len(data['trials'])} trials")
        console.print(f"  largest stable LR {data['stable_lr']:.4g}, smallest catapulting LR {data['catapult_lr']:.4g}")
        if data["schedule"]:
            say(f"  schedule warmed up from eta_c: {data['schedule']}")
    if plot is not None:
        say(f"plot written to {plot}")


def register(app: typer.Typer) -> None:
    app.command("find-lr")(find_lr_command)
