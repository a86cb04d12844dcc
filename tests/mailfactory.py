"""Build `Message` values for tests, always through the real parser (`parse_message`).

    from mailfactory import make_message, mail, reply, fixture_message

    m = make_message('''
        From: Jan Kowalski <jan.kowalski@acme.example>
        To: anna@agency.example
        Subject: Quote
        Message-ID: <q1@acme.example>
    ''', received="2026-11-23T10:00:00+01:00")

    client = mail(subject="Quote for the spring campaign")        # Jan (Acme) -> Anna
    answer = reply(client, from_="anna@agency.example", folder="Sent", role="sent",
                   received="2026-11-23T10:40:00+01:00")
    ooo = fixture_message("exchange_out_of_office.eml")            # tests/fixtures/mail/

Header text may be indented (it is dedented) and use "\\n"; it is sent as CRLF bytes, like
IMAP returns it. `received` accepts an ISO string or an aware datetime; 2026-11-23 is a
Monday (09:00-17:00 office hours in Europe/Warsaw in `configfactory`).
"""

from __future__ import annotations

import datetime as dt
import itertools
import textwrap
from collections.abc import Iterable, Mapping
from email.utils import formatdate
from pathlib import Path

from ackwatch.core.message import FolderRole, Message, parse_message

FIXTURES = Path(__file__).parent / "fixtures" / "mail"
DEFAULT_RECEIVED = "2026-11-23T10:00:00+01:00"

_counter = itertools.count(1)


def as_datetime(value: str | dt.datetime) -> dt.datetime:
    """An ISO string or datetime as an aware datetime (naive is refused: tests must say)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        raise ValueError(f"naive datetime in a test: {value!r}; add a UTC offset")
    return value


def header_bytes(raw_headers: str | bytes) -> bytes:
    """Header text as IMAP returns it: CRLF line ends, ending with an empty line."""
    if isinstance(raw_headers, bytes):
        return raw_headers
    text = textwrap.dedent(raw_headers).strip("\n")
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8") + b"\r\n\r\n"


def make_message(
    raw_headers: str | bytes,
    mailbox: str = "anna",
    folder: str = "INBOX",
    role: FolderRole = "inbox",
    uid: int = 1,
    received: str | dt.datetime = DEFAULT_RECEIVED,
    flags: Iterable[str] = (),
    *,
    gm_thrid: int | None = None,
    answered_at: str | dt.datetime | None = None,
    dismissed_at: str | dt.datetime | None = None,
) -> Message:
    """Parse header text (str: dedented, LF ok; bytes: as is) into a `Message`."""
    return parse_message(
        header_bytes(raw_headers),
        mailbox=mailbox,
        folder=folder,
        role=role,
        uid=uid,
        received=as_datetime(received),
        flags=tuple(flags),
        gm_thrid=gm_thrid,
        answered_at=None if answered_at is None else as_datetime(answered_at),
        dismissed_at=None if dismissed_at is None else as_datetime(dismissed_at),
    )


def fixture_bytes(name: str) -> bytes:
    """Raw bytes of ``tests/fixtures/mail/<name>`` (".eml" may be left out)."""
    path = FIXTURES / name
    if not path.exists():
        path = FIXTURES / f"{name}.eml"
    return path.read_bytes()


def fixture_message(name: str, **location: object) -> Message:
    """A fixture file parsed as a `Message`; keywords as for `make_message`."""
    return make_message(fixture_bytes(name), **location)  # type: ignore[arg-type]


def _addresses(value: str | Iterable[str] | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    joined = ", ".join(value)
    return joined or None


# What the agency's server (AGENCY_AUTHSERV_ID in configfactory) writes on mail it
# checked: with it, an agency mail seen in a watched inbox is the agency's word.
VOUCHED_BY_AGENCY_SERVER = {
    "Authentication-Results": "mail.agency.example; dkim=pass (2048-bit key)"
    " header.d=agency.example header.s=mail; dmarc=pass (p=quarantine) header.from=agency.example",
}


def mail(
    *,
    from_: str = "Jan Kowalski <jan.kowalski@acme.example>",
    to: str | Iterable[str] = ("Anna Nowak <anna@agency.example>",),
    cc: str | Iterable[str] | None = None,
    reply_to: str | Iterable[str] | None = None,
    subject: str = "Quote for the spring campaign",
    message_id: str | None = "auto",
    in_reply_to: str | None = None,
    references: Iterable[str] = (),
    date: str | dt.datetime | None = None,
    headers: Mapping[str, str] | None = None,
    mailbox: str = "anna",
    folder: str = "INBOX",
    role: FolderRole = "inbox",
    uid: int | None = None,
    received: str | dt.datetime = DEFAULT_RECEIVED,
    flags: Iterable[str] = (),
    gm_thrid: int | None = None,
    answered_at: str | dt.datetime | None = None,
    dismissed_at: str | dt.datetime | None = None,
) -> Message:
    """One mail from keyword arguments (defaults: Jan of Acme writes to Anna's INBOX).

    `message_id="auto"` makes a fresh unique id; None leaves the header out. `date`
    defaults to `received`. Extra `headers` (e.g. {"Auto-Submitted": "auto-replied"}) are
    appended verbatim. A header whose value is None is left out.
    """
    n = next(_counter)
    received_dt = as_datetime(received)
    if message_id == "auto":
        domain = from_.rsplit("@", 1)[-1].strip(" >") if "@" in from_ else "test.example"
        message_id = f"<test.{n}@{domain}>"
    date_value = as_datetime(date) if date is not None else received_dt
    fields: list[tuple[str, str | None]] = [
        ("From", from_),
        ("To", _addresses(to)),
        ("Cc", _addresses(cc)),
        ("Reply-To", _addresses(reply_to)),
        ("Subject", subject),
        ("Date", formatdate(date_value.timestamp(), localtime=False, usegmt=False)),
        ("Message-ID", message_id),
        ("In-Reply-To", in_reply_to),
        ("References", " ".join(references) or None),
    ]
    fields += list((headers or {}).items())
    text = "".join(f"{name}: {value}\r\n" for name, value in fields if value is not None)
    return make_message(
        text.encode("utf-8") + b"\r\n",
        mailbox=mailbox,
        folder=folder,
        role=role,
        uid=n if uid is None else uid,
        received=received_dt,
        flags=flags,
        gm_thrid=gm_thrid,
        answered_at=answered_at,
        dismissed_at=dismissed_at,
    )


def reply(
    parent: Message,
    *,
    from_: str = "Anna Nowak <anna@agency.example>",
    to: str | Iterable[str] | None = None,
    subject: str | None = None,
    received: str | dt.datetime | None = None,
    **kwargs: object,
) -> Message:
    """A correct reply to `parent`: In-Reply-To/References, "Re: " subject, To = its sender.

    `received` defaults to 30 minutes after the parent. Other keywords as for `mail`
    (e.g. ``folder="Sent", role="sent"`` for the agency's copy).
    """
    if to is None:
        to = (parent.reply_to[0].address if parent.reply_to else parent.sender.address,)
    refs = tuple(parent.references)
    if parent.message_id:
        refs += (parent.message_id,)
    return mail(
        from_=from_,
        to=to,
        subject=subject if subject is not None else f"Re: {parent.subject}",
        in_reply_to=parent.message_id,
        references=refs,
        received=received if received is not None else parent.received + dt.timedelta(minutes=30),
        **kwargs,  # type: ignore[arg-type]
    )
