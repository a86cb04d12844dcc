"""Whether acknowledgements said by when: the report's figures, and the "say by when"
notes (`date_asks`: at most one per item, queued with its outbox row)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from ackwatch.store.database import Database
from ackwatch.store.forms import iso
from ackwatch.store.items import ITEM_COLUMNS, item_records
from ackwatch.store.records import ItemRecord

# What the keeper found in an item's acknowledgement: 'date', 'no_date', NULL (not read).
_FOUND_SQL = (
    "CASE WHEN r.text_read = 1 AND r.state = 'promise' THEN 'date'"
    " WHEN r.text_read = 1 AND r.state = 'none' THEN 'no_date' END"
)


class Asks:
    """The date figures of acknowledged items and the date_asks table."""

    def __init__(self, db: Database):
        self._db = db

    def ack_date_rows(
        self, received_since: dt.datetime, received_until: dt.datetime
    ) -> list[tuple[str, str | None, str | None, str, str | None]]:
        """(item key, account, client, client address, found) of the acknowledged items
        received in ``[since, until)``; found is ``date``, ``no_date`` or None (the keeper
        did not read that acknowledgement's text)."""
        rows = self._db.conn.execute(
            "SELECT i.key, i.account, i.client, i.client_address, " + _FOUND_SQL +
            " FROM items i LEFT JOIN promise_reads r ON r.key = i.ack_key"
            " WHERE i.state = 'acknowledged' AND i.received >= ? AND i.received < ?"
            " ORDER BY i.received, i.key",
            (iso(received_since), iso(received_until)),
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def date_ask_candidates(self, acked_since: dt.datetime) -> list[ItemRecord]:
        """Items acknowledged by a reply at or after ``acked_since`` whose text was read
        and named no date, with no note decided yet, by acknowledgement time."""
        columns = ", ".join("i." + c for c in ITEM_COLUMNS.split(", "))
        raw = self._db.conn.cursor()
        raw.row_factory = None
        rows = raw.execute(
            f"SELECT {columns} FROM items i JOIN promise_reads r ON r.key = i.ack_key"
            " WHERE i.state = 'acknowledged' AND i.ack_kind = 'reply' AND i.ack_at >= ?"
            " AND r.text_read = 1 AND r.state = 'none'"
            " AND NOT EXISTS (SELECT 1 FROM date_asks a WHERE a.item_key = i.key)"
            " ORDER BY i.ack_at, i.key",
            (iso(acked_since),),
        )
        return item_records(rows)

    def enqueue_date_asks(
        self,
        *,
        recipient: str,
        account: str | None,
        item_keys: Sequence[str],
        message_id: str,
        now: dt.datetime,
    ) -> int:
        """Queue one "say by when" note and mark its items queued, atomically (an item
        with a note decided before is left out: at most one per item)."""
        now_s = iso(now)
        with self._db.write() as c:
            cur = c.execute(
                "INSERT INTO outbox (kind, recipient, cc, account, item_keys, message_id,"
                " created_at, state, attempts, next_attempt_at)"
                " VALUES ('ask-date', ?, '[]', ?, '{}', ?, ?, 'pending', 0, ?)",
                (recipient, account, message_id, now_s, now_s),
            )
            outbox_id = int(cur.lastrowid or 0)
            for key in item_keys:
                c.execute(
                    "INSERT INTO date_asks (item_key, state, outbox, decided_at)"
                    " VALUES (?, 'queued', ?, ?) ON CONFLICT(item_key) DO NOTHING",
                    (key, outbox_id, now_s),
                )
        return outbox_id

    def mark_date_asks(self, item_keys: Iterable[str], state: str, now: dt.datetime) -> None:
        """Decide items' notes without a mail (``skipped``: a date followed in time)."""
        with self._db.write() as c:
            for key in item_keys:
                c.execute(
                    "INSERT INTO date_asks (item_key, state, outbox, decided_at)"
                    " VALUES (?, ?, NULL, ?) ON CONFLICT(item_key) DO NOTHING",
                    (key, state, iso(now)),
                )

    def date_asks_of_outbox(self, outbox_id: int) -> list[ItemRecord]:
        """The items a queued note is about, by acknowledgement time."""
        columns = ", ".join("i." + c for c in ITEM_COLUMNS.split(", "))
        raw = self._db.conn.cursor()
        raw.row_factory = None
        rows = raw.execute(
            f"SELECT {columns} FROM items i JOIN date_asks a ON a.item_key = i.key"
            " WHERE a.outbox = ? ORDER BY i.ack_at, i.key",
            (outbox_id,),
        )
        return item_records(rows)
