"""`Store`: what the rest of ackwatch asks of the state, whatever database keeps it.

Exactly the operations the daemon, the promise keeper, ``run --once``, ``status`` and
``report`` use. Times go in and come out timezone-aware (stored in UTC); records are the
frozen values of `records`. An operation that writes is one transaction: all of it is
stored, or (on any error) none of it, and its docstring says what it keeps together.
A write that fails raises `records.StoreError`; any operation on a database that cannot
be reached for now (PostgreSQL restarting) raises `records.StoreUnavailable`, having
stored nothing.

`Store` is made of one protocol per concept, as the implementation is of table groups
(`tables.TableStore`): `MailStore`, `ScopeStore`, `ItemStore`, `OutboxStore`,
`PromiseStore`, `DateAskStore`, `HealthStore`, `ClusterStore`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

from ackwatch.store.records import (
    ClusterView,
    CopyToStore,
    HealthRecord,
    ItemRecord,
    Marks,
    MarksKept,
    NameHolder,
    NewPromise,
    OutboxRecord,
    PromiseRecord,
    StoredCopy,
    StoredCursor,
    Term,
)

if TYPE_CHECKING:
    from ackwatch.core.item_rules import Item

T = TypeVar("T")


class MailStore(Protocol):
    """The mail seen: each folder's copies and cursor (`messages.Messages`)."""

    def cursors(self, mailbox: str) -> dict[str, StoredCursor]: ...

    def apply_folder_sync(
        self,
        *,
        mailbox: str,
        folder: str,
        role: str,
        uidvalidity: int,
        last_uid: int,
        highestmodseq: int | None,
        new_messages: Sequence[CopyToStore],
        flag_updates: Iterable[tuple[int, frozenset[str]]],
        reset: bool,
        initial: bool,
        dismiss_keyword: str,
        now: dt.datetime,
        mark_dirty: bool = True,
    ) -> list[int]:
        """Store one sync step of one folder: its new copies (with their links and
        senders), flag changes and cursor together (a restart resumes from a cursor
        matching what is stored). Returns the UIDs stored (one stored already is kept)."""
        ...

    def load_copies(
        self, since: dt.datetime | None = None, *, keys: Iterable[str] | None = None,
        headers: bool = True,
    ) -> list[StoredCopy]: ...
    def with_headers(self, copies: Iterable[StoredCopy]) -> list[StoredCopy]: ...
    def iter_copies(self, since: dt.datetime, keys: Iterable[str]) -> Iterator[StoredCopy]: ...
    def header_variants(self, keys: Iterable[str], most: int) -> dict[str, list[bytes]]:
        """The distinct header bytes stored under each of ``keys`` that is stored, up to
        ``most`` of a key, to link a new copy with its other variants."""
        ...

    def initial_keys(
        self, keys: Iterable[str] | None = None, *, since: dt.datetime | None = None
    ) -> set[str]: ...
    def pending_uids(self, mailbox: str, folder: str) -> set[int]: ...
    def message_copies(self, key: str) -> list[tuple[str, str, int, int]]: ...


