"""One watcher connection's reading of its folders: which folder its last EXAMINE
selected, whether everything the server said about it since is accounted for, the news
NOTIFY brought about the others, and the sync of folders through that connection.

A `FolderReader` lives as long as its connection (a reconnect starts a new one, with
nothing selected); the cursors it advances and the folders it found unavailable belong
to the watcher and outlive it.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from imapclient import exceptions as imap_exc

from ackwatch.mail import notify
from ackwatch.mail.connection import describe
from ackwatch.mail.idle import take_unsolicited
from ackwatch.mail.sync import (
    FolderCursor,
    FolderSyncEvent,
    folder_changed,
    state_changed,
    sync_folder,
)

if TYPE_CHECKING:
    from imapclient import IMAPClient

    from ackwatch.config import SyncConfig
    from ackwatch.core.message import FolderRole


class Pending:
    """The pending UIDs of one folder, read from the store only when first needed (a
    STATUS or EXAMINE with HIGHESTMODSEQ needs none). Calling it reads them again and
    tells whether there are any (the `has_pending` of `folder_changed`)."""

    def __init__(self, read: Callable[[], Iterable[int]]) -> None:
        self._read = read
        self._uids: set[int] | None = None

    def __call__(self) -> bool:
        self._uids = set(self._read() or ())
        return bool(self._uids)

    def uids(self) -> set[int]:
        if self._uids is None:
            self()
        assert self._uids is not None
        return self._uids


class Unavailable:
    """Folders the server refused to open (deleted, renamed, no rights): logged once when
    one goes away and once when it is back."""

    def __init__(self, logger: Any) -> None:
        self._log = logger
        self._folders: set[str] = set()

    def failed(self, folder: str, exc: BaseException) -> None:
        if folder not in self._folders:
            self._folders.add(folder)
            self._log.warning("folder_unavailable", folder=folder, error=describe(exc))

    def ok(self, folder: str) -> None:
        if folder in self._folders:
            self._folders.discard(folder)
            self._log.info("folder_available", folder=folder)


def examine_changed(
    client: IMAPClient,
    folder: str,
    cursor: FolderCursor | None,
    *,
    has_pending: bool | Callable[[], bool],
) -> bool:
    """EXAMINE `folder` (it stays selected): could `sync_folder` find anything new?

    Like `folder_changed`, from the EXAMINE response instead of STATUS.
    """
    info = client.select_folder(folder, readonly=True)
    take_unsolicited(client)  # the EXAMINE's own EXISTS / RECENT
    modseq = info.get(b"HIGHESTMODSEQ") if client.has_capability("CONDSTORE") else None
    try:
        return state_changed(
            cursor,
            uidvalidity=int(info[b"UIDVALIDITY"]),
            uidnext=int(info[b"UIDNEXT"]) if info.get(b"UIDNEXT") is not None else None,
            modseq=int(modseq) if modseq is not None else None,
            has_pending=has_pending,
        )
    except (KeyError, TypeError, ValueError):
        return True


class FolderReader:
    """Syncs folders through one connection and keeps track of what it has selected.

    `selected` is the folder our last EXAMINE (or sync) selected (None: none / unknown);
    `verified` is that folder when what the server reported for it since is all
    accounted for (then IDLE can start again without a new EXAMINE). `idle_folder` is the
    folder IDLE watches on this connection, if any. Each synced folder step is emitted
    as a `FolderSyncEvent` before its cursor advances in `cursors`.
    """

    def __init__(
        self,
        client: IMAPClient,
        *,
        mailbox: str,
        sync: SyncConfig,
        cursors: dict[str, FolderCursor],
        get_pending_uids: Callable[[str], Iterable[int]],
        emit: Callable[[FolderSyncEvent], None],
        clock: Callable[[], dt.datetime],
        stopped: threading.Event,
        unavailable: Unavailable,
        news: notify.Notified,
        idle_folder: str | None,
        logger: Any,
    ) -> None:
        self.client = client
        self._mailbox = mailbox
        self._sync = sync
        self._cursors = cursors
        self._get_pending = get_pending_uids
        self._emit = emit
        self._clock = clock
        self._stopped = stopped
        self._unavailable = unavailable
        self._notify = news
        self.idle_folder = idle_folder
        self._log = logger
        self.selected: str | None = None
        self.verified: str | None = None

    def examine_changed(self, folder: str, *, has_pending: bool | Callable[[], bool]) -> bool:
        """`examine_changed`; the folder is selected now, and verified if unchanged."""
        self.keep_news()
        self.selected = self.verified = None
        changed = examine_changed(self.client, folder, self._cursors.get(folder),
                                  has_pending=has_pending)  # fmt: skip
        self.selected = folder
        if not changed:
            self.verified = folder
        return changed

    def keep_news(self) -> None:
        """Note the news imaplib filed with the answers to earlier commands, before a
        command that would lose it: an EXAMINE drops everything filed, a STATUS takes
        every filed ``STATUS``. NOTIFY's ``STATUS`` about another folder is news, and so
        is an EXISTS / EXPUNGE / FETCH about the selected folder when that is not the IDLE
        folder (NOTIFY reports the selected folder that way): `Notified.take` then has
        the other folders checked."""
        if not self._notify.on:
            return
        if notify.take_notified(self.client):
            self._notify.heard()
        if self.selected not in (None, self.idle_folder) and take_unsolicited(self.client):
            self._notify.heard()

    def sync_all(
        self, folders: Sequence[tuple[str, FolderRole]], *, only_changed: bool, why: str
    ) -> None:
        """Sync `folders` in order; with `only_changed`, skip those that cannot have changed.

        That check is STATUS, except for the selected folder and the IDLE folder: EXAMINE
        (no STATUS on the selected mailbox, RFC 3501 6.3.10; the IDLE folder stays selected
        for the IDLE that follows).
        """
        client = self.client
        since = (self._clock() - self._sync.backfill).date()
        for folder, role in folders:
            if self._stopped.is_set():
                return
            cursor = self._cursors.get(folder)
            pending = Pending(functools.partial(self._get_pending, folder))
            try:
                if only_changed:
                    # With HIGHESTMODSEQ the check needs no pending UIDs (a store read).
                    if folder in (self.selected, self.idle_folder):
                        changed = self.examine_changed(folder, has_pending=pending)
                    else:
                        self.keep_news()
                        changed = folder_changed(client, folder, cursor, has_pending=pending)
                    if not changed:
                        self._log.debug("folder_unchanged", folder=folder, why=why)
                        continue
                self.keep_news()
                self.selected = self.verified = None
                result = sync_folder(
                    client, folder, role, cursor, since=since, pending_uids=pending.uids(),
                    batch_size=self._sync.batch_size,
                )  # fmt: skip
                self.selected = folder
            except imap_exc.IMAPClientAbortError:
                raise
            except imap_exc.IMAPClientError as exc:
                # NO/BAD for this folder (deleted, renamed, no rights): skip it, keep the rest.
                self._unavailable.failed(folder, exc)
                continue
            self._unavailable.ok(folder)
            self._log.debug("folder_read", folder=folder, why=why,
                            uids=[m.uid for m in result.new_messages][:20],
                            flags=len(result.flag_updates), last_uid=result.cursor.last_uid)
            # Emit first: if the consumer fails, the cursor stays and the step is redone.
            self._emit(FolderSyncEvent(self._mailbox, result))
            self._cursors[folder] = result.cursor


__all__ = ["FolderReader", "Pending", "Unavailable", "examine_changed"]
