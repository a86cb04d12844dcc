"""A real browser for the board's tests: Debian's headless Chromium driven by Selenium
through Debian's chromedriver (never one Selenium would download).

Without chromium or chromedriver the tests skip with the reason, unless
ACKWATCH_REQUIRE_CHROMIUM=1 (CI, `.ci/run` installs both), where they fail. Screenshots
go to ``test-artifacts/board/`` at the top of the repository (gitignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "board"
DESKTOP = (1280, 800)
PHONE = (390, 844)


def _binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (name if os.path.isabs(name) and os.access(name, os.X_OK)
                                       else None)
        if found:
            return found
    return None


def _require() -> tuple[str, str]:
    chromium = _binary("/usr/bin/chromium", "chromium", "chromium-browser")
    driver = _binary("/usr/bin/chromedriver", "chromedriver")
    if chromium and driver:
        try:
            import selenium  # noqa: F401
        except ImportError:
            pass
        else:
            return chromium, driver
    msg = "chromium, chromium-driver (apt-get) and selenium (the test extra) are needed"
    if os.environ.get("ACKWATCH_REQUIRE_CHROMIUM") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture
def browser() -> Iterator[Callable[..., Any]]:
    """``browser(width, height)``: a fresh headless Chromium window of that size (CSS
    pixels); every one started is quit at teardown."""
    chromium, driver_path = _require()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    started: list[Any] = []

    def start(width: int, height: int) -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--hide-scrollbars",
                    "--force-device-scale-factor=1", f"--window-size={width},{height}"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        started.append(driver)
        driver.set_page_load_timeout(30)
        # The window's outer size includes no chrome in headless mode; make the viewport exact.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1,
            "mobile": width < 600})
        return driver

    yield start
    for driver in started:
        driver.quit()


def screenshot(driver: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def responses(driver: Any) -> list[tuple[str, int]]:
    """(URL, HTTP status) of each response the page received since the last call
    (DevTools' Network events, from the performance log)."""
    import json

    found = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.responseReceived":
            response = message["params"]["response"]
            found.append((response["url"], int(response["status"])))
    return found
