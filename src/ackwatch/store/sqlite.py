"""The state database: sync cursors, messages seen, items, the outbox, mailbox health.

One SQLite file (WAL) in ``state_dir``, 0600 in a 0700 directory: created so, and an
existing looser directory or file is tightened at each writable open (`private`). The daemon's
core thread is the single writer; ``ackwatch status`` and ``report`` open it read-only
while the daemon runs.

Crash safety (kill -9 at any instant): every sync step is one transaction that stores
the fetched messages *and* the folder's new cursor together, so a restart resumes from a
cursor that matches exactly what is stored; re-fetching a message is an upsert. Actions
are recorded in the outbox (and the items marked) in one transaction *before* the SMTP
conversation, and marked sent after the server accepts: a crash in between re-sends that
one mail on restart (at most one duplicate), never loses it.

Schema versions live in ``PRAGMA user_version``; `MIGRATIONS` are numbered steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import json
import operator
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol, TypeVar

import structlog

from ackwatch.core.item_rules import Item
from ackwatch.core.message import Message, evolve, parse_message
from ackwatch.core.threads import component_batches, is_noise_link, link_values
from ackwatch.private import tighten

log = structlog.get_logger(__name__)

T = TypeVar("T")

DB_NAME = "ackwatch.sqlite3"
_SIDE_FILES = ("-wal", "-shm")  # SQLite's WAL files beside the database, as private as it
MAX_HEADER_VARIANTS = 20  # other header variants of one key read when linking a new copy

# A stored time (`_iso`: ISO 8601 in UTC with microseconds, "2026-11-16T09:50:00.123456+00:00")
# as integer microseconds since the epoch, in SQL: exact (whole seconds from strftime, the
# six digits added), what `(t - epoch) // timedelta(microseconds=1)` gives in Python.
# Migration 5's generated columns are made of these two: they are part of schema 5 (a
# change means a migration of its own, not an edit here).
_US = ("CAST(strftime('%s', substr({0}, 1, 19)) AS INTEGER) * 1000000"
       " + CAST(substr({0}, 21, 6) AS INTEGER)")
_ACK_US = "CASE WHEN ack_at IS NOT NULL AND ack_at != '' THEN " + _US.format("ack_at") + " END"

# The columns of `items` up to schema 4 (migration 5 copies them).
_ITEMS_V4 = (
    "key, thread, message_id, client_address, client, subject, received, mailboxes, account,"
    " policy, clock, deadline, nudge_at, escalate_at, state, ack_key, ack_at, ack_kind,"
    " ack_by, follow_ups, first_seen, nudge_done, escalation_done, nudge_outbox,"
    " escalation_outbox"
)

MIGRATIONS: tuple[str, ...] = (
    # 1: the initial schema
    """
    CREATE TABLE folders (
        mailbox TEXT NOT NULL,
        folder TEXT NOT NULL,
        role TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        last_uid INTEGER NOT NULL,
        highestmodseq INTEGER,
        synced_at TEXT NOT NULL,
        PRIMARY KEY (mailbox, folder)
    );
    CREATE TABLE messages (
        mailbox TEXT NOT NULL,
        folder TEXT NOT NULL,
        uid INTEGER NOT NULL,
        uidvalidity INTEGER NOT NULL,
        role TEXT NOT NULL,
        key TEXT NOT NULL,
        received TEXT NOT NULL,
        flags TEXT NOT NULL,
        answered_at TEXT,
        dismissed_at TEXT,
        gm_thrid INTEGER,
        headers BLOB NOT NULL,
        initial INTEGER NOT NULL DEFAULT 0,
        first_seen TEXT NOT NULL,
        PRIMARY KEY (mailbox, folder, uid)
    );
    CREATE INDEX messages_key ON messages (key);
    CREATE INDEX messages_received ON messages (received);
    CREATE TABLE items (
        key TEXT PRIMARY KEY,
        thread TEXT NOT NULL,
        message_id TEXT,
        client_address TEXT NOT NULL,
        client TEXT,
        subject TEXT NOT NULL,
        received TEXT NOT NULL,
        mailboxes TEXT NOT NULL,
        account TEXT,
        policy TEXT NOT NULL,
        clock TEXT NOT NULL,
        deadline TEXT NOT NULL,
        nudge_at TEXT NOT NULL,
        escalate_at TEXT,
        state TEXT NOT NULL,
        ack_key TEXT,
        ack_at TEXT,
        ack_kind TEXT,
        ack_by TEXT,
        follow_ups INTEGER NOT NULL DEFAULT 0,
        first_seen TEXT NOT NULL,
        nudge_done TEXT,
        escalation_done TEXT,
        nudge_outbox INTEGER,
        escalation_outbox INTEGER
    );
    CREATE INDEX items_state ON items (state);
    CREATE INDEX items_received ON items (received);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        recipient TEXT NOT NULL,
        cc TEXT NOT NULL,
        account TEXT,
        item_keys TEXT NOT NULL,
        message_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        sent_at TEXT
    );
    CREATE INDEX outbox_state ON outbox (state, next_attempt_at);
    CREATE INDEX outbox_recipient ON outbox (recipient, created_at);
    CREATE TABLE health (
        mailbox TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        since TEXT NOT NULL,
        last_error TEXT,
        last_sync TEXT
    );
    CREATE TABLE meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: promises (issue 8). Of a body, only the promise's sentence is ever stored.
    """
    CREATE TABLE promises (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source_key TEXT NOT NULL UNIQUE,
        thread TEXT NOT NULL,
        item_key TEXT NOT NULL,
        account TEXT,
        client TEXT,
        client_address TEXT NOT NULL,
        subject TEXT NOT NULL,
        made_at TEXT NOT NULL,
        promised TEXT NOT NULL,
        remind_at TEXT,
        sentence TEXT NOT NULL,
        state TEXT NOT NULL,
        follow_key TEXT,
        settled_at TEXT,
        reminder_done TEXT,
        reminder_outbox INTEGER,
        overdue_done TEXT,
        overdue_outbox INTEGER,
        first_seen TEXT NOT NULL
    );
    CREATE INDEX promises_state ON promises (state);
    CREATE INDEX promises_made ON promises (made_at);
    CREATE TABLE promise_reads (
        key TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT,
        read_at TEXT NOT NULL
    );
    """,
    # 3: the follow-up messages of items, so their flags (\\Answered, the dismissal
    # keyword) are re-fetched too, not only the first message's.
    """
    CREATE TABLE item_members (
        item_key TEXT NOT NULL,
        member_key TEXT NOT NULL,
        PRIMARY KEY (item_key, member_key)
    );
    CREATE INDEX item_members_member ON item_members (member_key);
    """,
    # 4: re-evaluating only what new mail touches (bench target 6). `links`: every stored
    # mail's `threads.link_values` (no noise); `threads`: the thread of each key at its
    # last evaluation; `dirty`: keys stored, changed or removed since; `senders`: who sent
    # what when (an account's own mail tells whether it is away).
    # Mail stored before gets its links from `Store.build_links` (resumable, in batches).
    """
    CREATE TABLE links (
        link TEXT NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (link, key)
    ) WITHOUT ROWID;
    CREATE TABLE threads (
        key TEXT PRIMARY KEY,
        thread TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX threads_thread ON threads (thread);
    CREATE TABLE dirty (
        key TEXT PRIMARY KEY
    ) WITHOUT ROWID;
    CREATE TABLE senders (
        sender TEXT NOT NULL,
        received TEXT NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (sender, received, key)
    ) WITHOUT ROWID;
    INSERT INTO meta (name, value)
        SELECT 'links_after_rowid', '0' WHERE EXISTS (SELECT 1 FROM messages);
    """,
    # 5: an item's times also as integer microseconds since the epoch (issue 7, target 7a:
    # `ackwatch report` over a year reads them instead of parsing a million ISO strings
    # twice). Generated STORED columns: SQLite computes them on every write, so no writer
    # changes and no way for them to disagree with the text; STORED (not VIRTUAL) so that
    # reading them costs nothing. SQLite cannot add a STORED column to a table, so `items`
    # is rebuilt, rowids kept (ties of received time stay in the order they had).
    """
    CREATE TABLE items_v5 (
        key TEXT PRIMARY KEY,
        thread TEXT NOT NULL,
        message_id TEXT,
        client_address TEXT NOT NULL,
        client TEXT,
        subject TEXT NOT NULL,
        received TEXT NOT NULL,
        mailboxes TEXT NOT NULL,
        account TEXT,
        policy TEXT NOT NULL,
        clock TEXT NOT NULL,
        deadline TEXT NOT NULL,
        nudge_at TEXT NOT NULL,
        escalate_at TEXT,
        state TEXT NOT NULL,
        ack_key TEXT,
        ack_at TEXT,
        ack_kind TEXT,
        ack_by TEXT,
        follow_ups INTEGER NOT NULL DEFAULT 0,
        first_seen TEXT NOT NULL,
        nudge_done TEXT,
        escalation_done TEXT,
        nudge_outbox INTEGER,
        escalation_outbox INTEGER,
        received_us INTEGER GENERATED ALWAYS AS (""" + _US.format("received") + """) STORED,
        deadline_us INTEGER GENERATED ALWAYS AS (""" + _US.format("deadline") + """) STORED,
        ack_us INTEGER GENERATED ALWAYS AS (""" + _ACK_US + """) STORED
    );
    INSERT INTO items_v5 (rowid, """ + _ITEMS_V4 + """)
        SELECT rowid, """ + _ITEMS_V4 + """ FROM items ORDER BY rowid;
    DROP TABLE items;
    ALTER TABLE items_v5 RENAME TO items;
    CREATE INDEX items_state ON items (state);
    CREATE INDEX items_received ON items (received);
    """,
    # 6: whether a copy's header bytes hold Authentication-Results and Received (fetched
    # since ackwatch asks for them). A copy stored before keeps the trust it had
    # (`Message.legacy_fetch`); adding a column with a constant default rewrites nothing.
    """
    ALTER TABLE messages ADD COLUMN trace_headers INTEGER NOT NULL DEFAULT 0;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The state database cannot be opened or written (permissions, disk full, corrupt)."""


