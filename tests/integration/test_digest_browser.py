"""The weekly digest's HTML part in a real browser (headless Chromium via Selenium, as the
board's tests): the bars have the width of their share, the text is there in the
manager's language, nothing is fetched, and it fits a phone. Mail programs render less
than a browser (no SVG, no style block); `tests/reporting/test_digest.py` checks the
markup keeps to what they keep, this checks what a person sees.

Screenshots go to ``test-artifacts/digest/`` (gitignored); docs/digest.png in the README
is the English desktop one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.browser import REPO, responses
from tests.support.digest_week import config_with, parts, render

pytestmark = pytest.mark.integration

SCREENSHOTS = REPO / "test-artifacts" / "digest"

# One script call reads every bar: (kind, its width, its row's track width, declared %).
READ_BARS = """
return Array.from(document.querySelectorAll('td.bar')).map(td => [
  td.classList.contains('level') ? 'level' : 'demand',
  td.getBoundingClientRect().width,
  td.closest('table').getBoundingClientRect().width,
  parseFloat(td.getAttribute('width'))]);
"""


def open_digest(browser, tmp_path: Path, language: str, size: tuple[int, int]):
    page = tmp_path / f"digest-{language}.html"
    page.write_text(parts(render(config_with(language)))[1], encoding="utf-8")
    driver = browser(*size)
    driver.get(page.as_uri())
    return driver, page


def full_page_screenshot(driver, name: str) -> Path:
    """The whole digest, not only the first screenful."""
    width = driver.execute_script("return document.documentElement.clientWidth")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def test_the_digest_bars_have_the_width_of_their_share(browser, tmp_path):
    driver, _ = open_digest(browser, tmp_path, "en", (760, 1000))
    bars = driver.execute_script(READ_BARS)
    assert len([b for b in bars if b[0] == "level"]) == 6
    assert len([b for b in bars if b[0] == "demand"]) == 5
    for kind, width, track, declared in bars:
        assert width > 0, kind
        assert abs(width / track * 100 - declared) < 3, (kind, width, track, declared)
    text = driver.find_element("tag name", "body").text
    assert "Hello Kasia Lewandowska," in text
    assert "Demand and service level by client" in text
    below = driver.find_element("id", "below-target").text
    assert "Sklep Kwiatowy 50% · 1 of 2 in time · 2 client emails" in below
    assert "Globex" not in below
    assert "<b>Bold & Co</b>" in text  # a client's markup is text
    assert driver.execute_script("return document.querySelectorAll('svg, img').length") == 0
    full_page_screenshot(driver, "digest-en-760")


def test_the_digest_fetches_nothing(browser, tmp_path):
    driver, page = open_digest(browser, tmp_path, "uk", (760, 1000))
    fetched = {url for url, _ in responses(driver)} - {"data:,"}  # the driver's blank tab
    assert fetched == {page.as_uri()}
    assert "Кількість листів і рівень обслуговування за клієнтами" in driver.find_element(
        "tag name", "body").text


def test_the_digest_fits_a_phone_in_polish(browser, tmp_path):
    driver, _ = open_digest(browser, tmp_path, "pl", (390, 844))
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    assert "Poniżej celu (90%)" in driver.find_element("id", "below-target").text
    bars = driver.execute_script(READ_BARS)
    assert all(width > 0 for _, width, _, _ in bars)
    full_page_screenshot(driver, "digest-pl-390")
