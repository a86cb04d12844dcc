"""Promise keeper end to end (issue 8): a real ``ackwatch run`` against Dovecot + aiosmtpd.

Promises are written "within 2 hours" in replies whose INTERNALDATE is set about two hours
in the past, so the promised instant falls seconds ahead, to the second. The account's
calendar is always open, so ``remind_before`` (business clock) is plain seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tests.servers.imapserver import ImapTestServer, make_message
from tests.support.daemon import ANNA, CLIENT, KASIA, client_mail, mails, started, text_part
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

TWO_HOURS = dt.timedelta(hours=2)


def write_config(tmp_path: Path, server: ImapTestServer, user: str, smtp, *,
                 remind_before: str = "5s", enabled: bool = True,
                 mentor: str | None = None) -> Path:  # fmt: skip
    mentored = f", mentor: {mentor}" if mentor else ""
    pw = tmp_path / "anna.pass"
    pw.write_text(server.password(user) + "\n")
    pw.chmod(0o600)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        timezone: Europe/Warsaw
        state_dir: {tmp_path / "state"}
        agency:
          domains: [agency.example]
        calendars:
          always:
            timezone: Europe/Warsaw
            hours: {{mon-sun: "00:00-24:00"}}
        policies:
          default: {{window: 10h, clock: calendar, nudge_before: 1h}}
        accounts:
          - {{email: {ANNA}, name: Anna Nowak, manager: {KASIA}, language: en, calendar: always{mentored}}}
        clients:
          - {{name: Acme, match: [acme.example], account: {ANNA}}}
        unknown_senders: track
        smtp:
          host: {smtp.host}
          port: {smtp.port}
          security: none
          from: "ackwatch <ackwatch@agency.example>"
          timeout: 10
        sync:
          poll_interval: 1s
        notify:
          batch_window: 1s
        digest:
          enabled: false
        promise:
          enabled: {"true" if enabled else "false"}
          remind_before: {remind_before}
        mailboxes:
          - name: anna
            host: {server.host}
            port: {server.port}
            security: none
            username: {user}
            password_file: {pw}
            owner: {ANNA}
            folders: {{inbox: [INBOX], sent: [Sent]}}
            timeout: 10
        """))
    cfg.chmod(0o600)
    return cfg


def reply(mid: str, body: str) -> bytes:
    return make_message(subject="Re: Quote", sender=ANNA, to=CLIENT, in_reply_to=mid,
                        body=body + "\r\n\r\nAnna\r\n")  # fmt: skip