def _iso(t: dt.datetime | None) -> str | None:
    """The stored form of an instant: UTC, always six digits of microseconds
    ("2026-11-20T09:30:05.000000+00:00"), so that the text sorts as the instant does."""
    if t is None:
        return None
    if t.tzinfo is not dt.UTC:
        if t.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        t = t.astimezone(dt.UTC)
    if t.microsecond:
        return t.isoformat()
    # The usual case (IMAP times have whole seconds): isoformat's timespec argument alone
    # costs a fifth of the call, on five times per item.
    return t.isoformat()[:19] + ".000000+00:00"


_first = operator.itemgetter(0)


@functools.lru_cache(maxsize=256)
def _flags_json(flags: frozenset[str]) -> str:
    """The stored form of a flag set (a sync sees a handful of sets, thousands of times)."""
    return json.dumps(sorted(flags))


def _lowered(flags: Iterable[str]) -> frozenset[str]:
    """A copy's flags, lower-cased (once per flag set: a sync sees a handful of them)."""
    if flags.__class__ is frozenset:
        return _lowered_set(flags)  # type: ignore[arg-type]
    return frozenset(f.lower() for f in flags)


@functools.lru_cache(maxsize=256)
def _lowered_set(flags: frozenset[str]) -> frozenset[str]:
    return frozenset(f.lower() for f in flags)


@functools.lru_cache(maxsize=256)
def _names_json(names: tuple[str, ...]) -> str:
    """The stored form of an item's mailbox names (a few combinations, thousands of items)."""
    return json.dumps(list(names))


