"""Watching a mailbox in a test: mail appended to a test server, and the watcher's events
collected and waited for (bounded)."""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
from collections.abc import Callable, Iterator
from typing import Any

from tests.servers.imapserver import ImapTestServer, make_message
from tests.support.waiting import wait_for

from ackwatch.config import MailboxConfig, SyncConfig
from ackwatch.mail.sync import FolderSyncEvent
from ackwatch.mail.watcher import HealthEvent, MailboxWatcher

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def append_mail(server: ImapTestServer, user: str, folder: str = "INBOX", **kw) -> int:
    when = kw.pop("internaldate", NOW)
    flags = kw.pop("flags", ())
    return server.append(user, folder, make_message(**kw), flags=flags, internaldate=when)


class Events:
    """Collects watcher events; waits for the ones a test expects (bounded)."""

    def __init__(self) -> None:
        self.q: queue.Queue = queue.Queue()
        self.all: list = []

    def __call__(self, event) -> None:
        self.q.put(event)

    def wait(self, pred: Callable[[object], bool], timeout: float = 10.0):
        """The first event `pred` accepts: one seen already, or the next to arrive within
        `timeout` seconds."""
        for e in self.all:
            if pred(e):
                return e

        def arrived() -> tuple | None:
            try:
                e = self.q.get(timeout=0.05)
            except queue.Empty:
                return None
            self.all.append(e)
            return (e,) if pred(e) else None

        try:
            return wait_for(arrived, timeout, "a matching watcher event", step=0)[0]
        except AssertionError as exc:
            raise AssertionError(f"{exc}; got {self.all!r}") from None

    def drain(self) -> list:
        while True:
            try:
                self.all.append(self.q.get_nowait())
            except queue.Empty:
                return self.all

    def synced_uids(self, folder: str = "INBOX") -> list[int]:
        self.drain()
        return [
            m.uid
            for e in self.all
            if isinstance(e, FolderSyncEvent) and e.sync.folder == folder
            for m in e.sync.new_messages
        ]


def new_mail(folder: str, uid: int) -> Callable[[object], bool]:
    return lambda e: (
        isinstance(e, FolderSyncEvent)
        and e.sync.folder == folder
        and any(m.uid == uid for m in e.sync.new_messages)
    )


def health_is(state: str) -> Callable[[object], bool]:
    return lambda e: isinstance(e, HealthEvent) and e.health.state == state


StartWatcher = Callable[..., tuple[MailboxWatcher, Events]]


@contextlib.contextmanager
def watchers(**common: Any) -> Iterator[StartWatcher]:
    """``start(mailbox, sync, pending=..., **kw)`` starts a `MailboxWatcher` (no stored
    cursors; ``pending``: the pending UIDs by folder; ``common`` and ``kw``: its
    keywords, e.g. ``resolve``) and gives it with its `Events`. At the end each one is
    stopped, and must have stopped."""
    started: list[MailboxWatcher] = []

    def start(mb: MailboxConfig, sync: SyncConfig,
              pending: Callable[[str], set[int]] = lambda folder: set(),
              **kw: Any) -> tuple[MailboxWatcher, Events]:  # fmt: skip
        events = Events()
        w = MailboxWatcher(mb, sync, dict, pending, events, **{**common, **kw})
        w.start()
        started.append(w)
        return w, events

    yield start
    for w in started:
        w.stop(timeout=5)
        assert not w.is_alive(), "watcher did not stop"
