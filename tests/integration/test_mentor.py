"""A junior's mentor (`accounts[].mentor`) end to end: the copy is in the SMTP envelope
and the Cc header, counts in the mentor's hourly cap, is never on an escalation, and in
the mentor's own watched inbox is neither client mail nor a reply to the client."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3

import pytest
from structlog.testing import capture_logs
from tests.servers.smtp import SmtpSink
from tests.support.daemon import (
    ANNA,
    KASIA,
    PIOTR,
    client_mail,
    iso,
    item_ids,
    mails,
    started,
    write_config,
)
from tests.support.inprocess import MONDAY_0900, Clock, daemon
from tests.support.waiting import wait_for

from ackwatch.config import DigestConfig, NotifyConfig
from ackwatch.core.item_rules import Ack, Deadlines, Item
from configfactory import make_account

pytestmark = pytest.mark.integration

MENTOR = "mentor@agency.example"


def _copies_in_state(tmp_path, mailbox: str) -> int:
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "ackwatch.sqlite3")) as db:
        return db.execute("SELECT COUNT(*) FROM messages WHERE mailbox = ?",
                          (mailbox,)).fetchone()[0]


def test_the_mentors_copy_in_his_watched_inbox_is_neither_client_mail_nor_a_reply(
    dovecot, tmp_path, sink, ackwatch
):
    # Piotr mentors Anna, and his own mailbox is watched: the copy of her nudge lands in
    # his inbox like any mail.
    anna, piotr = dovecot.add_user(), dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (anna, ANNA), "piotr": (piotr, PIOTR)},
                       sink, window="10s", nudge_before="6s", escalate_after="2s",
                       batch_window="1s", anna_mentor=PIOTR)
    d = started(ackwatch, cfg, mailboxes=2)

    mid = "<brief-q4@acme.example>"
    dovecot.append(anna, "INBOX", client_mail("Brief for the Q4 campaign", mid))
    item = d.wait_item(mid)
    left = (iso(item["nudge_at"]) - dt.datetime.now(dt.UTC)).total_seconds()
    wait_for(lambda: mails(sink, "nudge"), left + 10, "the nudge")

    (received,) = [r for r in sink.messages if r.message["X-Ackwatch"] == "nudge"]
    nudge = received.message
    assert [a.addr_spec for a in nudge["To"].addresses] == [ANNA]
    assert [a.addr_spec for a in nudge["Cc"].addresses] == [PIOTR]
    assert sorted(received.rcpt_tos) == sorted([ANNA, PIOTR])

    # The mail server delivers the copy to Piotr's inbox, as sent.
    dovecot.append(piotr, "INBOX", received.raw)
    wait_for(lambda: _copies_in_state(tmp_path, "piotr") == 1, 10, "the copy synced")

    # Still one item, still waiting: the escalation comes, to Kasia, without the mentor.
    left = (iso(item["escalate_at"]) - dt.datetime.now(dt.UTC)).total_seconds()
    wait_for(lambda: mails(sink, "escalation"), left + 10, "the escalation")
    (escalated,) = [r for r in sink.messages if r.message["X-Ackwatch"] == "escalation"]
    assert [a.addr_spec for a in escalated.message["To"].addresses] == [KASIA]
    assert [a.addr_spec for a in escalated.message["Cc"].addresses] == [ANNA]
    assert sorted(escalated.rcpt_tos) == sorted([KASIA, ANNA])
    assert item_ids(escalated.message) == [mid]
    (still,) = d.status()
    assert still["message_id"] == mid  # `status` lists the items still waiting
    assert d.stop() == 0


# --------------------------------------------------------------------------- the cap

T = MONDAY_0900


def nudge_only(key: str, account: str, at: dt.datetime) -> Item:
    """A client mail whose nudge is due at ``at`` and that never escalates."""
    return Item(key=key, thread=key, message_id=f"<{key}@acme.example>",
                client_address="jan@acme.example", client="Acme", subject="Quote " + key,
                received=at - dt.timedelta(hours=3), mailboxes=("anna",), account=account,
                deadlines=Deadlines("retainer", "calendar", at + dt.timedelta(hours=4), at,
                                    None), ack=None)


def reaching(sink: SmtpSink, address: str) -> list[str]:
    return [m.message["Subject"] for m in sink.messages if address in m.rcpt_tos]


def test_a_mentor_over_the_hourly_cap_is_left_out_and_the_nudge_still_goes(tmp_path):
    accounts = (
        make_account(ANNA, "Anna Nowak", manager=KASIA, mentor=MENTOR),
        make_account(PIOTR, "Piotr Wiśniewski", manager=KASIA, mentor=MENTOR),
        make_account(KASIA, "Kasia Lewandowska"),
    )
    clock = Clock(T)
    with SmtpSink() as sink:
        d = daemon(tmp_path, sink, clock, accounts=accounts,
                   notify=NotifyConfig(max_per_hour=2), digest=DigestConfig(enabled=False))
        d.reevaluate()
        d.store.sync_items([nudge_only("a", ANNA, T), nudge_only("p", PIOTR, T)], now=T,
                           initial_keys=set())
        d.run_due()
        d.process_outbox()
        assert len(reaching(sink, MENTOR)) == 2  # a copy of each: the mentor's hour is full

        clock.t = T + dt.timedelta(minutes=5)
        d.store.sync_items([nudge_only("b", ANNA, clock.t)], now=clock.t, initial_keys=set())
        with capture_logs() as logs:
            d.run_due()
            d.process_outbox()
            clock.t += dt.timedelta(minutes=1)
            d.run_due()  # nothing more: the copy left out is not sent later
            d.process_outbox()
        last = sink.messages[-1]
        assert last.rcpt_tos == (ANNA,) and last.message["Cc"] is None
        assert len(reaching(sink, ANNA)) == 2 and len(reaching(sink, MENTOR)) == 2
        (told,) = [e for e in logs if e["event"] == "copy_left_out"]
        assert (told["cc"], told["mails"], told["reason"]) == (MENTOR, 1, "hourly cap")


# --------------------------------------------------------------------------- the digest


def handled(key: str, account: str, received: dt.datetime, minutes: int) -> Item:
    """A client mail of last week, acknowledged after ``minutes`` (2h window)."""
    deadline = received + dt.timedelta(hours=2)
    return Item(key=key, thread=key, message_id=f"<{key}@acme.example>",
                client_address="jan@acme.example", client="Acme", subject="Quote " + key,
                received=received, mailboxes=("anna",), account=account,
                deadlines=Deadlines("retainer", "calendar", deadline, deadline, None),
                ack=Ack("r-" + key, received + dt.timedelta(minutes=minutes), "reply", account))


def digests_to(sink: SmtpSink, address: str) -> list:
    return [m.message for m in sink.messages
            if m.message["X-Ackwatch"] == "digest" and m.rcpt_tos == (address,)]


def test_a_mentor_gets_the_juniors_figures_weekly_and_a_managing_mentor_one_digest(tmp_path):
    # Mentor mentors Anna; Kasia manages both and mentors Piotr too: one digest for her.
    accounts = (
        make_account(ANNA, "Anna Nowak", manager=KASIA, mentor=MENTOR),
        make_account(PIOTR, "Piotr Wiśniewski", manager=KASIA, mentor=KASIA),
        make_account(KASIA, "Kasia Lewandowska"),
    )
    clock = Clock(T - dt.timedelta(days=8))  # installed the Sunday before last
    with SmtpSink() as sink:
        d = daemon(tmp_path, sink, clock, accounts=accounts)
        d.step()
        last_week = T - dt.timedelta(days=7)
        d.store.sync_items([
            handled("a1", ANNA, last_week + dt.timedelta(hours=1), 20),
            handled("a2", ANNA, last_week + dt.timedelta(hours=2), 300),  # late
            handled("p1", PIOTR, last_week + dt.timedelta(hours=3), 10),
        ], now=clock.t, initial_keys=set())
        clock.t = T + dt.timedelta(minutes=1)
        d.step()
        d.step()

        (mentors,) = digests_to(sink, MENTOR)
        (kasias,) = digests_to(sink, KASIA)
        assert "Weekly service level: 50%" in mentors["Subject"]  # Anna's two mails
        assert "Weekly service level: 67%" in kasias["Subject"]  # the three of her team
        # Once a week each, across a restart.
        d.store.close()
        d2 = daemon(tmp_path, sink, clock, accounts=accounts)
        d2.step()
        assert len(digests_to(sink, MENTOR)) == len(digests_to(sink, KASIA)) == 1
        clock.t = T + dt.timedelta(days=7, minutes=1)
        d2.step()
        assert len(digests_to(sink, MENTOR)) == len(digests_to(sink, KASIA)) == 2
        d2.store.close()