def _dt(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


@dataclass(frozen=True)
class StoredCursor:
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
    mailbox: str
    state: str
    since: dt.datetime
    last_error: str | None
    last_sync: dt.datetime | None


def readonly_uri(path: Path) -> str:
    """The SQLite ``file:`` URI that opens ``path`` read-only. The path is percent-quoted:
    in a URI "#" starts a fragment, "?" the parameters and "%" an escape, so a state
    directory named "state#1" would otherwise open (or create) another file."""
    from urllib.parse import quote

    return f"file:{quote(str(Path(path).absolute()))}?mode=ro"


class Store:
    def __init__(self, conn: sqlite3.Connection, path: Path, readonly: bool):
        self._conn = conn
        self.path = path
        self.readonly = readonly
        # The parse of each copy stored since the last load that returned it, so the
        # evaluation after a sync does not parse it again (see `load_messages`):
        # (mailbox, folder, uid) -> (the UIDVALIDITY it was stored under, parse, the row's role,
        # received, flags, answered_at, dismissed_at and gm_thrid as stored with it).
        self._parsed: dict[tuple[str, str, int], tuple[int, Message, tuple[object, ...]]] = {}
        # `prepare`d parses by (mailbox, folder) -> uid -> (the copy, role, parse).
        self._prepared: dict[tuple[str, str], dict[int, tuple[StorableMessage, str, Message]]] = {}
        self._writes = 0  # write transactions so far (begun; a rollback counts too)
        self._pending_cache: tuple[int, list[ItemRecord]] | None = None

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, state_dir: Path, *, readonly: bool = False) -> Store:
        state_dir = Path(state_dir)
        path = state_dir / DB_NAME
        try:
            if readonly:
                if not path.exists():
                    raise StoreError(f"{path}: no state yet (has ackwatch run?)")
                conn = sqlite3.connect(
                    readonly_uri(path), uri=True, timeout=10, check_same_thread=False,
                    isolation_level=None,
                )
            else:
                state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                if not path.exists():
                    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
                    os.close(fd)
                # Modes set by hand or by a restore are tightened too, not only new files.
                tighten((state_dir, path, *(path.with_name(path.name + s) for s in _SIDE_FILES)))
                # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in _write).
                conn = sqlite3.connect(
                    path, timeout=30, check_same_thread=False, isolation_level=None
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.row_factory = sqlite3.Row
            store = cls(conn, path, readonly)
            if not readonly:
                store._migrate()
            else:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(f"{path}: schema {version} is newer than this ackwatch")
            return store
        except sqlite3.Error as exc:
            hint = ""
            if not readonly and not all(os.access(p, os.W_OK) for p in (state_dir, path)):
                hint = " (the state directory is not writable: read-only file system or permissions)"
            raise StoreError(f"{path}: cannot open the state database: {exc}{hint}") from exc
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the state database: {exc.strerror}") from exc

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this ackwatch "
                f"({SCHEMA_VERSION}); refusing to touch it"
            )
        for number in range(version, SCHEMA_VERSION):
            with self._write() as c:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        c.execute(statement)
                c.execute(f"PRAGMA user_version = {number + 1}")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction; rolled back entirely on any error."""
        if self.readonly:
            raise StoreError("the state database was opened read-only")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._writes += 1
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self.path}: write failed: {exc}") from exc
            raise

    def integrity_check(self) -> str:
        return self._conn.execute("PRAGMA integrity_check").fetchone()[0]

    # ------------------------------------------------------------------ meta

    def get_meta(self, name: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, name: str, value: str) -> None:
        with self._write() as c:
            c.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    # ------------------------------------------------------------------ folders & messages

    def cursors(self, mailbox: str) -> dict[str, StoredCursor]:
        rows = self._conn.execute(
            "SELECT folder, role, uidvalidity, last_uid, highestmodseq FROM folders "
            "WHERE mailbox = ?",
            (mailbox,),
        ).fetchall()
        return {
            r["folder"]: StoredCursor(
                r["folder"], r["role"], r["uidvalidity"], r["last_uid"], r["highestmodseq"]
            )
            for r in rows
        }

    def apply_folder_sync(
        self,
        *,
        mailbox: str,
        folder: str,
        role: str,
        uidvalidity: int,
        last_uid: int,
        highestmodseq: int | None,
        new_messages: Sequence[StorableMessage],
        flag_updates: Iterable[tuple[int, frozenset[str]]],
        reset: bool,
        initial: bool,
        dismiss_keyword: str,
        now: dt.datetime,
        mark_dirty: bool = True,
    ) -> int:
        """Store one sync step of one folder atomically; returns the number of new copies.

        ``reset``: the folder was (re)scanned from scratch (first sync or UIDVALIDITY
        change): copies under an old UIDVALIDITY are forgotten. Items live on: they are
        keyed by Message-ID, so the same mail fetched again maps to the same item.
        ``mark_dirty=False``: the new copies get no dirty marks, for a caller whose next
        evaluation covers all the stored mail anyway (a state never evaluated).
        """
        now_s = _iso(now)
        dismiss = dismiss_keyword.lower()
        stored: list[tuple[Message, bytes, str]] = []
        prepared = self._prepared.pop((mailbox, folder), {})
        with self._write() as c:
            if reset:
                c.execute(
                    "INSERT OR IGNORE INTO dirty (key) SELECT key FROM messages"
                    " WHERE mailbox = ? AND folder = ? AND uidvalidity != ?",
                    (mailbox, folder, uidvalidity),
                )
                c.execute(
                    "DELETE FROM messages WHERE mailbox = ? AND folder = ? AND uidvalidity != ?",
                    (mailbox, folder, uidvalidity),
                )
            any_stored = c.execute(
                "SELECT 1 FROM messages WHERE mailbox = ? AND folder = ? LIMIT 1", (mailbox, folder)
            ).fetchone()
            present = {
                r[0] for r in _chunked(
                    c, "SELECT uid FROM messages WHERE mailbox = ? AND folder = ? AND uid IN ({})",
                    (mailbox, folder), {m.uid for m in new_messages})
            } if any_stored else set()
            fresh = []
            for m in new_messages:
                if m.uid in present:
                    continue  # stored already (DO NOTHING): the first copy of a UID wins
                present.add(m.uid)
                flags_l = _lowered(m.flags)
                answered_at = now_s if "\\answered" in flags_l else None
                dismissed_at = now_s if dismiss in flags_l else None
                parsed = _parse_new(
                    m, mailbox, folder, role,
                    answered_at=now if answered_at else None,
                    dismissed_at=now if dismissed_at else None,
                    prepared=prepared.get(m.uid),
                )
                received_s = _iso(m.received)
                fresh.append((m, parsed, answered_at, dismissed_at, received_s))
                stored.append((parsed, m.header_bytes, received_s))
            rows = []
            with _write_behind(threaded=len(stored) >= WRITE_BEHIND_ROWS) as behind:
                # The links and senders are written while the rows of the copies are made.
                _write_links(c, stored, behind)
                for m, parsed, answered_at, dismissed_at, received_s in fresh:
                    row = (
                        mailbox, folder, m.uid, uidvalidity, role, parsed.key, received_s,
                        _flags_json(frozenset(m.flags)), answered_at, dismissed_at, m.gm_thrid,
                        m.header_bytes, int(initial), now_s,
                    )
                    rows.append(row)
                    self._parsed[(mailbox, folder, m.uid)] = (
                        uidvalidity, parsed, (role, *row[6:11]),
                    )
                    if parsed.defects:
                        _log_defects(parsed)
            c.executemany(
                "INSERT INTO messages (mailbox, folder, uid, uidvalidity, role, key, received,"
                " flags, answered_at, dismissed_at, gm_thrid, headers, initial, first_seen,"
                " trace_headers) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
                rows,
            )
            added = len(rows)
            _link_variants(c, stored)
            if mark_dirty:
                _mark_dirty(c, stored)
            for uid, flags in flag_updates:
                flags_l = {f.lower() for f in flags}
                c.execute(
                    "UPDATE messages SET flags = ?,"
                    " answered_at = CASE WHEN ? THEN COALESCE(answered_at, ?) ELSE NULL END,"
                    " dismissed_at = CASE WHEN ? THEN COALESCE(dismissed_at, ?) ELSE NULL END"
                    " WHERE mailbox = ? AND folder = ? AND uid = ?",
                    (
                        _flags_json(frozenset(flags)),
                        "\\answered" in flags_l, now_s,
                        dismiss in flags_l, now_s,
                        mailbox, folder, uid,
                    ),
                )
                c.execute(
                    "INSERT OR IGNORE INTO dirty (key) SELECT key FROM messages"
                    " WHERE mailbox = ? AND folder = ? AND uid = ?",
                    (mailbox, folder, uid),
                )
            c.execute(
                "INSERT INTO folders (mailbox, folder, role, uidvalidity, last_uid, highestmodseq,"
                " synced_at) VALUES (?,?,?,?,?,?,?)"
                " ON CONFLICT(mailbox, folder) DO UPDATE SET role = excluded.role,"
                " uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid,"
                " highestmodseq = excluded.highestmodseq, synced_at = excluded.synced_at",
                (mailbox, folder, role, uidvalidity, last_uid, highestmodseq, now_s),
            )
            c.execute(
                "INSERT INTO health (mailbox, state, since, last_sync) VALUES (?, 'up', ?, ?)"
                " ON CONFLICT(mailbox) DO UPDATE SET last_sync = excluded.last_sync",
                (mailbox, now_s, now_s),
            )
        return added

    def prepare(
        self, mailbox: str, folder: str, role: str, new_messages: Iterable[StorableMessage]
    ) -> None:
        """Parse copies that the next `apply_folder_sync` of this folder will store, ahead
        of it (no database access): a first sync parses each batch while the server
        prepares the next one (`sync.sync_folder`'s ``on_batch``). What that call does
        not use is dropped with it."""
        prepared = self._prepared.setdefault((mailbox, folder), {})
        for m in new_messages:
            parsed = _parse_new(m, mailbox, folder, role, answered_at=None, dismissed_at=None)
            prepared[m.uid] = (m, role, parsed)

    def load_messages(
        self, since: dt.datetime | None = None, *, keys: Iterable[str] | None = None
    ) -> list[Message]:
        """Every stored copy received at or after ``since`` (of ``keys`` only, when given),
        parsed (never raises on bad mail).

        A copy stored by this `Store` is parsed once: its parse is kept until the first
        load that returns it (the evaluation that follows the sync), then dropped, so
        memory does not grow with the history (bench target 6). A row's header bytes
        never change (a row is only ever inserted, re-flagged or deleted), so a kept parse
        is this row's while the row's UIDVALIDITY is the one it was stored under: the
        header bytes are read only for the copies parsed here.
        """
        query = (
            "SELECT mailbox, folder, uid, role, received, flags, answered_at, dismissed_at,"
            " gm_thrid, uidvalidity, rowid, trace_headers FROM messages WHERE received >= ?"
        )
        since_s = _iso(since) if since is not None else ""
        if keys is None:
            rows: Iterable[sqlite3.Row] = self._conn.execute(query, (since_s,))
        else:
            rows = self._rows_in(query + " AND key IN ({})", [since_s], keys)
        out: list[Message | None] = []
        to_parse: list[tuple[int, sqlite3.Row]] = []  # (position in out, row)
        cache = self._parsed
        for r in rows:
            hit = cache.pop((r["mailbox"], r["folder"], r["uid"]), None)
            if hit is not None and hit[0] == r["uidvalidity"]:
                if hit[2] == tuple(r)[3:9]:  # the row as stored with this parse
                    out.append(hit[1])
                    continue
                msg = _refresh(hit[1], r)
                if msg is not None:
                    out.append(msg)
                    continue
            to_parse.append((len(out), r))
            out.append(None)
        if to_parse:
            headers = dict(_chunked(  # type: ignore[arg-type]
                self._conn, "SELECT rowid, headers FROM messages WHERE rowid IN ({})", (),
                [r["rowid"] for _, r in to_parse],
            ))
            for position, r in to_parse:
                out[position] = parse_message(
                    bytes(headers[r["rowid"]]),
                    mailbox=r["mailbox"],
                    folder=r["folder"],
                    role=r["role"],
                    uid=r["uid"],
                    received=_dt(r["received"]),
                    flags=tuple(json.loads(r["flags"])),
                    gm_thrid=r["gm_thrid"],
                    answered_at=_dt(r["answered_at"]),
                    dismissed_at=_dt(r["dismissed_at"]),
                    legacy_fetch=not r["trace_headers"],
                )
        if keys is None:
            cache.clear()  # a full load: what it did not return is out of the window
        return out  # type: ignore[return-value]

    def iter_messages(self, since: dt.datetime, keys: Iterable[str]) -> Iterator[Message]:
        """`load_messages` of ``keys``, a few hundred keys at a time: for a caller that
        keeps less of each mail than the mail itself (`threads.assign_threads`)."""
        chunk: list[str] = []
        for key in keys:
            chunk.append(key)
            if len(chunk) == 500:
                yield from self.load_messages(since, keys=chunk)
                chunk = []
        if chunk:
            yield from self.load_messages(since, keys=chunk)

    def _rows_in(
        self, query: str, args: Sequence[object], values: Iterable[object]
    ) -> Iterator[sqlite3.Row]:
        return _chunked(self._conn, query, args, values)

    def initial_keys(
        self, keys: Iterable[str] | None = None, *, since: dt.datetime | None = None
    ) -> set[str]:
        """Keys of mail that came from a first-start history import (never nudged for),
        among ``keys`` and received at or after ``since`` when given."""
        query = "SELECT key FROM messages WHERE initial = 1 AND received >= ?"  # a set: no DISTINCT
        args = (_iso(since) if since is not None else "",)
        if keys is None:
            return {r[0] for r in self._conn.execute(query, args)}
        return {r[0] for r in self._rows_in(query + " AND key IN ({})", args, keys)}

    # ------------------------------------------------------------------ evaluation scope

    def links_pending(self) -> bool:
        """True while mail stored before schema 4 has no links yet (`build_links`)."""
        return self.get_meta("links_after_rowid") is not None

    def build_links(self, progress: Callable[[int], None] | None = None) -> int:
        """Link the mail stored before schema 4, a batch per transaction, resumable after a
        kill (the last rowid done is kept in meta). ``progress(done)`` after each batch.
        Returns how many copies were linked."""
        done = 0
        while True:
            after = self.get_meta("links_after_rowid")
            if after is None:
                return done
            rows = self._conn.execute(
                "SELECT rowid, mailbox, folder, uid, role, received, gm_thrid, headers"
                " FROM messages WHERE rowid > ? ORDER BY rowid LIMIT 5000", (int(after),)
            ).fetchall()
            with self._write() as c:
                _insert_links(c, [
                    (parse_message(
                        bytes(r[7]), mailbox=r[1], folder=r[2], role=r[4], uid=r[3],
                        received=_dt(r[5]), gm_thrid=r[6],  # type: ignore[arg-type]
                    ), bytes(r[7]), r[5])
                    for r in rows
                ], mark_dirty=False)
                if rows:
                    c.execute("UPDATE meta SET value = ? WHERE name = 'links_after_rowid'",
                              (str(rows[-1][0]),))
                else:
                    c.execute("DELETE FROM meta WHERE name = 'links_after_rowid'")
            done += len(rows)
            if progress is not None and rows:
                progress(done)

    def copies_since(self, since: dt.datetime) -> int:
        """How many stored copies were received at or after ``since``."""
        return self._conn.execute(
            "SELECT COUNT(*) FROM messages WHERE received >= ?", (_iso(since),)
        ).fetchone()[0]

    def linked_batches(
        self, since: dt.datetime, noise: frozenset[str], max_keys: int
    ) -> Iterator[set[str]]:
        """The keys of the mail received at or after ``since``, in batches of whole link
        components (`threads.component_batches`: keys joined by a chain of shared
        `threads.link_values`, the values ``noise`` leaves out aside), of about
        ``max_keys`` keys each.

        Computed from the links table, not from parsed mail: the keys are numbered in a
        temporary table and only integers are held here. `end_linked_batches` completes
        the evaluation these batches were for.
        """
        c = self._conn
        c.execute("DROP TABLE IF EXISTS temp.window_keys")
        c.execute("CREATE TEMP TABLE window_keys (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE)")
        c.execute("INSERT INTO temp.window_keys (id, key)"
                  " SELECT NULL, key FROM messages WHERE received >= ? GROUP BY key",
                  (_iso(since),))
        n = c.execute("SELECT COALESCE(MAX(id), 0) FROM temp.window_keys").fetchone()[0]

        def edges() -> Iterator[tuple[int, int]]:
            rows = c.cursor()
            rows.row_factory = None  # millions of rows: plain tuples
            # Keys that share a link value (the links table is in link order).
            rows.execute("SELECT l.link, w.id - 1 FROM links l"
                         " JOIN temp.window_keys w ON w.key = l.key ORDER BY l.link")
            link, first, skip = None, 0, False
            for value, key_id in rows:
                if value != link:
                    link, first = value, key_id
                    skip = is_noise_link(value, noise)
                elif not skip:
                    yield first, key_id
            # A key and the stored mail it refers to ("id:<key>"; its own id is not stored).
            rows.execute("SELECT w.id - 1, r.id - 1 FROM links l"
                         " JOIN temp.window_keys w ON w.key = l.key"
                         " JOIN temp.window_keys r ON r.key = substr(l.link, 4)"
                         " WHERE l.link >= 'id:' AND l.link < 'id;'")
            yield from rows

        for batch in component_batches(n, edges(), max_keys):
            yield {r[0] for r in self._rows_in(
                "SELECT key FROM temp.window_keys WHERE id IN ({})", (), (i + 1 for i in batch))}

    def end_linked_batches(self, meta: Mapping[str, str]) -> None:
        """After every batch of `linked_batches` was evaluated (`sync_items` with each batch
        as its scope): what `sync_items` without a scope does for the rest. Pending items of
        mail no longer stored (or out of the window) are dropped; the threads and dirty
        marks of such mail go; ``meta`` is recorded."""
        with self._write() as c:
            c.execute("UPDATE items SET state = 'dropped' WHERE state = 'pending'"
                      " AND key NOT IN (SELECT key FROM temp.window_keys)")
            c.execute("DELETE FROM threads WHERE key NOT IN (SELECT key FROM temp.window_keys)")
            c.execute("DELETE FROM dirty")
            _set_meta(c, meta)
        self._conn.execute("DROP TABLE temp.window_keys")
        self._parsed.clear()  # as after a full load: what no batch returned is out of the window

    def threads_since(self, since: dt.datetime) -> list[str]:
        """The threads (as last evaluated) with mail received at or after ``since``."""
        return [
            r[0] for r in self._conn.execute(
                "SELECT DISTINCT t.thread FROM messages m JOIN threads t ON t.key = m.key"
                " WHERE m.received >= ? ORDER BY t.thread", (_iso(since),))
        ]

    def thread_members(self, threads: Iterable[str]) -> set[str]:
        """Every key of ``threads`` (as last evaluated)."""
        return {r[0] for r in self._rows_in("SELECT key FROM threads WHERE thread IN ({})", (),
                                            threads)}

    def set_meta_many(self, values: Mapping[str, str]) -> None:
        with self._write() as c:
            _set_meta(c, values)

    def dirty_keys(self) -> set[str]:
        """Keys stored, re-flagged or removed since their last evaluation."""
        return {r[0] for r in self._conn.execute("SELECT key FROM dirty")}

    def keys_linked(self, links: Iterable[str]) -> set[str]:
        """Keys of the stored mail that has any of ``links`` (`threads.link_values`).

        A mail's own "id:<key>" is not in the links table (a quarter of its rows): the
        messages table's key answers for it."""
        links = set(links)
        found = {r[0] for r in self._rows_in("SELECT key FROM links WHERE link IN ({})", (), links)}
        ids = {v[3:] for v in links if v.startswith("id:")}
        found.update(
            r[0] for r in self._rows_in("SELECT DISTINCT key FROM messages WHERE key IN ({})", (), ids)
        )
        return found

    def thread_keys(self, keys: Iterable[str]) -> set[str]:
        """Every key of the threads (as last evaluated) that ``keys`` belong to."""
        threads = {
            r[0] for r in self._rows_in("SELECT thread FROM threads WHERE key IN ({})", (), keys)
        }
        return {
            r[0] for r in self._rows_in("SELECT key FROM threads WHERE thread IN ({})", (), threads)
        }

    def keys_from(self, senders: Iterable[str], since: dt.datetime) -> set[str]:
        """Keys of stored mail from ``senders`` received at or after ``since``."""
        return {
            r[0]
            for r in self._rows_in(
                "SELECT key FROM senders WHERE received >= ? AND sender IN ({})",
                (_iso(since),), (s.lower() for s in senders))
        }

    def pending_uids(self, mailbox: str, folder: str) -> set[int]:
        """UIDs in one folder whose flags still matter: copies of the mail of pending items
        (their first message and the follow-ups folded into them)."""
        rows = self._conn.execute(
            "SELECT m.uid FROM messages m WHERE m.mailbox = ? AND m.folder = ? AND m.key IN ("
            " SELECT key FROM items WHERE state = 'pending'"
            " UNION SELECT im.member_key FROM item_members im"
            " JOIN items i ON i.key = im.item_key WHERE i.state = 'pending')",
            (mailbox, folder),
        ).fetchall()
        return {r[0] for r in rows}

    def message_count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    # ------------------------------------------------------------------ items

    def sync_items(
        self,
        items: Sequence[Item],
        *,
        now: dt.datetime,
        initial_keys: set[str],
        scope: Collection[str] | None = None,
        threads: Mapping[str, str] | None = None,
        meta: Mapping[str, str] | None = None,
    ) -> tuple[list[str], list[str]]:
        """Make the stored items match a fresh evaluation; returns (new keys, newly acked keys).

        Items first seen from a history import (``initial_keys``) whose nudge or escalation
        time has already passed are marked ``suppressed``: importing last week's mail must
        not produce a storm of nudges. Items that the evaluation no longer yields (the
        config changed: that sender is now ignored) become ``dropped``.

        ``scope``: the keys evaluated (whole threads), when the evaluation covered only
        those: items outside it are left as they are. ``threads`` (key -> thread), the end
        of the keys' dirty marks and ``meta`` (what the evaluation was made with) are
        recorded in the same transaction.
        """
        now_s = _iso(now)
        query = "SELECT key, state, nudge_done, escalation_done, follow_ups FROM items"
        rows: Iterable[sqlite3.Row] = (
            self._conn.execute(query) if scope is None
            else self._rows_in(query + " WHERE key IN ({})", (), scope)
        )
        existing = {r["key"]: r for r in rows}
        thread_rows = sorted(threads.items()) if threads is not None else []  # key order
        with self._write() as c:
            if scope is None:
                c.execute("DELETE FROM threads")
                c.execute("DELETE FROM dirty")
            else:
                c.executemany("DELETE FROM dirty WHERE key = ?", ((k,) for k in scope))
            with _write_behind(threaded=len(thread_rows) >= WRITE_BEHIND_ROWS) as behind:
                # The threads are written while the items' rows are made. (The items go
                # by executemany: `_bulk_insert` reads each JSON row once per column, too
                # slow for 23 columns.)
                behind(_bulk_insert(
                    c, "INSERT INTO threads (key, thread) {select}"
                    " ON CONFLICT(key) DO UPDATE SET thread = excluded.thread", thread_rows,
                ))  # fmt: skip
                seen, inserts, updates, members, new, acked = _item_rows(
                    items, existing, initial_keys, now, now_s
                )
            for key, follow_ups in members:
                c.execute("DELETE FROM item_members WHERE item_key = ?", (key,))
                c.executemany(
                    "INSERT OR IGNORE INTO item_members (item_key, member_key) VALUES (?, ?)",
                    [(key, k) for k in follow_ups],
                )
            c.executemany(
                _INSERT_ITEMS + " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", inserts
            )
            c.executemany(
                "UPDATE items SET thread=?, message_id=?, client_address=?, client=?,"
                " subject=?, received=?, mailboxes=?, account=?, policy=?, clock=?,"
                " deadline=?, nudge_at=?, escalate_at=?, state=?, ack_key=?, ack_at=?,"
                " ack_kind=?, ack_by=?, follow_ups=? WHERE key=?",
                updates,
            )
            for key, old in existing.items():
                if key not in seen and old["state"] == "pending":
                    c.execute("UPDATE items SET state = 'dropped' WHERE key = ?", (key,))
            _set_meta(c, meta or {})
        return new, acked

    def pending_items(self) -> list[ItemRecord]:
        """``items(state="pending")``, the same list until this store's next write (the
        daemon looks at the pending items several times a step). Do not modify it."""
        if self._pending_cache is None or self._pending_cache[0] != self._writes:
            self._pending_cache = (self._writes, self.items(state="pending"))
        return self._pending_cache[1]

    def items(
        self,
        *,
        state: str | None = None,
        received_since: dt.datetime | None = None,
        received_until: dt.datetime | None = None,
    ) -> list[ItemRecord]:
        query = f"SELECT {_ITEM_COLUMNS} FROM items WHERE 1=1"
        args: list[object] = []
        if state is not None:
            query += " AND state = ?"
            args.append(state)
        if received_since is not None:
            query += " AND received >= ?"
            args.append(_iso(received_since))
        if received_until is not None:
            query += " AND received < ?"
            args.append(_iso(received_until))
        query += " ORDER BY received, key"
        raw = self._conn.cursor()
        raw.row_factory = None
        return _item_records(raw.execute(query, args))

    def report_rows(
        self,
        received_since: dt.datetime,
        received_until: dt.datetime,
        make: Callable[..., T] = lambda *row: row,  # type: ignore[assignment,return-value]
        *,
        stored: bool = False,
    ) -> list[T] | Iterator[tuple]:
        """The columns the report needs, built straight into ``make`` (fast on a year).

        ``make(key, client, client_address, account, subject, received, deadline, ack_at or
        None when not acknowledged, policy, clock, dropped)``, in received order (the
        index's order: ties are left as SQLite finds them).

        ``stored``: instead, an iterator over the raw rows (read it before closing the
        store; ``make`` is not used) ``(group, received, deadline, ack_at or None,
        subject)``: ``group`` the JSON array ``[account, client, client_address, policy,
        clock]`` (one string a row instead of five, decoded once per distinct value), the
        times as integer microseconds since the epoch (schema 5's generated columns),
        dropped items left out and ``subject`` None where the item was acknowledged by its
        deadline (never a breach): what `report.compute_stored` takes, without a Python
        object per row, an ISO string parsed or a subject nobody lists. A state of an older
        schema (opened read-only, so not migrated) gets the same rows, its times converted
        by SQLite as it reads them (slower).
        """
        if stored:
            raw = self._conn.cursor()
            raw.row_factory = None  # plain tuples: a `sqlite3.Row` a row costs 15 % of a year
            if self._has_us_columns():
                received, deadline, ack = "received_us", "deadline_us", "ack_us"
            else:
                received, deadline, ack = _US.format("received"), _US.format("deadline"), _ACK_US
            return raw.execute(
                "SELECT json_array(account, client, client_address, policy, clock),"
                f" {received}, {deadline},"
                f" CASE WHEN state = 'acknowledged' THEN {ack} END,"
                " CASE WHEN state != 'acknowledged' OR ack_at IS NULL OR ack_at = ''"
                " OR ack_at > deadline THEN subject END"
                " FROM items WHERE received >= ? AND received < ? AND state != 'dropped'"
                " ORDER BY received",
                (_iso(received_since), _iso(received_until)),
            )
        rows = self._conn.execute(
            "SELECT key, client, client_address, account, subject, received, deadline,"
            " CASE WHEN state = 'acknowledged' THEN ack_at END, policy, clock,"
            " state = 'dropped' FROM items WHERE received >= ? AND received < ?"
            " ORDER BY received",
            (_iso(received_since), _iso(received_until)),
        )
        parse = dt.datetime.fromisoformat
        return [
            make(k, c, ca, a, subj, parse(r), parse(d), parse(ack) if ack else None, p, clk,
                 dropped == 1)
            for k, c, ca, a, subj, r, d, ack, p, clk, dropped in rows
        ]

    def _has_us_columns(self) -> bool:
        """Whether `items` has schema 5's microsecond columns (a read-only open of an
        older state is not migrated)."""
        return self._conn.execute("PRAGMA user_version").fetchone()[0] >= 5

    def oldest_pending_received(self) -> dt.datetime | None:
        row = self._conn.execute(
            "SELECT MIN(received) FROM items WHERE state = 'pending'"
        ).fetchone()
        return _dt(row[0]) if row and row[0] else None

    # ------------------------------------------------------------------ outbox

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
        """Record a mail before sending it and mark its items as queued, atomically."""
        now_s = _iso(now)
        keys = {"nudge": list(nudge_keys), "escalation": list(escalation_keys)}
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO outbox (kind, recipient, cc, account, item_keys, message_id,"
                " created_at, state, attempts, next_attempt_at)"
                " VALUES (?,?,?,?,?,?,?, 'pending', 0, ?)",
                (
                    kind, recipient, json.dumps(list(cc)), account, json.dumps(keys),
                    message_id, now_s, now_s,
                ),
            )
            outbox_id = int(cur.lastrowid or 0)
            for column, column_keys in keys.items():
                for key in column_keys:
                    c.execute(
                        f"UPDATE items SET {column}_done = 'queued', {column}_outbox = ?"
                        " WHERE key = ?",
                        (outbox_id, key),
                    )
        return outbox_id

    def enqueue_once(
        self, *, once_key: str, kind: str, recipient: str, message_id: str, now: dt.datetime
    ) -> int | None:
        """Queue a mail that concerns no item (the weekly digest) at most once per key.

        The key is recorded in the same transaction as the outbox row, so a crash can
        neither repeat it nor lose it. Returns None when that key was queued before.
        """
        now_s = _iso(now)
        with self._write() as c:
            if c.execute("SELECT 1 FROM meta WHERE name = ?", (once_key,)).fetchone():
                return None
            c.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (once_key, now_s))
            cur = c.execute(
                "INSERT INTO outbox (kind, recipient, cc, account, item_keys, message_id,"
                " created_at, state, attempts, next_attempt_at)"
                " VALUES (?, ?, '[]', NULL, '{}', ?, ?, 'pending', 0, ?)",
                (kind, recipient, message_id, now_s, now_s),
            )
            return int(cur.lastrowid or 0)

    def sent_counts(self) -> dict[str, int]:
        """Mails accepted by the SMTP server, by kind (for metrics)."""
        rows = self._conn.execute(
            "SELECT kind, COUNT(*) FROM outbox WHERE state = 'sent' GROUP BY kind"
        )
        return {kind: n for kind, n in rows}

    def mark_items_done(self, kind: str, keys: Iterable[str], value: str) -> None:
        column = {"nudge": "nudge_done", "escalation": "escalation_done"}[kind]
        with self._write() as c:
            for key in keys:
                c.execute(f"UPDATE items SET {column} = ? WHERE key = ?", (value, key))

    def outbox_due(self, now: dt.datetime) -> list[OutboxRecord]:
        rows = self._conn.execute(
            "SELECT * FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id",
            (_iso(now),),
        ).fetchall()
        return [_outbox_record(r) for r in rows]

    def outbox_pending(self) -> list[OutboxRecord]:
        rows = self._conn.execute(
            "SELECT * FROM outbox WHERE state = 'pending' ORDER BY id"
        ).fetchall()
        return [_outbox_record(r) for r in rows]

    def outbox(self) -> list[OutboxRecord]:
        return [_outbox_record(r) for r in self._conn.execute("SELECT * FROM outbox ORDER BY id")]

    def reached_since(self, since: dt.datetime) -> dict[str, list[dt.datetime]]:
        """When mail queued or sent since an instant reached each address, To or Cc
        (lower-cased), oldest first: the hourly cap counts every mail a person gets."""
        rows = self._conn.execute(
            "SELECT recipient, cc, created_at FROM outbox WHERE created_at >= ?"
            " AND state IN ('pending', 'sent') ORDER BY created_at",
            (_iso(since),),
        )
        reached: dict[str, list[dt.datetime]] = {}
        for recipient, cc, created_at in rows:
            at = _dt(created_at)
            for address in dict.fromkeys(a.lower() for a in [recipient, *json.loads(cc)]):
                reached.setdefault(address, []).append(at)
        return reached

    def outbox_update_items(
        self, outbox_id: int, nudge_keys: Sequence[str], escalation_keys: Sequence[str]
    ) -> None:
        """Shrink a queued mail to the items still pending (the others were answered);
        the items left out are marked cancelled in the same transaction."""
        keys = {"nudge": list(nudge_keys), "escalation": list(escalation_keys)}
        with self._write() as c:
            row = c.execute("SELECT item_keys FROM outbox WHERE id = ?", (outbox_id,)).fetchone()
            if row is not None:
                for column, before in json.loads(row["item_keys"]).items():
                    kept = set(keys.get(column, ()))
                    dropped = [k for k in before if k not in kept]
                    _set_item_states(c, outbox_id, {column: dropped}, "cancelled")
            c.execute(
                "UPDATE outbox SET item_keys = ? WHERE id = ?", (json.dumps(keys), outbox_id)
            )

    def outbox_sent(self, outbox_id: int, now: dt.datetime) -> None:
        with self._write() as c:
            c.execute(
                "UPDATE outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1"
                " WHERE id = ?",
                (_iso(now), outbox_id),
            )
            _settle_members(c, outbox_id, "sent")

    def outbox_retry(self, outbox_id: int, *, error: str, next_attempt_at: dt.datetime) -> None:
        with self._write() as c:
            c.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
                " WHERE id = ?",
                (error, _iso(next_attempt_at), outbox_id),
            )

    def outbox_close(self, outbox_id: int, state: str, error: str | None = None) -> None:
        """End an outbox entry as ``cancelled`` (nothing left to say) or ``failed`` (5xx).

        The items and promises it carries take the same state in the same transaction:
        an item's nudge state and its outbox row always agree (`status` never shows a
        nudge as queued whose mail failed)."""
        with self._write() as c:
            c.execute(
                "UPDATE outbox SET state = ?, last_error = COALESCE(?, last_error) WHERE id = ?",
                (state, error, outbox_id),
            )
            _settle_members(c, outbox_id, state)

    # ------------------------------------------------------------------ promises (issue 8)

    def promise_read_candidates(self, since: dt.datetime) -> list[dict[str, object]]:
        """Items acknowledged by a reply whose acknowledging message was first stored at or
        after ``since`` by a live sync (not a history import), not read yet or due for
        another try. Dicts with the item's key, thread, client, client_address, subject,
        account, ack_key, ack_by and the read's attempts / next_attempt_at (or None)."""
        rows = self._conn.execute(
            "SELECT i.key, i.thread, i.client, i.client_address, i.subject, i.account,"
            " i.ack_key, i.ack_by, r.attempts, r.next_attempt_at"
            " FROM items i LEFT JOIN promise_reads r ON r.key = i.ack_key"
            " WHERE i.state = 'acknowledged' AND i.ack_kind = 'reply'"
            " AND i.ack_key IS NOT NULL AND (r.key IS NULL OR r.state = 'retry')"
            " AND EXISTS (SELECT 1 FROM messages m WHERE m.key = i.ack_key AND m.initial = 0"
            " AND m.first_seen >= ?)"
            " ORDER BY i.ack_at, i.key",
            (_iso(since),),
        ).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["next_attempt_at"] = _dt(d["next_attempt_at"])
            out.append(d)
        return out

    def promise_reads(self, keys: Iterable[str]) -> dict[str, tuple[str, int, dt.datetime | None]]:
        """Message key -> (state, attempts, next attempt) of the reads recorded for ``keys``.
        States: ``promise`` (it made one), ``none``, ``retry``, ``failed``."""
        out: dict[str, tuple[str, int, dt.datetime | None]] = {}
        for key in set(keys):
            r = self._conn.execute(
                "SELECT state, attempts, next_attempt_at FROM promise_reads WHERE key = ?",
                (key,),
            ).fetchone()
            if r is not None:
                out[key] = (r["state"], r["attempts"], _dt(r["next_attempt_at"]))
        return out

    def message_copies(self, key: str) -> list[tuple[str, str, int, int]]:
        """(mailbox, folder, uid, uidvalidity) of every stored copy of a message, sent
        folders first (the sender's own copy)."""
        rows = self._conn.execute(
            "SELECT mailbox, folder, uid, uidvalidity FROM messages WHERE key = ?"
            " ORDER BY role != 'sent', mailbox, folder, uid",
            (key,),
        ).fetchall()
        return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]

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
    ) -> int | None:
        """Record one read of a message's first text part and, when it made a promise,
        the promise, in one transaction. Returns the new promise's id (None: no promise,
        or that message's promise was recorded before)."""
        now_s = _iso(now)
        with self._write() as c:
            c.execute(
                "INSERT INTO promise_reads (key, state, attempts, next_attempt_at, last_error,"
                " read_at) VALUES (?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET"
                " state = excluded.state, attempts = excluded.attempts,"
                " next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error,"
                " read_at = excluded.read_at",
                (key, state, attempts, _iso(next_attempt_at), error, now_s),
            )
            if promise is None:
                return None
            p = promise
            cur = c.execute(
                "INSERT INTO promises (source_key, thread, item_key, account, client,"
                " client_address, subject, made_at, promised, remind_at, sentence, state,"
                " first_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?, 'open', ?)"
                " ON CONFLICT(source_key) DO NOTHING",
                (
                    p.source_key, p.thread, p.item_key, p.account, p.client, p.client_address,
                    p.subject, _iso(p.made_at), _iso(p.promised), _iso(p.remind_at),
                    p.sentence, now_s,
                ),
            )
            return int(cur.lastrowid) if cur.rowcount else None

    def promises(
        self,
        *,
        states: Iterable[str] | None = None,
        made_since: dt.datetime | None = None,
        made_until: dt.datetime | None = None,
    ) -> list[PromiseRecord]:
        query = "SELECT * FROM promises WHERE 1=1"
        args: list[object] = []
        if states is not None:
            wanted = list(states)
            query += f" AND state IN ({','.join('?' * len(wanted))})"
            args += wanted
        if made_since is not None:
            query += " AND made_at >= ?"
            args.append(_iso(made_since))
        if made_until is not None:
            query += " AND made_at < ?"
            args.append(_iso(made_until))
        query += " ORDER BY promised, id"
        return [_promise_record(r) for r in self._conn.execute(query, args)]

    def promises_to_track(self, made_since: dt.datetime) -> list[PromiseRecord]:
        """Open promises, and the others made since ``made_since`` (a follow-up may still
        be seen late or read)."""
        rows = self._conn.execute(
            "SELECT * FROM promises WHERE state = 'open' OR made_at >= ? ORDER BY promised, id",
            (_iso(made_since),),
        )
        return [_promise_record(r) for r in rows]

    def update_promises(
        self, changes: Iterable[tuple[int, str, str | None, dt.datetime | None]]
    ) -> None:
        """Set (state, follow_key, settled_at) of promises: (id, state, follow, settled)."""
        with self._write() as c:
            for pid, state, follow_key, settled_at in changes:
                c.execute(
                    "UPDATE promises SET state = ?, follow_key = ?, settled_at = ? WHERE id = ?",
                    (state, follow_key, _iso(settled_at), pid),
                )

    def mark_promises(self, kind: str, ids: Iterable[int], value: str) -> None:
        """Mark the reminder (``promise``) or overdue notice (``promise-overdue``) of
        promises as done without a mail: ``skipped`` or ``cancelled``."""
        column = {"promise": "reminder_done", "promise-overdue": "overdue_done"}[kind]
        with self._write() as c:
            for pid in ids:
                c.execute(f"UPDATE promises SET {column} = ? WHERE id = ?", (value, pid))

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
        """Queue a promise reminder / overdue notice and mark its promises, atomically.
        The outbox row names no items (``{}``); the promises point at it."""
        column = {"promise": "reminder", "promise-overdue": "overdue"}[kind]
        now_s = _iso(now)
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO outbox (kind, recipient, cc, account, item_keys, message_id,"
                " created_at, state, attempts, next_attempt_at)"
                " VALUES (?,?,?,?, '{}', ?,?, 'pending', 0, ?)",
                (kind, recipient, json.dumps(list(cc)), account, message_id, now_s, now_s),
            )
            outbox_id = int(cur.lastrowid or 0)
            for pid in promise_ids:
                c.execute(
                    f"UPDATE promises SET {column}_done = 'queued', {column}_outbox = ?"
                    " WHERE id = ?",
                    (outbox_id, pid),
                )
        return outbox_id

    def promises_of_outbox(self, outbox_id: int) -> list[PromiseRecord]:
        rows = self._conn.execute(
            "SELECT * FROM promises WHERE reminder_outbox = ? OR overdue_outbox = ?"
            " ORDER BY promised, id",
            (outbox_id, outbox_id),
        )
        return [_promise_record(r) for r in rows]

    def promise_rows(
        self, made_since: dt.datetime, made_until: dt.datetime
    ) -> list[tuple[str | None, str, str]]:
        """(account, client name or address, state) of the promises made in a period."""
        rows = self._conn.execute(
            "SELECT account, COALESCE(client, client_address), state FROM promises"
            " WHERE made_at >= ? AND made_at < ? ORDER BY made_at, id",
            (_iso(made_since), _iso(made_until)),
        )
        return [(a, c, s) for a, c, s in rows]

    # ------------------------------------------------------------------ health

    def set_health(
        self,
        mailbox: str,
        state: str,
        *,
        since: dt.datetime,
        last_error: str | None,
    ) -> None:
        with self._write() as c:
            c.execute(
                "INSERT INTO health (mailbox, state, since, last_error) VALUES (?,?,?,?)"
                " ON CONFLICT(mailbox) DO UPDATE SET state = excluded.state,"
                " since = excluded.since, last_error = excluded.last_error",
                (mailbox, state, _iso(since), last_error),
            )

    def health(self) -> list[HealthRecord]:
        return [
            HealthRecord(
                r["mailbox"], r["state"], _dt(r["since"]), r["last_error"], _dt(r["last_sync"])
            )
            for r in self._conn.execute("SELECT * FROM health ORDER BY mailbox")
        ]


