"""The board in a real browser (headless Chromium via Selenium) against a real daemon
watching Dovecot: mail appended to the inbox shows within 2 seconds without a reload, the
countdown ticks, an item turns amber when its nudge is due and red when overdue, a reply
takes it off, and the page says it is stale while the daemon restarts.

Screenshots at 1280x800 and 390x844 are saved under ``test-artifacts/board/``
(gitignored); docs/board.png in the README is the desktop one.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from tests.servers.imapserver import free_port
from tests.support.board_state import HOSTILE_SUBJECT, write_state
from tests.support.browser import DESKTOP, PHONE, responses, screenshot
from tests.support.daemon import (
    ANNA,
    client_mail,
    reply_mail,
    started,
    with_board,
    write_config,
)
from tests.support.waiting import wait_for

from ackwatch.store.sqlite import SqliteStore
from ackwatch.web.access import hash_password
from ackwatch.web.server import WebBoard

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]

LIVE_WITHIN = 2.0  # seconds from the APPEND to the item on the open page


# One script call reads the whole list: the page may redraw between two WebDriver calls.
READ_ITEMS = """
return Array.from(document.querySelectorAll('#waiting li.item')).map(li => [
  li.querySelector('.subject').textContent,
  ['ok', 'soon', 'overdue'].find(c => li.classList.contains(c)),
  li.querySelector('.countdown').textContent,
  getComputedStyle(li).backgroundColor,
  li.querySelector('.label').textContent]);
