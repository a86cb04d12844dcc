"""Stored mail, parsed: what the store keeps of each new copy's parse (its key, sender and
thread links), and the parses kept for the evaluation that follows a sync.

The store keeps header bytes; the core parses them (`message.parse_message`). A first
sync parses tens of thousands of copies to store them, and the evaluation right after
loads every one of them: `ParsedMail` keeps each stored copy's parse until the first
load that returns it, so that it is parsed once. Memory does not grow with the history:
a parse is dropped when a load returns it, and `forget` (after a full load) drops what
no load returned. A copy's header bytes never change (a row is only ever inserted,
re-flagged or deleted), so a kept parse is its copy's while the UIDVALIDITY it was stored
under holds; its flags and flag times are the stored ones, set on the way out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence

import structlog

from ackwatch.core.message import Message, parse_message
from ackwatch.core.threads import link_values
from ackwatch.store import CopyToStore, StorableMessage, Store, StoredCopy

log = structlog.get_logger(__name__)

# Other header variants of one key parsed to link a new copy with (see `copies_to_store`).
MAX_HEADER_VARIANTS = 20
# Parses kept after their first load (`ParsedMail.each_message`): a step's later reads
# of the same threads (the promise keeper's, the next evaluation of a thread that got a
# reply) find them. About 1 kB each; several minutes of mail at 3 client mails a second.
RECENT_PARSES = 1024


def parse_fetched(m: StorableMessage, mailbox: str, folder: str, role: str) -> Message:
    """A fetched copy's parse, as stored (its flag times are the store's: none yet)."""
    return parse_message(
        m.header_bytes, mailbox=mailbox, folder=folder, role=role,  # type: ignore[arg-type]
        uid=m.uid, received=m.received, flags=m.flags, gm_thrid=m.gm_thrid,
    )  # fmt: skip


def parse_stored(c: StoredCopy) -> Message:
    """A stored copy's parse (never raises on bad mail)."""
    return parse_message(
        c.header_bytes, mailbox=c.mailbox, folder=c.folder, role=c.role,  # type: ignore[arg-type]
        uid=c.uid, received=c.received, flags=c.flags, gm_thrid=c.gm_thrid,
        answered_at=c.answered_at, dismissed_at=c.dismissed_at, legacy_fetch=c.legacy_fetch,
    )  # fmt: skip


def copies_to_store(
    store: Store, parsed: Sequence[tuple[StorableMessage, Message]]
) -> list[CopyToStore]:
    """What the store keeps of each parsed copy: its key, its sender and its links.

    A copy of a mail stored (or fetched) under other header bytes too (a reused
    Message-ID, a gateway's rewrite) is linked with its variants together: a thread link
    can pair the subject of one copy with a participant of another
    (`threads.link_values`). Copies of one mail in several mailboxes are byte-identical;
    a mailer reusing one Message-ID for everything is capped at `MAX_HEADER_VARIANTS`
    variants, so that storing stays linear (its later variants pair less).
    """
    fetched: dict[str, list[bytes]] = {}
    for m, p in parsed:
        fetched.setdefault(p.key, []).append(m.header_bytes)
    several = {key for key, variants in fetched.items() if len(set(variants)) > 1}
    # One more than the cap: a copy's own bytes may be among them.
    stored = store.header_variants(fetched, MAX_HEADER_VARIANTS + 1)
    out = []
    for m, p in parsed:
        if p.key in stored or p.key in several:
            others = dict.fromkeys(
                v for v in (*stored.get(p.key, ()), *fetched[p.key]) if v != m.header_bytes
            )
            copies = [p, *(
                parse_message(v, mailbox=p.mailbox, folder=p.folder, role=p.role, uid=p.uid,
                              received=p.received)
                for v in list(others)[:MAX_HEADER_VARIANTS]
            )]  # fmt: skip
        else:
            copies = [p]
        out.append(CopyToStore(m, p.key, p.sender.address, link_values(copies),
                               key_stored=p.key in stored))
    return out


def link_stored(store: Store, copies: Sequence[StoredCopy]) -> list[CopyToStore]:
    """`copies_to_store` of copies stored without their links (`Store.build_links`)."""
    return copies_to_store(store, [(c, parse_stored(c)) for c in copies])


def log_defects(m: Message) -> None:
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


