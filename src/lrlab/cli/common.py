"""Helpers shared by the CLI command modules: one-line errors, JSON output, comma lists."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

from lrlab.errors import InputError

console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit with code 2."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def print_json(obj: Any) -> None:
    """Write ``obj`` as JSON to stdout (no rich markup, so it can be piped into ``jq``)."""
    sys.stdout.write(json.dumps(obj) + "\n")


def parse_int_list(text: str, flag: str) -> list[int]:
    """``"0,1,499"`` -> ``[0, 1, 499]``; a bad item is an :class:`InputError` naming ``flag``."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{flag} expects comma-separated integers, got {text!r}") from None
