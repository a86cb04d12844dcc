"""The HTML report in a real browser: headless Chromium renders a realistic week.

Checks that the page parses (the DOM has the three charts and the escaped client text),
that the browser logs no console message about it (a script error, a resource blocked
by the page's Content-Security-Policy, i.e. anything fetched from the network), and
that the screenshot is a real picture rather than a blank page.

Needs Debian's ``chromium`` (/usr/bin/chromium). Without it the tests skip with the
reason, unless ACKWATCH_REQUIRE_CHROMIUM=1 (CI), where they fail.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ackwatch.core.item_rules import deadlines_for
from ackwatch.reporting.figures import ReportItem, compute
from ackwatch.reporting.html import render_html
from configfactory import ANNA, KASIA, PIOTR, make_config

pytestmark = pytest.mark.integration

WAW = ZoneInfo("Europe/Warsaw")
CONFIG = make_config()
SINCE = dt.datetime(2026, 11, 9, tzinfo=WAW)  # the week of the 11 Nov holiday
UNTIL = SINCE + dt.timedelta(days=7)
NOW = dt.datetime(2026, 11, 16, 10, 0, tzinfo=WAW)
HOSTILE_SUBJECT = "<script>alert('pwned')</script> Re: oferta"

CLIENTS = (
    ("Acme", "jan@acme.example", ANNA),  # retainer: 24h calendar clock
    ("Globex", "grace@globex.example", PIOTR),
    ("Initech", "bill@initech.example", KASIA),
    ("Sklep Kwiatowy", "ola@sklep-kwiatowy.example", ANNA),
    (None, "lead@gmail.com", PIOTR),
    (None, "biuro@firma-budowlana.example", KASIA),
)
SUBJECTS = ("Wycena banerów", "Re: Brief kampanii Q1", "Quote for the spring catalogue",
            "Pilne: zmiana terminu", HOSTILE_SUBJECT, "Faktura 11/2026 — pytanie")


def realistic_week() -> list[ReportItem]:
    """~150 client emails, mostly answered within an hour, a few late, a few never."""
    rng = random.Random(2026)
    items = []
    for n in range(150):
        client, address, account = rng.choice(CLIENTS)
        day = rng.choice((0, 0, 1, 1, 2, 3, 3, 4, 4, 5))
        received = SINCE + dt.timedelta(days=day, minutes=rng.randrange(7 * 60, 19 * 60))
        policy = "retainer" if client == "Acme" else "default"
        d = deadlines_for(received, policy, CONFIG)
        start = max(received, d.deadline - CONFIG.policies[policy].window)
        roll = rng.random()
        if roll < 0.05:
            ack = None
        else:
            minutes = rng.lognormvariate(3.4, 0.8) if roll < 0.9 else rng.uniform(120, 900)
            ack = min(start + dt.timedelta(minutes=minutes), NOW)
        items.append(ReportItem(
            key=f"<{n}@example>", client=client, client_address=address, account=account,
            subject=rng.choice(SUBJECTS), received=received, deadline=d.deadline,
            ack_at=ack, policy=d.policy, clock=d.clock,
        ))
    return items


# --------------------------------------------------------------------------- chromium


def chromium_binary() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        msg = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("ACKWATCH_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"ACKWATCH_REQUIRE_CHROMIUM is set but {msg}")
        pytest.skip(msg)
    return binary


def run_chromium(binary: str, page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.iterdir()))}"
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )


def console_problems(stderr: str, page: Path) -> list[str]:
    """Console lines about the page (errors, CSP-blocked loads) and uncaught exceptions."""
    return [
        line for line in stderr.splitlines()
        if "Uncaught" in line or ("CONSOLE" in line and page.as_uri() in line)
    ]


def screenshot(binary: str, page: Path, tmp: Path) -> tuple[Path, list[str]]:
    png = tmp / f"{page.stem}.png"
    result = run_chromium(binary, page, tmp, f"--screenshot={png}", "--window-size=1200,1600",
                          "--enable-logging=stderr", "--v=0")
    assert png.exists(), f"no screenshot; chromium said:\n{result.stderr[-3000:]}"
    return png, console_problems(result.stderr, page)


def png_rows(png: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the (filtered) scanlines of an 8-bit PNG; stdlib only."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = 0
    channels = 4
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8
            channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + width * channels
    return width, height, [raw[i:i + stride] for i in range(0, len(raw), stride)]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    report = compute(realistic_week(), CONFIG, since=SINCE, until=UNTIL, now=NOW)
    assert report.totals.client_emails == 150 and report.breaches
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- tests


def test_the_console_check_sees_a_broken_page(chromium, tmp_path):
    """The detector is not vacuous: a network image and a script are reported."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'\"></head><body><img src=\"https://cdn.example/x.png\">"
        "<script>throw new Error('boom')</script></body></html>"
    )
    _, problems = screenshot(chromium, bad, tmp_path)
    assert problems


def test_html_report_renders_in_chromium_without_console_errors(chromium, page, tmp_path):
    png, problems = screenshot(chromium, page, tmp_path)
    assert problems == []
    width, height, rows = png_rows(png)
    assert (width, height) == (1200, 1600)
    assert png.stat().st_size > 30_000
    # A blank page is one row repeated; charts, tables and text make hundreds of them.
    assert len(set(rows)) > 300
    assert len(set(b"".join(rows[::7]))) > 64


def test_html_report_dom_has_the_charts_and_escaped_client_text(chromium, page, tmp_path):
    result = run_chromium(chromium, page, tmp_path, "--dump-dom")
    dom = result.stdout
    assert dom.count("<svg") == 3, result.stderr[-3000:]
    assert len(re.findall(r"<rect\b", dom)) > 20
    assert "Service level by account" in dom and "Time to acknowledge" in dom
    assert "&lt;script&gt;alert('pwned')&lt;/script&gt; Re: oferta" in dom
    assert "<script" not in dom.lower()
    assert "gmail.com" in dom and "Sklep Kwiatowy" in dom
