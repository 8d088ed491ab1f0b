"""The root ``lrlab`` Typer app. Each topic module adds its commands through ``register(app)``, imported only
when one of its commands runs or shows its own help (click's lazy-subcommand pattern): ``lrlab --help`` imports
no numpy, and ``lrlab schedule show`` no scipy, torch or pyplot. :data:`COMMANDS` lists every command with the
help line ``lrlab --help`` shows for it (tests/cli/test_startup.py checks it against the command's own help)."""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from lrlab.cli.common import err_console, fail
from lrlab.errors import InputError

try:  # typer >= 0.26 vendors click; older releases use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_exceptions

#: command -> (its module under lrlab.cli, the first paragraph of its help), in the order ``--help`` lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "The schedule gallery: standard schedules as a plot and a table (schedules.png, schedules.csv)."),
    "fit": ("laws", "Fit a loss-curve law to one or more curves and save it as JSON."),
    "predict": ("laws", "Predict the loss curve of a schedule with a saved fit, with an approximate 95% band."),
    "optimize": (
        "laws",
        "Find the schedule with the lowest predicted final loss in a family; compare with cosine to 10%.",
    ),
    "surge": (
        "batch",
        "Fit the best LR vs batch size (the surge law, the SGD noise-scale law, a power law) to a grid of runs.",
    ),
    "bnoise": (
        "batch",
        "B_noise from the steps runs at several batch sizes took to reach one target loss (McCandlish et al."
        " 2018): S(B) = S_min + E_min / B, B_noise = E_min / S_min, fitted in log S with profile-likelihood"
        " intervals.",
    ),
    "scale": (
        "batch",
        "Fit eta_opt = c N^a D^b and B_opt = c D^k across groups of runs (model sizes N, token budgets D).",
    ),
    "train": ("train", "Train a small GPT; a diverged run is a result (exit 0, status diverged in run.json)."),
    "find-lr": (
        "find_lr",
        "Measure a good LR for a training config from its initial weights (the weights are not changed).",
    ),
    "sweep": (
        "sweep",
        "Run every cell of a study (a base config crossed with axes of values), resuming an interrupted study.",
    ),
    "study": (
        "study",
        "Spend a share of the budget on pilot runs, fit the laws, and recommend the full run's warmup, optimizer,"
        " batch size, peak LR and schedule with its predicted final loss (see docs/study.md).",
    ),
    "report": ("study", "Write the study's self-contained HTML report from the store (no run is started)."),
    "schedule": ("schedule", "Show, compare and plot learning-rate schedules."),
    "runs": ("runs", "List, show and export the runs in a run store."),
}


@functools.cache
def module_commands(module: str) -> dict[str, Any]:
    """The click commands that ``lrlab.cli.<module>`` registers, by name (the module is imported here)."""
    topic = typer.Typer()
    importlib.import_module(f"lrlab.cli.{module}").register(topic)
    return dict(typer.main.get_group(topic).commands)


class _Lazy(TyperCommand):
    """A command known by its name and help line until it is used; then its module is imported and the real
    command parses the arguments (``make_context`` hands back the real command's context, which click invokes)."""

    def __init__(self, name: str, module: str, help_line: str) -> None:
        super().__init__(name, help=help_line)
        self.module = module

    def real(self) -> Any:
        return module_commands(self.module)[self.name]

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        return self.real().make_context(info_name, args, parent=parent, **extra)


class _OneLineErrors(TyperGroup):
    """Turns :class:`InputError` raised anywhere below into one line on stderr and exit code 2; so too an
    ``OSError`` (a file that vanished or could not be written half-way), which is about the machine, not a bug,
    and a usage error (an unknown option, a missing argument), which Click would print as a boxed block."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click_exceptions.NoArgsIsHelpError as exc:  # `lrlab` alone, `lrlab schedule` alone: the help
            exc.show()
            sys.exit(exc.exit_code)
        except click_exceptions.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            with contextlib.suppress(typer.Exit):
                fail(f"{exc.format_message()} (see '{ctx.command_path if ctx else 'lrlab'} --help')")
            sys.exit(exc.exit_code or 2)
        except typer.Abort:
            err_console.print("Aborted!", markup=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            fail(str(exc))
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or type(exc).__name__}")


class _Root(_OneLineErrors):
    """The ``lrlab`` group: every command of :data:`COMMANDS`, loaded when used (a command registered on the
    app itself under the same name wins)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, (module, help_line) in COMMANDS.items():
            if name not in self.commands:
                self.add_command(_Lazy(name, module, help_line))


app = typer.Typer(
    cls=_Root,
    help="lrlab: choose warmup, peak LR, batch size and decay schedule by measurement and prediction.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from lrlab import __version__

        typer.echo(f"lrlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """lrlab: choose warmup, peak LR, batch size and decay schedule by measurement and prediction."""


def main() -> None:
    app()
