"""The HTML report in real headless Chromium (Debian's /usr/bin/chromium, driven by playwright;
no browser is downloaded). `.ci/run` installs chromium with apt-get when it is missing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from logloss._cli import main  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is missing (.ci/run installs it with apt-get)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1100, "height": 900})
        yield context
        context.close()


def _open(browser, path: Path):
    """Load a file; return the page and what it did: console messages, page errors, requests
    other than the file itself, dialogs opened."""
    page = browser.new_page()
    seen = {"console": [], "errors": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: seen["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_timeout(300)  # let any (unwanted) handler fire
    seen["requests"] = [u for u in seen["requests"]
                        if u != path.as_uri() and not u.startswith("data:")]
    return page, seen


def _hostile_file(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    n = 20_000
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < np.clip(1.3 * p, 0, 1)).astype(np.int8)
    other = np.clip(p + rng.normal(0, 0.1, n), 0.001, 0.999)
    table = pa.table({"label": y, XSS[1]: p, XSS[0]: other,
                      XSS[0] + "seg": rng.choice(np.array(["north", *XSS]), n),
                      "id": rng.choice(np.array(XSS), n)})
    path = tmp_path / "hostile.parquet"
    pq.write_table(table, path)
    return path


def test_report_loads_with_no_error_no_request_and_visible_figures(browser, tmp_path):
    source = _hostile_file(tmp_path)
    report = tmp_path / "report.html"
    assert main(["report", str(source), "--pred", XSS[1], "--pred", XSS[0],
                 "--by", XSS[0] + "seg", "--id", "id", "-o", str(report), "-q"]) == 0
    page, seen = _open(browser, report)
    assert seen["errors"] == [] and seen["dialogs"] == []
    assert [m for m in seen["console"] if m[0] in ("error", "warning")] == []
    assert seen["requests"] == []
    sizes = page.eval_on_selector_all(
        "figure img", "els => els.map(e => [e.naturalWidth, e.naturalHeight, "
        "e.getBoundingClientRect().width, e.getBoundingClientRect().height, e.complete])")
    assert len(sizes) >= 9
    assert all(w > 0 and h > 0 and bw > 0 and bh > 0 and done for w, h, bw, bh, done in sizes)
    # every hostile string is shown as text, and none became an element
    text = page.inner_text("body")
    for hostile in XSS:
        assert hostile in text
    assert page.eval_on_selector_all("script", "els => els.length") == 0
    assert page.eval_on_selector_all("img:not(figure img)", "els => els.length") == 0
    assert page.evaluate("() => window.__xss === undefined")
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    _assert_not_blank(shot)
    page.close()


def test_demo_report_renders(browser, tmp_path, capsys):
    report = tmp_path / "demo.html"
    assert main(["demo", "--report", str(report)]) == 0
    page, seen = _open(browser, report)
    assert seen["errors"] == [] and seen["requests"] == [] and seen["dialogs"] == []
    assert "good beats bad" in page.inner_text("body")
    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot))
    _assert_not_blank(shot)
    page.close()


def _assert_not_blank(png: Path) -> None:
    from matplotlib.image import imread

    pixels = imread(str(png))[..., :3]
    assert pixels.std() > 0.05  # a blank page is one colour
    dark = (pixels.mean(axis=2) < 0.5).mean()
    assert 0.005 < dark < 0.5  # some text and lines, not a black screen
