"""Storing fetched copies as a sync step does, and reading them back parsed, for tests
that drive the store without IMAP: the daemon's own parts (`daemon.parsedmail`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest

from ackwatch.core.message import Message
from ackwatch.daemon.parsedmail import ParsedMail, copies_to_store
from ackwatch.store import NewMessage, StorableMessage, Store
from ackwatch.store.sqlite import SqliteStore

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)  # when `new` copies arrive


def headers(n: int, subject: str = "Quote") -> bytes:
    """The header block of client mail number ``n`` (Message-ID ``<m{n}@client.example>``)."""
    return (
        f"Message-ID: <m{n}@client.example>\r\nFrom: Client <c@client.example>\r\n"
        f"To: anna@agency.example\r\nSubject: {subject}\r\n\r\n"
    ).encode()


def new(uid: int, n: int | None = None, flags: Iterable[str] = ()) -> NewMessage:
    """A fetched copy of mail ``n`` (``uid`` by default) under ``uid``, ``uid`` minutes
    after `T0`."""
    return NewMessage(uid, T0 + dt.timedelta(minutes=uid), frozenset(flags), headers(n or uid))


def store_step(
    store: Store,
    msgs: Sequence[StorableMessage],
    *,
    now: dt.datetime,
    parsed: ParsedMail | None = None,
    mailbox: str = "anna",
    folder: str = "INBOX",
    role: str = "inbox",
    uidvalidity: int = 1,
    last_uid: int | None = None,
    reset: bool = False,
    initial: bool = False,
    flag_updates: Iterable[tuple[int, frozenset[str]]] = (),
    dismiss_keyword: str = "$Ackwatch-Done",
) -> int:
    """One sync step of one folder: ``msgs`` parsed (by ``parsed``, which keeps the parses
    of what is stored) and stored; returns how many copies were new."""
    parsed = parsed if parsed is not None else ParsedMail()
    fetched = parsed.parse(mailbox, folder, role, msgs)
    stored = store.apply_folder_sync(
        mailbox=mailbox, folder=folder, role=role, uidvalidity=uidvalidity,
        last_uid=last_uid if last_uid is not None else max((m.uid for m in msgs), default=0),
        highestmodseq=None, new_messages=copies_to_store(store, fetched),
        flag_updates=flag_updates, reset=reset, initial=initial,
        dismiss_keyword=dismiss_keyword, now=now,
    )  # fmt: skip
    parsed.keep(uidvalidity, fetched, stored)
    return len(stored)


def loaded(
    store: Store,
    since: dt.datetime | None = None,
    *,
    keys: Iterable[str] | None = None,
    parsed: ParsedMail | None = None,
) -> list[Message]:
    """The stored copies (received at or after ``since``, of ``keys``), parsed."""
    parsed = parsed if parsed is not None else ParsedMail()
    return parsed.messages(store.load_copies(since, keys=keys))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    """A new SQLite state in a temporary directory, closed after the test."""
    s = SqliteStore.open(tmp_path / "state")
    yield s
    s.close()
