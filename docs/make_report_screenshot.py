"""Make ``docs/report.png``: the top of a demo run's HTML report as headless Chromium shows it.

    python docs/make_report_screenshot.py [RUN_DIR] [--out docs/report.png] [--height 2000]

Without RUN_DIR the quick demo is run into a temporary folder first (a few minutes) and its
System A run is used. Needs the Debian packages ``chromium`` and ``chromium-driver`` and the
Python package ``selenium``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def screenshot(html: Path, out: Path, width: int = 1280, height: int = 2000) -> Path:
    """PNG of the top ``height`` CSS pixels of ``html`` at ``width`` (headless Chromium)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chrome = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chrome is None or driver is None:
        raise SystemExit(
            "needs chromium and chromedriver (apt-get install chromium chromium-driver)"
        )
    with tempfile.TemporaryDirectory() as profile:
        opts = webdriver.ChromeOptions()
        opts.binary_location = chrome
        for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--hide-scrollbars",
                  f"--window-size={width},{height}", f"--user-data-dir={profile}"):  # fmt: skip
            opts.add_argument(a)
        drv = webdriver.Chrome(options=opts, service=Service(executable_path=driver))
        try:
            drv.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            drv.get(html.resolve().as_uri())
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(drv.get_screenshot_as_png())
        finally:
            drv.quit()
    _palette(out)
    return out


def _palette(path: Path) -> None:
    """Shrink the PNG to 256 colours (the page is flat colours and text)."""
    from PIL import Image

    im = Image.open(path).convert("RGB")
    q = im.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    q.save(path, format="PNG", optimize=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", nargs="?", type=Path)
    p.add_argument("--out", type=Path, default=HERE / "report.png")
    p.add_argument("--height", type=int, default=2000)
    a = p.parse_args()
    from deepalpha.report.html import write_report

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = a.run_dir
        if run_dir is None:
            from deepalpha.workflows.demo import run_demo

            run_demo(Path(tmp), quick=True, progress=False)
            run_dir = Path(tmp) / "demo_barra"
        html = write_report(run_dir, Path(tmp) / "report.html")
        print(screenshot(html, a.out, height=a.height))


if __name__ == "__main__":
    main()
