"""Fixtures for the loss-law tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from lawdata import DATA


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert (DATA / "README.md").is_file(), f"bundled loss-curve data missing at {DATA}"
    return DATA
