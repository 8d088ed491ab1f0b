"""lrlab.report.html: every user string is escaped, images are embedded PNGs, nothing reaches outside the page,
the page is written atomically; and one headless-browser check that the page renders as a person sees it."""

from __future__ import annotations

import base64
import html
import os
import re
import struct
import zlib
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from lrlab.errors import InputError
from lrlab.report.html import Page, write_page

HOSTILE = "<script>alert(1)</script> \"onerror=alert(2) x='y' & &amp; </td></table>"
DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A valid grey PNG made by hand (no matplotlib: keeps the property test fast)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def plot(label: str) -> Figure:
    fig = Figure(figsize=(4, 3), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1, 2, 3], [3.0, 2.5, 2.2, 2.1], label=label)
    ax.set_xlabel("step")
    ax.legend()
    return fig


class Outline(HTMLParser):
    """The tags, attributes and per-element text of a document, as a browser's parser would split them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.attrs: dict[str, list[str]] = {}
        self.text: dict[str, list[str]] = {}
        self._open: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, tuple(sorted(name for name, _ in attrs))))
        for name, value in attrs:
            self.attrs.setdefault(name, []).append(value or "")
        if tag not in ("meta", "img"):
            self._open.append(tag)
            self.text.setdefault(tag, []).append("")

    def handle_endtag(self, tag):
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data):
        if self._open:
            self.text[self._open[-1]][-1] += data


def full_page(s: str) -> Page:
    page = Page(s)
    page.heading(s, anchor="results")
    page.paragraph(s)
    page.table([s, "b"], [[s, 1.5], ["x", s]], caption=s)
    page.figure(tiny_png(), alt=s, caption=s)
    page.notes([s, "plain"])
    page.link(s, "#results")
    return page


def test_hostile_text_is_escaped_everywhere():
    out = full_page(HOSTILE).render()
    assert "<script" not in out.lower()
    assert '"onerror=' not in out and "&quot;onerror=" in out
    assert "</td></table>" not in out
    assert "&amp;amp;" in out  # a literal "&amp;" in the text stays text
    doc = Outline(out)
    assert not any(name.startswith("on") for name in doc.attrs)
    assert doc.attrs["alt"] == [HOSTILE]
    for tag in ("title", "h1", "h2", "p", "caption", "th", "td", "figcaption", "li", "a"):
        assert HOSTILE in doc.text[tag], tag
    assert doc.text["td"] == [HOSTILE, "1.5", "x", HOSTILE]  # cells exactly as str() gave them


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_text_never_changes_the_markup(s):
    """Whatever the text, the page has the same tags and attributes as with harmless text, and each element's
    text parses back to the input exactly."""
    doc = Outline(full_page(s).render())
    assert doc.tags == Outline(full_page("x").render()).tags
    assert doc.attrs["alt"] == [s]
    assert doc.text["td"] == [s, "1.5", "x", s]
    for tag in ("title", "h1", "h2", "caption", "figcaption", "a"):
        assert doc.text[tag] == [s], tag
    assert html.unescape(html.escape(s, quote=True)) == s


def test_lone_surrogate_is_shown_not_raised(tmp_path):
    page = Page("run \udcff")
    path = write_page(page, tmp_path / "r.html")
    assert "run \\udcff" in path.read_text(encoding="utf-8")


def test_embedded_figures_decode_to_pngs():
    page = Page("figures")
    page.figure(plot("a"), alt="loss a", caption="first")
    page.figure(tiny_png(7, 5), alt="tiny")
    out = page.render()
    blobs = [base64.b64decode(b, validate=True) for b in DATA_URI.findall(out)]
    assert len(blobs) == 2
    sizes = []
    for data in blobs:
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR"
        sizes.append(struct.unpack(">II", data[16:24]))
    assert sizes[0] == (400, 300)  # 4 x 3 inches at the page's fixed 100 dpi
    assert sizes[1] == (7, 5)
    assert 'width="400" height="300"' in out


def test_nothing_refers_outside_the_page():
    out = full_page(HOSTILE).render()
    page = Page("t")
    page.figure(plot("b"), alt="b")
    out += page.render()
    for needle in ("http://", "https://", 'src="/', "src='/", "<link", "<script", "url(", "@import"):
        assert needle not in out.lower(), needle
    assert all(v.startswith("data:image/png;base64,") for v in Outline(out).attrs["src"])
    assert "default-src 'none'; img-src data:; style-src 'unsafe-inline'" in out
    assert '<meta charset="utf-8">' in out


@pytest.mark.parametrize(
    "data", [b"", b"GIF89a" + b"\x00" * 40, b"<svg onload=alert(1)>", b"\x89PNG\r\n\x1a\n" + b"\x00" * 4]
)
def test_non_png_bytes_are_refused(data):
    with pytest.raises(InputError) as exc:
        Page("t").figure(data, alt="x")
    assert exc.value.param == "fig"


def test_zero_sized_png_is_refused():
    with pytest.raises(InputError, match="both sides"):
        Page("t").figure(tiny_png(0, 2), alt="x")


@pytest.mark.parametrize(
    "href", ["https://example.com", "http://x", "javascript:alert(1)", "/etc/passwd", "#", "#a b", '#a"', "results"]
)
def test_links_outside_the_page_are_refused(href):
    with pytest.raises(InputError) as exc:
        Page("t").link("go", href)
    assert exc.value.param == "href"


@pytest.mark.parametrize("anchor", ["", "1x", 'a"b', "a b", "x" * 65])
def test_bad_anchor_is_refused(anchor):
    with pytest.raises(InputError):
        Page("t").heading("h", anchor=anchor)


def test_duplicate_anchor_bad_level_and_ragged_rows_are_refused():
    page = Page("t")
    page.heading("h", anchor="a")
    with pytest.raises(InputError, match="already"):
        page.heading("h2", anchor="a")
    with pytest.raises(InputError) as exc:
        page.heading("h", level=7)
    assert exc.value.param == "level"
    with pytest.raises(InputError) as exc:
        page.table(["a", "b"], [[1, 2], [3]])
    assert exc.value.param == "rows"


def test_write_page_writes_atomically(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "report.html"
    page = full_page("first")
    assert write_page(page, target) == target
    assert target.read_text(encoding="utf-8") == page.render()

    def fail(*args):  # the rename that would publish the new page fails: the old one must stay whole
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(InputError, match="cannot write"):
        write_page(full_page("second"), target)
    monkeypatch.undo()
    assert target.read_text(encoding="utf-8") == page.render()
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]  # no temporary file left behind


@pytest.mark.parametrize("name", ["report.htm", "report.txt", "report"])
def test_write_page_refuses_a_wrong_suffix(tmp_path, name):
    with pytest.raises(InputError) as exc:
        write_page(Page("t"), tmp_path / name)
    assert exc.value.param == "path"
    assert not (tmp_path / name).exists()


def test_write_page_refuses_a_folder(tmp_path):
    (tmp_path / "d.html").mkdir()
    with pytest.raises(InputError, match="folder"):
        write_page(Page("t"), tmp_path / "d.html")


def test_page_renders_in_a_browser(tmp_path, browser):
    page = Page(HOSTILE)
    page.heading("Loss curves", anchor="curves")
    page.link("to the curves", "#curves")
    page.figure(plot("constant"), alt=HOSTILE, caption="constant schedule")
    page.table(["run", "loss"], [[HOSTILE, "3.412"], ["cosine", "3.398"]], caption="final loss")
    page.figure(plot("cosine"), alt="cosine", caption=HOSTILE)
    page.notes(["pilots are short", HOSTILE])
    path = write_page(page, tmp_path / "report.html")
    shot = tmp_path / "report.png"

    seen = browser(path, screenshot=shot)

    assert len(seen["images"]) == 2
    for img in seen["images"]:
        assert img["src_prefix"].startswith("data:image/png;base64,")
        assert img["complete"] and img["natural_width"] == 400 and img["natural_height"] == 300, img
    assert [m for m in seen["console"] if m[0] == "error"] == []
    assert seen["page_errors"] == []
    assert seen["failed_requests"] == []
    assert seen["dialogs"] == []
    assert seen["script_count"] == 0
    assert seen["title"] == HOSTILE
    assert HOSTILE in seen["text"]
    assert shot.stat().st_size > 0 and shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
