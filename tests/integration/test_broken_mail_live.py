"""Broken mail on a live IMAP server (issue 6, "Hostile and broken input").

The worst of the corpus (`tests/hostile/corpus`) is appended to a real INBOX (Dovecot and
pymap; what a server refuses to store is left out and named), then a normal client mail.
`ackwatch run --once` and `status --json` exit 0, the normal mail is listed as waiting,
and the defects are named in the structlog output on stderr.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest
from imapclient.exceptions import IMAPClientError
from tests.hostile.corpus import NORMAL_SUBJECT, all_cases, normal_mail
from tests.servers.imapserver import ImapTestServer
from tests.support.run_once import ackwatch

pytestmark = pytest.mark.integration

WORST = (
    "empty",
    "only_crlf",
    "nul_bytes",
    "latin1_raw_8bit",
    "cp1251_raw_8bit",
    "shift_jis_raw_8bit",
    "unknown_charset",
    "unterminated_encoded_word",
    "header_without_colon",
    "whitespace_only_folds",
    "far_past_date",
    "far_future_date",
    "missing_message_id",
    "duplicate_headers",
    "garbage_addresses",
    "references_5000",
    "from_1000_addresses",
    "deeply_nested_comments",
    "one_mb_single_header",
    "mixed_8bit_everywhere",
    "stdlib_msg_05",
    "stdlib_msg_15",
)


def write_config(tmp_path: Path, server: ImapTestServer, user: str) -> Path:
    pw = tmp_path / "anna.pass"
    pw.write_text(server.password(user) + "\n")
    pw.chmod(0o600)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        timezone: Europe/Warsaw
        state_dir: {tmp_path / "state"}
        agency:
          domains: [agency.example]
        policies:
          default: {{window: 24h, clock: calendar, nudge_before: 1h}}
        accounts:
          - {{email: anna@agency.example, name: Anna, manager: kasia@agency.example}}
        clients:
          - {{name: Acme, match: [acme.example], account: anna@agency.example}}
        unknown_senders: track
        digest:
          enabled: false
        mailboxes:
          - name: anna
            host: {server.host}
            port: {server.port}
            security: none
            username: {user}
            password_file: {pw}
            owner: anna@agency.example
            folders: {{inbox: [INBOX], sent: [Sent]}}
            timeout: 20
        """))
    return cfg


def events(stderr: str) -> list[dict]:
    out = []
    for line in stderr.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "event" in obj:
            out.append(obj)
    return out


def test_broken_mail_in_a_live_inbox_does_not_stop_the_next_one(imap_server, tmp_path):
    user = imap_server.add_user()
    cases = {c.name: c for c in all_cases()}
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)
    stored: list[str] = []
    refused: dict[str, str] = {}
    for n, name in enumerate(WORST):
        if name not in cases:  # stdlib messages missing from this Python install
            continue
        try:
            imap_server.append(user, "INBOX", cases[name].data,
                               internaldate=start + dt.timedelta(minutes=n))
            stored.append(name)
        except IMAPClientError as exc:  # e.g. NUL bytes or an empty literal
            refused[name] = str(exc)[:80]
    assert len(stored) >= len(WORST) // 2, refused
    after = start + dt.timedelta(minutes=len(WORST) + 1)
    imap_server.append(user, "INBOX", normal_mail(1, after) + b"Hello, the banners?\r\n",
                       internaldate=after)

    before = imap_server.flags_snapshot(user)
    cfg = write_config(tmp_path, imap_server, user)
    run = ackwatch("run", "-c", str(cfg), "--once")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr

    status = ackwatch("status", "-c", str(cfg), "--json")
    assert status.returncode == 0, status.stderr[-3000:]
    waiting = json.loads(status.stdout)
    normal = [i for i in waiting if i["from"] == "grace@normal-client.example"]
    assert [i["subject"] for i in normal] == [f"{NORMAL_SUBJECT} #1"]
    assert normal[0]["key"] == "<normal.1@normal-client.example>"
    # Everything listed is printable (no NUL or escape sequences reach the terminal).
    for item in waiting:
        for value in (item["from"], item["subject"]):
            assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value), item
    readable = ackwatch("status", "-c", str(cfg))
    assert readable.returncode == 0, readable.stderr[-3000:]
    assert "\x00" not in readable.stdout and "\x1b" not in readable.stdout

    # The defects are logged once per stored mail, without subjects; mail whose sender
    # could not be read at all (never a client mail) is a warning.
    logged = [e for e in events(run.stderr) if e["event"] == "mail_defects"]
    assert logged, run.stderr[-3000:]
    assert all("subject" not in e for e in logged)
    assert all(e["mailbox"] == "anna" and e["folder"] == "INBOX" for e in logged)
    names = {tuple(sorted(e["defects"])) for e in logged}
    if "duplicate_headers" in stored:
        assert any("duplicate-header:message-id" in d for d in names)
    if "only_crlf" in stored or "empty" in stored:
        assert any(e["level"] == "warning" and not e["sender_readable"] for e in logged)
    # ackwatch never changed the mailbox.
    assert imap_server.flags_snapshot(user) == before
