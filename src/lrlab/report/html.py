"""A self-contained HTML page for a study report: one file a person opens anywhere, offline, years later.

Why self-contained: a report is mailed, attached to a ticket or opened on a cluster's login node, so it may not
depend on a network, on files beside it or on a script. The page therefore has no external CSS, JavaScript,
fonts or images; plots are embedded as base64 PNG ``data:`` URIs; and a Content-Security-Policy meta tag
(``default-src 'none'; img-src data:; style-src 'unsafe-inline'``) makes the browser refuse any script or
network request, should one ever slip in.

Why escaped: titles, run names, table cells and captions come from user configs and files. Every piece of text
is passed through ``html.escape(..., quote=True)`` and there is no method that takes raw HTML, so a run named
``<script>`` is shown as that text, never run. The only attribute values built from user input are escaped
too (``alt``), and links are limited to in-page anchors (``#name``).

Example::

    page = Page("warmup study")
    page.heading("Results", anchor="results")
    page.table(["warmup", "loss"], [[100, "3.412"], [400, "3.398"]], caption="final validation loss")
    page.figure(fig, alt="loss against step")
    write_page(page, "report.html")
"""

from __future__ import annotations

import base64
import html
import io
import re
import struct
from pathlib import Path

from matplotlib.figure import Figure

from lrlab.errors import InputError, clip
from lrlab.files import atomic_write, check_output

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURE_DPI = 100  # fixed, so a page's size does not depend on the caller's matplotlib rcParams
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_ANCHOR = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.45;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; background: #fff; }
h1, h2, h3, h4, h5, h6 { line-height: 1.2; margin-top: 1.6em; }
h1 { margin-top: 0; }
table { border-collapse: collapse; margin: 1rem 0; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: 0.3rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
tbody tr:nth-child(even) { background: #fafafa; }
figure { margin: 1.5rem 0; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { font-style: italic; margin-top: 0.3rem; }
.table-wrap { overflow-x: auto; }
"""


def _text(value: object) -> str:
    """``str(value)`` as HTML text or attribute content. Lone surrogates (undecodable file names read with
    ``surrogateescape``) cannot be written as UTF-8, so they become visible ``\\udcxx`` escapes instead of a
    UnicodeEncodeError when the page is written."""
    s = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return html.escape(s, quote=True)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; an InputError about ``fig`` when ``data`` is not a PNG."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 24 or data[12:16] != b"IHDR":
        raise InputError(f"not PNG bytes (they start {data[:8]!r}); give a Figure or a PNG", "fig")
    width, height = struct.unpack(">II", data[16:24])
    if width == 0 or height == 0:
        raise InputError(f"the PNG is {width}x{height} pixels; an image needs both sides > 0", "fig")
    return width, height


def figure_png(fig: Figure, dpi: int = FIGURE_DPI) -> bytes:
    """``fig`` rendered to PNG bytes in memory (Agg, through the object API: no pyplot, no backend change)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class Page:
    """An HTML page built block by block, in order; :meth:`render` returns the whole document as one string.

    Every method escapes its text; none accepts markup. The title is the ``<title>`` and the page's ``<h1>``.
    """

    def __init__(self, title: str) -> None:
        self.title = str(title)
        self._blocks: list[str] = []
        self._anchors: set[str] = set()

    def heading(self, text: str, level: int = 2, anchor: str | None = None) -> None:
        """A heading ``<h{level}>`` (1 to 6). ``anchor`` gives it an id that :meth:`link` can point at: a letter
        then letters, digits, ``-`` or ``_`` (at most 64), unique in the page."""
        if not isinstance(level, int) or not 1 <= level <= 6:
            raise InputError(f"heading level must be 1 to 6, got {clip(level)}", "level")
        attr = ""
        if anchor is not None:
            if not _ANCHOR.fullmatch(anchor):
                raise InputError(
                    f"{clip(anchor)!r} is not an anchor (a letter, then letters, digits, - or _)", "anchor"
                )
            if anchor in self._anchors:
                raise InputError(f"the anchor {anchor!r} is already in the page", "anchor")
            self._anchors.add(anchor)
            attr = f' id="{anchor}"'
        self._blocks.append(f"<h{level}{attr}>{_text(text)}</h{level}>")

    def paragraph(self, text: str) -> None:
        """A paragraph of plain text."""
        self._blocks.append(f"<p>{_text(text)}</p>")

    def table(self, columns: list[str], rows: list[list[object]], caption: str | None = None) -> None:
        """A table with a header row. Cells are shown as ``str(cell)``: the caller formats numbers (the page
        does not guess how many digits a loss needs). Every row has one cell per column."""
        for i, row in enumerate(rows):
            if len(row) != len(columns):
                raise InputError(f"row {i} has {len(row)} cells for {len(columns)} columns", "rows")
        parts = ['<div class="table-wrap"><table>']
        if caption is not None:
            parts.append(f"<caption>{_text(caption)}</caption>")
        parts.append("<thead><tr>" + "".join(f"<th>{_text(c)}</th>" for c in columns) + "</tr></thead>")
        parts.append("<tbody>")
        parts += ["<tr>" + "".join(f"<td>{_text(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</tbody></table></div>")
        self._blocks.append("\n".join(parts))

    def figure(self, fig: Figure | bytes, alt: str, caption: str | None = None) -> None:
        """An image embedded as a ``data:image/png;base64`` URI. A Figure is rendered at :data:`FIGURE_DPI`
        now; the page keeps only the PNG bytes, not the figure, so the caller may drop or reuse it. ``bytes``
        must be a PNG (checked by its signature and IHDR header). ``alt`` describes the plot for people who
        cannot see it."""
        if isinstance(fig, Figure):
            data = figure_png(fig)
        elif isinstance(fig, bytes | bytearray):
            data = bytes(fig)
        else:
            raise TypeError(f"fig must be a matplotlib Figure or PNG bytes, not {type(fig).__name__}")
        width, height = png_size(data)
        src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        img = f'<img src="{src}" alt="{_text(alt)}" width="{width}" height="{height}">'
        cap = f"<figcaption>{_text(caption)}</figcaption>" if caption is not None else ""
        self._blocks.append(f"<figure>{img}{cap}</figure>")

    def notes(self, items: list[str]) -> None:
        """A bulleted list of short plain-text notes."""
        lis = "".join(f"<li>{_text(item)}</li>" for item in items)
        self._blocks.append(f"<ul>{lis}</ul>")

    def link(self, text: str, href: str) -> None:
        """A paragraph holding one link to an anchor in this page (``#name``, see :meth:`heading`). Other
        targets are refused: a self-contained page links nowhere else."""
        if not (href.startswith("#") and _ANCHOR.fullmatch(href[1:])):
            raise InputError(f"{clip(href)!r} is not an in-page anchor such as '#results'", "href")
        self._blocks.append(f'<p><a href="{href}">{_text(text)}</a></p>')

    def render(self) -> str:
        """The complete HTML document."""
        title = _text(self.title)
        head = [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{title}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            f"<h1>{title}</h1>",
        ]
        return "\n".join([*head, *self._blocks, "</body>", "</html>", ""])


def write_page(page: Page, path: str | Path) -> Path:
    """Write ``page`` to ``path`` (must end in .html), atomically (:func:`lrlab.files.atomic_write`): a crash
    leaves the old report or the new one, never half a page. Returns the path."""
    path = check_output(path, "path", (".html",))
    text = page.render()
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return path
