"""The outbox through the real Daemon (fake clock, mail to aiosmtpd): a TLS or
credentials failure is the server's, so the rest of the pass waits with it; a node that
no longer leads begins no send."""

from __future__ import annotations

import datetime as dt

import pytest
from structlog.testing import capture_logs
from tests.support.inprocess import MONDAY_0900, Clock, daemon, due_item
from tests.support.inprocess import sink as sink

from ackwatch.config import DigestConfig
from ackwatch.mail import smtp

pytestmark = pytest.mark.integration

T = MONDAY_0900


def test_a_refused_login_holds_back_the_rest_of_the_pass_until_its_retry(tmp_path, sink):
    """Three people due at once and a password the server refuses: one refused login a
    round, not three (servers lock an account out after a few), and every mail still goes
    out once the password is right."""
    clock = Clock(T)
    d = daemon(tmp_path, sink, clock, digest=DigestConfig(enabled=False))
    tries: list[str] = []
    refusing = True

    def send(message, config):
        tries.append(message["To"])
        if refusing:
            raise smtp.TemporarySendError("535 authentication failed", code=535,
                                            failure="auth_refused")
        smtp.send(message, config.smtp)

    d._send = send
    d.reevaluate()
    d.store.sync_items([due_item(k, T) for k in "abc"], now=T, initial_keys=set())
    d.run_due()
    queued = len(d.store.outbox_pending())
    assert queued >= 2
    retry_at = d.process_outbox()
    assert len(tries) == 1  # the rest of the pass waited
    assert retry_at is not None and retry_at > T
    clock.t = T + dt.timedelta(seconds=1)
    assert d.process_outbox() == retry_at  # held: nothing tried before the retry time
    assert len(tries) == 1
    refusing = False
    clock.t = retry_at
    d.process_outbox()
    assert d.store.outbox_pending() == []
    assert len(tries) == 1 + queued


def test_a_node_that_no_longer_leads_begins_no_send_and_leaves_the_mail_queued(tmp_path, sink):
    """The fence (`cluster.Cluster.fence`) says no: nothing reaches SMTP, the rest of
    the pass stops with it, and the mail waits for the leader."""
    clock = Clock(T)
    d = daemon(tmp_path, sink, clock, digest=DigestConfig(enabled=False))
    tries: list[str] = []
    d._send = lambda message, config: tries.append(message["To"])
    leads = False
    d.delivery._fence = lambda outbox_id: leads
    d.reevaluate()
    d.store.sync_items([due_item(k, T) for k in "abc"], now=T, initial_keys=set())
    d.run_due()
    queued = len(d.store.outbox_pending())
    with capture_logs() as logs:
        d.process_outbox()
    assert tries == []
    assert len(d.store.outbox_pending()) == queued
    assert [e["event"] for e in logs if e["event"] == "outbox_fenced"] == ["outbox_fenced"]
    leads = True
    d.process_outbox()
    assert len(tries) == queued and d.store.outbox_pending() == []
