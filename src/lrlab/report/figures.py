"""Writing figures: matplotlib's object API (no pyplot, no global backend change), written atomically."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from lrlab.files import PLOT_FORMATS, atomic_write, check_output


def save_figure(fig: Figure, path: Path | str, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` in the format its suffix names (one of :data:`lrlab.files.PLOT_FORMATS`),
    atomically, creating missing folders. Returns the path."""
    path = check_output(path, "plot", PLOT_FORMATS)
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, dpi=dpi, format=path.suffix.lower().lstrip("."))
    return path
