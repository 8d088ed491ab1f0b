"""Shared fixtures. ``extra("ray")`` imports an optional component for a test: skipped where it is not installed,
except in CI, which installs the extras and sets LRLAB_REQUIRE_EXTRAS=1 so that a missing one fails instead."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType

import pytest


def _import_extra(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("LRLAB_REQUIRE_EXTRAS") == "1":
            pytest.fail(f"{module} is required here (LRLAB_REQUIRE_EXTRAS=1): pip install -e '.[dev,ray,parquet]'")
        pytest.skip(f"{module} is not installed (an optional extra)")


@pytest.fixture
def extra() -> Callable[[str], ModuleType]:
    """``ray = extra("ray")``: the optional module, or a skip (a failure under LRLAB_REQUIRE_EXTRAS=1)."""
    return _import_extra