def _parse_new(
    m: StorableMessage,
    mailbox: str,
    folder: str,
    role: str,
    *,
    answered_at: dt.datetime | None,
    dismissed_at: dt.datetime | None,
    prepared: tuple[StorableMessage, str, Message] | None = None,
) -> Message:
    """The parse of a copy as `load_messages` would build it from the row just written
    (so the cached value is reused as is on the next load).

    ``prepared``: `Store.prepare`'s entry for its UID, used when it is this very copy
    (parsed without flag times: those are the store's own, set here).
    """
    if prepared is not None and (prepared[0] is m or prepared[0] == m) and prepared[1] == role:
        parsed = prepared[2]
        if answered_at is None and dismissed_at is None:
            return parsed
        if all(t is None or t.utcoffset() is not None for t in (answered_at, dismissed_at)):
            return evolve(
                parsed,
                answered_at=None if answered_at is None else answered_at.astimezone(dt.UTC),
                dismissed_at=None if dismissed_at is None else dismissed_at.astimezone(dt.UTC),
            )
    return parse_message(
        m.header_bytes,
        mailbox=mailbox,
        folder=folder,
        role=role,  # type: ignore[arg-type]
        uid=m.uid,
        received=m.received,
        flags=m.flags,
        gm_thrid=m.gm_thrid,
        answered_at=answered_at,
        dismissed_at=dismissed_at,
    )