class ScopeStore(Protocol):
    """What an evaluation reads to know what to evaluate: the links between mail, the
    threads, the senders and the dirty marks (`links.Links`)."""

    def links_pending(self) -> bool: ...
    def build_links(
        self,
        link: Callable[[Sequence[StoredCopy]], Sequence[CopyToStore]],
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Store the links of mail stored without them (``links_pending``), a batch of
        copies at a time, each given its key, sender and links by ``link``."""
        ...

    def copies_since(self, since: dt.datetime) -> int: ...
    def linked_batches(
        self, since: dt.datetime, noise: frozenset[str], max_keys: int
    ) -> Iterator[set[str]]: ...
    def end_linked_batches(self, meta: Mapping[str, str], marks: Marks | None = None) -> None:
        """After the last batch: drop the pending items of mail out of the window, the
        threads and dirty marks of such mail (``marks``: only those read), and record
        ``meta``, together."""
        ...

    def threads_since(self, since: dt.datetime) -> list[str]: ...
    def thread_members(self, threads: Iterable[str]) -> set[str]: ...
    def dirty_keys(self) -> set[str]: ...
    def dirty_marks(self) -> dict[str, int]:
        """The dirty marks, key -> seq: an evaluation ends only the marks it read."""
        ...

    def keep_marks(self) -> MarksKept:
        """The dirty marks as read now, kept aside by the database (not in memory), for
        an evaluation of everything to end."""
        ...

    def keys_linked(self, links: Iterable[str]) -> set[str]: ...
    def thread_keys(self, keys: Iterable[str]) -> set[str]: ...
    def keys_from(self, senders: Iterable[str], since: dt.datetime) -> set[str]: ...
    def newest_from(
        self, sender: str, since: dt.datetime, until: dt.datetime, limit: int,
        before: tuple[dt.datetime, str] | None = None,
    ) -> list[tuple[dt.datetime, str]]:
        """(received, key) of ``sender``'s stored mail within [since, until], newest
        first, a page of ``limit`` after ``before`` (`links.Links.newest_from`)."""
        ...


class ItemStore(Protocol):
    """The items waiting for (or given) an acknowledgement (`items.Items`)."""

    def sync_items(
        self,
        items: Sequence[Item],
        *,
        now: dt.datetime,
        initial_keys: set[str],
        scope: Collection[str] | None = None,
        threads: Mapping[str, str] | None = None,
        meta: Mapping[str, str] | None = None,
        marks: Marks | None = None,
    ) -> tuple[list[str], list[str]]:
        """Make the stored items match an evaluation, with its threads, the end of its
        dirty marks (``marks``: the ones it read, only those) and ``meta`` together;
        returns (new keys, newly acknowledged keys)."""
        ...

    def pending_items(self, keys: Iterable[str] | None = None) -> list[ItemRecord]:
        """The items waiting for an acknowledgement, in received order, as stored now
        (``keys``: only those of these keys)."""
        ...

    def items_due(
        self,
        until: dt.datetime,
        *,
        skip_nudges_of: Collection[str] = (),
        skip_escalations_of: Collection[str] = (),
    ) -> list[ItemRecord]:
        """The pending items with a nudge or escalation not done yet due at or before
        ``until``, in received order; an item found only by a nudge of an account in
        ``skip_nudges_of``, or only by an escalation of one in ``skip_escalations_of``,
        is left out."""
        ...

    def next_action_after(self, after: dt.datetime | None) -> dt.datetime | None:
        """When the next nudge or escalation not done yet of a pending item is due,
        after ``after`` (None: the earliest of all, due or not)."""
        ...

    def items(
        self,
        *,
        state: str | None = None,
        received_since: dt.datetime | None = None,
        received_until: dt.datetime | None = None,
    ) -> list[ItemRecord]: ...
    @overload
    def report_rows(
        self, received_since: dt.datetime, received_until: dt.datetime
    ) -> list[tuple[Any, ...]]: ...
    @overload
    def report_rows(
        self, received_since: dt.datetime, received_until: dt.datetime, make: Callable[..., T]
    ) -> list[T]: ...
    @overload
    def report_rows(
        self, received_since: dt.datetime, received_until: dt.datetime, *, stored: Literal[True]
    ) -> Iterator[tuple[Any, ...]]: ...
    def report_rows(
        self,
        received_since: dt.datetime,
        received_until: dt.datetime,
        make: Callable[..., T] = ...,
        *,
        stored: bool = False,
    ) -> list[T] | list[tuple[Any, ...]] | Iterator[tuple[Any, ...]]: ...
    def oldest_pending_received(self) -> dt.datetime | None: ...
    def pending_accounts(self) -> set[str]:
        """The responsible accounts of the pending items (none of their rows read)."""
        ...

    def mark_items_done(self, kind: str, keys: Iterable[str], value: str) -> None: ...


class OutboxStore(Protocol):
    """The mail ackwatch sends: queued, then sent, retried or closed, and the fence
    on queueing while several nodes share the state (`outbox.Outbox`,
    `leases.QueueFence`)."""

    def fence_queueing(self, term: Term | None) -> None:
        """From now on every write that queues mail (`enqueue`, `enqueue_once`,
        `enqueue_promises`, `enqueue_date_asks`) checks in its own transaction that
        ``term.node`` still leads in ``term.epoch`` by the database's clock, and raises
        `records.NotLeading`, having stored nothing, when it does not. None (one node,
        the default): no check. The daemon sets it at each step it leads."""
        ...

    def enqueue(
        self,
        *,
        kind: str,
        recipient: str,
        cc: Sequence[str],
        account: str | None,
        nudge_keys: Sequence[str],
        escalation_keys: Sequence[str],
        message_id: str,
        now: dt.datetime,
    ) -> int:
        """Record a mail before sending it and mark its items queued, together."""
        ...

    def enqueue_once(
        self, *, once_key: str, kind: str, recipient: str, message_id: str, now: dt.datetime
    ) -> int | None:
        """Record a mail about no item once per key (the key with the mail, together)."""
        ...

    def enqueue_promises(
        self,
        *,
        kind: str,
        recipient: str,
        cc: Sequence[str],
        account: str | None,
        promise_ids: Sequence[int],
        message_id: str,
        now: dt.datetime,
    ) -> int:
        """Record a promise reminder or overdue notice and mark its promises, together."""
        ...

    def sent_counts(self) -> dict[str, int]: ...
    def outbox_due(self, now: dt.datetime) -> list[OutboxRecord]: ...
    def outbox_pending(self) -> list[OutboxRecord]: ...
    def reached_since(
        self, since: dt.datetime, addresses: Iterable[str]
    ) -> dict[str, list[dt.datetime]]:
        """When mail queued or sent since ``since`` reached each of ``addresses`` (To or
        Cc; lower-cased keys, oldest first): the hourly cap's record."""
        ...

    def reach_counts(self, after: dt.datetime, addresses: Iterable[str]) -> dict[str, int]:
        """How many mails queued or sent after ``after`` reached each of ``addresses``
        (To or Cc; lower-cased keys, absent when none): `reached_since` counted."""
        ...

    def outbox_update_items(
        self, outbox_id: int, nudge_keys: Sequence[str], escalation_keys: Sequence[str]
    ) -> None:
        """Shrink a queued mail to these items and cancel the others, together."""
        ...

    def outbox_sent(self, outbox_id: int, now: dt.datetime) -> None:
        """Mark a mail sent, and its items and promises with it."""
        ...

    def outbox_retry(
        self, outbox_id: int, *, error: str, next_attempt_at: dt.datetime
    ) -> None: ...
    def outbox_close(self, outbox_id: int, state: str, error: str | None = None) -> None:
        """End a mail as cancelled or failed, and its items and promises with it."""
        ...


class PromiseStore(Protocol):
    """The promises read in the agency's replies, and the reads themselves
    (`promises.Promises`)."""

    def promise_read_candidates(
        self, since: dt.datetime, items: Iterable[str] | None = None
    ) -> list[dict[str, Any]]: ...
    def promise_reads(
        self, keys: Iterable[str]
    ) -> dict[str, tuple[str, int, dt.datetime | None]]: ...
    def record_promise_read(
        self,
        key: str,
        *,
        state: str,
        now: dt.datetime,
        attempts: int = 1,
        next_attempt_at: dt.datetime | None = None,
        error: str | None = None,
        promise: NewPromise | None = None,
        text_read: bool | None = None,
    ) -> int | None:
        """Record a read of a reply's text and the promise it made, together."""
        ...

    def promises(
        self,
        *,
        states: Iterable[str] | None = None,
        made_since: dt.datetime | None = None,
        made_until: dt.datetime | None = None,
    ) -> list[PromiseRecord]: ...
    def promises_to_track(self, made_since: dt.datetime) -> list[PromiseRecord]: ...
    def promises_touched(
        self,
        made_since: dt.datetime,
        *,
        sources: Iterable[str] = (),
        follows: Iterable[str] = (),
        ids: Iterable[int] = (),
        breaking_by: dt.datetime | None = None,
    ) -> list[PromiseRecord]: ...
    def promise_notices(self, by: dt.datetime, made_since: dt.datetime) -> list[PromiseRecord]: ...
    def next_promise_times(
        self, after: dt.datetime
    ) -> tuple[dt.datetime | None, dt.datetime | None]: ...
    def update_promises(
        self, changes: Iterable[tuple[int, str, str | None, dt.datetime | None]]
    ) -> None: ...
    def mark_promises(self, kind: str, ids: Iterable[int], value: str) -> None: ...
    def promises_of_outbox(self, outbox_id: int) -> list[PromiseRecord]: ...
    def promise_rows(
        self, made_since: dt.datetime, made_until: dt.datetime
    ) -> list[tuple[str | None, str, str]]: ...


class DateAskStore(Protocol):
    """The "say by when" notes, and the dates the acknowledgements named
    (`asks.Asks`)."""

    def ack_date_rows(
        self,
        received_since: dt.datetime,
        received_until: dt.datetime,
        *,
        per_item: bool = False,
    ) -> list[tuple[str | None, str | None, str | None, str, str, int]]:
        """What the keeper found in the acknowledgements it read, of the acknowledged items
        received in the period: (item key or None, account, client, client address,
        ``date`` | ``no_date``, count), grouped, or one row per item with ``per_item``.
        The other acknowledged items were not read."""
        ...

    def date_ask_candidates(self, acked_since: dt.datetime) -> list[ItemRecord]:
        """Items acknowledged by a reply since then whose text named no date, with no
        "say by when" note decided yet."""
        ...

    def enqueue_date_asks(
        self,
        *,
        recipient: str,
        account: str | None,
        item_keys: Sequence[str],
        message_id: str,
        now: dt.datetime,
    ) -> int:
        """Record a "say by when" note and mark its items, together (once per item)."""
        ...

    def mark_date_asks(self, item_keys: Iterable[str], state: str, now: dt.datetime) -> None: ...
    def date_asks_of_outbox(self, outbox_id: int) -> list[ItemRecord]: ...


class HealthStore(Protocol):
    """Each mailbox's last known health (`health.Health`)."""

    def set_health(
        self, mailbox: str, state: str, *, since: dt.datetime, last_error: str | None
    ) -> None: ...
    def health(self) -> list[HealthRecord]: ...


class ClusterStore(Protocol):
    """Several nodes on one state: heartbeats, mailbox leases, the leader's epoch,
    the send fence, re-check requests between nodes (`leases.Leases`), and telling the
    others (`notify`)."""

    def heartbeat(self, node: str, *, instance: str = "", starting: bool = False,
                  stale_after: float | None = None) -> NameHolder | None:
        """Say that ``node`` (the process ``instance``) is alive; the name's holder, and
        nothing written, when another process holds it (see `leases.Leases.heartbeat`)."""
        ...

    def cluster_view(self) -> ClusterView:
        """The nodes, the live mailbox leases and the live leadership, by the database's
        clock."""
        ...

    def claim_leases(self, node: str, mailboxes: Iterable[str], seconds: float) -> set[str]:
        """Take or renew the free, expired or own leases of ``mailboxes``; the ones held."""
        ...

    def release_leases(self, node: str, mailboxes: Iterable[str] | None = None) -> None: ...
    def take_leadership(self, node: str, seconds: float) -> int | None:
        """Lead or go on leading: the term's epoch; None while another node leads."""
        ...

    def leave(self, node: str, *, instance: str = "") -> None: ...
    def forget_nodes(self, older_than: float) -> None: ...
    def outbox_fence(self, outbox_id: int, node: str, epoch: int) -> bool:
        """Mark a pending outbox row as being sent in term ``epoch`` if ``node`` leads in
        it: False means do not send."""
        ...

    def ask_recheck(self, node: str, mailboxes: Iterable[str]) -> int:
        """Ask ``node`` to re-check the sent folders of ``mailboxes``; the request's id."""
        ...

    def recheck_requests(self, node: str) -> dict[int, list[str]]: ...
    def answer_recheck(
        self, request: int, done: Iterable[str], failed: Iterable[str]
    ) -> None: ...
    def recheck_answers(
        self, requests: Iterable[int]
    ) -> Mapping[int, tuple[frozenset[str], frozenset[str]]]: ...
    def forget_rechecks(self, requests: Iterable[int]) -> None: ...

    def end_idle_transactions_after(self, seconds: float) -> None:
        """Have the database end this connection when it sits in an open transaction
        longer than ``seconds``, its locks released (PostgreSQL; SQLite: one process,
        nothing to do). For the cluster's rounds, whose locks the other nodes wait on."""
        ...

    def notify(self, channel: str, payload: str = "") -> None:
        """Tell the other nodes (PostgreSQL: ``NOTIFY``; SQLite: one process, nothing
        to tell). ``channel``: one of ackwatch's own names, never user input."""
        ...


class Store(
    MailStore,
    ScopeStore,
    ItemStore,
    OutboxStore,
    PromiseStore,
    DateAskStore,
    HealthStore,
    ClusterStore,
    Protocol,
):
    """The state of one ackwatch: mail seen, items, the outbox, promises, mailbox health
    (the protocols it is made of, one per table group), and the state as a whole:
    where it is, its connection, its meta values."""

    @property
    def path(self) -> Path | str:
        """Where the state is, for messages: the SQLite file, the PostgreSQL URL."""
        ...

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        """What a read may raise from the database."""
        ...

    def close(self) -> None: ...

    def reconnect(self) -> None:
        """After `records.StoreUnavailable`: a new connection to the same database (its
        schema checked again). Raises `StoreUnavailable` while it cannot be reached yet,
        `StoreError` when it refuses for good. SQLite: nothing to do."""
        ...

    def open_reader(self) -> Store:
        """Another, read-only view of the same state for another thread (a watcher),
        to be closed by it; it sees what the writer has committed."""
        ...

    def get_meta(self, name: str) -> str | None: ...
    def set_meta(self, name: str, value: str) -> None: ...
    def set_meta_many(self, values: Mapping[str, str]) -> None: ...
