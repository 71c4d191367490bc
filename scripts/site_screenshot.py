"""Screenshot a page of a published site in headless Chromium (the README's picture).

    python scripts/site_screenshot.py .ccbench/site/autopet-phantom--test/index.html \
        docs/img/leaderboard.png [--width 1400] [--height 1000]

Needs Debian's ``chromium`` and ``chromium-driver`` (the browser tests install them) and the
test extra (selenium). Prints the page's scroll width next to the window's inner width.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path


def screenshot(page: Path, out: Path, *, width: int, height: int) -> tuple[int, int]:
    """Write the top ``height`` pixels of `page` at window width `width`; return the widths."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    with tempfile.TemporaryDirectory() as profile:
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        driver = webdriver.Chrome(
            service=Service(shutil.which("chromedriver") or "chromedriver"), options=options
        )
        try:
            driver.get(page.resolve().as_uri())
            widths = driver.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]"
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
    return int(widths[0]), int(widths[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    scroll, inner = screenshot(args.page, args.out, width=args.width, height=args.height)
    print(f"{args.out}: page scroll width {scroll} px, window {inner} px")


if __name__ == "__main__":
    main()
