"""The board over real HTTP (waitress on loopback, a real SQLite state): what it answers,
with which headers, to whom, and what it refuses before reading a byte more."""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as dt
import http.client
import io
import json
import re
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from tests.support.board_state import ANNA, HOSTILE_SUBJECT, PIOTR, BoardState, write_state

from ackwatch.reporting import exports
from ackwatch.store.sqlite import SqliteStore
from ackwatch.web.access import hash_password
from ackwatch.web.server import WebBoard

# The state's items are written relative to NOW and the board reads the clock as NOW: a
# full run reaches these tests minutes after this module is imported, and an item due
# "soon" would be overdue by then.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
CSP_DIRECTIVES = {
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
    "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'", "img-src 'self'",
}


class Served:
    def __init__(self, state: BoardState, board: WebBoard, port: int) -> None:
        self.state, self.board, self.port = state, board, port

    def request(self, path: str, *, method: str = "GET", headers: dict[str, str] | None = None,
                body: bytes | None = None) -> tuple[int, Message, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()


def serve(tmp_path: Path, web: str = "{listen: '127.0.0.1:8025'}") -> Iterator[Served]:
    state = write_state(tmp_path, NOW, web)
    store = SqliteStore.open(state.config.state_dir)
    board = WebBoard(store, lambda: state.config, lambda: NOW)
    port = board.serve("127.0.0.1:0")
    try:
        yield Served(state, board, port)
    finally:
        board.close()
        store.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(tmp_path)


PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def with_users(tmp_path: Path, password_hash: str) -> Iterator[Served]:
    web = ("{listen: '127.0.0.1:8025', users: ["
           f"{{name: kasia, password_hash: '{password_hash}'}}, "
           f"{{name: piotr, password_hash: '{password_hash}', accounts: [{PIOTR}]}}]}}")
    yield from serve(tmp_path, web)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def text(body: bytes) -> str:
    return re.sub(r"\s+", " ", body.decode("utf-8"))


# --------------------------------------------------------------------------- the page


def test_the_page_lists_the_waiting_mail_by_account_with_its_urgency(served):
    status, headers, body = served.request("/")
    page = text(body)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "3 client emails waiting" in page
    assert re.search(r'class="item overdue"[^>]*>.*?Website lead.*?Overdue by:', page)
    assert re.search(r'class="item soon"[^>]*>.*?Invoice 11/2026', page)
    assert re.search(r'class="item ok"[^>]*>.*?Banner sizes', page)
    assert "Done already" not in page  # answered: not on the board
    assert "Anna Nowak (absence): Piotr Wiśniewski covers" in page
    assert "anna: auth_failed since" in page and "login refused" in page


def test_a_subject_with_markup_is_escaped_text(served):
    _, _, body = served.request("/")
    assert b"<script>document" not in body and b"<b>bold" not in body
    assert b"&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt; &amp; &lt;b&gt;" in body
    assert HOSTILE_SUBJECT not in body.decode()


def test_every_response_carries_the_strict_security_headers(served):
    for path in ("/", "/live", "/static/board.js", "/static/board.css", "/nowhere"):
        _, headers, _ = served.request(path)
        assert set(headers["Content-Security-Policy"].split("; ")) == CSP_DIRECTIVES, path
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"


def test_the_page_has_no_inline_script_or_style_and_loads_nothing_from_outside(served):
    _, _, body = served.request("/")
    page = body.decode()
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/board.js" defer>']
    assert "<style" not in page and " style=" not in page and " on" not in page.replace(
        " only", "")
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)


def test_live_answers_304_while_the_version_shown_is_current(served):
    status, headers, _ = served.request("/live")
    assert status == 200
    etag = headers["ETag"]
    status, _, body = served.request("/live", headers={"If-None-Match": etag})
    assert (status, body) == (304, b"")
    served.board.changed()  # the daemon's core loop finished a step
    status, headers, _ = served.request("/live", headers={"If-None-Match": etag})
    assert status == 200 and headers["ETag"] != etag


def test_live_shows_what_the_daemon_wrote_after_it_says_so(served):
    _, headers, body = served.request("/live")
    assert b"Website lead" in body
    store = SqliteStore.open(served.state.config.state_dir)
    try:  # the lead is answered: the daemon syncs its items
        from tests.support.board_state import item

        store.sync_items(
            [item("lead-1", NOW - dt.timedelta(minutes=130), NOW - dt.timedelta(minutes=10),
                  NOW, client=None, address="lead@gmail.com", account=PIOTR,
                  subject="Website lead")],
            now=NOW, initial_keys=set(), scope={"<lead-1@example>"})
    finally:
        store.close()
    served.board.changed()
    status, _, body = served.request("/live", headers={"If-None-Match": headers["ETag"]})
    assert status == 200 and b"Website lead" not in body and b"Invoice 11/2026" in body


