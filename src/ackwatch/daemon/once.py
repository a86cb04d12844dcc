"""One pass over every mailbox, without watchers: ``ackwatch run --once`` (`sync_once`)
and the history import (`backfill`)."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import structlog

from ackwatch.config import MailboxConfig
from ackwatch.core.threads import gc_paused
from ackwatch.daemon.watchers import stored_cursors, stored_pending_uids
from ackwatch.mail import imap, imapguard

if TYPE_CHECKING:
    from ackwatch.daemon.service import Daemon

log = structlog.get_logger(__name__)


def sync_once(daemon: Daemon) -> tuple[list[str], list[str]]:
    """Sync every mailbox once, in turn (``ackwatch run --once``): (reached, failed).

    Each mailbox is independent: one that cannot be reached is logged and recorded in
    the health table, and the others are still synced.

    A mailbox's first watched folder (its inbox) is read on the connection `_each_mailbox`
    opened, the others at the same time on a second one (the two connections a mailbox
    may use; there is no IDLE here): the server searches and sends the sent folder while
    the inbox is parsed. When the second connection cannot be opened, the other folders
    are read on the first one after the inbox.
    """
    config = daemon.config

    def sync(
        mb: MailboxConfig,
        client: imap.IMAPClient,
        folders: list[tuple[str, imap.FolderRole]],
        now: dt.datetime,
    ) -> Iterator[Callable[[], None]]:
        cursors = stored_cursors(daemon.store, mb.name)
        since = (now - config.sync.backfill).date()

        def read(c: imap.IMAPClient, folder: str, role: imap.FolderRole) -> Callable[[], None]:
            def prepare(batch: Sequence[imap.FetchedMessage]) -> None:
                daemon.store.prepare(mb.name, folder, role, batch)

            with gc_paused():  # fetches and parses the folder's new mail: see there
                result = imap.sync_folder(
                    c, folder, role, cursors.get(folder), since=since,
                    pending_uids=stored_pending_uids(daemon.store, mb.name, folder),
                    batch_size=config.sync.batch_size, on_batch=prepare,
                )
            event = imap.FolderSyncEvent(mb.name, result)
            return lambda: daemon.apply_event(event)

        def read_others() -> list[Callable[[], None]] | None:
            try:
                second = imap.connect(
                    mb, limits=imapguard.Limits.for_sync(config.sync),
                    deadline=imapguard.session_deadline(client),
                )  # fmt: skip
            except imap.ImapError as exc:
                log.info("second_connection_refused", mailbox=mb.name, error=str(exc))
                return None
            try:
                return [read(second, folder, role) for folder, role in folders[1:]]
            finally:
                imap.logout(second)

        if len(folders) < 2:
            yield from (read(client, folder, role) for folder, role in folders)
            return
        with concurrent.futures.ThreadPoolExecutor(2, "ackwatch-sync-folder") as pool:
            first = pool.submit(read, client, *folders[0])
            others = pool.submit(read_others)
            for done in concurrent.futures.as_completed((first, others)):
                if done is first:  # each folder is written as soon as it is read
                    yield first.result()
                elif (steps := others.result()) is not None:
                    yield from steps
        if others.result() is None:
            yield from (read(client, folder, role) for folder, role in folders[1:])

    return _each_mailbox(
        daemon, sync, failed_event="mailbox_sync_failed", record_health=True,
        mailbox_seconds=config.sync.mailbox_deadline.total_seconds(),
    )  # fmt: skip



def backfill(daemon: Daemon, since: dt.date) -> tuple[list[str], list[str], int]:
    """Import history back to ``since`` from every mailbox, silently: (reached, failed, new).

    Mail older than what the sync has seen is fetched (read-only, header fields only) and
    stored as history: items whose nudge or escalation time has passed get none, but
    their real time to acknowledge is recorded, so the report covers that period. The
    folders' sync cursors are left as they are.
    """
    config = daemon.config
    added = 0

    def fetch(
        mb: MailboxConfig,
        client: imap.IMAPClient,
        folders: list[tuple[str, imap.FolderRole]],
        now: dt.datetime,
    ) -> Iterator[Callable[[], None]]:
        for folder, role in folders:
            result = imap.sync_folder(
                client, folder, role, None, since=since, batch_size=config.sync.batch_size
            )

            def store(folder: str = folder, role: str = role, result=result) -> None:
                nonlocal added
                keep = daemon.store.cursors(mb.name).get(folder)
                cursor = result.cursor
                if keep is not None and keep.uidvalidity == cursor.uidvalidity:
                    cursor = imap.FolderCursor(keep.uidvalidity, keep.last_uid, keep.highestmodseq)
                added += daemon.store.apply_folder_sync(
                    mailbox=mb.name, folder=folder, role=role,
                    uidvalidity=cursor.uidvalidity, last_uid=cursor.last_uid,
                    highestmodseq=cursor.highestmodseq,
                    new_messages=result.new_messages,
                    flag_updates=(), reset=False, initial=True,
                    dismiss_keyword=config.dismiss_keyword, now=now,
                )

            yield store

    reached, failed = _each_mailbox(
        daemon, fetch, failed_event="mailbox_backfill_failed", record_health=False
    )
    daemon.reevaluate(history_since=dt.datetime.combine(since, dt.time(0), tzinfo=dt.UTC))
    log.info("backfill_done", mailboxes=len(reached), new=added)
    return reached, failed, added



MailboxWork = Callable[
    [MailboxConfig, imap.IMAPClient, list[tuple[str, imap.FolderRole]], dt.datetime],
    Iterator[Callable[[], None]],
]

_SYNC_AHEAD = 2  # folder results the IMAP thread may read ahead of the writer



def _each_mailbox(
    daemon: Daemon,
    work: MailboxWork,
    *,
    failed_event: str,
    record_health: bool,
    mailbox_seconds: float | None = None,
) -> tuple[list[str], list[str]]:
    """Connect to every mailbox in turn, discover its folders and run
    ``work(mailbox, client, watched folders, now)``: (reached, failed).

    ``work`` reads from the server and yields what is to be written, a step per folder;
    the steps run here, on the calling thread (the single writer), while a reader thread
    goes on with the next folder or mailbox: the store's work (SQLite, which releases
    the GIL) overlaps the server's and the parse of what comes next, as the daemon's
    watchers overlap the core. At most `_SYNC_AHEAD` steps wait at once.

    Each mailbox is independent: one that cannot be reached (``mailbox_unreachable``) or
    whose work raises, reading or writing (``failed_event``), is logged, and the others
    still get their turn. ``record_health``: also record each mailbox's outcome in the
    health table. ``mailbox_seconds``: each mailbox's connections end this long after the
    first was opened (`imapguard`: ``imap_command_deadline``), and it counts as failed.
    The reader thread never ends with an uncaught exception: whatever fails is logged as
    an event and charged to its mailbox, and the next mailboxes are still read.
    """
    steps: queue.Queue[tuple[str, MailboxConfig, dt.datetime, object] | None] = queue.Queue(
        maxsize=_SYNC_AHEAD
    )
    given_up: set[str] = set()  # mailboxes whose writing failed: read no further
    stop = threading.Event()  # the writer has stopped (an error of its own): read no more

    def put(entry: tuple[str, MailboxConfig, dt.datetime, object] | None) -> bool:
        while not stop.is_set():
            try:
                steps.put(entry, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    limits = imapguard.Limits.for_sync(daemon.config.sync)

    def read_one(mb: MailboxConfig) -> None:
        now = daemon.now()
        deadline = None if mailbox_seconds is None else time.monotonic() + mailbox_seconds
        try:
            client = imap.connect(mb, limits=limits, deadline=deadline)
        except imap.ImapError as exc:
            put(("unreachable", mb, now, exc))
            return
        except Exception as exc:  # a fault of ours: this mailbox only, and never its text
            log.error("mailbox_connect_error", mailbox=mb.name, error=type(exc).__name__)
            put(("unreachable", mb, now, imap.ImapError(f"connect failed: {type(exc).__name__}")))
            return
        try:
            folders = imap.watched_folders(*imap.discover_folders(client, mb.folders))
            for step in work(mb, client, folders, now):
                if not put(("step", mb, now, step)) or mb.name in given_up:
                    break
            else:
                put(("done", mb, now, None))
        except Exception as exc:  # a failing mailbox never stops the others
            ended = imapguard.failure(client)
            put(("failed", mb, now, imap.ImapError(str(ended)) if ended is not None else exc))
        finally:
            imap.logout(client)

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
        while (entry := steps.get()) is not None:
            kind, mb, now, value = entry
            if mb.name in given_up:
                continue
            if kind == "step":
                try:
                    value()  # type: ignore[operator]
                except Exception as exc:
                    given_up.add(mb.name)
                    kind, value = "failed", exc
            if kind == "unreachable":
                if record_health:
                    state = "auth_failed" if isinstance(value, imap.AuthError) else "backoff"
                    daemon.store.set_health(mb.name, state, since=now, last_error=str(value))
                log.error("mailbox_unreachable", mailbox=mb.name, error=str(value))
                failed.append(mb.name)
            elif kind == "failed":
                error = str(value) if isinstance(value, imap.ImapError) else type(value).__name__
                if record_health:
                    daemon.store.set_health(mb.name, "backoff", since=now, last_error=error)
                log.error(failed_event, mailbox=mb.name, error=error)
                failed.append(mb.name)
            elif kind == "done":
                if record_health:
                    daemon.store.set_health(mb.name, "up", since=now, last_error=None)
                reached.append(mb.name)
    finally:
        stop.set()  # the reader, if still reading, ends at its next step
    reader.join()
    return reached, failed