"""


def read_items(driver) -> dict[str, tuple[str, str, str, str]]:
    """Subject -> (urgency class, countdown, background colour, label) of each item."""
    return {row[0]: tuple(row[1:]) for row in driver.execute_script(READ_ITEMS)}


def items(driver) -> dict[str, str]:
    """Subject -> urgency class of each waiting item on the page."""
    return {subject: row[0] for subject, row in read_items(driver).items()}


def countdown_of(driver, subject: str) -> str:
    return read_items(driver)[subject][1]


def background(driver, subject: str) -> str:
    return read_items(driver)[subject][2]


def csp_violations(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser")
            if "Content Security Policy" in e["message"] or "Refused to" in e["message"]]


def test_the_board_follows_the_mailbox_live(dovecot, tmp_path, sink, ackwatch, browser):
    user = dovecot.add_user()
    port = free_port()
    # Calendar-clock windows of 24 s, nudges 12 s before: mail A at 0 s is amber from 12 s
    # and red from 24 s; B at 8 s is amber from 20 s; C at 20 s stays green until 32 s.
    cfg = with_board(write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink,
                                  window="24s", nudge_before="12s"), port)
    d = started(ackwatch, cfg)
    desk, phone = browser(*DESKTOP), browser(*PHONE)
    desk.get(f"http://127.0.0.1:{port}/")
    phone.get(f"http://127.0.0.1:{port}/")
    assert "Nothing waits" in desk.find_element("id", "waiting").text

    # A client mail appears on the open page within 2 s, its subject as text.
    dovecot.append(user, "INBOX", client_mail(HOSTILE_SUBJECT, "<a@acme.example>"))
    appended = time.monotonic()
    wait_for(lambda: HOSTILE_SUBJECT in items(desk), LIVE_WITHIN, "the mail on the board",
             step=0.05)
    live_after = time.monotonic() - appended
    assert desk.title == "ackwatch board"  # the <script> in the subject never ran
    assert items(desk)[HOSTILE_SUBJECT] == "ok"

    # The countdown ticks in the page.
    first = countdown_of(desk, HOSTILE_SUBJECT)
    wait_for(lambda: countdown_of(desk, HOSTILE_SUBJECT) != first, 3, "the countdown to move")

    time.sleep(max(0.0, appended + 8 - time.monotonic()))
    dovecot.append(user, "INBOX", client_mail("Invoice 11/2026", "<b@acme.example>"))
    # Amber once the nudge is due (12 s before the deadline), red once overdue.
    wait_for(lambda: items(desk).get(HOSTILE_SUBJECT) == "soon", 15, "the first item amber")
    assert background(desk, HOSTILE_SUBJECT) == "rgb(255, 241, 204)"
    wait_for(lambda: items(desk).get("Invoice 11/2026") == "soon", 15, "the second item amber")
    dovecot.append(user, "INBOX", client_mail("Website lead", "<c@acme.example>"))
    wait_for(lambda: items(desk).get(HOSTILE_SUBJECT) == "overdue", 15, "the first item red")
    assert background(desk, HOSTILE_SUBJECT) == "rgb(253, 224, 222)"
    assert read_items(desk)[HOSTILE_SUBJECT][3] == "Overdue by:"
    wait_for(lambda: set(items(desk).values()) == {"ok", "soon", "overdue"}, 5,
             "an item in each state")
    screenshot(desk, "board-1280x800")
    wait_for(lambda: len(items(phone)) == 3, 5, "three items on the phone")
    screenshot(phone, "board-390x844")
    width = phone.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE[0]  # no sideways scrolling on a phone

    # A reply takes the item off the page.
    dovecot.append(user, "Sent", reply_mail("<b@acme.example>", "Invoice 11/2026"))
    wait_for(lambda: "Invoice 11/2026" not in items(desk), 5, "the answered item gone")
    assert HOSTILE_SUBJECT in items(desk)

    # The daemon restarts: the page keeps its items, says it is stale, then recovers.
    def status() -> str:
        return desk.find_element("id", "status").text

    assert status() == "Live"
    assert d.stop() == 0
    wait_for(lambda: status().startswith("Stale"), 5, "the page to say it is stale")
    assert HOSTILE_SUBJECT in items(desk)
    started(ackwatch, cfg)
    wait_for(lambda: status() == "Live", 20, "the page live again")
    assert HOSTILE_SUBJECT in items(desk)
    assert csp_violations(desk) == [] and csp_violations(phone) == []
    print(f"mail on the board {live_after:.2f} s after the APPEND")


CONTRASTS = """
function lum(rgb) {
  const c = rgb.match(/[0-9.]+/g).slice(0, 3).map(v => v / 255).map(
    v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}
function background(el) {
  for (; el; el = el.parentElement) {
    const bg = getComputedStyle(el).backgroundColor;
    if (bg !== 'rgba(0, 0, 0, 0)') return bg;
  }
  return 'rgb(255, 255, 255)';
}
return Array.from(document.querySelectorAll('main *, header *, footer *'))
  .filter(el => Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim()))
  .map(el => {
    const a = lum(getComputedStyle(el).color), b = lum(background(el));
    return [el.textContent.trim().slice(0, 30), (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
  });
"""


def test_every_text_on_the_board_has_readable_contrast(tmp_path, browser):
    state = write_state(tmp_path, dt.datetime.now(dt.UTC))
    store = SqliteStore.open(state.config.state_dir)
    board = WebBoard(store, lambda: state.config, lambda: dt.datetime.now(dt.UTC))
    port = board.serve("127.0.0.1:0")
    try:
        driver = browser(*DESKTOP)
        driver.get(f"http://127.0.0.1:{port}/")
        contrasts = driver.execute_script(CONTRASTS)
        assert len(contrasts) > 40
        low = [(text, round(ratio, 2)) for text, ratio in contrasts if ratio < 4.5]
        assert low == []  # WCAG AA for normal text
    finally:
        board.close()
        store.close()


def test_the_keyboard_reaches_every_section_and_the_download_form(tmp_path, browser):
    state = write_state(tmp_path, dt.datetime.now(dt.UTC))
    store = SqliteStore.open(state.config.state_dir)
    board = WebBoard(store, lambda: state.config, lambda: dt.datetime.now(dt.UTC))
    port = board.serve("127.0.0.1:0")
    try:
        driver = browser(*DESKTOP)
        driver.get(f"http://127.0.0.1:{port}/")
        screenshot(driver, "board-two-accounts-1280x800")  # docs/board.png
        reached = []
        body = driver.find_element("tag name", "body")
        for _ in range(40):  # a date field takes a Tab per part (day, month, year)
            body.send_keys("\ue004")  # Tab
            active = driver.switch_to.active_element
            reached.append(active.get_attribute("name") or active.text or active.tag_name)
            if reached[-1] == "Download":
                break
        assert reached[0] == "Skip to the waiting mail"
        assert {"Waiting", "Away", "Promises", "Mailboxes", "Figures", "Report",
                "since", "until", "format", "Download"} <= set(reached)
    finally:
        board.close()
        store.close()


def test_a_board_with_users_refuses_the_browser_without_credentials(tmp_path, browser):
    web = (f"{{listen: '127.0.0.1:8025', users: [{{name: kasia, "
           f"password_hash: '{hash_password('correct horse battery')}'}}]}}")
    state = write_state(tmp_path, dt.datetime.now(dt.UTC), web)
    store = SqliteStore.open(state.config.state_dir)
    board = WebBoard(store, lambda: state.config, lambda: dt.datetime.now(dt.UTC))
    port = board.serve("127.0.0.1:0")
    try:
        driver = browser(*DESKTOP)
        driver.get(f"http://127.0.0.1:{port}/")
        # Chromium answers the Basic challenge with its sign-in prompt; nothing of the board.
        assert "Banner sizes" not in driver.page_source and driver.title != "ackwatch board"
        assert (f"http://127.0.0.1:{port}/", 401) in responses(driver)
    finally:
        board.close()
        store.close()
