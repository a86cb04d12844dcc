"""What ackwatch knows of one mail: the header facts it needs, parsed leniently.

A `Message` is one copy of a mail in one folder of one watched mailbox. The same mail
seen in two mailboxes (To + Cc) gives two `Message` values with the same `key`; the
core treats them as one client email.

Only the header fields in `HEADER_FIELDS` are ever fetched (``BODY.PEEK[HEADER.FIELDS
(...)]``): never bodies. Parsing never raises on bad input: what cannot be read is left
empty and the reason is put in `Message.defects`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

FolderRole = Literal["inbox", "sent"]

# The header fields fetched from the server; nothing else of a mail is ever read.
HEADER_FIELDS: tuple[str, ...] = (
    "Message-ID",
    "In-Reply-To",
    "References",
    "Thread-Index",
    "Thread-Topic",
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Auto-Submitted",
    "X-Autoreply",
    "X-Autorespond",
    "X-Auto-Response-Suppress",
    "Precedence",
    "List-Id",
    "List-Unsubscribe",
    "Return-Path",
    "X-Ackwatch",
    "X-Ackwatch-Items",
)


@dataclass(frozen=True)
class Address:
    address: str  # lower-cased addr-spec, "" when unparseable
    name: str = ""


@dataclass(frozen=True)
class Message:
    # Identity -----------------------------------------------------------------------
    key: str  # normalized Message-ID ("<id@host>") or "hash:<sha256>" when missing
    message_id: str | None  # as normalized, None when the mail had none
    # Where this copy lives -------------------------------------------------------------
    mailbox: str  # config name of the watched mailbox
    folder: str
    role: FolderRole
    uid: int
    received: dt.datetime  # IMAP INTERNALDATE, timezone-aware (UTC)
    flags: frozenset[str] = frozenset()  # e.g. {"\\Answered", "$Ackwatch-Done"}
    gm_thrid: int | None = None  # Gmail X-GM-THRID when the server offers it
    # When the sync first saw \Answered / the dismissal keyword on this copy (the shell
    # records it; flags carry no time of their own). None while the flag is absent.
    answered_at: dt.datetime | None = None
    dismissed_at: dt.datetime | None = None
    # Headers ----------------------------------------------------------------------------
    sender: Address = Address("")  # From (first address)
    reply_to: tuple[Address, ...] = ()
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    subject: str = ""  # decoded (RFC 2047), control characters removed
    date: dt.datetime | None = None  # Date header, informational only
    in_reply_to: tuple[str, ...] = ()  # normalized message ids
    references: tuple[str, ...] = ()  # normalized message ids, junk tokens dropped
    thread_index: str | None = None  # Outlook Thread-Index (base64) as sent
    auto_submitted: str | None = None  # lower-cased value of Auto-Submitted
    x_autoreply: str | None = None
    x_autorespond: str | None = None
    precedence: str | None = None  # lower-cased
    list_id: str | None = None
    list_unsubscribe: str | None = None
    return_path: str | None = None  # raw value; "<>" means a bounce / auto mail
    x_ackwatch: str | None = None  # set on ackwatch's own mail: nudge|escalation|digest
    defects: tuple[str, ...] = ()  # what could not be parsed, for logs

    @property
    def recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc
