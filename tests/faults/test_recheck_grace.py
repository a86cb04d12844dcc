"""A mailbox the pre-send re-check cannot reach: its nudges wait for it, for a grace.

The real daemon against Dovecot behind `proxy.FaultProxy`; the reply is put into Sent
while the proxy refuses the daemon, so the daemon has not seen it when the nudge comes
due (from its side, exactly a reply made just before an outage).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from tests.faults.daemon_config import write_config
from tests.faults.proxy import FaultProxy
from tests.support.daemon import (
    ANNA,
    Ackwatch,
    client_mail,
    reply_mail,
    started,
    times_mentioned,
)
from tests.support.waiting import wait_for

from ackwatch.config import Folders, MailboxConfig, SecretRef, SyncConfig
from ackwatch.daemon.watchers import Watchers
from ackwatch.mail.sync import FolderSyncEvent
from ackwatch.mail.watcher import HealthEvent
from ackwatch.store.sqlite import SqliteStore

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]

ReplyInAnOutage = Callable[..., tuple[Ackwatch, FaultProxy]]


def item_state(tmp_path: Path, message_id: str) -> tuple[str, str | None]:
    """(state, nudge_done) of the item of ``message_id``."""
    db = f"file:{tmp_path / 'state' / 'ackwatch.sqlite3'}?mode=ro"
    with sqlite3.connect(db, uri=True) as conn:
        row = conn.execute("SELECT state, nudge_done FROM items WHERE message_id = ?",
                           (message_id,)).fetchone()  # fmt: skip
    assert row is not None, message_id
    return row


@pytest.fixture
def reply_in_an_outage(dovecot, tmp_path, sink, ackwatch) -> Iterator[ReplyInAnOutage]:
    """``(subject, message_id, window=, nudge_before=, recheck_grace=)`` -> (daemon,
    proxy): the daemon, behind a `FaultProxy` and with that policy, has seen the client's
    mail; then the proxy refuses it, the mailbox is down, and the reply is put into Sent
    unseen (from the daemon's side, a reply made just before an outage)."""
    user = dovecot.add_user()
    with FaultProxy((dovecot.host, dovecot.port)) as proxy:

        def start(subject: str, mid: str, **policy: str) -> tuple[Ackwatch, FaultProxy]:
            cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=sink.port,
                               imap_port=proxy.port, batch_window="0s", **policy)
            d = started(ackwatch, cfg)
            dovecot.append(user, "INBOX", client_mail(subject, mid))
            d.wait_item(mid)
            proxy.refuse()
            proxy.cut()
            d.wait_event("mailbox_down", timeout=10)
            dovecot.append(user, "Sent", reply_mail(mid, subject))
            return d, proxy

        yield start


def test_a_reply_unseen_in_an_outage_is_not_nudged_about_when_the_mailbox_is_back_in_the_grace(
    reply_in_an_outage, tmp_path, sink
):
    mid = "<answered-in-the-outage@acme.example>"
    # Nudge 15 s after arrival, deadline at 60 s: a 40 s grace fits before it.
    d, proxy = reply_in_an_outage("Quote before the outage", mid, window="60s",
                                  nudge_before="45s", recheck_grace="40s")
    (held,) = d.wait_event("action_held", timeout=30)
    assert held["mailboxes"] == ["anna"] and held["items"] == 1
    assert times_mentioned(sink, mid) == 0
    proxy.accept()
    wait_for(lambda: item_state(tmp_path, mid)[0] == "acknowledged", 45,
             "the reply seen once the mailbox is back", step=0.2)
    time.sleep(1.0)  # a step after the acknowledgement: nothing goes out
    assert times_mentioned(sink, mid) == 0, d.tail()
    assert item_state(tmp_path, mid)[1] is None
    assert not d.events("action_unchecked")
    assert d.stop() == 0


def test_a_nudge_whose_deadline_would_pass_within_the_grace_goes_out_unchecked(
    reply_in_an_outage, sink
):
    mid = "<deadline-close@acme.example>"
    # Nudge 10 s before the deadline, grace 2 min: holding it would pass the deadline.
    d, proxy = reply_in_an_outage("Quote due soon", mid, window="20s", nudge_before="10s",
                                  recheck_grace="2m")
    (unchecked,) = d.wait_event("action_unchecked", timeout=30)
    assert unchecked["reason"] == "deadline" and unchecked["mailboxes"] == ["anna"]
    wait_for(lambda: times_mentioned(sink, mid) == 1, 15, "the nudge sent", step=0.1)
    assert not d.events("action_held")
    proxy.accept()
    assert d.stop() == 0


def test_a_recheck_tries_a_mailbox_in_backoff_at_once_and_at_most_once_per_bound(
    dovecot, tmp_path
):
    """The watcher's backoff (10 minutes here; up to 5 in the daemon) can be longer than
    the grace: a re-check asks for an attempt now, which finds a server that is back, and
    a server still down gets no more than one attempt per bound (2 s here, 30 s in the
    daemon) however often the re-check asks."""
    user = dovecot.add_user()
    events: list[object] = []
    store = SqliteStore.open(tmp_path)
    stop = threading.Event()

    def recheck() -> bool:
        return bool(watchers.recheck(["anna"], stop=stop, heartbeat=lambda: None))

    def retries() -> int:
        return [e["event"] for e in logs].count("mailbox_retry")

    def state() -> str | None:
        health = [e.health.state for e in list(events) if isinstance(e, HealthEvent)]
        return health[-1] if health else None

    with FaultProxy((dovecot.host, dovecot.port)) as proxy, capture_logs() as logs:
        mailbox = MailboxConfig(
            name="anna", host=proxy.host, port=proxy.port, security="none", username=user,
            password=SecretRef("env", "UNUSED"), oauth2_token=None,
            folders=Folders(inbox=("INBOX",), sent=("Sent",)), timeout=3.0,
        )  # fmt: skip
        watchers = Watchers(store, events.append, options={
            "resolve": lambda _ref: dovecot.passwords[user],
            "backoff_initial": 600.0, "backoff_max": 600.0, "recheck_retry": 2.0,
        })  # fmt: skip
        watchers.start([mailbox], SyncConfig())
        try:
            wait_for(lambda: state() == "up", 15, "the mailbox up")
            proxy.refuse()
            proxy.cut()
            wait_for(lambda: state() == "backoff", 15, "the mailbox down")
            mid = "<answered-in-the-outage@acme.example>"
            dovecot.append(user, "Sent", reply_mail(mid, "Quote before the outage"))

            def refused_once_asked() -> bool:
                assert not recheck()  # the server refuses
                return retries() >= 1

            # Asked again and again: one attempt as soon as the bound since the session's
            # start allows, then none until the bound since that one has passed.
            wait_for(refused_once_asked, 10, "an attempt for a re-check", step=0.1)
            assert not recheck()
            assert retries() == 1

            proxy.accept()
            wait_for(recheck, 20, "the re-check reaching the mailbox back", step=0.1)
            assert state() == "up"
            assert retries() == 2
            synced = [e.sync for e in list(events)
                      if isinstance(e, FolderSyncEvent) and e.sync.folder == "Sent"]
            assert any(mid.encode() in m.header_bytes for s in synced for m in s.new_messages)
        finally:
            watchers.stop()
            store.close()
