"""PostgreSQL restarted under a running ``ackwatch run`` (Dovecot, an aiosmtpd sink, a
PostgreSQL of the module's own): the daemon stays up (the same process), reconnects,
and loses and doubles nothing. Mail that arrived during and after the outage is stored
and nudged once; an item answered during the outage is not nudged; the outbox and the
SMTP sink agree with the ground truth. The watchdog is fed while the database is away;
an outage longer than ``database.give_up_after`` ends the daemon non-zero.

Mandatory in CI (ACKWATCH_REQUIRE_POSTGRES=1), like every PostgreSQL test.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections import Counter

import pytest
from tests.faults.daemon_config import write_config
from tests.servers.postgres import database_yaml
from tests.support.daemon import (
    ANNA,
    client_mail,
    item_ids,
    mails,
    reply_mail,
    started,
    times_mentioned,
)
from tests.support.waiting import wait_for

from ackwatch.config import load_config
from ackwatch.store import open_store

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]


def daemon_config(tmp_path, dovecot, user, sink, postgres, *, window="6s", nudge_before="3s",
                  give_up_after: str | None = None):
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=sink.port,
                       window=window, nudge_before=nudge_before, batch_window="0s",
                       max_per_hour=10_000, imap_timeout=5)
    limit = f"  give_up_after: {give_up_after}\n" if give_up_after else ""
    cfg.write_text(cfg.read_text() + database_yaml(postgres) + limit)
    return cfg


class ClientMail:
    """Client mail put into the mailbox, some of it answered (the ground truth)."""

    def __init__(self, dovecot, user: str):
        self._dovecot = dovecot
        self._user = user
        self.unanswered: list[str] = []
        self.answered: list[str] = []

    def arrive(self, name: str, *, answer: bool = False) -> str:
        mid = f"<{name}@acme.example>"
        self._dovecot.append(self._user, "INBOX", client_mail(f"Brief {name}", mid),
                             internaldate=dt.datetime.now(dt.UTC))
        (self.answered if answer else self.unanswered).append(mid)
        if answer:
            self.answer(mid, f"Brief {name}")
        return mid

    def answer(self, mid: str, subject: str) -> None:
        self._dovecot.append(self._user, "Sent", reply_mail(mid, subject),
                             internaldate=dt.datetime.now(dt.UTC))
        if mid in self.unanswered:
            self.unanswered.remove(mid)
            self.answered.append(mid)


def assert_nothing_lost_nothing_doubled(sink, cfg, truth: ClientMail) -> None:
    """Every unanswered mail nudged exactly once (one mail, one Message-ID), no answered
    one at all; the outbox holds exactly the mails the sink got, all sent."""
    counts = {m: times_mentioned(sink, m) for m in truth.unanswered + truth.answered}
    assert all(counts[m] == 0 for m in truth.answered), counts
    sent_ids = Counter(str(m["Message-ID"]) for m in mails(sink))
    assert set(sent_ids.values()) == {1}, sent_ids  # no mail sent twice
    mentions = Counter(k for m in mails(sink, "nudge") for k in item_ids(m))
    assert all(mentions[m] == 1 for m in truth.unanswered), mentions
    state = open_store(cfg.parent / "state", readonly=True, database=load_config(cfg).database)
    try:
        rows = [(i.message_id, i.state, i.nudge_done) for i in state.items()]
        assert state.outbox_pending() == []
        outbox = [tuple(r) for r in state._conn.execute(  # type: ignore[attr-defined]
            "SELECT message_id, state FROM outbox")]
    finally:
        state.close()
    assert Counter(mid for mid, _ in outbox) == sent_ids  # the outbox is what was sent
    assert {s for _, s in outbox} == {"sent"}
    per_mid = Counter(r[0] for r in rows)
    assert sorted(per_mid) == sorted(truth.unanswered + truth.answered)
    assert set(per_mid.values()) == {1}, per_mid  # every item exactly once
    states = {r[0]: (r[1], r[2]) for r in rows}
    assert all(states[m] == ("acknowledged", None) for m in truth.answered), states
    assert all(states[m][1] == "sent" for m in truth.unanswered), states


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgresql_restarted_under_load_loses_nothing_and_doubles_nothing(
        dovecot, tmp_path, sink, ackwatch, restartable_postgres, notify_socket, mode):
    user = dovecot.add_user()
    cfg = daemon_config(tmp_path, dovecot, user, sink, restartable_postgres)
    d = started(ackwatch, cfg, env=notify_socket.env(2_000_000))
    pid = d.pid
    truth = ClientMail(dovecot, user)
    for n in range(3):
        truth.arrive(f"before-{mode}-{n}", answer=n == 1)
    d.wait_item(truth.unanswered[-1])

    def load() -> None:  # mail arriving before, during and after the restart
        for n in range(16):
            truth.arrive(f"load-{mode}-{n}", answer=n % 4 == 3)
            time.sleep(0.25)

    feeder = threading.Thread(target=load)
    feeder.start()
    time.sleep(1.0)
    restartable_postgres.restart(mode)
    feeder.join()
    for n in range(2):
        truth.arrive(f"after-{mode}-{n}")

    wait_for(lambda: all(times_mentioned(sink, m) >= 1 for m in truth.unanswered), 60,
             "a nudge for every unanswered mail", step=0.2)
    time.sleep(2.0)  # a duplicate would come now
    assert d.alive() and d.pid == pid, d.tail()
    lost, back = d.events("database_unreachable"), d.events("database_reconnected")
    assert len(lost) == len(back) >= 1, d.tail()
    assert all(e["attempts"] >= 1 and e["outage_s"] >= 0 for e in back)
    assert d.stop() == 0
    assert_nothing_lost_nothing_doubled(sink, cfg, truth)


def test_a_longer_outage_is_waited_out_feeding_the_watchdog_and_a_reply_in_it_counts(
        dovecot, tmp_path, sink, ackwatch, restartable_postgres, notify_socket):
    user = dovecot.add_user()
    cfg = daemon_config(tmp_path, dovecot, user, sink, restartable_postgres,
                        window="10s", nudge_before="5s")
    d = started(ackwatch, cfg, env=notify_socket.env(2_000_000))
    truth = ClientMail(dovecot, user)
    answered_in_outage = truth.arrive("answered-in-outage")
    d.wait_item(answered_in_outage)
    restartable_postgres.stop_for_now("fast")
    try:
        t0 = time.monotonic()
        # Its nudge comes due while the database is away; the reply arrives meanwhile.
        truth.answer(answered_in_outage, "Brief answered-in-outage")
        truth.arrive("arrived-in-outage")
        while time.monotonic() - t0 < 8:
            notify_socket.poll(0.2)
            assert d.alive(), d.tail()
        pings = notify_socket.pings(since=t0)
        statuses = [line for _, line in notify_socket.got if line.startswith("STATUS=")]
    finally:
        restartable_postgres.start_again()
    gaps = [b - a for a, b in itertools.pairwise([t0, *pings, time.monotonic()])]
    assert max(gaps) < 2.0, f"watchdog starved for {max(gaps):.1f}s\n{d.tail()}"
    assert any("state database unreachable for" in s for s in statuses), statuses
    (lost,) = d.wait_event("database_unreachable")
    assert "lost the connection to the state database" in lost["error"]
    (back,) = d.wait_event("database_reconnected", timeout=30)
    assert back["outage_s"] >= 6 and back["attempts"] > 1, back
    truth.arrive("arrived-after-outage")
    wait_for(lambda: all(times_mentioned(sink, m) >= 1 for m in truth.unanswered), 60,
             "a nudge for the mail of and after the outage", step=0.2)
    time.sleep(2.0)
    assert d.stop() == 0
    assert truth.answered == [answered_in_outage]
    assert_nothing_lost_nothing_doubled(sink, cfg, truth)


def test_an_outage_longer_than_give_up_after_ends_the_daemon_non_zero(
        dovecot, tmp_path, sink, ackwatch, restartable_postgres, notify_socket):
    user = dovecot.add_user()
    cfg = daemon_config(tmp_path, dovecot, user, sink, restartable_postgres,
                        give_up_after="3s")
    d = started(ackwatch, cfg, env=notify_socket.env(2_000_000))
    restartable_postgres.stop_for_now("fast")
    try:
        t0 = time.monotonic()
        status = d.proc.wait(30)
        took = time.monotonic() - t0
    finally:
        restartable_postgres.start_again()
    assert status not in (0, 78), status  # systemd restarts it (not a config error)
    (gave_up,) = d.events("database_outage_too_long")
    assert gave_up["give_up_after_s"] == 3.0 and gave_up["outage_s"] >= 3.0
    assert took < 15.0, (took, d.tail())
    assert "giving up" in d.text()
