"""Screenshots of the console's main pages for docs/console.md, taken with the test browser.

    .venv/bin/python -m tests.support.console_screenshots docs/img

Starts ``gateway run`` on the simulated camera, logs in, draws a counting line, a zone and
the speed points the way a crew would, saves, waits for counts, and writes small PNGs.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tests.e2e.test_console_browser import by_id, css, drag
from tests.support.browser import chromium, close
from tests.support.console import ADMIN, ADMIN_PASSWORD, Gateway, wait_for, write_config

WIDTH = 1000  # pixels of the PNGs in the docs
LEVELS = 16


def shot(browser: Any, out: Path) -> None:
    png = browser.get_screenshot_as_png()
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    if image.shape[1] > WIDTH:
        height = round(image.shape[0] * WIDTH / image.shape[1])
        image = cv2.resize(image, (WIDTH, height), interpolation=cv2.INTER_AREA)
    image = (image // LEVELS) * LEVELS + LEVELS // 2  # 16 levels a channel: far smaller files
    cv2.imwrite(str(out), image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"{out}: {out.stat().st_size // 1024} KiB")


def click_at(browser: Any, p: tuple[float, float]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    svg = by_id(browser, "overlay")
    w, h = svg.rect["width"], svg.rect["height"]
    offset = round((p[0] - 0.5) * w), round((p[1] - 0.5) * h)
    ActionChains(browser).move_to_element_with_offset(svg, *offset).click().perform()


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_config(Path(tmp))
        gateway = Gateway(path).start()
        browser, profile = chromium(1200, 860)
        try:
            browser.get(f"http://127.0.0.1:{gateway.port}/")
            wait_for(lambda: by_id(browser, "login").is_displayed(), 20)
            shot(browser, out_dir / "console-login.png")
            by_id(browser, "login-user").send_keys(ADMIN)
            by_id(browser, "login-password").send_keys(ADMIN_PASSWORD)
            by_id(browser, "login-submit").click()
            wait_for(lambda: by_id(browser, "frame").get_attribute("data-frame"), 30)
            for _ in browser.execute_script("return S.edit.lines"):  # start afresh
                css(browser, "#items .danger")[0].click()
            by_id(browser, "add-line").click()
            drag(browser, (0.42, 0.46), (0.42, 0.98))
            css(browser, "#items .name input")[0].clear()
            css(browser, "#items .name input")[0].send_keys("main-road")
            by_id(browser, "add-zone").click()
            for p in [(0.62, 0.80), (0.92, 0.80), (0.92, 0.98), (0.62, 0.98), (0.62, 0.80)]:
                click_at(browser, p)
            css(browser, "#items .name input")[1].clear()
            css(browser, "#items .name input")[1].send_keys("sidewalk")
            by_id(browser, "save").click()
            wait_for(lambda: "Saved" in by_id(browser, "save-message").text, 30)
            wait_for(
                lambda: (
                    sum(int(c.text) for c in css(browser, "[data-count]") if c.text.isdigit()) >= 3
                ),
                120,
            )
            time.sleep(1.0)
            shot(browser, out_dir / "console-camera.png")
            name = css(browser, "#items .name input")[0]
            name.send_keys(" north")
            by_id(browser, "add-speed").click()
            for p in [(0.15, 0.55), (0.85, 0.55), (0.95, 0.95), (0.05, 0.95)]:
                click_at(browser, p)
            for i, value in enumerate(["0", "0", "30", "0", "30", "9"]):
                css(browser, "input.metres")[i].send_keys(value)
            by_id(browser, "save").click()
            wait_for(lambda: "Not saved" in by_id(browser, "save-message").text, 30)
            browser.execute_script("document.getElementById('items').scrollIntoView()")
            shot(browser, out_dir / "console-errors.png")
            by_id(browser, "discard").click()
            css(browser, "[data-tab=status]")[0].click()
            by_id(browser, "doctor-run").click()
            wait_for(lambda: "running" not in by_id(browser, "doctor-table").text, 60)
            time.sleep(1.0)
            shot(browser, out_dir / "console-status.png")
            css(browser, "[data-tab=models]")[0].click()
            time.sleep(1.0)
            shot(browser, out_dir / "console-models.png")
        finally:
            close(browser, profile)
            gateway.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
