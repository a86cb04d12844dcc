"""An acknowledgement says by when (issue 23), end to end on Dovecot (+ aiosmtpd).

The report's figures on a known week (``run --once`` twice: the first start imports
history, the second sees last week's replies arrive live and reads them), and the "say by
when" note of a real ``ackwatch run``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tests.servers.imapserver import ImapTestServer, make_message
from tests.support import daemon as live
from tests.support import run_once
from tests.support.daemon import ANNA, CLIENT, client_mail, mails, started
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

WAW = ZoneInfo("Europe/Warsaw")


def reply(mid: str, subject: str, body: str, *, sender: str = ANNA, to: str = CLIENT) -> bytes:
    return make_message(subject="Re: " + subject, sender=sender, to=to, in_reply_to=mid,
                        body=body + "\r\n\r\n-- \r\nAgency Example\r\n")  # fmt: skip


# --------------------------------------------------------------------------- the report


def test_report_counts_dated_undated_and_unread_acknowledgements_of_a_known_week(
    dovecot, tmp_path
):
    anna, piotr = dovecot.add_user(), dovecot.add_user()
    cfg = run_once.write_config(tmp_path, dovecot, {"anna": anna, "piotr": piotr},
                                "sync:\n  backfill: 30d\n")  # the first start reads last week
    today = dt.datetime.now(WAW).date()
    monday = today - dt.timedelta(days=today.weekday() + 7)  # Monday of last week
    since = dt.datetime.combine(monday, dt.time(0), tzinfo=WAW)

    def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
        return since + dt.timedelta(days=day, hours=hour, minutes=minute)

    def thread(user: str, n: int, sender: str, owner: str, day: int, body: str) -> None:
        mid = f"<w{n}@{sender.split('@')[1]}>"
        dovecot.append(user, "INBOX", make_message(subject=f"Brief {n}", sender=sender, to=owner,
                                                   message_id=mid), internaldate=at(day, 10))  # fmt: skip
        dovecot.append(user, "Sent", reply(mid, f"Brief {n}", body, sender=owner, to=sender),
                       internaldate=at(day, 10, 40))  # fmt: skip

    # History at the first start: acknowledged, never read.
    thread(anna, 0, "jan@acme.example", "anna@agency.example", 0, "Thanks, on it.")
    assert run_once.ackwatch("run", "--once", "-c", str(cfg)).returncode == 0
    # Arriving live afterwards (received last week): read.
    thread(anna, 1, "jan@acme.example", "anna@agency.example", 1,
           "Thanks, got it. I'll send the quote by Friday.")  # fmt: skip
    thread(anna, 2, "jan@acme.example", "anna@agency.example", 2, "Thanks, on it.")
    thread(anna, 3, "ola@acme.example", "anna@agency.example", 2, "Dziękuję, zajmę się tym.")
    thread(piotr, 4, "grace@globex.example", "piotr@agency.example", 3,
           "Thanks! It will be ready tomorrow at 15:00.")  # fmt: skip
    thread(piotr, 5, "grace@globex.example", "piotr@agency.example", 3, "Дякую, беру в роботу.")
    assert run_once.ackwatch("run", "--once", "-c", str(cfg)).returncode == 0

    period = ("--since", monday.isoformat(), "--until", (monday + dt.timedelta(days=7)).isoformat())
    out = run_once.ackwatch("report", "-c", str(cfg), "--format", "json", *period)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)

    def counts(group: dict) -> tuple:
        return (group["acks_with_date"], group["acks_without_date"], group["acks_not_read"],
                group["date_share"])  # fmt: skip

    assert counts(data["totals"]) == (2, 3, 1, 0.4), data["totals"]
    accounts = {a["account"]: counts(a) for a in data["by_account"]}
    assert accounts == {"anna@agency.example": (1, 2, 1, 0.3333),
                        "piotr@agency.example": (1, 1, 0, 0.5)}  # fmt: skip
    clients = {c["client"]: counts(c) for c in data["by_client"]}
    assert clients == {"Acme": (1, 2, 1, 0.3333), "globex.example": (1, 1, 0, 0.5)}
    assert data["totals"]["acknowledged"] == 6, "the three counts add up to the acknowledged"

    table = run_once.ackwatch("report", "-c", str(cfg), *period).stdout
    assert "Said by when: 40% (2 of 5 acknowledgements read named a date; 1 not read)" in table
    rows = run_once.ackwatch("report", "-c", str(cfg), "--format", "csv", *period).stdout
    assert sorted(line.rsplit(",", 1)[1] for line in rows.splitlines()[1:]) == [
        "date", "date", "no date", "no date", "no date", "not read"]


# --------------------------------------------------------------------------- the note


def note_config(tmp_path: Path, server: ImapTestServer, user: str, sink, *,
                grace: str = "4s", language: str = "pl") -> Path:  # fmt: skip
    cfg = live.write_config(tmp_path, server, {"anna": (user, ANNA)}, sink, window="10h",
                            nudge_before="1h", batch_window="1s")  # fmt: skip
    text = cfg.read_text().replace("name: Anna Nowak, manager: kasia@agency.example, "
                                   "language: en", f"name: Anna Nowak, manager: "
                                   f"kasia@agency.example, language: {language}")  # fmt: skip
    cfg.write_text(text + f"promise:\n  ask_for_date: true\n  ask_grace: {grace}\n")
    return cfg


def sent_to(sink) -> set[str]:
    return {a.addr_spec for m in mails(sink) for h in ("To", "Cc") if m[h]
            for a in m[h].addresses}  # fmt: skip


def test_a_dateless_acknowledgement_gets_one_note_in_the_accounts_language(
    dovecot, tmp_path, sink, ackwatch
):
    user = dovecot.add_user()
    d = started(ackwatch, note_config(tmp_path, dovecot, user, sink))
    now = dt.datetime.now(dt.UTC)
    dovecot.append(user, "INBOX", client_mail("Rozmiary banerów", "<b1@acme.example>"),
                   internaldate=now - dt.timedelta(minutes=2))  # fmt: skip
    dovecot.append(user, "Sent", reply("<b1@acme.example>", "Rozmiary banerów",
                                       "Dziękuję, zajmę się tym."), internaldate=now)  # fmt: skip
    (note,) = wait_for(lambda: mails(sink, "ask-date"), 20, "the note")
    assert time.time() >= now.timestamp() + 4 - 1, "not before the grace has passed"
    assert note["To"].addresses[0].addr_spec == ANNA
    assert note["Subject"] == "Twoja odpowiedź do Acme nie mówi, na kiedy"
    assert "Rozmiary banerów" in note.get_body(("plain",)).get_content()
    time.sleep(3)
    assert len(mails(sink, "ask-date")) == 1, "at most one per item"
    assert sent_to(sink) == {ANNA}, "never to the client"
    assert d.stop() == 0


def test_no_note_when_a_date_follows_within_the_grace(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    d = started(ackwatch, note_config(tmp_path, dovecot, user, sink, language="en"))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    dovecot.append(user, "INBOX", client_mail("Banner sizes", "<b2@acme.example>"),
                   internaldate=now - dt.timedelta(minutes=2))  # fmt: skip
    dovecot.append(user, "Sent", reply("<b2@acme.example>", "Banner sizes", "Thanks, on it."),
                   internaldate=now - dt.timedelta(seconds=2))  # fmt: skip
    dovecot.append(user, "Sent", reply("<b2@acme.example>", "Banner sizes",
                                       "Checked with the studio: you will have them by Friday."),
                   internaldate=now)  # fmt: skip
    d.wait_event("date_ask_skipped", timeout=20)
    time.sleep(2)
    assert not mails(sink, "ask-date"), d.tail()
    assert d.stop() == 0


def test_history_gets_no_note(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    now = dt.datetime.now(dt.UTC)
    dovecot.append(user, "INBOX", client_mail("Banner sizes", "<b3@acme.example>"),
                   internaldate=now - dt.timedelta(minutes=10))  # fmt: skip
    dovecot.append(user, "Sent", reply("<b3@acme.example>", "Banner sizes", "Thanks, on it."),
                   internaldate=now - dt.timedelta(minutes=9))  # fmt: skip
    d = started(ackwatch, note_config(tmp_path, dovecot, user, sink, grace="1s"))
    d.wait_event("items_updated")
    time.sleep(5)
    assert not mails(sink), d.tail()
    assert d.stop() == 0