# --------------------------------------------------------------------------- downloads


def test_the_report_downloads_in_each_format_through_the_reports_renderers(served):
    today = dt.datetime.now(dt.UTC).date()
    query = f"since={today - dt.timedelta(days=2)}&until={today + dt.timedelta(days=2)}"
    status, headers, body = served.request(f"/report?format=json&{query}")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert headers["Content-Disposition"].startswith('attachment; filename="ackwatch-report-')
    data = json.loads(body)
    assert data["totals"]["client_emails"] == 4 and "promises" in data
    status, headers, body = served.request(f"/report?format=csv&{query}")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert status == 200 and len(rows) == 4
    status, headers, body = served.request(f"/report?format=html&{query}")
    assert status == 200 and body.upper().startswith(b"<!DOCTYPE HTML>")


def test_the_csv_summary_downloads_as_a_csv_file_with_a_row_per_account_and_client(served):
    today = dt.datetime.now(dt.UTC).date()
    since, until = today - dt.timedelta(days=2), today + dt.timedelta(days=2)
    status, headers, body = served.request(
        f"/report?format=csv-summary&since={since}&until={until}")
    assert status == 200 and headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"] == (
        f'attachment; filename="ackwatch-summary-{since}-{until}.csv"')
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert tuple(rows[0]) == exports.SUMMARY_COLUMNS
    by = {(r["group"], r["name"]): r for r in rows}
    assert set(by) == {("total", ""), ("account", ANNA), ("account", PIOTR),
                       ("client", "Acme"), ("client", "Globex"), ("client", "gmail.com")}
    assert by[("total", "")]["client_emails"] == "4"
    assert (by[("client", "gmail.com")]["overdue"],
            by[("client", "gmail.com")]["below_target"]) == ("1", "yes")
    assert by[("client", "Acme")]["promises_made"] == "0"  # promise columns filled in


def test_the_page_offers_the_csv_summary_for_download(served):
    _, _, body = served.request("/")
    assert b'<option value="csv-summary">' in body


@pytest.mark.parametrize("query", [
    "format=pdf&since=2026-01-01&until=2026-01-08",
    "format=csv&since=2026-01-08&until=2026-01-01",
    "format=csv&since=2026-1-1&until=2026-01-08",
    "format=csv&since=2020-01-01&until=2026-01-08",
    "format=csv&since=2026-01-01&until=2026-01-08&client=acme.example",
    "format=csv&format=json&since=2026-01-01&until=2026-01-08",
    "format=csv&since=2026-01-01",
    "format=csv&since=%FF&until=2026-01-08",
    "format=csv&since=2026-01-01&until=2026-06-01",  # a CSV: 93 days at most
])
def test_report_parameters_are_validated(served, query):
    status, _, body = served.request(f"/report?{query}")
    assert status == 400 and body.startswith(b"Refused: ")


def test_a_user_limited_to_some_accounts_downloads_only_their_mail(with_users):
    today = dt.datetime.now(dt.UTC).date()
    query = f"since={today - dt.timedelta(days=2)}&until={today + dt.timedelta(days=2)}"
    _, _, body = with_users.request(f"/report?format=json&{query}",
                                    headers=basic("piotr", PASSWORD))
    assert json.loads(body)["totals"]["client_emails"] == 2
    _, _, body = with_users.request(f"/report?format=csv&{query}",
                                    headers=basic("piotr", PASSWORD))
    assert {row["client"] for row in csv.DictReader(io.StringIO(body.decode()))} == {
        "Globex", "gmail.com"}
    _, _, body = with_users.request(f"/report?format=csv-summary&{query}",
                                    headers=basic("piotr", PASSWORD))
    assert {(r["group"], r["name"]) for r in csv.DictReader(io.StringIO(body.decode()))} == {
        ("total", ""), ("account", PIOTR), ("client", "Globex"), ("client", "gmail.com")}


# --------------------------------------------------------------------------- access


def test_without_credentials_a_board_with_users_is_refused(with_users):
    for path in ("/", "/live", "/static/board.js", "/report?format=csv&since=2026-01-01"):
        status, headers, body = with_users.request(path)
        assert status == 401, path
        assert headers["WWW-Authenticate"].startswith("Basic realm=")
        assert b"Website lead" not in body


