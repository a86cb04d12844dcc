"""The parse of each copy stored, kept until the first load that returns it, so that the
evaluation after a sync does not parse the same header bytes again.

Memory does not grow with the history: a parse is dropped when a load returns it, and a
full load (or the end of a batched evaluation) drops what no load returned. A row's
header bytes never change (a row is only ever inserted, re-flagged or deleted), so a kept
parse is its row's while the row's UIDVALIDITY is the one it was stored under.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from collections.abc import Iterable

from ackwatch.core.message import Message, parse_message
from ackwatch.store.forms import from_iso
from ackwatch.store.records import StorableMessage

# A prepared parse: the copy, the role it was parsed for, the parse.
Prepared = tuple[StorableMessage, str, Message]


class ParseMemo:
    """The kept parses of one store (`messages.Messages` fills and reads them)."""

    def __init__(self) -> None:
        # (mailbox, folder, uid) -> (the UIDVALIDITY it was stored under, parse, the row's
        # role, received, flags, answered_at, dismissed_at and gm_thrid as stored with it).
        self.parsed: dict[tuple[str, str, int], tuple[int, Message, tuple[object, ...]]] = {}
        # `prepare`d parses by (mailbox, folder) -> uid.
        self.prepared: dict[tuple[str, str], dict[int, Prepared]] = {}

    def prepare(
        self, mailbox: str, folder: str, role: str, new_messages: Iterable[StorableMessage]
    ) -> None:
        """Parse copies that the next store of this folder will take, ahead of it."""
        prepared = self.prepared.setdefault((mailbox, folder), {})
        for m in new_messages:
            parsed = parse_new(m, mailbox, folder, role, answered_at=None, dismissed_at=None)
            prepared[m.uid] = (m, role, parsed)

    def forget(self) -> None:
        """Drop every kept parse (what no load returned is out of the window)."""
        self.parsed.clear()


def parse_new(
    m: StorableMessage,
    mailbox: str,
    folder: str,
    role: str,
    *,
    answered_at: dt.datetime | None,
    dismissed_at: dt.datetime | None,
    prepared: Prepared | None = None,
) -> Message:
    """The parse of a copy as `load_messages` would build it from the row just written
    (so the cached value is reused as is on the next load).

    ``prepared``: `ParseMemo.prepare`'s entry for its UID, used when it is this very copy
    (parsed without flag times: those are the store's own, set here).
    """
    if prepared is not None and (prepared[0] is m or prepared[0] == m) and prepared[1] == role:
        parsed = prepared[2]
        if answered_at is None and dismissed_at is None:
            return parsed
        if all(t is None or t.utcoffset() is not None for t in (answered_at, dismissed_at)):
            return dataclasses.replace(
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


def refresh(base: Message, r: sqlite3.Row) -> Message | None:
    """A cached parse with the row's current flags and flag times; None when it is not
    the same copy (role or received time differ)."""
    received = from_iso(r["received"])
    if base.role != r["role"] or base.received != received:
        return None
    flags = frozenset(json.loads(r["flags"]))
    answered_at, dismissed_at = from_iso(r["answered_at"]), from_iso(r["dismissed_at"])
    gm_thrid = r["gm_thrid"]
    if (base.flags, base.answered_at, base.dismissed_at, base.gm_thrid) == (
        flags, answered_at, dismissed_at, gm_thrid
    ):
        return base
    return dataclasses.replace(
        base, flags=flags, answered_at=answered_at, dismissed_at=dismissed_at, gm_thrid=gm_thrid
    )
