"""One watcher per mailbox: one daemon thread and ONE connection.

IDLE on the first inbox folder where offered (renewed every 10 minutes), broken off
every ``sync.poll_interval`` to STATUS-poll the other folders (never the IDLE folder
itself, which stays selected; see `MailboxWatcher`), and on `MailboxWatcher.recheck` /
`MailboxWatcher.stop`, which wake the IDLE wait through a socket pair (no timer ticks).
Faults reconnect with exponential backoff and jitter; state changes (not attempts) are
logged and emitted as `HealthEvent`.

The other folders (the sent folder) are seen as quickly as the IDLE folder where the
server offers IMAP NOTIFY (``sync.watch_sent: auto``, `notify`): its news about them
ends the IDLE wait and has them STATUS-checked and synced at once. With ``watch_sent:
idle`` the daemon runs two watchers per mailbox instead (``only``: "inbox" and "sent"),
the second IDLEing the first sent folder on a connection of its own.

With IDLE, what one poll interval costs when nothing changed is ``DONE``, one ``STATUS``
per folder other than the IDLE folder (usually just the sent folder) and ``IDLE`` again:
no EXAMINE, FETCH or NOOP. The IDLE folder is re-checked with one EXAMINE every
``idle_safety_polls`` polls (default 30: half an hour at the default 60 s poll, adding
1/30 of a command per poll), a safety net for servers that do not report every flag
change during IDLE. It stays selected across polls: EXAMINE is sent again only when
another folder was selected in between or after the IDLE folder itself was synced (its
fetches may have swallowed an unsolicited flag update; the EXAMINE's UIDNEXT /
HIGHESTMODSEQ show it). The wait itself is one ``poll()`` on the IMAP socket and a
wake-up socket pair: an idle watcher does not wake up until the server says something
or the next poll is due.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import structlog

from ackwatch.mail import imapguard, notify
from ackwatch.mail.connection import (
    CONNECTION_ERRORS,
    AuthError,
    ImapError,
    Resolver,
    connect,
    describe,
    enable_condstore,
    failure_text,
    logout,
    shutdown,
)
from ackwatch.mail.folderread import FolderReader, Unavailable
from ackwatch.mail.folders import watched_folders
from ackwatch.mail.idle import Waker, idle_wait, take_unsolicited
from ackwatch.mail.rechecks import EarlyRetry, Recheck, Rechecks, finish
from ackwatch.mail.sync import FolderCursor, FolderSyncEvent

if TYPE_CHECKING:
    from imapclient import IMAPClient

    from ackwatch.config import MailboxConfig, SyncConfig
    from ackwatch.core.message import FolderRole

log = structlog.get_logger(__name__)

IDLE_RENEW_SECONDS = imapguard.IDLE_RENEW_SECONDS  # well before RFC 2177's 29 minutes
IDLE_SAFETY_POLLS = 30  # re-check the IDLE folder with one EXAMINE every this many polls
RECHECK_RETRY_SECONDS = 30.0  # a re-check tries a mailbox in backoff at most this often

HealthState = Literal["up", "connecting", "backoff", "auth_failed", "stopped"]


@dataclass(frozen=True)
class MailboxHealth:
    state: HealthState
    since: dt.datetime
    last_error: str | None = None  # redacted
    last_sync: dt.datetime | None = None


@dataclass(frozen=True)
class HealthEvent:
    mailbox: str
    health: MailboxHealth


WatcherEvent = FolderSyncEvent | HealthEvent


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def backoff_delay(n: int, initial: float, cap: float) -> float:
    """The wait before attempt `n` + 1 after `n` failures: doubling from `initial` up to
    `cap`, with "equal jitter" (never 0, never above `cap`)."""
    base = min(cap, initial * (2 ** min(n - 1, 20)))
    return base * random.uniform(0.5, 1.0)


def _last(
    folders: Sequence[tuple[str, FolderRole]], last: str | None
) -> list[tuple[str, FolderRole]]:
    """`folders` with `last` moved to the end."""
    return [f for f in folders if f[0] != last] + [f for f in folders if f[0] == last]


class _Health:
    """A watcher's health: logged and emitted as `HealthEvent` only when the state itself
    changes (another attempt or sync tick updates it quietly)."""

    def __init__(
        self, mb: MailboxConfig, logger: Any, emit: Callable[[WatcherEvent], None],
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._mb, self._log, self._emit, self._clock = mb, logger, emit, clock
        self.now = MailboxHealth("connecting", clock())

    def set(self, state: HealthState, error: str | None = None, synced: bool = False) -> None:
        old = self.now
        now = self._clock()
        last_sync = now if synced else old.last_sync
        if old.state == state:
            self.now = replace(old, last_error=error or old.last_error, last_sync=last_sync)
            return
        self.now = new = MailboxHealth(state, now, error, last_sync)
        _log_state_change(self._log, self._mb.host, old.state, state, error)
        self._emit(HealthEvent(self._mb.name, new))


def _log_state_change(
    logger: Any, host: str, old: HealthState, state: HealthState, error: str | None
) -> None:
    if state == "up":
        logger.info("mailbox_up", host=host, previous=old)
    elif state == "auth_failed":
        logger.error("mailbox_auth_failed", error=error)
    elif state == "backoff":
        logger.warning("mailbox_down", error=error)
    elif state == "stopped":
        logger.info("mailbox_stopped")


class MailboxWatcher(threading.Thread):
    """Watches one mailbox: sync, IDLE/poll, recheck on demand, reconnect on faults.

    Calls `emit` (from this thread) with `FolderSyncEvent` (one per folder step, in
    order) and `HealthEvent` (on each state change). `get_cursors` is
    read at every (re)connect and merged with the cursors this watcher already emitted;
    `get_pending_uids(folder)` is asked before every sync of that folder.

    The IDLE folder is never STATUS-polled (RFC 3501 discourages STATUS on the selected
    mailbox): IDLE reports its changes, and one EXAMINE re-checks it on every `recheck`
    and every `idle_safety_polls` polls (the module docstring says what a poll costs).
    """

    def __init__(
        self,
        mb: MailboxConfig,
        sync: SyncConfig,
        get_cursors: Callable[[], Mapping[str, FolderCursor]],
        get_pending_uids: Callable[[str], Iterable[int]],
        emit: Callable[[WatcherEvent], None],
        *,
        resolve: Resolver | None = None,
        clock: Callable[[], dt.datetime] = _now,
        backoff_initial: float = 2.0,
        backoff_max: float = 300.0,
        auth_backoff_initial: float = 60.0,
        auth_backoff_max: float = 1800.0,
        idle_renew: float = IDLE_RENEW_SECONDS,
        idle_safety_polls: int = IDLE_SAFETY_POLLS,
        only: FolderRole | None = None,
        recheck_retry: float = RECHECK_RETRY_SECONDS,
    ) -> None:
        super().__init__(name=f"imap-{mb.name}" + (f"-{only}" if only else ""), daemon=True)
        self.mb = mb
        self.only = only  # a role: watch only its folders, IDLE on the first (module doc)
        self.sync_config = sync
        self._get_cursors = get_cursors
        self._get_pending = get_pending_uids
        self._emit = emit
        self._log = log.bind(mailbox=mb.name, **({"connection": only} if only else {}))
        self._resolve = resolve
        self._clock = clock
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.auth_backoff_initial = auth_backoff_initial
        self.auth_backoff_max = auth_backoff_max
        self.idle_renew = idle_renew
        self.idle_safety_polls = max(1, int(idle_safety_polls))
        self._stop_event = threading.Event()
        self._wake = Waker()
        self._rechecks = Rechecks(self._wake)
        self._early = EarlyRetry(recheck_retry)  # a re-check cuts a backoff short
        self._cursors: dict[str, FolderCursor] = {}
        self._client: IMAPClient | None = None
        self.folders: tuple[tuple[str, FolderRole], ...] = ()  # (folder, role) watched
        self._unavailable = Unavailable(self._log)
        self._notify = notify.Notified()
        self._polls = 0
        self._health = _Health(mb, self._log, emit, clock)

    # ------------------------------------------------------------------ public API
    def stop(self, timeout: float = 10.0) -> None:
        """Leave IDLE, log out and end the thread (bounded by `timeout`)."""
        self._stop_event.set()
        self._wake.set()
        self._early.wake()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
            if self.is_alive():  # stuck in a socket call: cut the connection
                client = self._client
                if client is not None:
                    shutdown(client)
                self.join(2.0)

    def recheck(self, timeout: float = 30.0) -> bool:
        """Sync the sent folders and inbox flags now; True once their events were emitted
        (False: not connected, or the sync did not finish in time).

        A mailbox in backoff is tried at once (`rechecks.EarlyRetry`: at most once per
        ``recheck_retry`` seconds of its last attempt); True if that attempt connects
        and syncs in time. One whose login was refused waits for its own backoff (a
        server may lock an account out after a few refused logins)."""
        if self._stop_event.is_set() or not self.is_alive():
            return False
        state = self.health.state
        if state == "backoff":
            early = self._early.ask()
            if early is None:
                return False
            if early == "started":
                self._log.info("mailbox_retry", reason="pre-send re-check")
        elif state != "up":
            return False
        return self._rechecks.ask(timeout)

    @property
    def retrying(self) -> bool:
        """An attempt a re-check asked of this mailbox in backoff is under way."""
        return self._early.under_way

    @property
    def cursors(self) -> dict[str, FolderCursor]:
        return dict(self._cursors)

    @property
    def health(self) -> MailboxHealth:
        return self._health.now

    def _set_health(
        self, state: HealthState, error: str | None = None, synced: bool = False
    ) -> None:
        self._health.set(state, error, synced)

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        failures = 0
        auth_failures = 0
        self._wake.open()
        try:
            while not self._stop_event.is_set():
                try:
                    self._session()
                    failures = auth_failures = 0
                except AuthError as exc:
                    self._drop_client()
                    auth_failures += 1
                    self._back_off("auth_failed", str(exc), backoff_delay(
                        auth_failures, self.auth_backoff_initial, self.auth_backoff_max))
                except Exception as exc:  # a bug too: logged, the mailbox still watched
                    expected = isinstance(exc, (ImapError, *CONNECTION_ERRORS))
                    error = failure_text(self._client, exc) if expected else describe(exc)
                    self._drop_client()
                    if self._stop_event.is_set():
                        break
                    if not expected:
                        self._log.exception("watcher_error")
                    failures += 1
                    self._back_off("backoff", error,
                                   backoff_delay(failures, self.backoff_initial, self.backoff_max))
        finally:
            self._drop_client(logout_first=True)
            self._rechecks.fail_all()
            self._set_health("stopped")
            self._wake.close()

    def _back_off(self, state: HealthState, error: str, seconds: float) -> None:
        """A failed session: record `state`, fail the waiting rechecks, wait `seconds`
        (less when a re-check asks for an attempt now, `recheck`)."""
        self._set_health(state, error)
        self._early.ended()
        self._rechecks.fail_all()
        self._early.wait(seconds)

    def _drop_client(self, logout_first: bool = False) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if logout_first:
            logout(client)
        else:
            shutdown(client)

    # ------------------------------------------------------------------ one session
    def _session(self) -> None:
        # No "connecting" state per retry: backoff/auth_failed stay until the mailbox is up.
        self._early.attempting()
        limits = imapguard.Limits.for_sync(self.sync_config, self.idle_renew)
        self._client = client = connect(self.mb, resolve=self._resolve, limits=limits)
        enable_condstore(client)
        self.folders = tuple(
            (folder, role) for folder, role in watched_folders(client, self.mb.folders)
            if self.only is None or role == self.only
        )
        self._cursors = {**(self._get_cursors() or {}), **self._cursors}
        idle_role: FolderRole = self.only or "inbox"
        inbox = [folder for folder, role in self.folders if role == idle_role]
        use_idle = bool(self.sync_config.idle) and client.has_capability("IDLE") and inbox
        reader = FolderReader(
            client, mailbox=self.mb.name, sync=self.sync_config, cursors=self._cursors,
            get_pending_uids=self._get_pending, emit=self._emit, clock=self._clock,
            stopped=self._stop_event, unavailable=self._unavailable, news=self._notify,
            idle_folder=inbox[0] if use_idle else None, logger=self._log,
        )  # fmt: skip
        self._notify.on = False
        if use_idle and self.only is None and self.sync_config.watch_sent == "auto":
            self._notify.start(client, [f for f, _ in self.folders if f != inbox[0]], self._log)
        reader.sync_all(self.folders, only_changed=False, why="connect")
        self._set_health("up", None, synced=True)
        self._early.ended()

        poll = max(0.05, self.sync_config.poll_interval.total_seconds())
        next_poll = time.monotonic() + poll
        while not self._stop_event.is_set():
            if use_idle:
                next_poll = self._idle_round(reader, (inbox[0], idle_role), next_poll, poll)
            else:
                self._wake.wait(max(0.0, next_poll - time.monotonic()))
                if self._stop_event.is_set():
                    break
                reqs = self._rechecks.take()
                if reqs:
                    self._do_recheck(reader, reqs)
                if time.monotonic() >= next_poll:
                    reader.sync_all(self.folders, only_changed=True, why="poll")
                    self._set_health("up", None, synced=True)
                    next_poll = time.monotonic() + poll
        logout(client)
        self._client = None

    def _polled_folders(self, reader: FolderReader) -> list[tuple[str, FolderRole]]:
        """Every folder, the IDLE folder last (its EXAMINE leaves it selected for IDLE)."""
        return _last(self.folders, reader.idle_folder)

    def _idle_round(
        self, reader: FolderReader, idle: tuple[str, FolderRole], next_poll: float, poll: float
    ) -> float:
        """IDLE on the folder `idle` until something needs doing; do it; return the next
        poll time.

        The folder is EXAMINEd first only when it is not the selected, verified folder
        (see the class docstring); otherwise the untagged responses the server sent during
        our other commands (EXISTS, EXPUNGE, FETCH for the selected folder) tell whether
        it changed meanwhile. With NOTIFY, news about the other folders (a ``STATUS``,
        during IDLE or along with another command) has them checked at once.
        """
        client, folder = reader.client, idle[0]
        if reader.verified == folder:
            dirty = take_unsolicited(client)
        else:
            dirty = reader.examine_changed(folder, has_pending=False)
        news = self._notify.take(client)
        if news:
            self._log.debug("imap_news", heard="before idle")
        if not dirty and not news:
            dirty = idle_wait(client, self._wake, until=next_poll, renew=self.idle_renew,
                              interrupted=self._interrupted, host=self.mb.host,
                              notified=self._notify.heard if self._notify.on else None)
            news = self._notify.take(client)
            if news or dirty:
                self._log.debug("imap_news", heard="idle", news=news, dirty=dirty)
        if self._stop_event.is_set():
            return next_poll
        if dirty or news:
            reader.sync_all([idle] if dirty else [], only_changed=False, why="idle")
            reader.sync_all([f for f in self.folders if f[0] != folder] if news else [],
                           only_changed=True, why="news")
            self._set_health("up", None, synced=True)
        reqs = self._rechecks.take()
        if reqs:
            self._do_recheck(reader, reqs, synced=(folder,) if dirty else ())
        if time.monotonic() >= next_poll:
            self._polls += 1
            folders = [f for f in self._polled_folders(reader) if f[0] != folder]
            if self._polls % self.idle_safety_polls == 0:
                folders.append(idle)  # the slow safety re-check (one EXAMINE)
            reader.sync_all(folders, only_changed=True, why="poll")
            self._set_health("up", None, synced=True)
            next_poll = time.monotonic() + poll
        return next_poll

    def _interrupted(self) -> bool:
        return self._stop_event.is_set() or bool(self._rechecks)

    def _do_recheck(
        self, reader: FolderReader, reqs: list[Recheck], synced: Sequence[str] = ()
    ) -> None:
        try:
            folders = [f for f in self._polled_folders(reader) if f[0] not in synced]
            reader.sync_all(folders, only_changed=True, why="recheck")
            self._set_health("up", None, synced=True)
        except BaseException:
            finish(reqs, ok=False)
            raise
        finish(reqs, ok=True)


__all__ = [
    "IDLE_RENEW_SECONDS",
    "HealthEvent",
    "MailboxHealth",
    "MailboxWatcher",
    "WatcherEvent",
    "backoff_delay",
]
