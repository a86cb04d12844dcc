"""The IMAP watchers (one thread per mailbox), and the re-check of their sent folders
right before a mail goes out, so that a reply sent a minute ago cancels the nudge."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from ackwatch.config import Config, MailboxConfig, SyncConfig
from ackwatch.daemon.parsedmail import ParsedMail, copies_to_store
from ackwatch.mail.sync import FolderCursor, FolderSync
from ackwatch.mail.watcher import HealthEvent, MailboxWatcher
from ackwatch.store import Store, StoreUnavailable

if TYPE_CHECKING:
    from ackwatch.core.message import FolderRole

log = structlog.get_logger(__name__)
T = TypeVar("T")

RECHECK_TIMEOUT = 20.0
WATCHER_STOP_SECONDS = 6.0  # SIGTERM to exit stays within 10 s
RECHECK_SLICE = 2.0  # a stop is noticed within this; a slow sync still fits in it
# How long a watcher's read of its cursors waits for a state database that cannot be
# reached (PostgreSQL restarting): a restart fits in it; past it the watcher's session
# fails and is retried with the watcher's own backoff.
READER_PATIENCE = 60.0


@dataclass(frozen=True)
class Recheck:
    """The outcome of a pre-send re-check: the mailboxes whose sent folders were synced,
    and those that could not be (down, or no answer in time). True if any was synced."""

    done: frozenset[str]
    failed: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.done)


class Watchers:
    """The running watchers by mailbox name: one each, two with ``sync.watch_sent:
    idle`` (the second IDLEs the sent folders on a connection of its own). Their events
    go to ``emit`` (the core's queue); they read their cursors from ``store`` on
    connections of their own. The mailbox's health is its first watcher's: a sent-folder
    watcher that is down logs it, and makes the pre-send re-check of the mailbox fail.
    Their reads share one read-only connection (`SharedReader`)."""

    def __init__(
        self, store: Store, emit: Callable[[object], None], *,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self._reader = SharedReader(store)
        self._emit = emit
        self._options = dict(options or {})  # more `MailboxWatcher` arguments (tests)
        self._running: dict[str, tuple[MailboxWatcher, ...]] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._running

    def start(self, mailboxes: Iterable[MailboxConfig], sync: SyncConfig) -> None:
        parts: tuple[FolderRole | None, ...] = (
            ("inbox", "sent") if sync.watch_sent == "idle" else (None,)
        )
        for mb in mailboxes:
            watchers = tuple(
                MailboxWatcher(
                    mb,
                    sync,
                    get_cursors=functools.partial(stored_cursors, self._reader, mb.name),
                    get_pending_uids=functools.partial(stored_pending_uids, self._reader, mb.name),
                    emit=self._emit if only != "sent" else self._emit_folders,
                    only=only,
                    **self._options,
                )
                for only in parts
            )
            self._running[mb.name] = watchers
            for watcher in watchers:
                watcher.start()

    def _emit_folders(self, event: object) -> None:
        if not isinstance(event, HealthEvent):
            self._emit(event)

    def stop(self, names: Iterable[str] | None = None, *, grace: float = 2.0) -> None:
        """Stop the watchers of ``names`` (None: all). Each has ``grace`` seconds to log
        out before its connection is cut (0: cut at once, when another node may be
        about to take the mailbox over)."""
        names = list(self._running) if names is None else list(names)
        # All at once and briefly: a watcher stuck on a stalled server has its connection
        # cut by stop(); SIGTERM must end the process well within systemd's stop timeout.
        stoppers = [
            threading.Thread(target=watcher.stop, kwargs={"timeout": grace},
                             name=f"stop-{watcher.name}", daemon=True)
            for name in names for watcher in self._running[name]
        ]
        for t in stoppers:
            t.start()
        deadline = time.monotonic() + WATCHER_STOP_SECONDS
        for t in stoppers:
            t.join(max(0.0, deadline - time.monotonic()))
        for name in names:
            self._running.pop(name)
        if not self._running:
            self._reader.close()

    def recheck(
        self, mailboxes: Iterable[str], *, stop: threading.Event, heartbeat: Callable[[], None]
    ) -> Recheck:
        """Re-check the given mailboxes' sent folders now, all at once: which did, which
        could not (down, too slow). Mailboxes without a running watcher are in neither.

        The mailboxes are re-checked in parallel (one short-lived thread each), so fifty
        accounts due in the same minute cost one round of IMAP latency, not fifty. The
        calling thread calls ``heartbeat`` (the watchdog) while it waits: a stalled server
        must not starve it. ``stop`` set: return without waiting any longer.
        """
        watchers = [
            (n, w) for n in sorted(mailboxes) for w in self._running.get(n, ())
        ]
        if not watchers:
            return Recheck(frozenset(), frozenset())
        deadline = time.monotonic() + RECHECK_TIMEOUT
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=min(32, len(watchers)), thread_name_prefix="recheck"
        )
        try:
            futures = [(n, pool.submit(_recheck_one, n, w, deadline, stop)) for n, w in watchers]
            pending = {f for _, f in futures}
            while pending and not stop.is_set():
                heartbeat()
                _, pending = concurrent.futures.wait(pending, timeout=0.5)
            names = {n for n, _ in futures}
            failed = {n for n, f in futures
                      if not (f.done() and not f.cancelled() and f.result())}  # fmt: skip
            return Recheck(frozenset(names - failed), frozenset(failed))
        finally:
            # On SIGTERM do not wait for a stalled server: the workers notice the stop
            # within one slice.
            pool.shutdown(wait=not stop.is_set(), cancel_futures=True)


def _recheck_one(
    name: str, watcher: MailboxWatcher, deadline: float, stop: threading.Event
) -> bool:
    # A watcher that has not finished its first connection (the daemon just started,
    # or a reload restarted it) has not seen the replies made while it was not
    # watching: wait for that first sync (bounded) instead of sending blind. A mailbox
    # in backoff is tried once now (at most once per `watcher.RECHECK_RETRY_SECONDS`)
    # and waited for while that attempt lasts; one refusing the login is not.
    try:
        while (
            watcher.health.state == "connecting"
            and watcher.is_alive()
            and not stop.is_set()
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        while True:  # in short slices, so that a stop is noticed promptly
            left = deadline - time.monotonic()
            if watcher.recheck(timeout=min(RECHECK_SLICE, max(left, 0.1))):
                return True
            trying = watcher.health.state == "up" or watcher.retrying
            if left <= RECHECK_SLICE or not trying or stop.is_set():
                return False
    except Exception as exc:  # a failing mailbox never blocks the nudge
        log.warning("recheck_failed", mailbox=name, error=type(exc).__name__)
        return False


def stored_cursors(shared: SharedReader, mailbox: str) -> dict[str, FolderCursor]:
    """The mailbox's stored folder cursors, read off the core thread."""
    def read(reader: Store) -> dict[str, FolderCursor]:
        return {
            folder: FolderCursor(c.uidvalidity, c.last_uid, c.highestmodseq)
            for folder, c in reader.cursors(mailbox).items()
        }

    return _patiently(shared, read)


def stored_pending_uids(shared: SharedReader, mailbox: str, folder: str) -> set[int]:
    """The UIDs of the folder's copies of pending items, read off the core thread."""
    return _patiently(shared, lambda reader: reader.pending_uids(mailbox, folder))


def _patiently(shared: SharedReader, read: Callable[[Store], T]) -> T:
    """``read`` on the watchers' reader, done again while the database cannot be reached,
    for up to `READER_PATIENCE` (then `StoreUnavailable`)."""
    deadline = time.monotonic() + READER_PATIENCE
    delay = 0.25
    while True:
        try:
            return shared.read(read)
        except StoreUnavailable:
            if time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


class SharedReader:
    """One read-only connection to the state for the watcher threads (the writer is the
    core), opened at the first read and kept. Their reads are short (a mailbox's
    cursors, a folder's pending UIDs), about one per sync: opening a connection for each
    cost more than the read (SQLite: 0.55 ms against 0.02 ms; PostgreSQL: a connection
    and a login). Reads take turns; a read that fails drops the connection, and the
    next one opens another (a PostgreSQL restart)."""

    def __init__(self, store: Store):
        self._store = store
        self._lock = threading.Lock()
        self._reader: Store | None = None

    def read(self, read: Callable[[Store], T]) -> T:
        with self._lock:
            if self._reader is None:
                self._reader = self._store.open_reader()
            try:
                return read(self._reader)
            except BaseException:
                self._drop()
                raise

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def store_folder_sync(
    store: Store, parsed: ParsedMail, config: Config, mailbox: str, s: FolderSync,
    now: dt.datetime, *, history: bool = False,
) -> int:
    """Store one folder's sync result (parsed by ``parsed``, which keeps the parses of the
    copies stored); returns the number of new copies.

    ``history`` (`once.backfill`): the result is an import of older mail, stored as
    of a first start (``initial``) beside what is there; the folder's cursor stays
    where the sync left it unless its UIDVALIDITY changed.
    """
    cursor = s.cursor
    if history:
        keep = store.cursors(mailbox).get(s.folder)
        if keep is not None and keep.uidvalidity == cursor.uidvalidity:
            cursor = FolderCursor(keep.uidvalidity, keep.last_uid, keep.highestmodseq)
    fetched = parsed.parse(mailbox, s.folder, s.role, s.new_messages)
    stored = store.apply_folder_sync(
        mailbox=mailbox,
        folder=s.folder,
        role=s.role,
        uidvalidity=cursor.uidvalidity,
        last_uid=cursor.last_uid,
        highestmodseq=cursor.highestmodseq,
        new_messages=copies_to_store(store, fetched),
        flag_updates=() if history else s.flag_updates,
        reset=s.reset and not history,
        initial=s.reset or history,
        dismiss_keyword=config.dismiss_keyword,
        now=now,
        # Never evaluated (no threads yet): the next evaluation is a full one, and
        # one that is killed before it is followed by a full one too. A history
        # import marks its copies whatever the state.
        mark_dirty=history or store.get_meta("threaded_with") is not None,
    )
    parsed.keep(cursor.uidvalidity, fetched, stored)
    return len(stored)
