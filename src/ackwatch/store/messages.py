"""The stored copies of mail: the folders' sync cursors, each copy's header bytes and
flags, as fetched.

Crash safety (kill -9 at any instant): every sync step is one transaction that stores the
fetched copies *and* the folder's new cursor together, so a restart resumes from a cursor
that matches exactly what is stored; fetching a copy again is an upsert.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ackwatch.core.message import ANSWERED, has_flag
from ackwatch.store.database import chunked, mark_pending_copies
from ackwatch.store.forms import flags_json, from_iso, iso
from ackwatch.store.links import MARK_AGAIN, mark_dirty_keys, write_links
from ackwatch.store.records import CopyToStore, StoredCopy, StoredCursor

if TYPE_CHECKING:
    from ackwatch.store.tables import SqlDatabase


class Messages:
    """The folders and messages tables."""

    def __init__(self, db: SqlDatabase):
        self._db = db

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
        new_messages: Sequence[CopyToStore],
        flag_updates: Iterable[tuple[int, frozenset[str]]],
        reset: bool,
        initial: bool,
        dismiss_keyword: str,
        now: dt.datetime,
        mark_dirty: bool = True,
    ) -> list[int]:
        """Store one sync step of one folder atomically; returns the UIDs of the copies
        stored (a UID stored already is left as it is).

        ``reset``: the folder was (re)scanned from scratch (first sync or UIDVALIDITY
        change): copies under an old UIDVALIDITY are forgotten. Items live on: they are
        keyed by Message-ID, so the same mail fetched again maps to the same item.
        ``mark_dirty=False``: the new copies get no dirty marks, for a caller whose next
        evaluation covers all the stored mail anyway (a state never evaluated).
        """
        now_s = iso(now)
        stored: list[tuple[CopyToStore, str]] = []  # (copy, received as stored)
        rows = []
        with self._db.write() as c:
            if reset:
                c.execute(
                    "INSERT INTO dirty (key) SELECT key FROM messages"
                    " WHERE mailbox = ? AND folder = ? AND uidvalidity != ?" + MARK_AGAIN,
                    (mailbox, folder, uidvalidity),
                )
                c.execute(
                    "DELETE FROM pending_copies WHERE mailbox = ? AND folder = ? AND uid IN"
                    " (SELECT uid FROM messages WHERE mailbox = ? AND folder = ?"
                    " AND uidvalidity != ?)",
                    (mailbox, folder, mailbox, folder, uidvalidity),
                )
                c.execute(
                    "DELETE FROM messages WHERE mailbox = ? AND folder = ? AND uidvalidity != ?",
                    (mailbox, folder, uidvalidity),
                )
            any_stored = c.execute(
                "SELECT 1 FROM messages WHERE mailbox = ? AND folder = ? LIMIT 1", (mailbox, folder)
            ).fetchone()
            present = {
                r[0] for r in self._db.rows_in(
                    "SELECT uid FROM messages WHERE mailbox = ? AND folder = ? AND uid IN ({})",
                    (mailbox, folder), {n.copy.uid for n in new_messages})
            } if any_stored else set()
            for n in new_messages:
                m = n.copy
                if m.uid in present:
                    continue  # stored already (DO NOTHING): the first copy of a UID wins
                present.add(m.uid)
                received_s = iso(m.received)
                stored.append((n, received_s))
                rows.append((
                    mailbox, folder, m.uid, uidvalidity, role, n.key, received_s,
                    flags_json(frozenset(m.flags)),
                    now_s if has_flag(m.flags, ANSWERED) else None,
                    now_s if has_flag(m.flags, dismiss_keyword) else None,
                    m.gm_thrid, m.header_bytes, int(initial), now_s,
                ))
            c.executemany(
                "INSERT INTO messages (mailbox, folder, uid, uidvalidity, role, key, received,"
                " flags, answered_at, dismissed_at, gm_thrid, headers, initial, first_seen,"
                " trace_headers) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
                rows,
            )
            write_links(self._db, c, stored)
            # A new copy of a pending item's mail is marked as the item's other copies
            # are. While nothing is pending (a first sync, not yet evaluated) every
            # marker is 0 and stays 0: no UPDATE (on PostgreSQL each of its chunks
            # scans the table, whose new rows have no statistics yet).
            if stored and c.execute(
                "SELECT 1 FROM items WHERE state = 'pending' LIMIT 1"
            ).fetchone() is not None:
                mark_pending_copies(c, {n.key for n, _ in stored})
            if mark_dirty:
                mark_dirty_keys(c, (n.key for n, _ in stored))
            reflagged = list(flag_updates)
            c.executemany(
                "UPDATE messages SET flags = ?,"
                " answered_at = CASE WHEN ? THEN COALESCE(answered_at, ?) ELSE NULL END,"
                " dismissed_at = CASE WHEN ? THEN COALESCE(dismissed_at, ?) ELSE NULL END"
                " WHERE mailbox = ? AND folder = ? AND uid = ?",
                [(
                    flags_json(frozenset(flags)),
                    has_flag(flags, ANSWERED), now_s,
                    has_flag(flags, dismiss_keyword), now_s,
                    mailbox, folder, uid,
                ) for uid, flags in reflagged],
            )
            c.executemany(
                "INSERT INTO dirty (key) SELECT key FROM messages"
                " WHERE mailbox = ? AND folder = ? AND uid = ?" + MARK_AGAIN,
                [(mailbox, folder, uid) for uid, _ in reflagged],
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
        return [row[2] for row in rows]

    def load_copies(
        self, since: dt.datetime | None = None, *, keys: Iterable[str] | None = None,
        headers: bool = True,
    ) -> list[StoredCopy]:
        """Every stored copy received at or after ``since`` (of ``keys`` only, when given).
        ``headers=False``: without their header bytes (``b""``), for a caller that holds
        the parses of most (`with_headers` reads the others')."""
        query = (
            "SELECT mailbox, folder, uid, uidvalidity, role, received, flags, answered_at,"
            f" dismissed_at, gm_thrid, {'headers' if headers else 'NULL'}, trace_headers"
            " FROM messages WHERE received >= ?"
        )
        since_s = iso(since) if since is not None else ""
        raw = self._db.conn.cursor()
        raw.row_factory = None
        if keys is None:
            rows: Iterable[tuple[Any, ...]] = raw.execute(query, (since_s,))
        else:
            rows = chunked(raw, query + " AND key IN ({})", [since_s], keys)
        flag_sets: dict[str, frozenset[str]] = {}  # a handful of sets, thousands of copies
        out = []
        for mailbox, folder, uid, uidvalidity, role, received, flags, answered_at, \
                dismissed_at, gm_thrid, headers, trace_headers in rows:
            flag_set = flag_sets.get(flags)
            if flag_set is None:
                flag_set = flag_sets[flags] = frozenset(json.loads(flags))
            out.append(StoredCopy(
                mailbox, folder, uid, uidvalidity, role, from_iso(received), flag_set,
                from_iso(answered_at), from_iso(dismissed_at), gm_thrid,
                b"" if headers is None else bytes(headers), not trace_headers,
            ))
        return out

    def with_headers(self, copies: Iterable[StoredCopy]) -> list[StoredCopy]:
        """``copies`` (read without their header bytes) with them, each read by its
        primary key; a copy no longer stored under its UIDVALIDITY is left out."""
        by_folder: dict[tuple[str, str], dict[int, StoredCopy]] = {}
        for c in copies:
            by_folder.setdefault((c.mailbox, c.folder), {})[c.uid] = c
        out = []
        for (mailbox, folder), wanted in by_folder.items():
            for uid, uidvalidity, headers in self._db.rows_in(
                "SELECT uid, uidvalidity, headers FROM messages"
                " WHERE mailbox = ? AND folder = ? AND uid IN ({})",
                (mailbox, folder), sorted(wanted),
            ):
                c = wanted[uid]
                if uidvalidity == c.uidvalidity:
                    out.append(dataclasses.replace(c, header_bytes=bytes(headers)))
        return out

    def iter_copies(self, since: dt.datetime, keys: Iterable[str]) -> Iterator[StoredCopy]:
        """`load_copies` of ``keys``, a few hundred keys at a time: for a caller that
        keeps less of each mail than the mail itself (`threads.assign_threads`)."""
        chunk: list[str] = []
        for key in keys:
            chunk.append(key)
            if len(chunk) == 500:
                yield from self.load_copies(since, keys=chunk)
                chunk = []
        if chunk:
            yield from self.load_copies(since, keys=chunk)

    def header_variants(self, keys: Iterable[str], most: int) -> dict[str, list[bytes]]:
        """The distinct header bytes stored under each of ``keys`` that is stored, up to
        ``most`` of a key."""
        c = self._db.conn
        present = {r[0] for r in self._db.rows_in(
            "SELECT DISTINCT key FROM messages WHERE key IN ({})", (), set(keys))}
        return {
            key: [bytes(r[0]) for r in c.execute(
                "SELECT DISTINCT headers FROM messages WHERE key = ? LIMIT ?", (key, most))]
            for key in sorted(present)
        }

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
        (their first message and the follow-ups folded into them), from the copies'
        pending markers (`mark_pending_copies`), by their primary key."""
        rows = self._db.conn.execute(
            "SELECT uid FROM pending_copies WHERE mailbox = ? AND folder = ?",
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
