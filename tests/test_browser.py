"""Open the report in a real headless Chromium: no request leaves the file, no console
error, the page is not blank, and the print stylesheet applies.

Needs the distribution's Chromium at /usr/bin/chromium (``.ci/run`` installs it with
``apt-get install -y chromium``) and Playwright's Python package; Playwright's own
browser downloads are never used.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facebench.reports import write_report
from rundir_fixture import build_run_dir

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


def _playwright():
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (install it with: apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install playwright; no browser download needed)")
    return sync_playwright


@contextlib.contextmanager
def _watched_page():
    """A Chromium page that records every request and every console or page problem."""
    sync_playwright = _playwright()
    requests, problems = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url[:100]}"))
            yield page, requests, problems
        finally:
            browser.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    run_dir = build_run_dir(tmp_path_factory.mktemp("browser") / "run", n_test=80, n_train=160)
    return write_report(run_dir)


def test_report_in_headless_chromium(report, tmp_path):
    with _watched_page() as (page, requests, problems):
        page.goto(report.as_uri(), wait_until="load")
        page.wait_for_timeout(300)
        shot = page.screenshot(full_page=True)
        section_count = page.locator("section").count()
        broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length")
        width = page.evaluate("document.documentElement.scrollWidth")

        page.emulate_media(media="print")
        nav_display = page.evaluate("getComputedStyle(document.querySelector('nav.toc')).display")
        pdf = page.pdf(format="A4", print_background=True)

    assert requests, "the page was never requested"
    outside = [u[:100] for u in requests if not u.startswith(("file:", "data:"))]
    assert not outside, f"requests left the file: {outside}"
    assert not problems, problems
    assert section_count == 11
    assert broken == 0
    assert width <= 1366, f"the page scrolls sideways on a laptop screen ({width} px)"
    assert nav_display == "none"
    assert pdf.startswith(b"%PDF") and len(pdf) > 50_000

    img = Image.open(io.BytesIO(shot)).convert("L")
    pixels = np.asarray(img, dtype=float)
    assert img.height > 3000, "the screenshot is too short for a full report"
    assert pixels.std() > 20, "the screenshot is blank"
    (tmp_path / "report.png").write_bytes(shot)  # kept in pytest's tmp dir for a human to look at


def test_two_runs_side_by_side_in_headless_chromium(report, tmp_path):
    from facebench.reports import write_comparison

    other = build_run_dir(tmp_path / "other", n_test=80, n_train=160)
    page_file = write_comparison([report.parent, other], tmp_path / "cmp.html")
    with _watched_page() as (page, requests, problems):
        page.goto(page_file.as_uri(), wait_until="load")
        text = page.inner_text("body")
        shot = page.screenshot(full_page=True)
    assert not [u for u in requests if not u.startswith(("file:", "data:"))]
    assert not problems, problems
    assert str(report.parent.name) in text and "other" in text
    assert np.asarray(Image.open(io.BytesIO(shot)).convert("L"), dtype=float).std() > 10
