"""The items: what each client mail is owed (deadlines, acknowledgement) and what was done
about it (nudge and escalation states), with the rows the report and the status read."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar, overload

from ackwatch.core.item_rules import Item
from ackwatch.store.database import in_period, mark_pending_copies, set_meta
from ackwatch.store.forms import from_iso, iso, names_json
from ackwatch.store.links import delete_marks
from ackwatch.store.records import ItemRecord, Marks
from ackwatch.store.schema import ACK_US_SQL, EPOCH_US_SQL, has_us_columns

if TYPE_CHECKING:
    from ackwatch.store.tables import SqlDatabase

T = TypeVar("T")


class Items:
    """The items table (and each item's follow-ups, `item_members`)."""

    def __init__(self, db: SqlDatabase):
        self._db = db

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
        """Make the stored items match a fresh evaluation; returns (new keys, newly acked keys).

        Items first seen from a history import (``initial_keys``) whose nudge or escalation
        time has already passed are marked ``suppressed``: importing last week's mail must
        not produce a storm of nudges. Items that the evaluation no longer yields (the
        config changed: that sender is now ignored) become ``dropped``.

        ``scope``: the keys evaluated (whole threads), when the evaluation covered only
        those: items outside it are left as they are. ``threads`` (key -> thread), the end
        of the keys' dirty marks and ``meta`` (what the evaluation was made with) are
        recorded in the same transaction. ``marks`` (`Links.dirty_marks` or `Links.keep_marks`,
        read before the mail was loaded): the dirty marks to end, only those; without,
        the scope's (all when no scope).
        """
        now_s = iso(now)
        query = "SELECT key, state, nudge_done, escalation_done, follow_ups FROM items"
        rows: Iterable[sqlite3.Row] = (
            self._db.conn.execute(query) if scope is None
            else self._db.rows_in(query + " WHERE key IN ({})", (), scope)
        )
        existing = {r["key"]: r for r in rows}
        members_before = self._members_of(scope)
        thread_rows = sorted(threads.items()) if threads is not None else []  # key order
        with self._db.write() as c:
            if scope is None:
                c.execute("DELETE FROM threads")
            if marks is not None:
                delete_marks(c, marks)
            elif scope is None:
                c.execute("DELETE FROM dirty")
            else:
                c.executemany("DELETE FROM dirty WHERE key = ?", ((k,) for k in scope))
            c.executemany(
                "INSERT INTO threads (key, thread) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET thread = excluded.thread", thread_rows,
            )
            seen, inserts, updates, members, new, acked = _item_rows(
                items, existing, initial_keys, now, now_s
            )
            c.executemany("DELETE FROM item_members WHERE item_key = ?",
                          [(key,) for key, _ in members])
            c.executemany(
                "INSERT INTO item_members (item_key, member_key) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING",
                [(key, k) for key, follow_ups in members for k in follow_ups],
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
            c.executemany("UPDATE items SET state = 'dropped' WHERE key = ?", [
                (key,) for key, old in existing.items()
                if key not in seen and old["state"] == "pending"
            ])
            if scope is None:
                mark_pending_copies(c)
            else:  # the scope's items and every follow-up they had or have
                mark_pending_copies(c, {*scope, *members_before, *self._members_of(scope)})
            set_meta(c, meta or {})
        return new, acked

    def _members_of(self, items: Collection[str] | None) -> set[str]:
        """The follow-up keys of ``items`` (none asked when None)."""
        if items is None:
            return set()
        return {r[0] for r in self._db.rows_in(
            "SELECT member_key FROM item_members WHERE item_key IN ({})", (), sorted(items))}

    def pending_items(self, keys: Iterable[str] | None = None) -> list[ItemRecord]:
        """``items(state="pending")``, read at each call; ``keys``: only those of these
        keys (the daemon reads the items it acts on, never all of them a step)."""
        if keys is None:
            return self.items(state="pending")
        # By key alone, the state checked here: with `state = 'pending'` in the WHERE and
        # three keys or more, SQLite without statistics walks every pending item through
        # `items_state_received` instead of looking the keys up (4.4 ms a step with
        # 10,000 waiting, against 0.05: bench/README.md, Session 14, the CPU target).
        query = f"SELECT {ITEM_COLUMNS} FROM items WHERE key IN ({{}})"
        found = item_records(self._db.rows_in(query, (), sorted(set(keys))))
        return sorted((r for r in found if r.state == "pending"),
                      key=lambda r: (r.received, r.key))

    def items_due(
        self,
        until: dt.datetime,
        *,
        skip_nudges_of: Collection[str] = (),
        skip_escalations_of: Collection[str] = (),
    ) -> list[ItemRecord]:
        """The pending items with a nudge or an escalation not done yet and due at or
        before ``until``, in received order (two index ranges, whatever else waits).

        The nudges of the accounts in ``skip_nudges_of`` and the escalations of those in
        ``skip_escalations_of`` are not looked for (a filter on the range's rows): an
        item due only through those is left out, one due through the other action too
        is read whole. A NULL account is never skipped."""
        nudges, nudge_args = _not_of(skip_nudges_of)
        escalations, escalation_args = _not_of(skip_escalations_of)
        query = (
            f"SELECT {ITEM_COLUMNS} FROM items WHERE state = 'pending'"
            f" AND nudge_done IS NULL AND nudge_at <= ?{nudges}"
            f" UNION SELECT {ITEM_COLUMNS} FROM items WHERE state = 'pending'"
            f" AND escalation_done IS NULL AND escalate_at <= ?{escalations}"
        )
        raw = self._db.conn.cursor()
        raw.row_factory = None
        args = (iso(until), *nudge_args, iso(until), *escalation_args)
        found = item_records(raw.execute(query, args))
        return sorted(found, key=lambda r: (r.received, r.key))

    def next_action_after(self, after: dt.datetime | None) -> dt.datetime | None:
        """The earliest nudge or escalation not done yet of a pending item due after
        ``after`` (None: the earliest of all, due or not); None: none."""
        args: tuple[str, ...] = ()
        if after is None:
            nudges, escalations = "", ""
        else:
            nudges, escalations, args = " AND nudge_at > ?", " AND escalate_at > ?", (
                iso(after), iso(after))
        row = self._db.conn.execute(
            "SELECT (SELECT MIN(nudge_at) FROM items WHERE state = 'pending'"
            f" AND nudge_done IS NULL{nudges}),"
            " (SELECT MIN(escalate_at) FROM items WHERE state = 'pending'"
            f" AND escalation_done IS NULL{escalations})",
            args,
        ).fetchone()
        times = [from_iso(t) for t in row if t]
        return min(times) if times else None

    def items(
        self,
        *,
        state: str | None = None,
        received_since: dt.datetime | None = None,
        received_until: dt.datetime | None = None,
    ) -> list[ItemRecord]:
        query = f"SELECT {ITEM_COLUMNS} FROM items WHERE 1=1"
        args: list[object] = []
        if state is not None:
            query += " AND state = ?"
            args.append(state)
        period, period_args = in_period("received", received_since, received_until)
        query += period + " ORDER BY received, key"
        args += period_args
        raw = self._db.conn.cursor()
        raw.row_factory = None
        return item_records(raw.execute(query, args))

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
        make: Callable[..., T] = lambda *row: row,  # type: ignore[assignment]  # T: tuple
        *,
        stored: bool = False,
    ) -> list[T] | Iterator[tuple]:
        """The columns the report needs, built straight into ``make`` (fast on a year).

        ``make(key, client, client_address, account, subject, received, deadline, ack_at or
        None when not acknowledged, policy, clock, dropped)``, in received order (the
        index's order: ties are left as SQLite finds them).

        ``stored``: instead, an iterator over the raw rows, streamed (read it to its end,
        or close it, before the store's next statement; ``make`` is not used) ``(group, received, deadline, ack_at or None,
        subject)``: ``group`` the JSON array ``[account, client, client_address, policy,
        clock]`` (one string a row instead of five, decoded once per distinct value), the
        times as integer microseconds since the epoch (schema 5's generated columns) and
        dropped items left out: what `figures.compute_stored` takes, without a Python
        object per row or an ISO string parsed. A state of an older schema (opened
        read-only, so not migrated) gets the same rows, its times converted by SQLite as
        it reads them (slower).
        """
        if stored:
            if has_us_columns(self._db):
                received, deadline, ack = "received_us", "deadline_us", "ack_us"
            else:
                received, deadline, ack = EPOCH_US_SQL.format("received"), EPOCH_US_SQL.format("deadline"), ACK_US_SQL
            return self._db.stream_through(  # plain tuples: a `sqlite3.Row` costs 15 %
                "SELECT " + self._db.JSON_ARRAY.format("account, client, client_address, policy, clock") + ","
                f" {received}, {deadline},"
                f" CASE WHEN state = 'acknowledged' THEN {ack} END, subject"
                " FROM items WHERE received >= ? AND received < ? AND state != 'dropped'"
                " ORDER BY received",
                (iso(received_since), iso(received_until)),
            )
        rows = self._db.conn.execute(
            "SELECT key, client, client_address, account, subject, received, deadline,"
            " CASE WHEN state = 'acknowledged' THEN ack_at END, policy, clock,"
            " state = 'dropped' FROM items WHERE received >= ? AND received < ?"
            " ORDER BY received",
            (iso(received_since), iso(received_until)),
        )
        parse = dt.datetime.fromisoformat
        return [
            make(k, c, ca, a, subj, parse(r), parse(d), parse(ack) if ack else None, p, clk,
                 dropped == 1)
            for k, c, ca, a, subj, r, d, ack, p, clk, dropped in rows
        ]


    def oldest_pending_received(self) -> dt.datetime | None:
        row = self._db.conn.execute(
            "SELECT MIN(received) FROM items WHERE state = 'pending'"
        ).fetchone()
        return from_iso(row[0]) if row and row[0] else None


    def pending_accounts(self) -> set[str]:
        rows = self._db.conn.execute(
            "SELECT DISTINCT account FROM items WHERE state = 'pending' AND account != ''"
        )
        return {r[0] for r in rows}

    def mark_items_done(self, kind: str, keys: Iterable[str], value: str) -> None:
        column = {"nudge": "nudge_done", "escalation": "escalation_done"}[kind]
        with self._db.write() as c:
            for key in keys:
                c.execute(f"UPDATE items SET {column} = ? WHERE key = ?", (value, key))



def _not_of(accounts: Collection[str]) -> tuple[str, tuple[str, ...]]:
    """The condition leaving out the rows of ``accounts`` (none: no condition), with its
    arguments; the accounts are few (configured people), one placeholder each."""
    names = tuple(sorted(set(accounts)))
    if not names:
        return "", ()
    marks = ", ".join("?" * len(names))
    return f" AND (account IS NULL OR account NOT IN ({marks}))", names


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
    """`Items.sync_items`' rows (no database access)."""
    out = _ItemRows(set(), [], [], [], [], [])
    seen, inserts, updates, members, new, acked = out
    # In key order, the items' primary key: see `links.write_links`.
    for item in sorted(items, key=lambda i: i.key):
        seen.add(item.key)
        d = item.deadlines
        ack = item.ack
        state = item.state
        values = (
            item.thread, item.message_id, item.client_address, item.client,
            item.subject, iso(item.received), names_json(item.mailboxes),
            item.account, d.policy, d.clock, iso(d.deadline), iso(d.nudge_at),
            iso(d.escalate_at), state,
            ack.key if ack else None, iso(ack.at) if ack else None,
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


_ITEM_FIELDS = tuple(f.name for f in dataclasses.fields(ItemRecord))
ITEM_COLUMNS = ", ".join(_ITEM_FIELDS)  # the items table's names, in ItemRecord's order
_ITEM_TIMES = tuple(i for i, f in enumerate(dataclasses.fields(ItemRecord))
                    if "datetime" in str(f.type))
_ITEM_MAILBOXES = _ITEM_FIELDS.index("mailboxes")


def item_records(rows: Iterable[tuple[object, ...]]) -> list[ItemRecord]:
    """`ItemRecord`s of rows of `ITEM_COLUMNS` (plain tuples). What ``__init__`` would
    set, set at once: a frozen dataclass's ``__init__`` sets its 22 fields one
    ``object.__setattr__`` at a time, most of the cost of ``ackwatch status`` over 10k
    open items; tests/store/test_store.py compares the two."""
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
