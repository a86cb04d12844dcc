"""The stored copies of mail: the folders' sync cursors, each copy's header bytes and
flags, and loading them back parsed.

Crash safety (kill -9 at any instant): every sync step is one transaction that stores the
fetched copies *and* the folder's new cursor together, so a restart resumes from a cursor
that matches exactly what is stored; fetching a copy again is an upsert.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence

import structlog

from ackwatch.core.message import ANSWERED, Message, has_flag, parse_message
from ackwatch.store.database import Database, chunked
from ackwatch.store.forms import flags_json, from_iso, iso
from ackwatch.store.links import link_variants, mark_stored_dirty, write_links
from ackwatch.store.parsememo import ParseMemo, parse_new, refresh
from ackwatch.store.records import StorableMessage, StoredCursor

log = structlog.get_logger(__name__)


class Messages:
    """The folders and messages tables, and the parses kept of what was just stored."""

    def __init__(self, db: Database, memo: ParseMemo):
        self._db = db
        self._memo = memo

    def cursors(self, mailbox: str) -> dict[str, StoredCursor]:
        rows = self._db.conn.execute(
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
        now_s = iso(now)
        stored: list[tuple[Message, bytes, str]] = []
        prepared = self._memo.prepared.pop((mailbox, folder), {})
        with self._db.write() as c:
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
                r[0] for r in chunked(
                    c, "SELECT uid FROM messages WHERE mailbox = ? AND folder = ? AND uid IN ({})",
                    (mailbox, folder), {m.uid for m in new_messages})
            } if any_stored else set()
            fresh = []
            for m in new_messages:
                if m.uid in present:
                    continue  # stored already (DO NOTHING): the first copy of a UID wins
                present.add(m.uid)
                answered_at = now_s if has_flag(m.flags, ANSWERED) else None
                dismissed_at = now_s if has_flag(m.flags, dismiss_keyword) else None
                parsed = parse_new(
                    m, mailbox, folder, role,
                    answered_at=now if answered_at else None,
                    dismissed_at=now if dismissed_at else None,
                    prepared=prepared.get(m.uid),
                )
                received_s = iso(m.received)
                fresh.append((m, parsed, answered_at, dismissed_at, received_s))
                stored.append((parsed, m.header_bytes, received_s))
            rows = []
            for m, parsed, answered_at, dismissed_at, received_s in fresh:
                row = (
                    mailbox, folder, m.uid, uidvalidity, role, parsed.key, received_s,
                    flags_json(frozenset(m.flags)), answered_at, dismissed_at, m.gm_thrid,
                    m.header_bytes, int(initial), now_s,
                )
                rows.append(row)
                self._memo.parsed[(mailbox, folder, m.uid)] = (
                    uidvalidity, parsed, (role, *row[6:11]),
                )
                if parsed.defects:
                    _log_defects(parsed)
            write_links(c, stored)
            c.executemany(
                "INSERT INTO messages (mailbox, folder, uid, uidvalidity, role, key, received,"
                " flags, answered_at, dismissed_at, gm_thrid, headers, initial, first_seen,"
                " trace_headers) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
                rows,
            )
            added = len(rows)
            link_variants(c, stored)
            if mark_dirty:
                mark_stored_dirty(c, stored)
            for uid, flags in flag_updates:
                c.execute(
                    "UPDATE messages SET flags = ?,"
                    " answered_at = CASE WHEN ? THEN COALESCE(answered_at, ?) ELSE NULL END,"
                    " dismissed_at = CASE WHEN ? THEN COALESCE(dismissed_at, ?) ELSE NULL END"
                    " WHERE mailbox = ? AND folder = ? AND uid = ?",
                    (
                        flags_json(frozenset(flags)),
                        has_flag(flags, ANSWERED), now_s,
                        has_flag(flags, dismiss_keyword), now_s,
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
        self._memo.prepare(mailbox, folder, role, new_messages)

    def load_messages(
        self, since: dt.datetime | None = None, *, keys: Iterable[str] | None = None
    ) -> list[Message]:
        """Every stored copy received at or after ``since`` (of ``keys`` only, when given),
        parsed (never raises on bad mail).

        A copy stored by this store is parsed once (`parsememo`): its parse is kept until
        the first load that returns it (the evaluation that follows the sync); the header
        bytes are read only for the copies parsed here.
        """
        query = (
            "SELECT mailbox, folder, uid, role, received, flags, answered_at, dismissed_at,"
            " gm_thrid, uidvalidity, rowid, trace_headers FROM messages WHERE received >= ?"
        )
        since_s = iso(since) if since is not None else ""
        if keys is None:
            rows: Iterable[sqlite3.Row] = self._db.conn.execute(query, (since_s,))
        else:
            rows = self._db.rows_in(query + " AND key IN ({})", [since_s], keys)
        out: list[Message | None] = []
        to_parse: list[tuple[int, sqlite3.Row]] = []  # (position in out, row)
        cache = self._memo.parsed
        for r in rows:
            hit = cache.pop((r["mailbox"], r["folder"], r["uid"]), None)
            if hit is not None and hit[0] == r["uidvalidity"]:
                if hit[2] == tuple(r)[3:9]:  # the row as stored with this parse
                    out.append(hit[1])
                    continue
                msg = refresh(hit[1], r)
                if msg is not None:
                    out.append(msg)
                    continue
            to_parse.append((len(out), r))
            out.append(None)
        if to_parse:
            headers = dict(chunked(  # type: ignore[arg-type]
                self._db.conn, "SELECT rowid, headers FROM messages WHERE rowid IN ({})", (),
                [r["rowid"] for _, r in to_parse],
            ))
            for position, r in to_parse:
                out[position] = parse_message(
                    bytes(headers[r["rowid"]]),
                    mailbox=r["mailbox"],
                    folder=r["folder"],
                    role=r["role"],
                    uid=r["uid"],
                    received=from_iso(r["received"]),
                    flags=tuple(json.loads(r["flags"])),
                    gm_thrid=r["gm_thrid"],
                    answered_at=from_iso(r["answered_at"]),
                    dismissed_at=from_iso(r["dismissed_at"]),
                    legacy_fetch=not r["trace_headers"],
                )
        if keys is None:
            self._memo.forget()  # a full load: what it did not return is out of the window
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


    def initial_keys(
        self, keys: Iterable[str] | None = None, *, since: dt.datetime | None = None
    ) -> set[str]:
        """Keys of mail that came from a first-start history import (never nudged for),
        among ``keys`` and received at or after ``since`` when given."""
        query = "SELECT key FROM messages WHERE initial = 1 AND received >= ?"  # a set: no DISTINCT
        args = (iso(since) if since is not None else "",)
        if keys is None:
            return {r[0] for r in self._db.conn.execute(query, args)}
        return {r[0] for r in self._db.rows_in(query + " AND key IN ({})", args, keys)}


    def pending_uids(self, mailbox: str, folder: str) -> set[int]:
        """UIDs in one folder whose flags still matter: copies of the mail of pending items
        (their first message and the follow-ups folded into them)."""
        rows = self._db.conn.execute(
            "SELECT m.uid FROM messages m WHERE m.mailbox = ? AND m.folder = ? AND m.key IN ("
            " SELECT key FROM items WHERE state = 'pending'"
            " UNION SELECT im.member_key FROM item_members im"
            " JOIN items i ON i.key = im.item_key WHERE i.state = 'pending')",
            (mailbox, folder),
        ).fetchall()
        return {r[0] for r in rows}

    def message_count(self) -> int:
        return self._db.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]


    def message_copies(self, key: str) -> list[tuple[str, str, int, int]]:
        """(mailbox, folder, uid, uidvalidity) of every stored copy of a message, sent
        folders first (the sender's own copy)."""
        rows = self._db.conn.execute(
            "SELECT mailbox, folder, uid, uidvalidity FROM messages WHERE key = ?"
            " ORDER BY role != 'sent', mailbox, folder, uid",
            (key,),
        ).fetchall()
        return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]



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