def _insert_links(
    c: sqlite3.Connection, stored: Sequence[tuple[Message, bytes, str]], *, mark_dirty: bool = True
) -> None:
    """Links, senders (and dirty marks) of newly stored copies (with their header bytes
    and their received time as stored), the copies being in the messages table already."""
    with _write_behind(threaded=False) as behind:
        _write_links(c, stored, behind)
    _link_variants(c, stored)
    if mark_dirty:
        _mark_dirty(c, stored)


def _write_links(
    c: sqlite3.Connection, stored: Sequence[tuple[Message, bytes, str]], behind: _WriteBehind
) -> None:
    """Have ``behind`` write the links and the senders of newly stored copies (each copy
    on its own: `_link_variants` adds what a copy's other variants bring)."""
    if not stored:
        return
    rows: list[tuple[str, str]] = []
    for m, _, _ in stored:
        key = m.key
        own = "id:" + key  # not stored: `keys_linked` finds it as the mail's key
        rows += [(v, key) for v in link_values((m,)) if v != own]
    # In primary-key order: these tables are B-trees keyed by the row, and a batch
    # inserted in key order is appended page by page instead of touching pages at random
    # (4x faster for a first sync's links). The first column is order enough, and sorts
    # faster than whole rows.
    rows.sort(key=_first)
    behind(_bulk_insert(c, "INSERT OR IGNORE INTO links (link, key)", rows))
    senders = sorted(
        (m.sender.address, received, m.key) for m, _, received in stored if m.sender.address
    )
    behind(_bulk_insert(c, "INSERT OR IGNORE INTO senders (sender, received, key)", senders))


