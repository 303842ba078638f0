"""The HTML report in a real browser: headless Chromium (Debian ``chromium`` + ``chromium-driver``)
driven by Selenium opens each demo report from disk and checks that every plot decoded, plot
regions of the screenshot are not blank, the page made no network request and logged no
console error. A deliberately broken page shows the checks can fail.

Skipped (with the reason) only when chromium, chromedriver or selenium is missing.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest

SECTIONS = ["overview", "data", "models", "comparison", "training", "per-model", "portfolio",
            "risk", "config", "log"]  # fmt: skip
CHROME_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1280,1600",
]


def _binaries() -> tuple[str, str]:
    chrome = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chrome is None or driver is None:
        pytest.skip(
            "headless Chromium not available (apt-get install chromium chromium-driver): "
            f"chromium={chrome}, chromedriver={driver}"
        )
    return chrome, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium session with the browser console log enabled."""
    chrome, driver = _binaries()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium: the 'test' extra)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for a in [*CHROME_ARGS, f"--user-data-dir={tmp_path_factory.mktemp('chrome')}"]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(options=opts, service=Service(executable_path=driver))
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def open_page(drv, path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    drv.get_log("browser")  # drop what earlier pages logged
    drv.get(path.resolve().as_uri())
    WebDriverWait(drv, 60).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def image_problems(drv) -> list[str]:
    """Images that did not decode or are not laid out."""
    info = drv.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth,"
        " i.naturalHeight, i.getBoundingClientRect().width]);"
    )
    return [f"{alt!r}: complete={c} natural={w}x{h} shown={sw:.0f}px"
            for alt, c, w, h, sw in info if not (c and w > 0 and h > 0 and sw > 0)]  # fmt: skip


def console_errors(drv) -> list[str]:
    return [e["message"] for e in drv.get_log("browser") if e.get("level") == "SEVERE"]


def network_requests(drv) -> list[str]:
    """Resources the page fetched other than the file itself and data: URIs."""
    return drv.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => !n.startsWith('data:'));"
    )


def pixel_std(png: bytes) -> float:
    from PIL import Image

    return float(np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float).std())


def blank_plots(drv, limit: int = 8) -> list[str]:
    """Plots whose on-screen region (element screenshot) is flat: nothing was drawn."""
    from selenium.webdriver.common.by import By

    out = []
    for el in drv.find_elements(By.CSS_SELECTOR, "img.plot")[:limit]:
        drv.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
        std = pixel_std(el.screenshot_as_png)
        if std < 8.0:
            out.append(f"{el.get_attribute('alt')!r}: pixel std {std:.1f}")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["demo_barra", "demo_decompgrn"])
def test_report_renders_in_chromium(browser, demo_runs, tmp_path, name):
    from deepalpha.report.html import write_report

    path = write_report(demo_runs[name], tmp_path / f"{name}.html")
    open_page(browser, path)
    ids = browser.execute_script(
        "return Array.from(document.querySelectorAll('section[id]')).map(s => s.id);"
    )
    assert set(SECTIONS) <= set(ids)
    n_img = browser.execute_script("return document.images.length;")
    assert n_img >= 4
    assert image_problems(browser) == []
    assert blank_plots(browser) == []
    browser.execute_script("window.scrollTo(0, 0);")
    shot = browser.get_screenshot_as_png()
    (tmp_path / f"{name}.png").write_bytes(shot)
    assert pixel_std(shot) > 8.0
    assert network_requests(browser) == []
    assert console_errors(browser) == []


@pytest.mark.slow
def test_checks_catch_a_broken_page(browser, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><body>"
        '<img class="plot" alt="broken" src="data:image/png;base64,iVBORw0KGgoAAAA">'
        '<img class="plot" alt="blank" width="600" height="200" src="data:image/svg+xml,'
        "%3Csvg xmlns='http://www.w3.org/2000/svg' width='600' height='200'%3E%3C/svg%3E\">"
        "<script>throw new Error('boom');</script></body></html>"
    )
    open_page(browser, page)
    assert any("broken" in p for p in image_problems(browser))
    assert any("blank" in p for p in blank_plots(browser))
    assert any("boom" in e for e in console_errors(browser))
