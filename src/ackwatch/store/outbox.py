"""The outbox: every mail recorded before it is sent.

A mail is recorded (and the items or promises it is about marked queued) in one
transaction *before* the SMTP conversation, and marked sent after the server accepts it:
a crash in between sends that one mail again on restart (at most one duplicate), never
loses it. An outbox row and the items and promises it carries always end in the same state.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ackwatch.store.forms import from_iso, iso
from ackwatch.store.records import OutboxRecord

if TYPE_CHECKING:
    from ackwatch.store.leases import QueueFence
    from ackwatch.store.tables import SqlDatabase


class Outbox:
    """The outbox table, and the queued marks of the items and promises it carries."""

    def __init__(self, db: SqlDatabase, fence: QueueFence):
        self._db = db
        self._fence = fence  # every mail queued here is fenced by the leader's term

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
        now_s = iso(now)
        keys = {"nudge": list(nudge_keys), "escalation": list(escalation_keys)}
        with self._db.write() as c:
            self._fence.check(c)
            cur = c.execute(
                "INSERT INTO outbox (kind, recipient, cc, account, item_keys, message_id,"
                " created_at, state, attempts, next_attempt_at)"
                " VALUES (?,?,?,?,?,?,?, 'pending', 0, ?) RETURNING id",
                (
                    kind, recipient, json.dumps(list(cc)), account, json.dumps(keys),
                    message_id, now_s, now_s,
                ),
            )
            outbox_id = int(cur.fetchall()[0][0])
            record_reach(c, outbox_id, [recipient, *cc], now_s)
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
        now_s = iso(now)
        with self._db.write() as c:
            self._fence.check(c)
            if c.execute("SELECT 1 FROM meta WHERE name = ?", (once_key,)).fetchone():
                return None
            c.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (once_key, now_s))
            cur = c.execute(
                "INSERT INTO outbox (kind, recipient, cc, account, item_keys, message_id,"
                " created_at, state, attempts, next_attempt_at)"
                " VALUES (?, ?, '[]', NULL, '{}', ?, ?, 'pending', 0, ?) RETURNING id",
                (kind, recipient, message_id, now_s, now_s),
            )
            outbox_id = int(cur.fetchall()[0][0])
            record_reach(c, outbox_id, [recipient], now_s)
            return outbox_id

    def sent_counts(self) -> dict[str, int]:
        """Mails accepted by the SMTP server, by kind (for metrics): kept in `sent_counts`
        by every change of an outbox row's state (`_set_state`)."""
        rows = self._db.conn.execute("SELECT kind, sent FROM sent_counts WHERE sent > 0")
        return {kind: int(n) for kind, n in rows}


    def outbox_due(self, now: dt.datetime) -> list[OutboxRecord]:
        rows = self._db.conn.execute(
            "SELECT * FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id",
            (iso(now),),
        ).fetchall()
        return [_outbox_record(r) for r in rows]

    def outbox_pending(self) -> list[OutboxRecord]:
        rows = self._db.conn.execute(
            "SELECT * FROM outbox WHERE state = 'pending' ORDER BY id"
        ).fetchall()
        return [_outbox_record(r) for r in rows]


    def reached_since(
        self, since: dt.datetime, addresses: Iterable[str]
    ) -> dict[str, list[dt.datetime]]:
        """When mail queued or sent since an instant reached each of ``addresses``, To or
        Cc (lower-cased), oldest first: the hourly cap counts every mail a person gets.

        Read from `outbox_reach` by address: a plan asks about the few people it may
        write to, not about everyone the outbox wrote to within the hour."""
        wanted = {a.lower() for a in addresses}
        rows = self._db.rows_in(
            "SELECT r.address, r.created_at FROM outbox_reach r"
            " JOIN outbox o ON o.id = r.outbox"
            " WHERE r.created_at >= ? AND o.state IN ('pending', 'sent')"
            " AND r.address IN ({})",
            (iso(since),), sorted(wanted),
        )
        reached: dict[str, list[dt.datetime]] = {}
        for address, created_at in rows:
            reached.setdefault(address, []).append(from_iso(created_at))
        for times in reached.values():
            times.sort()
        return reached

    def reach_counts(
        self, after: dt.datetime, addresses: Iterable[str]
    ) -> dict[str, int]:
        """How many mails queued or sent after ``after`` (strictly) reached each of
        ``addresses`` (lower-cased keys; none: absent): the hourly cap's count without
        its times, for a person already known to be over it (`reached_since`)."""
        wanted = {a.lower() for a in addresses}
        rows = self._db.rows_in(
            "SELECT r.address, COUNT(*) FROM outbox_reach r"
            " JOIN outbox o ON o.id = r.outbox"
            " WHERE r.created_at > ? AND o.state IN ('pending', 'sent')"
            " AND r.address IN ({}) GROUP BY r.address",
            (iso(after),), sorted(wanted),
        )
        return {address: int(count) for address, count in rows}

    def outbox_update_items(
        self, outbox_id: int, nudge_keys: Sequence[str], escalation_keys: Sequence[str]
    ) -> None:
        """Shrink a queued mail to the items still pending (the others were answered);
        the items left out are marked cancelled in the same transaction."""
        keys = {"nudge": list(nudge_keys), "escalation": list(escalation_keys)}
        with self._db.write() as c:
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
        with self._db.write() as c:
            _set_state(c, outbox_id, "sent")
            c.execute(
                "UPDATE outbox SET sent_at = ?, attempts = attempts + 1 WHERE id = ?",
                (iso(now), outbox_id),
            )
            _settle_members(c, outbox_id, "sent")

    def outbox_retry(self, outbox_id: int, *, error: str, next_attempt_at: dt.datetime) -> None:
        with self._db.write() as c:
            c.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
                " WHERE id = ?",
                (error, iso(next_attempt_at), outbox_id),
            )

    def outbox_close(self, outbox_id: int, state: str, error: str | None = None) -> None:
        """End an outbox entry as ``cancelled`` (nothing left to say) or ``failed`` (5xx).

        The items and promises it carries take the same state in the same transaction:
        an item's nudge state and its outbox row always agree (`status` never shows a
        nudge as queued whose mail failed)."""
        with self._db.write() as c:
            _set_state(c, outbox_id, state)
            c.execute(
                "UPDATE outbox SET last_error = COALESCE(?, last_error) WHERE id = ?",
                (error, outbox_id),
            )
            _settle_members(c, outbox_id, state)


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
        now_s = iso(now)
        with self._db.write() as c:
            self._fence.check(c)
            cur = c.execute(
                "INSERT INTO outbox (kind, recipient, cc, account, item_keys, message_id,"
                " created_at, state, attempts, next_attempt_at)"
                " VALUES (?,?,?,?, '{}', ?,?, 'pending', 0, ?) RETURNING id",
                (kind, recipient, json.dumps(list(cc)), account, message_id, now_s, now_s),
            )
            outbox_id = int(cur.fetchall()[0][0])
            record_reach(c, outbox_id, [recipient, *cc], now_s)
            for pid in promise_ids:
                c.execute(
                    f"UPDATE promises SET {column}_done = 'queued', {column}_outbox = ?"
                    " WHERE id = ?",
                    (outbox_id, pid),
                )
        return outbox_id



