"""`TableStore`: the `api.Store` composed of the table groups, on any `SqlDatabase`.

It holds one database (the connection and its write transactions) and one object per
table group, each given that database: `messages.Messages`, `links.Links`, `items.Items`,
`outbox.Outbox`, `promises.Promises`, `asks.Asks`, `health.Health`, `leases.Leases`.
Its operations are
theirs, bound here one by one: the list below is the whole of what the store does. The
table groups write SQL that SQLite and PostgreSQL both accept, so `sqlite.SqliteStore`
and `postgres.store.PostgresStore` differ only in how they open their database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from ackwatch.store.asks import Asks
from ackwatch.store.health import Health
from ackwatch.store.items import Items
from ackwatch.store.leases import Leases, QueueFence
from ackwatch.store.links import Links
from ackwatch.store.messages import Messages
from ackwatch.store.outbox import Outbox
from ackwatch.store.promises import Promises


class SqlDatabase(Protocol):
    """What the table groups need of their database: `database.Database` (SQLite) and
    `postgres.database.PgDatabase` both are one.

    ``conn`` and what ``write`` yields speak the part of the `sqlite3.Connection`
    interface the table groups use (`postgres.connection.Connection` translates it for
    psycopg), hence typed loosely here.
    """

    @property
    def JSON_ARRAY(self) -> str:
        """SQL making a JSON array text of the columns put in its ``{}``."""

    @property
    def COUNTER_KEY(self) -> str:
        """A column type numbering the rows inserted without it 1, 2, ..."""

    @property
    def CLOCK(self) -> str:
        """SQL giving the database's clock in seconds since the epoch."""

    @property
    def conn(self) -> Any: ...

    @property
    def path(self) -> Path | str: ...

    @property
    def readonly(self) -> bool: ...

    def write(self) -> AbstractContextManager[Any]: ...

    def write_one(self, sql: str, params: Sequence[object] = ()) -> list[Any]: ...

    def close(self) -> None: ...

    def reconnect(self) -> None: ...

    def user_version(self) -> int: ...

    def integrity_check(self) -> str: ...

    def refresh_statistics(self, tables: Sequence[str]) -> None:
        """Let the query planner see what ``tables`` hold now (after a bulk fill)."""

    def insert_new_rows(self, c: Any, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """``sql``, a single-row ``INSERT ... ON CONFLICT``, for each of ``rows`` on ``c``
        (what `write` yields): rows that no stored row is known to conflict with, nor
        one another (the links of mail stored for the first time). PostgreSQL takes
        many of them through ``COPY`` even into a table that holds rows
        (`postgres.bulk`); SQLite as ``executemany``. Stored as the statements store
        them either way: a row that conflicts after all (another node storing the same
        mail at that moment) is skipped or updated as the clause says."""

    def rows_in(
        self, query: str, args: Sequence[object], values: Iterable[object]
    ) -> Iterator[Any]: ...

    def stream(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql`` as plain tuples, read a part at a time rather than held
        whole (a query over millions of rows). The read ends when the iterator is
        exhausted or closed; no write may run on the database until then (on PostgreSQL
        it would join the read's transaction: refused)."""

    def stream_through(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """As `stream`, for a read that is iterated to its end (or closed) before any
        other statement runs on the database: the rows may then come as the database
        produces them, its work overlapping the reading."""

    def get_meta(self, name: str) -> str | None: ...

    def set_meta(self, name: str, value: str) -> None: ...

    def set_meta_many(self, values: Mapping[str, str]) -> None: ...


class TableStore:
    """The state on one open database: its table groups' operations, bound one by one."""

    errors: tuple[type[Exception], ...] = ()

    def __init__(self, db: SqlDatabase):
        self.path = db.path
        self.readonly = db.readonly
        # The connection and its transactions, for the tests and the bench that look at
        # the database itself.
        self._db = db
        self._conn = db.conn
        self._write = db.write

        self.close = db.close
        self.reconnect = db.reconnect
        self.integrity_check = db.integrity_check
        self.get_meta = db.get_meta
        self.set_meta = db.set_meta
        self.set_meta_many = db.set_meta_many

        # The term every write that queues mail checks (the outbox's and the notes').
        fence = QueueFence(db)
        self.fence_queueing = fence.fence_queueing

        messages = Messages(db)
        self.cursors = messages.cursors
        self.apply_folder_sync = messages.apply_folder_sync
        self.load_copies = messages.load_copies
        self.with_headers = messages.with_headers
        self.iter_copies = messages.iter_copies
        self.header_variants = messages.header_variants
        self.initial_keys = messages.initial_keys
        self.pending_uids = messages.pending_uids
        self.message_copies = messages.message_copies
        self.message_count = messages.message_count

        links = Links(db)
        self.links_pending = links.links_pending
        self.build_links = links.build_links
        self.copies_since = links.copies_since
        self.linked_batches = links.linked_batches
        self.end_linked_batches = links.end_linked_batches
        self.threads_since = links.threads_since
        self.thread_members = links.thread_members
        self.dirty_keys = links.dirty_keys
        self.dirty_marks = links.dirty_marks
        self.keep_marks = links.keep_marks
        self.keys_linked = links.keys_linked
        self.thread_keys = links.thread_keys
        self.keys_from = links.keys_from
        self.newest_from = links.newest_from

        items = Items(db)
        self.sync_items = items.sync_items
        self.pending_items = items.pending_items
        self.items_due = items.items_due
        self.next_action_after = items.next_action_after
        self.items = items.items
        self.report_rows = items.report_rows
        self.oldest_pending_received = items.oldest_pending_received
        self.pending_accounts = items.pending_accounts
        self.mark_items_done = items.mark_items_done

        outbox = Outbox(db, fence)
        self.enqueue = outbox.enqueue
        self.enqueue_once = outbox.enqueue_once
        self.enqueue_promises = outbox.enqueue_promises
        self.sent_counts = outbox.sent_counts
        self.outbox_due = outbox.outbox_due
        self.outbox_pending = outbox.outbox_pending
        self.reached_since = outbox.reached_since
        self.reach_counts = outbox.reach_counts
        self.outbox_update_items = outbox.outbox_update_items
        self.outbox_sent = outbox.outbox_sent
        self.outbox_retry = outbox.outbox_retry
        self.outbox_close = outbox.outbox_close

        promises = Promises(db)
        self.promise_read_candidates = promises.promise_read_candidates
        self.promise_reads = promises.promise_reads
        self.record_promise_read = promises.record_promise_read
        self.promises = promises.promises
        self.promises_to_track = promises.promises_to_track
        self.promises_touched = promises.promises_touched
        self.promise_notices = promises.promise_notices
        self.next_promise_times = promises.next_promise_times
        self.update_promises = promises.update_promises
        self.mark_promises = promises.mark_promises
        self.promises_of_outbox = promises.promises_of_outbox
        self.promise_rows = promises.promise_rows

        asks = Asks(db, fence)
        self.ack_date_rows = asks.ack_date_rows
        self.date_ask_candidates = asks.date_ask_candidates
        self.enqueue_date_asks = asks.enqueue_date_asks
        self.mark_date_asks = asks.mark_date_asks
        self.date_asks_of_outbox = asks.date_asks_of_outbox

        health = Health(db)
        self.set_health = health.set_health
        self.health = health.health

        leases = Leases(db)
        self.heartbeat = leases.heartbeat
        self.cluster_view = leases.cluster_view
        self.claim_leases = leases.claim_leases
        self.release_leases = leases.release_leases
        self.take_leadership = leases.take_leadership
        self.leave = leases.leave
        self.forget_nodes = leases.forget_nodes
        self.outbox_fence = leases.outbox_fence
        self.ask_recheck = leases.ask_recheck
        self.recheck_requests = leases.recheck_requests
        self.answer_recheck = leases.answer_recheck
        self.recheck_answers = leases.recheck_answers
        self.forget_rechecks = leases.forget_rechecks
