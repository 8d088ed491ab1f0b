"""Shared fixtures. ``extra("ray")`` imports an optional component for a test: skipped where it is not installed,
except in CI, which installs the extras and sets LRLAB_REQUIRE_EXTRAS=1 so that a missing one fails instead."""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

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


# --- browser: open an HTML file in headless Chromium (Debian's /usr/bin/chromium through playwright; no browser is
# ever downloaded) and report what a person's browser would see. Skipped where playwright or chromium is missing,
# except under LRLAB_REQUIRE_EXTRAS=1 (CI), where that fails instead (as ``extra`` above).

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_INSPECT = """() => ({
    images: Array.from(document.images, (i) => ({
        src_prefix: i.getAttribute("src").slice(0, 32), complete: i.complete,
        natural_width: i.naturalWidth, natural_height: i.naturalHeight})),
    text: document.body.innerText,
    title: document.title,
    script_count: document.getElementsByTagName("script").length,
})"""


def _missing(what: str) -> None:
    if os.environ.get("LRLAB_REQUIRE_EXTRAS") == "1":
        pytest.fail(f"{what} is required here (LRLAB_REQUIRE_EXTRAS=1): pip install -e '.[browser]', apt chromium")
    pytest.skip(f"{what} is not installed (the browser test's optional extra)")


@pytest.fixture
def browser() -> Callable[..., dict[str, Any]]:
    """``check(html_path, screenshot=None)``: the page's images, console messages, page errors, failed
    requests, body text, title and number of <script> elements (and dialogs opened, which must be none);
    a full-page PNG screenshot is saved to ``screenshot`` when given. Every request that is not a file: or
    data: URL is aborted, so a page that reaches for the network shows up in ``failed_requests``."""
    try:
        sync_api = importlib.import_module("playwright.sync_api")
    except ImportError:
        _missing("playwright")
    executable = shutil.which("chromium")
    if executable is None:
        _missing("a chromium binary")

    def check(html_path: str | Path, screenshot: str | Path | None = None) -> dict[str, Any]:
        console: list[tuple[str, str]] = []
        page_errors: list[str] = []
        failed: list[str] = []
        dialogs: list[str] = []
        with sync_api.sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
            try:
                context = chromium.new_context(viewport={"width": 1100, "height": 800})
                context.route(
                    "**/*",
                    lambda route: (
                        route.continue_() if route.request.url.startswith(("file:", "data:")) else route.abort()
                    ),
                )
                page = context.new_page()
                page.set_default_timeout(30_000)
                page.on("console", lambda m: console.append((m.type, m.text)))
                page.on("pageerror", lambda e: page_errors.append(str(e)))
                page.on("requestfailed", lambda r: failed.append(f"{r.url[:80]}: {r.failure}"))
                page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                page.goto(Path(html_path).resolve().as_uri(), wait_until="load")
                result = page.evaluate(_INSPECT)
                if screenshot is not None:
                    page.screenshot(path=str(screenshot), full_page=True)
            finally:
                chromium.close()
        return {**result, "console": console, "page_errors": page_errors, "failed_requests": failed, "dialogs": dialogs}

    return check