def record_reach(
    c: sqlite3.Connection, outbox_id: int, addresses: Iterable[str], created_at: str
) -> None:
    """Record whom a mail just put in the outbox reaches (`Outbox.reached_since`): each
    address once, lower-cased, within the caller's transaction."""
    for address in dict.fromkeys(a.lower() for a in addresses):
        c.execute(
            "INSERT INTO outbox_reach (address, created_at, outbox) VALUES (?, ?, ?)",
            (address, created_at, outbox_id),
        )


def _set_state(c: sqlite3.Connection, outbox_id: int, state: str) -> None:
    """Give an outbox row its new state, and count it in (or out of) `sent_counts` when
    it becomes (or stops being) sent, within the caller's transaction."""
    row = c.execute("SELECT kind, state FROM outbox WHERE id = ?", (outbox_id,)).fetchone()
    if row is None:
        return
    kind, before = row[0], row[1]
    c.execute("UPDATE outbox SET state = ? WHERE id = ?", (state, outbox_id))
    change = (state == "sent") - (before == "sent")
    if change:
        c.execute(
            "INSERT INTO sent_counts (kind, sent) VALUES (?, ?)"
            " ON CONFLICT (kind) DO UPDATE SET sent = sent_counts.sent + excluded.sent",
            (kind, change),
        )


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
    c.execute(
        "UPDATE date_asks SET state = ? WHERE outbox = ? AND state = 'queued'",
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
        created_at=from_iso(r["created_at"]),
        state=r["state"],
        attempts=r["attempts"],
        next_attempt_at=from_iso(r["next_attempt_at"]),
        last_error=r["last_error"],
        sent_at=from_iso(r["sent_at"]),
    )

