"""NOTIFY news about the sent folder is never lost between commands (issue 24's tail).

Dovecot sends its NOTIFY ``STATUS`` news whenever it has it, so news often comes in
along with the answer to another command (an inbox sync's EXAMINE or FETCH) and imaplib
files it for later. Every EXAMINE makes imaplib drop whatever it filed, and a STATUS
command takes every filed ``STATUS``: a reply whose news was filed just before either
waited for the next poll (60 s by default). Each test makes the reply land at such a
moment on Dovecot, with a poll of 10 minutes, and waits for its sync with a hang guard
(not a timing assertion).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from tests.servers.dovecot import DovecotServer
from tests.support.watcher_events import (
    Events,
    append_mail,
    health_is,
    new_mail,
    watchers,
)

from ackwatch.config import Folders, MailboxConfig, SyncConfig
from ackwatch.mail.watcher import MailboxWatcher

pytestmark = pytest.mark.integration

HANG_GUARD = 30.0  # seconds; the poll would take 600
NEWS_DELAY = 1.5  # Dovecot sends NOTIFY news about half a second after the change


@pytest.fixture
def watch(resolve) -> Iterator[Callable[..., tuple[MailboxWatcher, Events]]]:
    """A watcher with IDLE and NOTIFY and a 10-minute poll, once up."""
    with watchers(resolve=resolve) as start:

        def start_up(mb: MailboxConfig, **kw) -> tuple[MailboxWatcher, Events]:
            sync = SyncConfig(poll_interval=dt.timedelta(minutes=10), idle=True)
            w, events = start(mb, sync, **kw)
            events.wait(health_is("up"))
            return w, events

        yield start_up


class ReplyDuring:
    """The `pending` callback of a watcher: the first time it is asked about ``folder``
    once armed (on the watcher's thread, right before that folder's sync), a reply is
    appended to ``sent`` and its news given time to reach the watcher's socket, so that
    the news is read with the sync's answers."""

    def __init__(self, server: DovecotServer, user: str, folder: str, sent: str) -> None:
        self.server, self.user, self.folder, self.sent = server, user, folder, sent
        self.armed = threading.Event()
        self.uids: list[int] = []

    def __call__(self, folder: str) -> set[int]:
        if folder == self.folder and self.armed.is_set() and not self.uids:
            self.uids.append(append_mail(self.server, self.user, self.sent,
                                         subject="Re: quote", flags=("\\Seen",)))
            time.sleep(NEWS_DELAY)
        return set()


def test_news_of_a_reply_read_during_an_inbox_sync_is_not_lost(
    dovecot_server: DovecotServer, make_mailbox_config, watch
) -> None:
    """The reply's news comes with the inbox sync's answers; the EXAMINE of the inbox
    that follows (before IDLE) must not drop it."""
    user = dovecot_server.add_user()
    reply = ReplyDuring(dovecot_server, user, "INBOX", "Sent")
    _w, events = watch(make_mailbox_config(dovecot_server, user), pending=reply)
    reply.armed.set()
    client = append_mail(dovecot_server, user, "INBOX", subject="Quote, please")
    events.wait(new_mail("INBOX", client))
    assert reply.uids, "the reply was appended during the inbox sync"
    events.wait(new_mail("Sent", reply.uids[0]), timeout=HANG_GUARD)


def test_news_of_one_sent_folder_read_during_the_others_sync_is_not_lost(
    dovecot_server: DovecotServer, make_mailbox_config, watch
) -> None:
    """Two sent folders: a reply lands in the first while the second is synced, and its
    news comes with that sync's answers, while another folder than the inbox is
    selected."""
    user = dovecot_server.add_user()
    with dovecot_server.admin(user) as c:
        c.create_folder("Sent Items")
    mb = dataclasses.replace(
        make_mailbox_config(dovecot_server, user),
        folders=Folders(inbox=("INBOX",), sent=("Sent", "Sent Items")),
    )
    reply = ReplyDuring(dovecot_server, user, "Sent Items", "Sent")
    _w, events = watch(mb, pending=reply)
    reply.armed.set()
    first = append_mail(dovecot_server, user, "Sent Items", subject="Re: first",
                        flags=("\\Seen",))
    events.wait(new_mail("Sent Items", first), timeout=HANG_GUARD)
    assert reply.uids, "the reply was appended during the other folder's sync"
    events.wait(new_mail("Sent", reply.uids[0]), timeout=HANG_GUARD)
