"""One pass over every mailbox, without watchers: ``ackwatch run --once`` (`sync_once`)
and the history import (`backfill`).

A reader thread connects to each mailbox in turn and reads its folders; the calling
thread (the single writer) stores each folder's result as it comes. They talk through a
bounded queue of `ReaderEvent` values.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import functools
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from imapclient import IMAPClient

from ackwatch.config import MailboxConfig
from ackwatch.core.message import FolderRole
from ackwatch.daemon.watchers import (
    SharedReader,
    store_folder_sync,
    stored_cursors,
    stored_pending_uids,
)
from ackwatch.gcpause import gc_paused
from ackwatch.mail import connection, imapguard
from ackwatch.mail.folders import watched_folders
from ackwatch.mail.sync import FolderSync, FolderSyncEvent, sync_folder
from ackwatch.mail.uidfetch import FetchedMessage

if TYPE_CHECKING:
    from ackwatch.daemon.service import Daemon

log = structlog.get_logger(__name__)

_SYNC_AHEAD = 2  # folder results the IMAP thread may read ahead of the writer


@dataclass(frozen=True)
class Fetched:
    """A folder read: the writer stores it."""

    mailbox: MailboxConfig
    at: dt.datetime
    sync: FolderSync


@dataclass(frozen=True)
class Unreachable:
    """The mailbox could not be connected to."""

    mailbox: MailboxConfig
    at: dt.datetime
    error: connection.ImapError


@dataclass(frozen=True)
class Failed:
    """Reading the mailbox failed after it was connected to."""

    mailbox: MailboxConfig
    at: dt.datetime
    error: Exception


@dataclass(frozen=True)
class Done:
    """Every watched folder of the mailbox was read."""

    mailbox: MailboxConfig
    at: dt.datetime


ReaderEvent = Fetched | Unreachable | Failed | Done

# (mailbox, client, watched folders, now) -> each folder's result, as it is read
MailboxRead = Callable[
    [MailboxConfig, IMAPClient, list[tuple[str, FolderRole]], dt.datetime],
    Iterator[FolderSync],
]
# (mailbox, folder's result, now): stores it, on the writer's thread
FolderWrite = Callable[[MailboxConfig, FolderSync, dt.datetime], None]


def sync_once(daemon: Daemon) -> tuple[list[str], list[str]]:
    """Sync every mailbox once, in turn (``ackwatch run --once``): (reached, failed).

    Each mailbox is independent: one that cannot be reached is logged and recorded in
    the health table, and the others are still synced.
    """
    config = daemon.config

    def write(mb: MailboxConfig, result: FolderSync, now: dt.datetime) -> None:
        daemon.apply_event(FolderSyncEvent(mb.name, result))

    with contextlib.closing(SharedReader(daemon.store)) as shared:
        return _each_mailbox(
            daemon, functools.partial(_read_mailbox, daemon, shared, since=None, history=False),
            write, failed_event="mailbox_sync_failed", record_health=True,
            mailbox_seconds=config.sync.mailbox_deadline.total_seconds(),
        )  # fmt: skip


def backfill(daemon: Daemon, since: dt.date) -> tuple[list[str], list[str], int]:
    """Import history back to ``since`` from every mailbox, silently: (reached, failed, new).

    Mail older than what the sync has seen is fetched (read-only, header fields only) and
    stored as history: items whose nudge or escalation time has passed get none, but
    their real time to acknowledge is recorded, so the report covers that period. The
    folders' sync cursors are left as they are.
    """
    added = 0

    def store(mb: MailboxConfig, result: FolderSync, now: dt.datetime) -> None:
        nonlocal added
        added += store_folder_sync(daemon.store, daemon.evaluation.parsed, daemon.config,
                                   mb.name, result, now, history=True)

    with contextlib.closing(SharedReader(daemon.store)) as unread:  # history reads none
        reached, failed = _each_mailbox(
            daemon, functools.partial(_read_mailbox, daemon, unread, since=since, history=True),
            store, failed_event="mailbox_backfill_failed", record_health=False,
        )  # fmt: skip
    daemon.reevaluate(history_since=dt.datetime.combine(since, dt.time(0), tzinfo=dt.UTC))
    log.info("backfill_done", mailboxes=len(reached), new=added)
    return reached, failed, added


def _read_mailbox(
    daemon: Daemon,
    shared: SharedReader,
    mb: MailboxConfig,
    client: IMAPClient,
    folders: list[tuple[str, FolderRole]],
    now: dt.datetime,
    *,
    since: dt.date | None,
    history: bool,
) -> Iterator[FolderSync]:
    """Read the mailbox's watched folders (a `MailboxRead`): each folder's result as soon
    as it is read.

    ``since``: the first sync's date (None: ``sync.backfill`` before ``now``).
    ``history`` (the backfill): every folder is read from ``since`` as on a first sync,
    whatever its cursor, and no flags of pending mail are asked for. ``shared``: where
    the cursors and pending UIDs are read, off the writer's thread.

    The first watched folder (the inbox) is read on the connection `_each_mailbox`
    opened, the others at the same time on a second one (the two connections a mailbox
    may use; there is no IDLE here): the server searches and sends the sent folder while
    the inbox is parsed. When the second connection cannot be opened, the other folders
    are read on the first one after the inbox.
    """
    config = daemon.config
    cursors = {} if history else stored_cursors(shared, mb.name)
    since = since if since is not None else (now - config.sync.backfill).date()

    def read(c: IMAPClient, folder: str, role: FolderRole) -> FolderSync:
        def prepare(batch: Sequence[FetchedMessage]) -> None:
            daemon.evaluation.parsed.prepare(mb.name, folder, role, batch)

        pending = () if history else stored_pending_uids(shared, mb.name, folder)
        with gc_paused():  # fetches and parses the folder's new mail: see there
            return sync_folder(
                c, folder, role, cursors.get(folder), since=since, pending_uids=pending,
                batch_size=config.sync.batch_size, on_batch=prepare,
            )  # fmt: skip

    def read_others() -> list[FolderSync] | None:
        try:
            second = connection.connect(
                mb, limits=imapguard.Limits.for_sync(config.sync),
                deadline=imapguard.session_deadline(client),
            )  # fmt: skip
        except connection.ImapError as exc:
            log.info("second_connection_refused", mailbox=mb.name, error=str(exc))
            return None
        try:
            return [read(second, folder, role) for folder, role in folders[1:]]
        finally:
            connection.logout(second)

    if len(folders) < 2:
        yield from (read(client, folder, role) for folder, role in folders)
        return
    with concurrent.futures.ThreadPoolExecutor(2, "ackwatch-sync-folder") as pool:
        first = pool.submit(read, client, *folders[0])
        others = pool.submit(read_others)
        for done in concurrent.futures.as_completed((first, others)):
            if done is first:  # each folder is written as soon as it is read
                yield first.result()
            elif (results := others.result()) is not None:
                yield from results
    if others.result() is None:
        yield from (read(client, folder, role) for folder, role in folders[1:])


def _each_mailbox(
    daemon: Daemon,
    read: MailboxRead,
    write: FolderWrite,
    *,
    failed_event: str,
    record_health: bool,
    mailbox_seconds: float | None = None,
) -> tuple[list[str], list[str]]:
    """Connect to every mailbox in turn, discover its folders, ``read(mailbox, client,
    watched folders, now)`` them and ``write`` each result: (reached, failed).

    The reads run on a reader thread, the writes here, on the calling thread (the single
    writer), a folder at a time as it is read: the store's work (SQLite, which releases
    the GIL) overlaps the server's and the parse of what comes next, as the daemon's
    watchers overlap the core. At most `_SYNC_AHEAD` results wait at once.

    Each mailbox is independent: one that cannot be reached (``mailbox_unreachable``) or
    whose read or write raises (``failed_event``) is logged, and the others still get
    their turn. ``record_health``: also record each mailbox's outcome in the health
    table. ``mailbox_seconds``: each mailbox's connections end this long after the first
    was opened (`imapguard`: ``imap_command_deadline``), and it counts as failed. The
    reader thread never ends with an uncaught exception: whatever fails is logged as an
    event and charged to its mailbox, and the next mailboxes are still read.
    """
    events: queue.Queue[ReaderEvent | None] = queue.Queue(maxsize=_SYNC_AHEAD)
    given_up: set[str] = set()  # mailboxes whose writing failed: read no further
    stop = threading.Event()  # the writer has stopped (an error of its own): read no more

    def put(event: ReaderEvent | None) -> bool:
        while not stop.is_set():
            try:
                events.put(event, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    limits = imapguard.Limits.for_sync(daemon.config.sync)

    def read_one(mb: MailboxConfig) -> None:
        now = daemon.now()
        deadline = None if mailbox_seconds is None else time.monotonic() + mailbox_seconds
        try:
            client = connection.connect(mb, limits=limits, deadline=deadline)
        except connection.ImapError as exc:
            put(Unreachable(mb, now, exc))
            return
        except Exception as exc:  # a fault of ours: this mailbox only, and never its text
            log.error("mailbox_connect_error", mailbox=mb.name, error=type(exc).__name__)
            put(Unreachable(mb, now, connection.ImapError(f"connect failed: {type(exc).__name__}")))
            return
        try:
            folders = watched_folders(client, mb.folders)
            for result in read(mb, client, folders, now):
                if not put(Fetched(mb, now, result)) or mb.name in given_up:
                    break
            else:
                put(Done(mb, now))
        except Exception as exc:  # a failing mailbox never stops the others
            ended = imapguard.failure(client)
            put(Failed(mb, now, connection.ImapError(str(ended)) if ended is not None else exc))
        finally:
            connection.logout(client)

    def read_all() -> None:
        try:
            for mb in daemon.config.mailboxes:
                if stop.is_set():
                    return
                try:
                    read_one(mb)
                except Exception as exc:  # pragma: no cover - read_one charges its mailbox
                    log.error("sync_reader_error", mailbox=mb.name, error=type(exc).__name__)
        finally:
            put(None)

    reader = threading.Thread(target=read_all, name="ackwatch-sync", daemon=True)
    reader.start()
    reached: list[str] = []
    failed: list[str] = []
    try:
        while (event := events.get()) is not None:
            mb = event.mailbox
            if mb.name in given_up:
                continue
            if isinstance(event, Fetched):
                try:
                    write(mb, event.sync, event.at)
                except Exception as exc:
                    given_up.add(mb.name)
                    event = Failed(mb, event.at, exc)
            if isinstance(event, Unreachable):
                if record_health:
                    state = "auth_failed" if isinstance(event.error, connection.AuthError) else "backoff"
                    daemon.store.set_health(mb.name, state, since=event.at,
                                            last_error=str(event.error))
                log.error("mailbox_unreachable", mailbox=mb.name, error=str(event.error))
                failed.append(mb.name)
            elif isinstance(event, Failed):
                error = (str(event.error) if isinstance(event.error, connection.ImapError)
                         else type(event.error).__name__)
                if record_health:
                    daemon.store.set_health(mb.name, "backoff", since=event.at, last_error=error)
                log.error(failed_event, mailbox=mb.name, error=error)
                failed.append(mb.name)
            elif isinstance(event, Done):
                if record_health:
                    daemon.store.set_health(mb.name, "up", since=event.at, last_error=None)
                reached.append(mb.name)
    finally:
        stop.set()  # the reader, if still reading, ends at its next step
    reader.join()
    return reached, failed