def _link_variants(c: sqlite3.Connection, stored: Sequence[tuple[Message, bytes, str]]) -> None:
    """A copy of a mail already stored under other header bytes (a reused Message-ID, a
    gateway's rewrite) is linked with all its copies together: a thread link can pair
    the subject of one copy with a participant of another (`threads.link_values`). The
    copies must be in the messages table."""
    if not stored:
        return
    several = {
        r[0] for r in _chunked(
            c, "SELECT key FROM messages WHERE key IN ({}) GROUP BY key HAVING COUNT(*) > 1",
            (), {m.key for m, _, _ in stored})
    }
    rows: list[tuple[str, str]] = []
    for m, header_bytes, _ in stored:
        if m.key not in several:
            continue
        # Only the other header variants matter (copies of one mail in several mailboxes
        # are byte-identical); a mailer reusing one Message-ID for everything is capped so
        # that storing stays linear (its later variants pair less).
        variants = c.execute(
            "SELECT DISTINCT headers FROM messages WHERE key = ? AND headers != ?"
            f" LIMIT {MAX_HEADER_VARIANTS}", (m.key, header_bytes),
        ).fetchall()
        if not variants:
            continue
        copies = [m, *(
            parse_message(bytes(r[0]), mailbox=m.mailbox, folder=m.folder, role=m.role,
                          uid=m.uid, received=m.received)
            for r in variants
        )]  # fmt: skip
        key = m.key
        own = "id:" + key
        rows += [(v, key) for v in link_values(copies) if v != own]
    rows.sort(key=_first)
    c.executemany("INSERT OR IGNORE INTO links (link, key) VALUES (?, ?)", rows)


