"""The hourly cap through the real Daemon (fake clock, state written as the sync would,
mail to aiosmtpd): every mail that reaches a person counts, To or Cc."""

from __future__ import annotations

import datetime as dt

import pytest
from tests.servers.smtp import SmtpSink
from tests.support.inprocess import MONDAY_0900, Clock, daemon, due_item
from tests.support.inprocess import sink as sink

from ackwatch.config import DigestConfig, NotifyConfig
from configfactory import ANNA, KASIA

pytestmark = pytest.mark.integration

T = MONDAY_0900


def send_due(d) -> None:
    """What the core loop does after an evaluation: queue what is due, send the outbox."""
    d.run_due()
    d.process_outbox()


def reaching(sink: SmtpSink, address: str) -> list[str]:
    return [m.message["X-Ackwatch"] for m in sink.messages if address in m.rcpt_tos]


def test_an_escalation_copying_anna_counts_toward_her_hourly_cap(tmp_path, sink):
    clock = Clock(T)
    d = daemon(tmp_path, sink, clock, notify=NotifyConfig(max_per_hour=2),
               digest=DigestConfig(enabled=False))
    d.reevaluate()  # its first evaluation (no mail stored); the items below are as it leaves them
    d.store.sync_items([due_item("a", T)], now=T, initial_keys=set())
    send_due(d)  # her nudge (To) and Kasia's escalation with her in Cc: two mails reach her
    assert sorted(reaching(sink, ANNA)) == ["escalation", "nudge"]
    assert reaching(sink, KASIA) == ["escalation"]

    clock.t = T + dt.timedelta(minutes=5)
    d.store.sync_items([due_item("a", T), due_item("b", clock.t)], now=clock.t,
                       initial_keys=set())
    send_due(d)  # her hour is full: no nudge; Kasia's escalation goes, without her in Cc
    assert len(reaching(sink, ANNA)) == 2
    assert reaching(sink, KASIA) == ["escalation", "escalation"]

    clock.t = T + dt.timedelta(hours=1, seconds=1)  # the hour rolled
    send_due(d)
    assert sorted(reaching(sink, ANNA)) == ["escalation", "nudge", "nudge"]

