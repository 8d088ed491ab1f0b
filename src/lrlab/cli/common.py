"""Helpers shared by the CLI command modules: one-line errors, flag names for library errors, JSON output,
comma lists."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from lrlab.errors import InputError
from lrlab.files import PLOT_FORMATS, check_output, json_ready

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit with ``code`` (2: bad input; 1: a recorded failure).

    The message is printed literally: user text in it (a path or spec containing ``[bold]``) is escaped, never
    read as rich markup. Line breaks inside it are folded, so the error stays one line.
    """
    line = _printable(str(message))
    err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=code)


def _printable(text: str) -> str:
    """Control characters (a terminal escape sequence, a NUL byte, a line break in a file name) as visible escapes,
    so that what is printed names the same file and cannot drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def say(text: str) -> None:
    """Print ``text`` (which may hold user-named paths and specs) literally: no rich markup, and control characters
    (a terminal escape sequence in a file name) shown as escapes."""
    console.print(_printable(text), markup=False, highlight=False, soft_wrap=True)


def warn(text: str) -> None:
    """One ``warning:`` line on stderr (the command goes on)."""
    err_console.print(f"[yellow]warning:[/] {escape(_printable(text))}", highlight=False, soft_wrap=True)


def table_text(text: object) -> str:
    """User text for a rich table cell: escaped markup, visible control characters."""
    return escape(_printable(str(text)))


def plot_path(plot: Path | None) -> Path | None:
    """A ``--plot`` file checked before the work (writable, a known format)."""
    return None if plot is None else check_output(plot, "--plot", PLOT_FORMATS)


@contextlib.contextmanager
def flags(**names: str) -> Iterator[None]:
    """Re-raise an :class:`InputError` about a library parameter as one about its flag:
    ``with flags(peak="--peak-lr"): optimize(...)``."""
    try:
        yield
    except InputError as exc:
        if exc.param in names:
            raise exc.renamed(names[exc.param]) from None
        raise


def print_json(obj: Any) -> None:
    """Write ``obj`` as strict JSON to stdout (no rich markup, so it can be piped into ``jq``); NaN and
    infinities, which JSON cannot hold, are written as null."""
    sys.stdout.write(json.dumps(json_ready(obj), allow_nan=False) + "\n")


def parse_int_list(text: str, flag: str) -> list[int]:
    """``"0,1,499"`` -> ``[0, 1, 499]``: steps, each in [0, 2**53); a bad item is an :class:`InputError`."""
    from lrlab.schedules.base import MAX_STEP  # here, not above: `lrlab --help` imports no numpy

    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{flag} expects comma-separated integers, got {text!r}") from None
    bad = [v for v in values if not 0 <= v < MAX_STEP]
    if bad:
        raise InputError(f"{flag}: step {bad[0]} is outside [0, 2**53)")
    return values