def _mark_dirty(c: sqlite3.Connection, stored: Sequence[tuple[Message, bytes, str]]) -> None:
    keys = sorted({m.key for m, _, _ in stored})
    c.executemany("INSERT OR IGNORE INTO dirty (key) VALUES (?)", ((k,) for k in keys))


class _ItemRows(NamedTuple):
    """What `sync_items` writes, made from the evaluation's items."""

    seen: set[str]
    inserts: list[tuple[object, ...]]  # new items
    updates: list[tuple[object, ...]]  # stored items, evaluated again
    members: list[tuple[str, tuple[str, ...]]]  # (item, its follow-ups) to rewrite
    new: list[str]
    acked: list[str]  # pending until now


_INSERT_ITEMS = (
    "INSERT INTO items (thread, message_id, client_address, client, subject, received,"
    " mailboxes, account, policy, clock, deadline, nudge_at, escalate_at, state, ack_key,"
    " ack_at, ack_kind, ack_by, follow_ups, key, first_seen, nudge_done, escalation_done)"
)


def _item_rows(
    items: Sequence[Item],
    existing: Mapping[str, sqlite3.Row],
    initial_keys: set[str],
    now: dt.datetime,
    now_s: str | None,
) -> _ItemRows:
    """`Store.sync_items`' rows (no database access: made while the threads are written)."""
    out = _ItemRows(set(), [], [], [], [], [])
    seen, inserts, updates, members, new, acked = out
    # In key order, the items' primary key: see `_write_links`.
    for item in sorted(items, key=lambda i: i.key):
        seen.add(item.key)
        d = item.deadlines
        ack = item.ack
        state = item.state
        values = (
            item.thread, item.message_id, item.client_address, item.client,
            item.subject, _iso(item.received), _names_json(item.mailboxes),
            item.account, d.policy, d.clock, _iso(d.deadline), _iso(d.nudge_at),
            _iso(d.escalate_at), state,
            ack.key if ack else None, _iso(ack.at) if ack else None,
            ack.kind if ack else None, ack.by if ack else None,
            len(item.follow_ups),
        )
        old = existing.get(item.key)
        if item.follow_ups or (old is not None and old["follow_ups"]):
            members.append((item.key, item.follow_ups))
        if old is None:
            nudge_done = escalation_done = None
            if item.key in initial_keys and state == "pending":
                if d.nudge_at <= now:
                    nudge_done = "suppressed"
                if d.escalate_at is not None and d.escalate_at <= now:
                    escalation_done = "suppressed"
            inserts.append((*values, item.key, now_s, nudge_done, escalation_done))
            new.append(item.key)
        else:
            if old["state"] == "pending" and state == "acknowledged":
                acked.append(item.key)
            updates.append((*values, item.key))
    return out


# Rows from which `_write_behind` writes on a thread of its own: below it, starting the
# thread costs more than the overlap gives.
WRITE_BEHIND_ROWS = 2000


class _WriteBehind:
    """The writes of a transaction, run in order on a thread of their own while the
    caller makes the next rows (``threaded``), or at once (not threaded).

    SQLite releases the GIL while it works: a first sync's big inserts (tens of thousands
    of rows) then run on the second core while Python prepares what comes next, instead
    of after it (bench target 1). Each write must be one SQLite step, as `_bulk_insert`
    makes them: an ``executemany`` gives the GIL back for every row, and its thread
    waits each time for the caller to let go of it (up to the 5 ms switch interval:
    hardly any progress at all). Until `_write_behind` ends, the caller must not use the
    connection.
    """

    def __init__(self, threaded: bool) -> None:
        self._queue: queue.SimpleQueue[Callable[[], object] | None] | None = None
        self._worker: threading.Thread | None = None
        self._failure: BaseException | None = None
        if threaded:
            self._queue = queue.SimpleQueue()
            self._worker = threading.Thread(
                target=self._work, name="ackwatch-store-write", daemon=True
            )
            self._worker.start()

    def __call__(self, write: Callable[[], object]) -> None:
        if self._queue is None:
            write()
        else:
            self._queue.put(write)

    def _work(self) -> None:
        assert self._queue is not None
        while (write := self._queue.get()) is not None:
            if self._failure is None:  # after a failure, the transaction is rolled back
                try:
                    write()
                except BaseException as exc:  # handed to the caller's thread
                    self._failure = exc

    def finish(self) -> None:
        """Wait for every write, to the end even when interrupted (KeyboardInterrupt):
        the transaction must not end, or roll back, while a write still runs in it.
        Then raise what a write raised, or the interruption."""
        if self._worker is None or self._queue is None:
            return
        self._queue.put(None)
        interrupted: BaseException | None = None
        while self._worker.is_alive():
            try:
                self._worker.join()
            except BaseException as exc:
                interrupted = exc
        if self._failure is not None:
            raise self._failure
        if interrupted is not None:
            raise interrupted


