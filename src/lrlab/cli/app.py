"""The root ``lrlab`` Typer app. Each topic module adds its commands through ``register(app)``."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperGroup

from lrlab import __version__
from lrlab.cli import demo, find_lr, laws, schedule, train
from lrlab.cli.common import fail
from lrlab.errors import InputError


class _OneLineErrors(TyperGroup):
    """Turns :class:`InputError` raised anywhere below into one line on stderr and exit code 2; so too an
    ``OSError`` (a file that vanished or could not be written half-way), which is about the machine, not a bug."""

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
train.register(app)
find_lr.register(app)


def main() -> None:
    app()
