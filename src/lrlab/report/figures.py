"""Writing figures: matplotlib's object API (no pyplot, no global backend change) and PNG output."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure


def save_png(fig: Figure, path: Path | str, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` as PNG, creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path
