"""The root ``lrlab`` Typer app. Each topic module adds its commands through ``register(app)``."""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

from lrlab import __version__
from lrlab.cli import batch, demo, find_lr, laws, runs, schedule, study, sweep, train
from lrlab.cli.common import err_console, fail
from lrlab.errors import InputError

try:  # typer >= 0.26 vendors click; older releases use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_exceptions


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


app = typer.Typer(
    cls=_OneLineErrors,
    help="lrlab: choose warmup, peak LR, batch size and decay schedule by measurement and prediction.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lrlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """lrlab: choose warmup, peak LR, batch size and decay schedule by measurement and prediction."""


demo.register(app)
schedule.register(app)
laws.register(app)
batch.register(app)
train.register(app)
find_lr.register(app)
sweep.register(app)
runs.register(app)
study.register(app)


def main() -> None:
    app()
