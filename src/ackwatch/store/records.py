"""The values the store takes and gives: frozen records, whatever the database behind it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


class StoreError(Exception):
    """The state database cannot be opened or written (permissions, disk full, corrupt)."""


class StoreUnavailable(StoreError):
    """The state database cannot be reached for now: the connection was lost, the server
    is shutting down or starting up (a restart, a failover, a network blip). The
    operation stored nothing (its transaction is rolled back whole); it can be done again
    once `Store.reconnect` succeeds. Only a database on a server raises it (PostgreSQL):
    an SQLite file is never "unreachable for now"."""


class NotLeading(Exception):
    """A write that queues mail was refused: the node no longer leads in the term it
    queued for (`Store.fence_queueing`). Nothing was stored; the node that leads now
    decides again. Not a `StoreError`: the database is fine, the node only lost the lead."""


@dataclass(frozen=True)
class Term:
    """A leader's term: ``node`` leading in ``epoch`` (`Store.take_leadership`). Epoch 0
    is no term at all: every write fenced by it is refused."""

    node: str
    epoch: int


@dataclass(frozen=True)
class MarksKept:
    """The dirty marks as read at one instant, kept by the database in the connection's
    temporary table ``marks_read`` (`Store.keep_marks`) rather than in memory: an
    evaluation of everything (a first start over a year: a million marks) ends exactly
    those in one statement. ``count``: how many."""

    count: int


# The dirty marks an evaluation read and ends, and only those: key -> seq, or kept aside.
Marks = Mapping[str, int] | MarksKept


@dataclass(frozen=True)
class StoredCursor:
    """Where the last sync of one folder stopped."""

    folder: str
    role: str
    uidvalidity: int
    last_uid: int
    highestmodseq: int | None


class StorableMessage(Protocol):
    """One fetched copy to store, before parsing: a `NewMessage`, or the IMAP layer's
    own `uidfetch.FetchedMessage` as it is (a first sync hands over tens of thousands)."""

    @property
    def uid(self) -> int: ...
    @property
    def received(self) -> dt.datetime: ...
    @property
    def flags(self) -> frozenset[str]: ...
    @property
    def header_bytes(self) -> bytes: ...
    @property
    def gm_thrid(self) -> int | None: ...


@dataclass(frozen=True)
class NewMessage:
    """One fetched copy to store (what the IMAP layer hands over, before parsing)."""

    uid: int
    received: dt.datetime
    flags: frozenset[str]
    header_bytes: bytes
    gm_thrid: int | None = None


@dataclass(frozen=True)
class CopyToStore:
    """A fetched copy and what the store keeps of its parse beside its bytes: the key it
    is stored under, its sender's address ("" when unreadable) and its thread links
    (`threads.link_values` of the copy with its other header variants).

    ``key_stored``: copies of the key may be stored already (its links and sender rows
    with them). False when none was when this was made: its rows are then new to the
    store, which may write them the quicker way (`SqlDatabase.insert_new_rows`)."""

    copy: StorableMessage
    key: str
    sender: str
    links: frozenset[str]
    key_stored: bool = True


@dataclass(frozen=True)
class StoredCopy:
    """One stored copy of a mail: its header bytes as fetched and what the sync recorded
    beside them. ``answered_at`` / ``dismissed_at``: when the sync first saw the flag;
    ``legacy_fetch``: stored by an ackwatch that did not fetch the trace headers."""

    mailbox: str
    folder: str
    uid: int
    uidvalidity: int
    role: str
    received: dt.datetime
    flags: frozenset[str]
    answered_at: dt.datetime | None
    dismissed_at: dt.datetime | None
    gm_thrid: int | None
    header_bytes: bytes
    legacy_fetch: bool


@dataclass(frozen=True)
class ItemRecord:
    """An item as stored: the SLA fields plus what was done about it."""

    key: str
    thread: str
    message_id: str | None
    client_address: str
    client: str | None
    subject: str
    received: dt.datetime
    mailboxes: tuple[str, ...]
    account: str | None
    policy: str
    clock: str
    deadline: dt.datetime
    nudge_at: dt.datetime
    escalate_at: dt.datetime | None
    state: str  # pending | acknowledged | dropped
    ack_key: str | None
    ack_at: dt.datetime | None
    ack_kind: str | None
    ack_by: str | None
    first_seen: dt.datetime
    nudge_done: str | None  # queued | sent | failed | cancelled | suppressed | skipped
    escalation_done: str | None


@dataclass(frozen=True)
class OutboxRecord:
    """A mail recorded before it is sent, and how its sending went."""

    id: int
    kind: str
    recipient: str
    cc: tuple[str, ...]
    account: str | None
    nudge_keys: tuple[str, ...]
    escalation_keys: tuple[str, ...]
    message_id: str
    created_at: dt.datetime
    state: str  # pending | sent | cancelled | failed
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    sent_at: dt.datetime | None


@dataclass(frozen=True)
class HealthRecord:
    """A mailbox's connection state, as the watchers last reported it."""

    mailbox: str
    state: str
    since: dt.datetime
    last_error: str | None
    last_sync: dt.datetime | None


@dataclass(frozen=True)
class NewPromise:
    """A promise found in an acknowledgement, to record."""

    source_key: str
    thread: str
    item_key: str
    account: str | None
    client: str | None
    client_address: str
    subject: str
    made_at: dt.datetime
    promised: dt.datetime
    remind_at: dt.datetime | None
    sentence: str


@dataclass(frozen=True, kw_only=True)
class PromiseRecord(NewPromise):
    """A recorded promise: the `NewPromise` fields, then its id and tracking state."""

    id: int
    state: str  # open | kept | moved | broken
    follow_key: str | None
    settled_at: dt.datetime | None
    reminder_done: str | None  # queued | sent | failed | skipped | cancelled; None: not yet
    reminder_outbox: int | None
    overdue_done: str | None
    overdue_outbox: int | None
    first_seen: dt.datetime



@dataclass(frozen=True)
class NodeRecord:
    """One node that shares the mailboxes: when it started and last said it was alive,
    and how long ago that was by the database's clock (``age``, seconds)."""

    name: str
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    age: float


@dataclass(frozen=True)
class NameHolder:
    """The process that holds a node's name (`Store.heartbeat`): its random ``instance``
    and its last heartbeat, seconds since the epoch by the database's clock."""

    instance: str
    heartbeat_at: float


@dataclass(frozen=True)
class ClusterView:
    """One read of who is alive, who watches what and who leads, by the database's
    clock: ``leases`` (mailbox -> node) and ``leader`` hold only what has not expired;
    ``expires_in``: seconds left of each lease; ``epoch``: the leader's term (0: none)."""

    nodes: tuple[NodeRecord, ...]
    leases: dict[str, str]
    expires_in: dict[str, float]
    leader: str | None
    epoch: int

    def live_nodes(self, max_age: float) -> list[str]:
        """The nodes whose last heartbeat is at most ``max_age`` seconds old."""
        return [n.name for n in self.nodes if n.age <= max_age]