@contextlib.contextmanager
def _write_behind(*, threaded: bool) -> Iterator[_WriteBehind]:
    """A `_WriteBehind` for the block, every write of which is done when it ends."""
    behind = _WriteBehind(threaded)
    try:
        yield behind
    except BaseException:
        with contextlib.suppress(BaseException):  # the block's error is the one to raise
            behind.finish()
        raise
    behind.finish()


def _bulk_insert(
    c: sqlite3.Connection, insert: str, rows: Sequence[tuple[str | int | None, ...]]
) -> Callable[[], object]:
    """A write of ``rows`` (text, integers and NULLs) by ``insert`` ("INSERT OR IGNORE
    INTO links (link, key)", plus an optional ON CONFLICT clause after ``{select}``), in
    one SQLite step: the rows travel as one JSON array (`json_each`), which inserts them
    in order, with their types. Text with a NUL character, which SQLite's JSON functions
    would cut, takes ``executemany`` instead."""
    if not rows:
        return lambda: None
    width = len(rows[0])
    payload = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    if "\\u0000" in payload:
        values = ", ".join("?" * width)
        statement = insert.replace("{select}", f"VALUES ({values})") if "{select}" in insert \
            else f"{insert} VALUES ({values})"
        return functools.partial(c.executemany, statement, rows)
    select = "SELECT " + ", ".join(f"value->>{i}" for i in range(width))
    select += " FROM json_each(?) WHERE true"  # WHERE: an ON CONFLICT after it parses as one
    statement = insert.replace("{select}", select) if "{select}" in insert \
        else f"{insert} {select}"
    return functools.partial(c.execute, statement, (payload,))


def _set_meta(c: sqlite3.Connection, values: Mapping[str, str]) -> None:
    c.executemany(
        "INSERT INTO meta (name, value) VALUES (?, ?)"
        " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        values.items(),
    )


def _chunked(
    c: sqlite3.Connection, query: str, args: Sequence[object], values: Iterable[object]
) -> Iterator[sqlite3.Row]:
    """``query`` (with one ``IN ({})``) run over ``values`` in chunks SQLite accepts."""
    chunk: list[object] = []
    for v in values:
        chunk.append(v)
        if len(chunk) == 500:
            yield from c.execute(query.format(",".join("?" * len(chunk))), (*args, *chunk))
            chunk = []
    if chunk:
        yield from c.execute(query.format(",".join("?" * len(chunk))), (*args, *chunk))


def _refresh(base: Message, r: sqlite3.Row) -> Message | None:
    """A cached parse with the row's current flags and flag times; None when it is not
    the same copy (role or received time differ)."""
    received = _dt(r["received"])
    if base.role != r["role"] or base.received != received:
        return None
    flags = frozenset(json.loads(r["flags"]))
    answered_at, dismissed_at = _dt(r["answered_at"]), _dt(r["dismissed_at"])
    gm_thrid = r["gm_thrid"]
    if (base.flags, base.answered_at, base.dismissed_at, base.gm_thrid) == (
        flags, answered_at, dismissed_at, gm_thrid
    ):
        return base
    return evolve(
        base, flags=flags, answered_at=answered_at, dismissed_at=dismissed_at, gm_thrid=gm_thrid
    )


def _log_defects(m: Message) -> None:
    """Say once (when first stored) what could not be read of a mail. A mail without a
    readable sender in an inbox is client mail from whatever can be recovered of it
    (`classify`): that one is a warning."""
    untrackable = m.role == "inbox" and not m.sender.address
    (log.warning if untrackable else log.info)(
        "mail_defects",
        mailbox=m.mailbox,
        folder=m.folder,
        uid=m.uid,
        defects=list(m.defects),
        sender_readable=bool(m.sender.address),
    )


_ITEM_FIELDS = tuple(f.name for f in dataclasses.fields(ItemRecord))
_ITEM_COLUMNS = ", ".join(_ITEM_FIELDS)  # the items table's names, in ItemRecord's order
_ITEM_TIMES = tuple(i for i, f in enumerate(dataclasses.fields(ItemRecord))
                    if "datetime" in str(f.type))
_ITEM_MAILBOXES = _ITEM_FIELDS.index("mailboxes")


def _item_records(rows: Iterable[tuple[object, ...]]) -> list[ItemRecord]:
    """`ItemRecord`s of rows of `_ITEM_COLUMNS` (plain tuples). What ``__init__`` would
    set, set at once: a frozen dataclass's ``__init__`` sets its 22 fields one
    ``object.__setattr__`` at a time, most of the cost of ``ackwatch status`` over 10k
    open items (bench target 7b); tests/test_store.py compares the two."""
    new = object.__new__
    boxes: dict[object, tuple[str, ...]] = {}  # a few combinations, thousands of items
    out = []
    for row in rows:
        values = list(row)
        for i in _ITEM_TIMES:
            if values[i] is not None:
                values[i] = dt.datetime.fromisoformat(values[i])  # type: ignore[arg-type]
        names = values[_ITEM_MAILBOXES]
        found = boxes.get(names)
        if found is None:
            found = boxes[names] = tuple(json.loads(names))  # type: ignore[arg-type]
        values[_ITEM_MAILBOXES] = found
        record = new(ItemRecord)
        record.__dict__.update(zip(_ITEM_FIELDS, values, strict=True))
        out.append(record)
    return out


def _settle_members(c: sqlite3.Connection, outbox_id: int, state: str) -> None:
    """The items and promises an outbox row carries take its final state."""
    row = c.execute("SELECT item_keys FROM outbox WHERE id = ?", (outbox_id,)).fetchone()
    if row is not None:
        _set_item_states(c, outbox_id, json.loads(row["item_keys"]), state)
    for column in ("reminder", "overdue"):
        c.execute(
            f"UPDATE promises SET {column}_done = ? WHERE {column}_outbox = ?"
            f" AND {column}_done = 'queued'",
            (state, outbox_id),
        )


def _set_item_states(
    c: sqlite3.Connection, outbox_id: int, keys: Mapping[str, Sequence[str]], state: str
) -> None:
    """Set ``{column}_done`` of the items whose ``{column}_outbox`` is this row (an item
    queued again since, in another row, is left alone)."""
    for column, column_keys in keys.items():
        if column not in ("nudge", "escalation"):
            continue
        for key in column_keys:
            c.execute(
                f"UPDATE items SET {column}_done = ? WHERE key = ? AND {column}_outbox = ?",
                (state, key, outbox_id),
            )


def _outbox_record(r: sqlite3.Row) -> OutboxRecord:
    keys = json.loads(r["item_keys"])
    return OutboxRecord(
        id=r["id"],
        kind=r["kind"],
        recipient=r["recipient"],
        cc=tuple(json.loads(r["cc"])),
        account=r["account"],
        nudge_keys=tuple(keys.get("nudge", ())),
        escalation_keys=tuple(keys.get("escalation", ())),
        message_id=r["message_id"],
        created_at=_dt(r["created_at"]),
        state=r["state"],
        attempts=r["attempts"],
        next_attempt_at=_dt(r["next_attempt_at"]),
        last_error=r["last_error"],
        sent_at=_dt(r["sent_at"]),
    )


@dataclass(frozen=True)
class NewPromise:
    """A promise found in an acknowledgement, to record (issue 8)."""

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


def _promise_record(r: sqlite3.Row) -> PromiseRecord:
    return PromiseRecord(
        id=r["id"],
        source_key=r["source_key"],
        thread=r["thread"],
        item_key=r["item_key"],
        account=r["account"],
        client=r["client"],
        client_address=r["client_address"],
        subject=r["subject"],
        made_at=_dt(r["made_at"]),
        promised=_dt(r["promised"]),
        remind_at=_dt(r["remind_at"]),
        sentence=r["sentence"],
        state=r["state"],
        follow_key=r["follow_key"],
        settled_at=_dt(r["settled_at"]),
        reminder_done=r["reminder_done"],
        reminder_outbox=r["reminder_outbox"],
        overdue_done=r["overdue_done"],
        overdue_outbox=r["overdue_outbox"],
        first_seen=_dt(r["first_seen"]),
    )