def test_a_wrong_password_is_refused_and_the_right_one_lets_in(with_users):
    assert with_users.request("/", headers=basic("kasia", "wrong"))[0] == 401
    assert with_users.request("/", headers=basic("nobody", PASSWORD))[0] == 401
    status, _, body = with_users.request("/", headers=basic("kasia", PASSWORD))
    assert status == 200 and b"signed in as kasia" in body and b"Website lead" in body


def test_a_user_limited_to_piotrs_account_sees_only_piotrs_mail(with_users):
    _, _, body = with_users.request("/", headers=basic("piotr", PASSWORD))
    page = text(body)
    assert "Website lead" in page and "Invoice 11/2026" in page
    assert "Banner sizes" not in page and "Anna Nowak" not in page
    assert "auth_failed" not in page  # mailboxes are everyone's: only for who sees all


def test_a_trusted_proxy_names_the_user_and_others_are_refused(tmp_path):
    web = ("{listen: '127.0.0.1:8025', trusted_proxy: {address: 127.0.0.1, "
           f"user_header: X-Auth-User}}, users: [{{name: piotr, accounts: [{PIOTR}]}}]}}")
    for served in serve(tmp_path, web):
        status, _, body = served.request("/", headers={"X-Auth-User": "piotr"})
        assert status == 200 and b"signed in as piotr" in body and b"Banner sizes" not in body
        status, _, body = served.request("/", headers={"X-Auth-User": "kasia"})
        assert status == 200 and b"Banner sizes" in body  # not listed: every account
        status, _, _ = served.request("/")
        assert status == 403


def test_ten_failed_sign_ins_from_one_client_get_429_and_others_still_sign_in(tmp_path):
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    web = ("{listen: '127.0.0.1:8025', trusted_proxy: {address: 127.0.0.1}, "
           f"users: [{{name: kasia, password_hash: '{cheap}'}}]}}")
    for served in serve(tmp_path, web):
        attacker = {"X-Forwarded-For": "203.0.113.9"}  # as the reverse proxy passes it
        answers = [served.request("/", headers={**attacker, **basic("kasia", f"guess {n}")})
                   for n in range(10)]
        assert [status for status, _, _ in answers] == [401] * 9 + [429]
        status, headers, body = answers[-1]
        assert 590 <= int(headers["Retry-After"]) <= 600
        assert "WWW-Authenticate" not in headers and b"Too many failed sign-ins" in body
        status, _, _ = served.request("/", headers={**attacker, **basic("kasia", PASSWORD)})
        assert status == 429
        colleague = {"X-Forwarded-For": "198.51.100.20", **basic("kasia", PASSWORD)}
        status, _, body = served.request("/", headers=colleague)
        assert status == 200 and b"signed in as kasia" in body


def test_users_added_by_a_reload_apply_to_the_next_request(tmp_path, password_hash):
    state = write_state(tmp_path, NOW)
    current = {"config": state.config}
    store = SqliteStore.open(state.config.state_dir)
    board = WebBoard(store, lambda: current["config"], lambda: NOW)
    served = Served(state, board, board.serve("127.0.0.1:0"))
    try:
        assert served.request("/")[0] == 200
        from ackwatch.config import WebUser

        current["config"] = state.config.replace(web=dataclasses.replace(
            state.config.web, users=(WebUser("kasia", password_hash),)))
        assert served.request("/")[0] == 401
        assert served.request("/", headers=basic("kasia", PASSWORD))[0] == 200
    finally:
        board.close()
        store.close()


def test_without_authentication_only_a_loopback_host_is_answered(served):
    # A web page elsewhere could make a browser send its own host name here (DNS rebinding).
    assert served.request("/", headers={"Host": "evil.example:8025"})[0] == 421
    assert served.request("/", headers={"Host": "localhost:8025"})[0] == 200
    assert served.request("/", headers={"Host": "[::1]:8025"})[0] == 200


# --------------------------------------------------------------------------- limits


def test_only_get_and_head(served):
    status, headers, _ = served.request("/", method="POST", body=b"x")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, headers, body = served.request("/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000


def test_parameters_anywhere_but_the_report_are_refused(served):
    assert served.request("/?subject=x")[0] == 400
    assert served.request("/live?x=1")[0] == 400


def test_long_urls_and_many_headers_are_refused(served):
    assert served.request("/" + "a" * 100)[0] == 414
    assert served.request("/report?" + "a" * 200)[0] == 414
    many = {f"X-Header-{i}": "1" for i in range(60)}
    assert served.request("/", headers=many)[0] == 431


def test_headers_beyond_16_kb_and_a_body_beyond_1_kb_are_refused_by_the_server(served):
    status, _, _ = served.request("/", headers={"X-Big": "a" * 20_000})
    assert status == 431
    status, _, _ = served.request("/", method="POST", body=b"x" * 4096)
    assert status == 413

