"""The promises found in acknowledgements ("I'll send it by Friday"), the reads of reply
texts that looked for them, and how each promise is tracked. Of a body, only the
promise's sentence is ever stored."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ackwatch.store.database import in_period
from ackwatch.store.forms import from_iso, iso
from ackwatch.store.records import NewPromise, PromiseRecord

if TYPE_CHECKING:
    from ackwatch.store.tables import SqlDatabase


class Promises:
    """The promises and promise_reads tables."""

    def __init__(self, db: SqlDatabase):
        self._db = db

    def promise_read_candidates(
        self, since: dt.datetime, items: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Items acknowledged by a reply whose acknowledging message was first stored at or
        after ``since`` by a live sync (not a history import), not read yet or due for
        another try. Dicts with the item's key, thread, client, client_address, subject,
        account, ack_key, ack_by and the read's attempts / next_attempt_at (or None).

        ``items``: only those of these item keys, and those with a read to try again:
        what can have changed since a full look, each found from its key's index."""
        select = (
            "SELECT i.key, i.thread, i.client, i.client_address, i.subject, i.account,"
            " i.ack_key, i.ack_by, r.attempts, r.next_attempt_at"
        )
        live = (
            "EXISTS (SELECT 1 FROM messages m WHERE m.key = i.ack_key AND m.initial = 0"
            " AND m.first_seen >= ?)"
        )
        conn = self._db.conn
        if items is None:
            rows = conn.execute(
                select + " FROM items i LEFT JOIN promise_reads r ON r.key = i.ack_key"
                " WHERE i.state = 'acknowledged' AND i.ack_kind = 'reply'"
                " AND i.ack_key IS NOT NULL AND (r.key IS NULL OR r.state = 'retry')"
                " AND " + live + " ORDER BY i.ack_at, i.key",
                (iso(since),),
            ).fetchall()
        else:
            # The items by key alone, the other conditions tested here: with them in the
            # query the planner starts from every acknowledged item (no statistics).
            retry = [r[0] for r in conn.execute(
                "SELECT key FROM promise_reads WHERE state = 'retry'"
            )]
            keys = set(items)
            keys.update(r[0] for r in self._db.rows_in(
                "SELECT key FROM items WHERE ack_key IN ({})", (), retry
            ))
            found = self._db.rows_in(
                select + ", i.ack_at, i.state AS item_state, i.ack_kind, r.state AS read_state,"
                " " + live + " AS live"
                " FROM items i LEFT JOIN promise_reads r ON r.key = i.ack_key"
                " WHERE i.key IN ({})",
                (iso(since),),
                keys,
            )
            rows = sorted(
                (
                    r for r in found
                    if r["item_state"] == "acknowledged" and r["ack_kind"] == "reply"
                    and r["ack_key"] is not None and r["read_state"] in (None, "retry")
                    and r["live"]
                ),
                key=lambda r: (r["ack_at"] or "", r["key"]),
            )
        fields = ("key", "thread", "client", "client_address", "subject", "account",
                  "ack_key", "ack_by", "attempts", "next_attempt_at")  # fmt: skip
        out = []
        for r in rows:
            d = {f: r[f] for f in fields}
            d["next_attempt_at"] = from_iso(d["next_attempt_at"])
            out.append(d)
        return out

    def promise_reads(self, keys: Iterable[str]) -> dict[str, tuple[str, int, dt.datetime | None]]:
        """Message key -> (state, attempts, next attempt) of the reads recorded for ``keys``.
        States: ``promise`` (it made one), ``none``, ``retry``, ``failed``."""
        out: dict[str, tuple[str, int, dt.datetime | None]] = {}
        for key in set(keys):
            r = self._db.conn.execute(
                "SELECT state, attempts, next_attempt_at FROM promise_reads WHERE key = ?",
                (key,),
            ).fetchone()
            if r is not None:
                out[key] = (r["state"], r["attempts"], from_iso(r["next_attempt_at"]))
        return out


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
        """Record one read of a message's first text part and, when it made a promise,
        the promise, in one transaction. ``text_read``: whether a text was read (a
        ``none`` with text read is an acknowledgement that named no date). Returns the
        new promise's id (None: no promise, or that message's promise was recorded
        before)."""
        now_s = iso(now)
        read = None if text_read is None else int(text_read)
        with self._db.write() as c:
            c.execute(
                "INSERT INTO promise_reads (key, state, attempts, next_attempt_at, last_error,"
                " read_at, text_read) VALUES (?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET"
                " state = excluded.state, attempts = excluded.attempts,"
                " next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error,"
                " read_at = excluded.read_at, text_read = excluded.text_read",
                (key, state, attempts, iso(next_attempt_at), error, now_s, read),
            )
            if promise is None:
                return None
            p = promise
            cur = c.execute(
                "INSERT INTO promises (source_key, thread, item_key, account, client,"
                " client_address, subject, made_at, promised, remind_at, sentence, state,"
                " first_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?, 'open', ?)"
                " ON CONFLICT(source_key) DO NOTHING RETURNING id",
                (
                    p.source_key, p.thread, p.item_key, p.account, p.client, p.client_address,
                    p.subject, iso(p.made_at), iso(p.promised), iso(p.remind_at),
                    p.sentence, now_s,
                ),
            )
            made = cur.fetchall()
            return int(made[0][0]) if made else None

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
        period, period_args = in_period("made_at", made_since, made_until)
        query += period + " ORDER BY promised, id"
        args += period_args
        return [_promise_record(r) for r in self._db.conn.execute(query, args)]

    def promises_to_track(self, made_since: dt.datetime) -> list[PromiseRecord]:
        """Open promises, and the others made since ``made_since`` (a follow-up may still
        be seen late or read)."""
        rows = self._db.conn.execute(
            "SELECT * FROM promises WHERE state = 'open' OR made_at >= ? ORDER BY promised, id",
            (iso(made_since),),
        )
        return [_promise_record(r) for r in rows]

    def promises_touched(
        self,
        made_since: dt.datetime,
        *,
        sources: Iterable[str] = (),
        follows: Iterable[str] = (),
        ids: Iterable[int] = (),
        breaking_by: dt.datetime | None = None,
    ) -> list[PromiseRecord]:
        """The promises to track (as `promises_to_track`) among: those made by a message
        of ``sources``, those followed up by a message of ``follows`` or by one whose
        read is to be tried again, those of ``ids``, and the open ones whose promised
        instant is at or before ``breaking_by``. Each found from an index: what a
        keeper's update re-assesses when only these can have changed."""
        conn = self._db.conn
        since = iso(made_since)
        retry = [r[0] for r in conn.execute(
            "SELECT key FROM promise_reads WHERE state = 'retry'"
        )]
        rows: dict[int, sqlite3.Row] = {}
        for column, values in (
            ("source_key", set(sources)),
            ("follow_key", {*follows, *retry}),
            ("id", set(ids)),
        ):
            # By the one column (its index); whether it is tracked is tested here.
            for r in self._db.rows_in(f"SELECT * FROM promises WHERE {column} IN ({{}})",
                                      (), values):  # fmt: skip
                if r["state"] == "open" or r["made_at"] >= since:
                    rows[r["id"]] = r
        if breaking_by is not None:
            for r in conn.execute(
                "SELECT * FROM promises WHERE state = 'open' AND promised <= ?",
                (iso(breaking_by),),
            ):
                rows[r["id"]] = r
        return [_promise_record(r) for r in sorted(rows.values(), key=_order)]

    def promise_notices(self, by: dt.datetime, made_since: dt.datetime) -> list[PromiseRecord]:
        """The tracked promises with a notice to send or skip by ``by``: open ones whose
        reminder (not done) is at or before ``by``; broken ones with a reminder not done
        (to skip) or an overdue notice not done and no follow-up."""
        rows = self._db.conn.execute(
            "SELECT * FROM promises WHERE state = 'open' AND reminder_done IS NULL"
            " AND remind_at <= ?"
            " UNION SELECT * FROM promises WHERE state = 'broken' AND made_at >= ?"
            " AND ((reminder_done IS NULL AND remind_at IS NOT NULL)"
            " OR (overdue_done IS NULL AND follow_key IS NULL))",
            (iso(by), iso(made_since)),
        ).fetchall()
        return [_promise_record(r) for r in sorted(rows, key=_order)]

    def next_promise_times(
        self, after: dt.datetime
    ) -> tuple[dt.datetime | None, dt.datetime | None]:
        """(the first reminder not done of an open promise after ``after``, the first
        promised instant of an open promise): when the keeper must look again."""
        conn = self._db.conn
        remind = conn.execute(
            "SELECT MIN(remind_at) FROM promises WHERE state = 'open'"
            " AND reminder_done IS NULL AND remind_at > ?",
            (iso(after),),
        ).fetchone()[0]
        breaks = conn.execute(
            "SELECT MIN(promised) FROM promises WHERE state = 'open'"
        ).fetchone()[0]
        return from_iso(remind), from_iso(breaks)

    def update_promises(
        self, changes: Iterable[tuple[int, str, str | None, dt.datetime | None]]
    ) -> None:
        """Set (state, follow_key, settled_at) of promises: (id, state, follow, settled)."""
        with self._db.write() as c:
            for pid, state, follow_key, settled_at in changes:
                c.execute(
                    "UPDATE promises SET state = ?, follow_key = ?, settled_at = ? WHERE id = ?",
                    (state, follow_key, iso(settled_at), pid),
                )

    def mark_promises(self, kind: str, ids: Iterable[int], value: str) -> None:
        """Mark the reminder (``promise``) or overdue notice (``promise-overdue``) of
        promises as done without a mail: ``skipped`` or ``cancelled``."""
        column = {"promise": "reminder_done", "promise-overdue": "overdue_done"}[kind]
        with self._db.write() as c:
            for pid in ids:
                c.execute(f"UPDATE promises SET {column} = ? WHERE id = ?", (value, pid))


    def promises_of_outbox(self, outbox_id: int) -> list[PromiseRecord]:
        rows = self._db.conn.execute(
            "SELECT * FROM promises WHERE reminder_outbox = ? OR overdue_outbox = ?"
            " ORDER BY promised, id",
            (outbox_id, outbox_id),
        )
        return [_promise_record(r) for r in rows]

    def promise_rows(
        self, made_since: dt.datetime, made_until: dt.datetime
    ) -> list[tuple[str | None, str, str]]:
        """(account, client name or address, state) of the promises made in a period."""
        rows = self._db.conn.execute(
            "SELECT account, COALESCE(client, client_address), state FROM promises"
            " WHERE made_at >= ? AND made_at < ? ORDER BY made_at, id",
            (iso(made_since), iso(made_until)),
        )
        return [(a, c, s) for a, c, s in rows]



def _order(r: sqlite3.Row) -> tuple[str, int]:
    """The order of `promises_to_track`: by promised instant, then id."""
    return (r["promised"], r["id"])


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
        made_at=from_iso(r["made_at"]),
        promised=from_iso(r["promised"]),
        remind_at=from_iso(r["remind_at"]),
        sentence=r["sentence"],
        state=r["state"],
        follow_key=r["follow_key"],
        settled_at=from_iso(r["settled_at"]),
        reminder_done=r["reminder_done"],
        reminder_outbox=r["reminder_outbox"],
        overdue_done=r["overdue_done"],
        overdue_outbox=r["overdue_outbox"],
        first_seen=from_iso(r["first_seen"]),
    )
