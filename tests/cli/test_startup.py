"""The CLI starts without importing what a command does not need: the root help imports no numpy, `schedule show`
no scipy, torch or matplotlib; the lazily loaded commands are exactly the registered ones, with the same help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from lrlab.cli import app
from lrlab.cli.app import COMMANDS, module_commands

HEAVY = ("numpy", "scipy", "torch", "matplotlib", "pandas")
PROBE = """
import json, sys
from lrlab.cli import app
try:
    app({argv!r})
except SystemExit:
    pass
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})), file=sys.stderr)
"""


def _imported(argv: list[str]) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, timeout=120)
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_the_root_help_imports_none_of_the_numeric_stack():
    assert not _imported(["--help"]) & set(HEAVY)


def test_schedule_show_imports_numpy_only():
    loaded = _imported(["schedule", "show", "cosine:peak=1e-3,total=100", "--at", "0,100"])
    assert "numpy" in loaded and not loaded & {"scipy", "torch", "matplotlib"}


def _command_modules() -> list[str]:
    """Every lrlab.cli module with a register() function (a new one missing from COMMANDS shows up here)."""
    import importlib
    import pkgutil

    import lrlab.cli

    names = [m.name for m in pkgutil.iter_modules(lrlab.cli.__path__)]
    return sorted(n for n in names if hasattr(importlib.import_module(f"lrlab.cli.{n}"), "register"))


def test_every_command_module_is_in_the_table():
    assert _command_modules() == sorted({m for m, _ in COMMANDS.values()})


@pytest.mark.parametrize("module", sorted({m for m, _ in COMMANDS.values()}))
def test_each_module_registers_exactly_the_listed_commands_with_the_listed_help(module):
    real = module_commands(module)
    assert sorted(real) == sorted(n for n, (m, _) in COMMANDS.items() if m == module)
    for name, command in real.items():
        first = (command.help or "").strip().split("\n\n")[0]
        assert " ".join(first.split()) == COMMANDS[name][1], name


def test_a_lazy_command_runs_and_shows_its_own_help():
    result = CliRunner().invoke(app, ["schedule", "show", "--help"])
    assert result.exit_code == 0 and "--at" in result.output
    result = CliRunner().invoke(app, ["schedule", "show", "constant:peak=1e-3", "--at", "0,5", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == {"steps": [0, 5], "lr": [1e-3, 1e-3]}
