"""SMTP faults under a running daemon: 4xx, a 5xx for one recipient, an outage (refused
connections), a slow server. `notify.retry_initial: 1s` keeps the retries fast.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
import urllib.request
from pathlib import Path

import pytest
from tests.faults.daemon_config import write_config
from tests.faults.proxy import FaultProxy
from tests.servers.imapserver import free_port
from tests.support.daemon import (
    ANNA,
    PIOTR,
    client_mail,
    mails,
    reply_mail,
    started,
    times_mentioned,
)
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]


def outbox(tmp_path: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(f"file:{tmp_path / 'state' / 'ackwatch.sqlite3'}?mode=ro", uri=True) as db:
        return db.execute("SELECT recipient, state, attempts FROM outbox ORDER BY id").fetchall()


def test_4xx_then_accepting_delivers_once(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=sink.port,
                       window="6s", nudge_before="3s")
    sink.refuse_rcpt = {"*": "451 4.7.1 Greylisted, try again"}
    d = started(ackwatch, cfg)
    mid = "<greylisted@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Greylisted", mid))
    (deferred,) = d.wait_event("mail_deferred", timeout=20)
    assert "451" in deferred["error"] and deferred["retry_in"] <= 2
    time.sleep(2.5)  # a few more refused attempts (1 s, 2 s, ...)
    sink.refuse_rcpt = {}
    wait_for(lambda: times_mentioned(sink, mid), 15, "the nudge once accepted")
    time.sleep(1.5)
    assert times_mentioned(sink, mid) == 1
    ((_, state, attempts),) = outbox(tmp_path)
    assert state == "sent" and attempts >= 2
    assert d.stop() == 0


def test_5xx_for_one_recipient_does_not_block_the_others(dovecot, tmp_path, sink, ackwatch):
    anna, piotr = dovecot.add_user(), dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (anna, ANNA), "piotr": (piotr, PIOTR)},
                       smtp_port=sink.port, window="6s", nudge_before="3s")
    sink.refuse_rcpt = {PIOTR: "550 5.1.1 No such user"}
    d = started(ackwatch, cfg, mailboxes=2)
    for_piotr, for_anna = "<for-piotr@globex.example>", "<for-anna@acme.example>"
    dovecot.append(piotr, "INBOX", client_mail("For Piotr", for_piotr, sender="x@globex.example",
                                               to=PIOTR))
    dovecot.append(anna, "INBOX", client_mail("For Anna", for_anna))
    wait_for(lambda: times_mentioned(sink, for_anna), 20, "Anna's nudge")
    (failed,) = d.wait_event("mail_failed", timeout=10)
    assert failed["to"] == PIOTR and "550" in failed["error"]
    later = "<later@acme.example>"
    dovecot.append(anna, "INBOX", client_mail("Later for Anna", later))
    wait_for(lambda: times_mentioned(sink, later), 20, "Anna's next nudge")
    states = {(r, s) for r, s, _ in outbox(tmp_path)}
    assert (PIOTR, "failed") in states and (ANNA, "sent") in states
    # The item says what its outbox row says: failed, not "queued" for ever.
    assert d.wait_item(for_piotr)["nudge"] == "failed"
    # Nothing stays queued behind the refused recipient. The escalations of these 6 s
    # windows still fall due around now: each must leave the queue, not be caught in it.
    wait_for(lambda: not [s for _, s, _ in outbox(tmp_path) if s == "pending"], 20,
             "the outbox settled (no mail left pending)")
    assert d.stop() == 0


def test_smtp_down_for_a_while_then_back_nudges_once(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    with FaultProxy((sink.host, sink.port)) as proxy:
        proxy.refuse()
        cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=proxy.port,
                           window="6s", nudge_before="3s")
        d = started(ackwatch, cfg)
        mid = "<smtp-outage@acme.example>"
        dovecot.append(user, "INBOX", client_mail("During the SMTP outage", mid))
        (deferred,) = d.wait_event("mail_deferred", timeout=20)
        assert "connection failed" in deferred["error"]
        time.sleep(4)
        proxy.accept()
        wait_for(lambda: times_mentioned(sink, mid), 20, "the nudge after the outage")
        time.sleep(2)
        assert times_mentioned(sink, mid) == 1 and len(mails(sink)) == 1
        assert len(d.events("mail_deferred")) == 1  # one warning, not one per attempt
    assert d.stop() == 0


def test_starttls_missing_then_present_delivers_the_nudge_once(dovecot, tmp_path, ackwatch):
    """A relay that does not offer STARTTLS (or an attacker stripping it) holds the nudge
    back, loudly, never sent in plain text; once the real server is back, it goes out once."""
    from tests.servers.smtp import SmtpSink, make_self_signed_cert

    cert = make_self_signed_cert(tmp_path)
    if cert is None:
        pytest.skip("openssl CLI not found: cannot make a certificate")
    user = dovecot.add_user()
    metrics_port = free_port()
    stripped = SmtpSink().start()  # plain SMTP: no STARTTLS offered
    try:
        cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=stripped.port,
                           smtp_security="starttls", smtp_extra=f"  ca_file: {cert.cert}\n",
                           window="6s", nudge_before="3s")
        with cfg.open("a") as f:
            f.write(f"metrics:\n  listen: 127.0.0.1:{metrics_port}\n")
        d = started(ackwatch, cfg)
        mid = "<starttls-stripped@acme.example>"
        dovecot.append(user, "INBOX", client_mail("While STARTTLS was stripped", mid))
        failures = d.wait_event("smtp_tls_failed", count=2, timeout=20)
        assert {f["reason"] for f in failures} == {"starttls_not_offered"}
        assert {f["level"] for f in failures} == {"error"}
        assert stripped.messages == []  # never in plain text
        assert not d.events("mail_failed")
        # Queued, and the item agrees with its outbox row.
        assert d.wait_item(mid)["nudge"] == "queued"
        ((_, state, attempts),) = outbox(tmp_path)
        assert state == "pending" and attempts >= 2
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                         timeout=5).read().decode()
        assert 'ackwatch_smtp_tls_failures_total{reason="starttls_not_offered"}' in scraped
        assert 'ackwatch_send_failures_total{outcome="retried"}' in scraped
        assert 'ackwatch_send_failures_total{outcome="retried"} 0.0' not in scraped
    finally:
        stripped.stop()
    with SmtpSink(port=stripped.port, starttls=cert) as secure:  # the real server is back
        wait_for(lambda: times_mentioned(secure, mid), 30, "the nudge over STARTTLS")
        time.sleep(1.5)
        assert times_mentioned(secure, mid) == 1 and len(mails(secure)) == 1
        ((_, state, _),) = outbox(tmp_path)
        assert state == "sent"
        assert d.wait_item(mid)["nudge"] == "sent"
    assert d.stop() == 0


def test_smtp_down_and_mail_answered_meanwhile_cancels_the_nudge(
    dovecot, tmp_path, sink, ackwatch
):
    user = dovecot.add_user()
    with FaultProxy((sink.host, sink.port)) as proxy:
        proxy.refuse()
        cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=proxy.port,
                           window="6s", nudge_before="3s")
        d = started(ackwatch, cfg)
        mid = "<answered-during-outage@acme.example>"
        dovecot.append(user, "INBOX", client_mail("Answered during the outage", mid))
        d.wait_event("mail_deferred", timeout=20)
        dovecot.append(user, "Sent", reply_mail(mid, "Answered during the outage"))
        wait_for(lambda: not d.status(), 15, "the item acknowledged", step=0.2)
        proxy.accept()
        (cancelled,) = d.wait_event("action_cancelled", timeout=20)
        assert cancelled["reason"] == "acknowledged meanwhile"
        time.sleep(1.5)
        assert not mails(sink)
        assert [s for _, s, _ in outbox(tmp_path)] == ["cancelled"]
    assert d.stop() == 0


def test_slow_smtp_never_starves_the_watchdog(dovecot, tmp_path, sink, ackwatch, notify_socket):
    """A server slower than smtp.timeout holds the core for at most the timeouts; with the
    default 30 s timeout the whole conversation is cut at 90 s, under WatchdogSec=120 s."""
    user = dovecot.add_user()
    with FaultProxy((sink.host, sink.port)) as proxy:
        cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=proxy.port,
                           window="4s", nudge_before="2s", smtp_timeout=1.5)
        d = ackwatch(cfg, notify_socket.env(2_000_000))
        d.wait_event("mailbox_up")
        # Every answer of the server comes 1.2 s late: each command is within the 1.5 s
        # timeout, but the conversation (greeting, EHLO, MAIL, RCPT, DATA, ...) is not
        # within 3 x 1.5 s: it is cut off.
        proxy.delay = 1.2
        mid = "<slow-smtp@acme.example>"
        dovecot.append(user, "INBOX", client_mail("Slow SMTP", mid))
        t0 = time.monotonic()
        (deferred,) = d.wait_event("mail_deferred", timeout=20)
        assert "gave up after 4.5s" in deferred["error"], deferred
        notify_socket.poll(0.5)
        gaps = [b - a for a, b in itertools.pairwise(notify_socket.pings())]
        pings_since = notify_socket.pings(since=t0)
        assert pings_since and max(gaps) <= 3 * 1.5 + 1.0, gaps
        proxy.delay = 0.0
        wait_for(lambda: times_mentioned(sink, mid), 20, "the nudge once SMTP is fast again")
    assert d.stop() == 0
