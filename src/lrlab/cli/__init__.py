"""The ``lrlab`` command line: a Typer app whose commands are thin calls into the packages."""

from lrlab.cli.app import app, main

__all__ = ["app", "main"]
