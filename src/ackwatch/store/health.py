"""Each watched mailbox's connection state, as its watcher last reported it (a sync step
records its time in the same transaction, `messages.Messages.apply_folder_sync`)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ackwatch.store.forms import from_iso, iso
from ackwatch.store.records import HealthRecord

if TYPE_CHECKING:
    from ackwatch.store.tables import SqlDatabase


class Health:
    """The health table."""

    def __init__(self, db: SqlDatabase):
        self._db = db

    def set_health(
        self,
        mailbox: str,
        state: str,
        *,
        since: dt.datetime,
        last_error: str | None,
    ) -> None:
        with self._db.write() as c:
            c.execute(
                "INSERT INTO health (mailbox, state, since, last_error) VALUES (?,?,?,?)"
                " ON CONFLICT(mailbox) DO UPDATE SET state = excluded.state,"
                " since = excluded.since, last_error = excluded.last_error",
                (mailbox, state, iso(since), last_error),
            )

    def health(self) -> list[HealthRecord]:
        return [
            HealthRecord(
                r["mailbox"], r["state"], from_iso(r["since"]), r["last_error"],
                from_iso(r["last_sync"]),
            )
            for r in self._db.conn.execute("SELECT * FROM health ORDER BY mailbox")
        ]