def promise_at(server: ImapTestServer, user: str, mid: str, due_in: float) -> dt.datetime:
    """A client mail and Anna's reply promising delivery `due_in` seconds from now."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sent = now - TWO_HOURS + dt.timedelta(seconds=due_in)
    server.append(user, "INBOX", client_mail("Quote", mid), internaldate=sent - dt.timedelta(minutes=1))
    server.append(user, "Sent", reply(mid, "Thanks, got it. I will send the quote within 2 hours."),
                  internaldate=sent)  # fmt: skip
    return sent + TWO_HOURS


def promises_in_state(tmp_path: Path) -> list[tuple[str, str, str]]:
    db = tmp_path / "state" / "ackwatch.sqlite3"
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            return conn.execute("SELECT state, promised, sentence FROM promises ORDER BY id").fetchall()
        except sqlite3.OperationalError:
            return []


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ackwatch", *args], capture_output=True,
                          text=True, timeout=30, check=False)  # fmt: skip


def test_broken_promise_reminds_the_account_then_tells_the_manager(dovecot, tmp_path, sink,
                                                                   ackwatch):  # fmt: skip
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, user, sink, remind_before="5s")
    d = started(ackwatch, cfg)
    promised = promise_at(dovecot, user, "<broken@acme.example>", due_in=12)
    before = dovecot.flags_snapshot(user)

    wait_for(lambda: promises_in_state(tmp_path), 8, "the promise recorded")
    status = cli("status", "-c", str(cfg), "--json", "--promises")
    (open_promise,) = json.loads(status.stdout)
    assert dt.datetime.fromisoformat(open_promise["promised"]) == promised
    assert open_promise["sentence"] == "I will send the quote within 2 hours."
    assert open_promise["account"] == ANNA and open_promise["client"] == "Acme"
    assert "open promise" in cli("status", "-c", str(cfg)).stdout

    (reminder,) = wait_for(lambda: mails(sink, "promise"), 15, "the reminder")
    reminded = time.time()
    assert reminder["To"].addresses[0].addr_spec == ANNA
    body = text_part(reminder)
    assert "I will send the quote within 2 hours." in body and "Acme" in body
    assert reminded < promised.timestamp(), "the reminder must come before the date"
    assert reminded >= promised.timestamp() - 5 - 1

    (overdue,) = wait_for(lambda: mails(sink, "promise-overdue"), 15, "the overdue notice")
    assert time.time() >= promised.timestamp() - 0.5
    assert overdue["To"].addresses[0].addr_spec == KASIA
    assert ANNA in str(overdue["Cc"])
    assert "within 2 hours" in text_part(overdue)
    assert [s for s, _, _ in promises_in_state(tmp_path)] == ["broken"]
    assert d.stop() == 0

    report = cli("report", "-c", str(cfg), "--format", "json",
                 "--since", (promised - dt.timedelta(days=1)).date().isoformat())  # fmt: skip
    assert json.loads(report.stdout)["promises"]["totals"] == {
        "made": 1, "kept": 0, "moved": 0, "broken": 1, "open": 0,
    }  # fmt: skip
    table = cli("report", "-c", str(cfg),
                "--since", (promised - dt.timedelta(days=1)).date().isoformat()).stdout  # fmt: skip
    assert "Promises: 1 made, 0 kept, 0 moved, 1 broken" in table

    # Bodies were read (PEEK), and no flag changed: the reply is still unread.
    assert dovecot.flags_snapshot(user) == before
    wait_for(lambda: any(s["body_count"] > 0 for s in dovecot.session_stats(user)), 5,
             "the reader's session in Dovecot's log")  # fmt: skip


def test_a_reminder_copies_the_mentor_and_the_overdue_notice_does_not(dovecot, tmp_path, sink,
                                                                     ackwatch):  # fmt: skip
    mentor = "mentor@agency.example"
    user = dovecot.add_user()
    d = started(ackwatch, write_config(tmp_path, dovecot, user, sink, mentor=mentor))
    promise_at(dovecot, user, "<mentored@acme.example>", due_in=10)

    wait_for(lambda: mails(sink, "promise"), 15, "the reminder")
    (reminder,) = [r for r in sink.messages if r.message["X-Ackwatch"] == "promise"]
    assert [a.addr_spec for a in reminder.message["To"].addresses] == [ANNA]
    assert [a.addr_spec for a in reminder.message["Cc"].addresses] == [mentor]
    assert sorted(reminder.rcpt_tos) == sorted([ANNA, mentor])

    wait_for(lambda: mails(sink, "promise-overdue"), 15, "the overdue notice")
    (overdue,) = [r for r in sink.messages if r.message["X-Ackwatch"] == "promise-overdue"]
    assert sorted(overdue.rcpt_tos) == sorted([KASIA, ANNA])
    assert d.stop() == 0


def test_delivery_before_the_date_keeps_the_promise(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, user, sink, remind_before="5s")
    d = started(ackwatch, cfg)
    mid = "<kept@acme.example>"
    promised = promise_at(dovecot, user, mid, due_in=10)
    wait_for(lambda: promises_in_state(tmp_path), 6, "the promise recorded")
    dovecot.append(user, "Sent", reply(mid, "Here is the quote, attached."))
    wait_for(lambda: [s for s, _, _ in promises_in_state(tmp_path)] == ["kept"], 6, "kept")
    time.sleep(max(0.0, promised.timestamp() + 1.5 - time.time()))
    assert not mails(sink, "promise") and not mails(sink, "promise-overdue"), d.tail()
    assert json.loads(cli("status", "-c", str(cfg), "--json", "--promises").stdout) == []
    assert d.stop() == 0


def test_new_date_in_a_later_reply_replaces_the_promise(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, user, sink, remind_before="5s")
    d = started(ackwatch, cfg)
    mid = "<moved@acme.example>"
    first = promise_at(dovecot, user, mid, due_in=9)  # reminder due in 4 s
    second = first + dt.timedelta(seconds=6)  # the new date: reminder due in 10 s
    dovecot.append(user, "Sent", reply(mid, "Sorry, a small delay: I will send the revised quote "
                                            "within 2 hours."),
                   internaldate=second - TWO_HOURS)  # fmt: skip

    def states() -> list[str]:
        return [s for s, _, _ in promises_in_state(tmp_path)]

    wait_for(lambda: states() == ["moved", "open"], 8, "the promise moved")
    (reminder,) = wait_for(lambda: mails(sink, "promise"), 15, "the new date's reminder")
    assert time.time() >= first.timestamp(), "no reminder for the replaced date"
    body = text_part(reminder)
    assert "revised quote" in body
    (open_promise,) = json.loads(cli("status", "-c", str(cfg), "--json", "--promises").stdout)
    assert dt.datetime.fromisoformat(open_promise["promised"]) == second
    assert len(mails(sink, "promise")) == 1
    assert d.stop() == 0


def test_disabled_promises_read_no_body(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, user, sink, remind_before="3s", enabled=False)
    d = started(ackwatch, cfg)
    promised = promise_at(dovecot, user, "<off@acme.example>", due_in=5)
    d.wait_event("items_updated")
    time.sleep(max(0.0, promised.timestamp() + 1.5 - time.time()))
    assert not mails(sink), d.tail()
    assert promises_in_state(tmp_path) == []
    assert json.loads(cli("status", "-c", str(cfg), "--json", "--promises").stdout) == []
    assert d.stop() == 0
    stats = wait_for(lambda: [s for s in dovecot.session_stats(user) if s["hdr_count"]], 5,
                     "ackwatch's session in Dovecot's log")  # fmt: skip
    assert all(s["body_count"] == 0 for s in dovecot.session_stats(user)), stats