class ParsedMail:
    """The parses of the copies stored by this process, kept for the evaluation's loads."""

    def __init__(self) -> None:
        # (mailbox, folder, uid) -> (the UIDVALIDITY it was stored under, parse).
        self._kept: dict[tuple[str, str, int], tuple[int, Message]] = {}
        # `prepare`d parses by (mailbox, folder) -> uid -> (the fetched copy, role, parse).
        self._prepared: dict[tuple[str, str], dict[int, tuple[StorableMessage, str, Message]]] = {}
        # The last `RECENT_PARSES` parses loaded, least recently loaded first; as `_kept`.
        self._recent: OrderedDict[tuple[str, str, int], tuple[int, Message]] = OrderedDict()

    def prepare(
        self, mailbox: str, folder: str, role: str, fetched: Iterable[StorableMessage]
    ) -> None:
        """Parse copies that the next `store` of this folder will take, ahead of it: a
        first sync parses each batch while the server prepares the next one
        (`sync.sync_folder`'s ``on_batch``, on the sync's thread). What that `store` does
        not use is dropped with it."""
        prepared = self._prepared.setdefault((mailbox, folder), {})
        for m in fetched:
            prepared[m.uid] = (m, role, parse_fetched(m, mailbox, folder, role))

    def parse(
        self, mailbox: str, folder: str, role: str, fetched: Iterable[StorableMessage]
    ) -> list[tuple[StorableMessage, Message]]:
        """Each fetched copy with its parse (`prepare`d, or made now), to be stored; the
        folder's prepared parses are used up."""
        prepared = self._prepared.pop((mailbox, folder), {})
        parsed = []
        for m in fetched:
            ready = prepared.get(m.uid)
            if ready is not None and (ready[0] is m or ready[0] == m) and ready[1] == role:
                parsed.append((m, ready[2]))
            else:
                parsed.append((m, parse_fetched(m, mailbox, folder, role)))
        return parsed

    def keep(
        self,
        uidvalidity: int,
        parsed: Iterable[tuple[StorableMessage, Message]],
        stored_uids: Iterable[int],
    ) -> None:
        """Keep the parses of the copies just stored (``stored_uids`` of ``parsed``, under
        ``uidvalidity``) for the next load, and log their defects."""
        uids = set(stored_uids)
        for m, p in parsed:
            if m.uid in uids:
                self._kept[(p.mailbox, p.folder, m.uid)] = (uidvalidity, p)
                if p.defects:
                    log_defects(p)

    def load(
        self, store: Store, since: dt.datetime, keys: Iterable[str] | None = None
    ) -> list[Message]:
        """`messages` of the copies stored received at or after ``since`` (of ``keys``
        only, when given).

        A load of everything while parses are kept (the evaluation after a first sync,
        which stored them) reads the copies without their header bytes, and then the
        bytes of those whose parse is not held: the 33 MB of a first sync's 33k copies are
        not read back from the database (a quarter of a second over a 1 Gbit/s link to
        PostgreSQL; a few hundredths on loopback, bench/README.md Session 15)."""
        if keys is not None or not self._kept:
            return self.messages(store.load_copies(since, keys=keys))
        copies = store.load_copies(since, headers=False)
        missing = [c for c in copies if self._held(c) is None]
        if missing:
            read = {_where(c): c for c in store.with_headers(missing)}
            gone = {_where(c) for c in missing} - read.keys()  # deleted since
            copies = [read.get(_where(c), c) for c in copies if _where(c) not in gone]
        return self.messages(copies)

    def _held(self, c: StoredCopy) -> Message | None:
        """The parse held of ``c`` (kept or recent), or None."""
        where = _where(c)
        hit = self._kept.get(where) or self._recent.get(where)
        return hit[1] if hit is not None and _fits(hit, c) else None

    def messages(self, copies: Iterable[StoredCopy]) -> list[Message]:
        """The parses of ``copies``: kept or recent ones (given the stored flags and flag
        times), the others parsed now. A kept parse moves to the recent ones once
        returned; the recent ones are the last `RECENT_PARSES` returned."""
        return list(self.each_message(copies))

    def each_message(self, copies: Iterable[StoredCopy]) -> Iterator[Message]:
        """`messages`, one at a time (for a caller that keeps less of each mail than the
        mail itself)."""
        kept, recent = self._kept, self._recent
        for c in copies:
            where = _where(c)
            hit = kept.pop(where, None) if kept else None
            if hit is None:
                hit = recent.get(where)
            m = _as_stored(hit[1], c) if hit is not None and _fits(hit, c) else None
            if m is None:
                m = parse_stored(c)
            recent[where] = (c.uidvalidity, m)
            recent.move_to_end(where)
            if len(recent) > RECENT_PARSES:
                recent.popitem(last=False)
            yield m

    def forget(self) -> None:
        """Drop every kept parse (after a full load: what it did not return is out of the
        window)."""
        self._kept.clear()

    def kept(self) -> int:
        """How many parses are kept (for the tests)."""
        return len(self._kept)


def _where(c: StoredCopy) -> tuple[str, str, int]:
    return (c.mailbox, c.folder, c.uid)


def _fits(hit: tuple[int, Message], c: StoredCopy) -> bool:
    """Whether a parse held (with the UIDVALIDITY it was stored under) is of copy ``c``:
    not when the copy was stored anew (another UIDVALIDITY, role or received time)."""
    uidvalidity, m = hit
    return uidvalidity == c.uidvalidity and m.role == c.role and m.received == c.received


def _as_stored(m: Message, c: StoredCopy) -> Message:
    """A parse held of ``c`` (`_fits`) with ``c``'s stored flags and flag times."""
    if (m.flags, m.answered_at, m.dismissed_at, m.gm_thrid) != (
        c.flags, c.answered_at, c.dismissed_at, c.gm_thrid
    ):
        return dataclasses.replace(
            m, flags=c.flags, answered_at=c.answered_at,
            dismissed_at=c.dismissed_at, gm_thrid=c.gm_thrid,
        )  # fmt: skip
    return m


def messages_of(copies: Iterable[StoredCopy]) -> list[Message]:
    """The parses of ``copies``, none kept (the promise keeper's occasional reads)."""
    return [parse_stored(c) for c in copies]
