"""The demo's report opened in headless Chromium (Debian's `chromium`, driven by Playwright):
it renders, every image decodes, and no script error or failed request happens."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# CI installs Chromium (.ci/run) and sets this, so a missing browser fails there instead of skipping.
REQUIRED = os.environ.get("CURATE_REQUIRE_BROWSER") == "1"
# The flags this closed-network machine needs: no background connections, no sandbox as root.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        if REQUIRED:
            pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def test_report_renders_with_images_and_no_errors(browser, demo_run, tmp_path_factory):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    failed: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("requestfailed", lambda req: failed.append(req.url[:80]))
    page.goto((demo_run.report / "index.html").as_uri(), wait_until="load")

    headings = page.locator("h2").all_inner_texts()
    assert headings[:3] == [
        "Funnel",
        "Training comparison: the same model on each selection",
        "Filters against the planted ground truth",
    ]
    assert "Dropped samples per reason" in headings and "Duplicate clusters" in headings
    images = page.evaluate(
        "[...document.images].map(i => [i.complete && i.naturalWidth > 0, i.alt])"
    )
    assert len(images) > 20
    assert [alt for ok, alt in images if not ok] == []
    # Plots are real pictures, not empty canvases: matplotlib's 640x340 at 100 dpi.
    widths = page.evaluate("[...document.querySelectorAll('img.plot')].map(i => i.naturalWidth)")
    assert widths and all(w == 640 for w in widths)
    assert "holds" in page.inner_text("#s0")
    assert errors == [] and failed == []
    shot = tmp_path_factory.mktemp("screenshots") / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()
