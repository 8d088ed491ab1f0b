"""The architecture's rules (docs/design.md), checked on the source: nothing imports upward, no pyplot or
backend change anywhere, no torch in the pure packages, no CLI flag named below cli/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "lrlab"
# docs/design.md: integrations (on top: nothing imports it) -> cli -> report -> study -> sweep -> store -> train ->
# probes -> datasets -> optim/laws -> schedules -> tables -> files -> errors. A module may import its own package and
# anything of a lower rank.
RANK = {
    "integrations": 14,
    "__main__": 13,
    "cli": 12,
    "report": 11,
    "study": 10,
    "sweep": 9,
    "store": 8,
    "train": 7,
    "probes": 6,
    "datasets": 5,
    "optim": 4,
    "laws": 4,
    "schedules": 3,
    "tables": 2,
    "files": 1,
    "errors": 0,
    "__init__": 0,
}
MODULES = sorted(SRC.rglob("*.py"))


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[str]:
    """Every module name ``path`` imports, at any depth (lazy imports inside functions too); ``from lrlab import
    cli`` counts as ``lrlab.cli``. Relative imports are refused (the house style is absolute)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}:{node.lineno}: a relative import"
            if node.module == "lrlab":  # a subpackage, or a name of lrlab/__init__.py (__version__)
                names += [f"lrlab.{a.name}" if a.name in RANK else "lrlab.__init__" for a in node.names]
            elif node.module:
                names.append(node.module)
    return names


def test_every_module_is_in_a_known_layer():
    assert {_package(p) for p in MODULES} <= RANK.keys()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_nothing_imports_upward(path):
    own = _package(path)
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] != "lrlab" or len(parts) == 1:
            continue
        target = parts[1]
        assert target == own or RANK[target] < RANK[own], f"{path.name} ({own}) imports {name} ({target})"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_pyplot_and_no_backend_change(path):
    text = path.read_text()
    assert not any(n.startswith("matplotlib.pyplot") for n in _imports(path)), path
    assert "matplotlib.use(" not in text, path


@pytest.mark.parametrize("package", ["laws", "datasets", "schedules"])
def test_pure_packages_need_no_torch(package):
    for path in (SRC / package).rglob("*.py"):
        if path.name == "torch.py" and package == "schedules":
            continue  # the torch adapter, imported separately
        assert not any(n.split(".")[0] == "torch" for n in _imports(path)), path


FLAG = re.compile(r"""["'][^"'\n]*(?<![\w-])--[a-z][a-z-]+""")


@pytest.mark.parametrize("path", [p for p in MODULES if _package(p) not in ("cli", "__main__")])
def test_library_errors_name_parameters_not_flags(path):
    """A library raises InputError naming its parameter; the CLI maps parameters to flags."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Raise) and node.exc is not None:
            text = ast.unparse(node.exc)
            assert not FLAG.search(text), f"{path.name}:{node.lineno} names a CLI flag: {text[:120]}"
