"""The weekly digest and the metrics, driven through the real Daemon with a fake clock.

No IMAP here: the state is written through the store as the sync would, the clock is
injected, and mail goes to a real SMTP server (aiosmtpd).
"""

from __future__ import annotations

import datetime as dt
import urllib.request

import pytest
from tests.servers.smtp import SmtpSink
from tests.support.inprocess import MONDAY_0900, Clock, daemon
from tests.support.inprocess import sink as sink

from ackwatch.config import DigestConfig, MetricsConfig
from ackwatch.core.item_rules import Ack, Deadlines, Item
from configfactory import ANNA, KASIA

pytestmark = pytest.mark.integration

def item(key: str, received: dt.datetime, ack_after: dt.timedelta | None,
         account: str = ANNA) -> Item:
    deadline = received + dt.timedelta(hours=2)
    ack = None if ack_after is None else Ack("r-" + key, received + ack_after, "reply", account)
    return Item(key=key, thread=key, message_id=key, client_address="jan@acme.example",
                client="Acme", subject="Quote " + key, received=received, mailboxes=("anna",),
                account=account,
                deadlines=Deadlines("retainer", "calendar", deadline, deadline, None), ack=ack)


def digests(sink: SmtpSink) -> list:
    return [m for m in sink.messages if m.message["X-Ackwatch"] == "digest"]


def test_digest_goes_to_each_manager_once_per_week(tmp_path, sink):
    clock = Clock(MONDAY_0900 - dt.timedelta(days=8))  # installed the Sunday before last
    d = daemon(tmp_path, sink, clock)
    d.step()  # records when ackwatch first started
    last_week = MONDAY_0900 - dt.timedelta(days=7)
    d.store.sync_items([
        item("a", last_week + dt.timedelta(hours=1), dt.timedelta(minutes=20)),
        item("b", last_week + dt.timedelta(hours=2), dt.timedelta(hours=5)),
        item("c", last_week + dt.timedelta(days=1), None),
    ], now=clock.t, initial_keys=set())
    clock.t = MONDAY_0900 + dt.timedelta(minutes=1)
    d.step()
    d.step()
    clock.t += dt.timedelta(hours=5)
    d.step()
    (mail,) = digests(sink)
    assert mail.message["To"] == KASIA
    assert "Weekly service level: 33%" in mail.message["Subject"]
    text = mail.message.get_body(("plain",)).get_content()
    assert "client emails" in text and "3" in text
    # A restart does not repeat it (the week is recorded with the outbox row).
    d.store.close()
    d2 = daemon(tmp_path, sink, clock)
    d2.step()
    assert len(digests(sink)) == 1
    # The next week's comes next Monday.
    clock.t = MONDAY_0900 + dt.timedelta(days=7, minutes=1)
    d2.step()
    assert len(digests(sink)) == 2


def test_digest_shows_how_many_acknowledgements_said_by_when(tmp_path, sink):
    clock = Clock(MONDAY_0900 - dt.timedelta(days=8))
    d = daemon(tmp_path, sink, clock)
    d.step()
    last_week = MONDAY_0900 - dt.timedelta(days=7)
    d.store.sync_items([
        item(k, last_week + dt.timedelta(hours=n), dt.timedelta(minutes=20))
        for n, k in enumerate("abcd", 1)
    ], now=clock.t, initial_keys=set())
    d.store.record_promise_read("r-a", state="promise", now=clock.t, text_read=True)
    for key in ("r-b", "r-c"):
        d.store.record_promise_read(key, state="none", now=clock.t, text_read=True)
    clock.t = MONDAY_0900 + dt.timedelta(minutes=1)
    d.step()
    d.step()
    (mail,) = digests(sink)
    text = mail.message.get_body(("plain",)).get_content()
    assert "said by when           33%   (week before –)" in text
    assert "1 of 3 acknowledgements read named a date; 1 not read" in text
    page = mail.message.get_body(("html",)).get_content()
    assert "said by when" in page and "1 of 3 acknowledgements read named a date" in page


def test_a_new_installation_waits_for_the_next_digest_instant(tmp_path, sink):
    clock = Clock(MONDAY_0900 + dt.timedelta(hours=4))  # installed on Monday afternoon
    d = daemon(tmp_path, sink, clock)
    d.step()
    assert digests(sink) == []


def test_a_digest_days_late_after_a_downtime_is_skipped(tmp_path, sink):
    clock = Clock(MONDAY_0900 - dt.timedelta(days=10))
    d = daemon(tmp_path, sink, clock)
    d.step()
    clock.t = MONDAY_0900 + dt.timedelta(days=4)  # down from Friday to Friday
    d.step()
    assert digests(sink) == []


def test_digest_disabled_sends_nothing(tmp_path, sink):
    clock = Clock(MONDAY_0900 - dt.timedelta(days=8))
    d = daemon(tmp_path, sink, clock, digest=DigestConfig(enabled=False))
    d.step()
    clock.t = MONDAY_0900 + dt.timedelta(minutes=1)
    d.step()
    assert digests(sink) == []


def test_metrics_endpoint_reports_the_pending_count(tmp_path, sink):
    clock = Clock(MONDAY_0900)
    # A free port bound by the server itself, never let go first.
    d = daemon(tmp_path, sink, clock, metrics=MetricsConfig(listen="127.0.0.1:0"),
               digest=DigestConfig(enabled=False))
    d.metrics.serve(d.config.metrics.listen)
    try:
        d.store.sync_items([item("x", MONDAY_0900 - dt.timedelta(hours=3), None),
                            item("y", MONDAY_0900 - dt.timedelta(minutes=10), None)],
                           now=clock.t, initial_keys={"x", "y"})
        d.publisher.publish_metrics()
        # A hang guard only: a loaded machine may take seconds to answer.
        body = urllib.request.urlopen(f"http://127.0.0.1:{d.metrics.port}/metrics",
                                      timeout=60).read()
    finally:
        d.metrics.close()
    text = body.decode()
    assert f'ackwatch_items_pending{{account="{ANNA}"}} 2.0' in text
    assert f'ackwatch_items_overdue{{account="{ANNA}"}} 1.0' in text


def test_metrics_show_the_oldest_waiting_mail_and_earliest_deadline_per_account(
    tmp_path, sink
):
    clock = Clock(MONDAY_0900)
    d = daemon(tmp_path, sink, clock, digest=DigestConfig(enabled=False))
    oldest = MONDAY_0900 - dt.timedelta(hours=3)
    d.store.sync_items([item("x", oldest, None),
                        item("y", MONDAY_0900 - dt.timedelta(minutes=10), None)],
                       now=clock.t, initial_keys={"x", "y"})
    d.publisher.publish_metrics()
    scraped = dict(line.rsplit(" ", 1) for line in d.metrics.render().decode().splitlines()
                   if line.startswith("ackwatch_"))
    received = f'ackwatch_oldest_pending_received_timestamp{{account="{ANNA}"}}'
    deadline = f'ackwatch_earliest_deadline_timestamp{{account="{ANNA}"}}'
    assert float(scraped[received]) == oldest.timestamp()
    assert float(scraped[deadline]) == (oldest + dt.timedelta(hours=2)).timestamp()
    assert float(scraped["ackwatch_poll_interval_seconds"]) == 60.0
