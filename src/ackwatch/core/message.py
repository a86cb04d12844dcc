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
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

from ackwatch.core.addresses import parse_address_list, plain_addresses
from ackwatch.core.headers import (
    CONTROL_CHARS,
    MAX_HEADER_BYTES,
    clean_text,
    decode_words,
    header_values,
)
from ackwatch.core.message_ids import MAX_REFERENCES, extract_message_ids, thread_ids
from ackwatch.core.provenance import AuthResult, Hop, auth_results_of, hops_of

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
    # Who vouches for the sender (classify.is_vouched): the receiving servers' records.
    "Authentication-Results",
    "Received",
)


@dataclass(frozen=True, slots=True)
class Address:
    address: str  # lower-cased addr-spec, "" when unparseable
    name: str = ""


@dataclass(frozen=True, slots=True)
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
    # From's mailboxes after the first (RFC 5322 allows several; then who sent it is in
    # doubt: `classify.sender_of`). Almost always empty.
    extra_from: tuple[Address, ...] = ()
    # The DMARC / DKIM passes of the topmost Authentication-Results headers, and the
    # sending side of each Received header, topmost first (`provenance`).
    auth_results: tuple[AuthResult, ...] = ()
    received_hops: tuple[Hop, ...] = ()
    # Stored by an ackwatch that did not fetch Authentication-Results and Received: its
    # agency-looking inbox copies keep the trust they had then (README "What counts").
    legacy_fetch: bool = False
    defects: tuple[str, ...] = ()  # what could not be parsed, for logs

    @property
    def recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc


# =========================================================================== parsing
#
# Decisions (documented here because every module relies on them):
#
# * The header block is split and decoded by `headers` (by hand, not by ``email.parser``).
#   Addresses are read by `addresses.parse_address_list` (ours: the same on every Python),
#   dates by the email package (``parsedate_to_datetime``), message ids by `message_ids`.
# * The Date header counts for nothing but the key of a mail without Message-ID (the
#   received time is the INTERNALDATE, DESIGN.md), and is read only then: its parse
#   would be a fifth of a header block's (bench/README.md, Session 15).
# * From: its first mailbox is `Message.sender`, any further ones `Message.extra_from`
#   (defect "multiple-from": who sent it is in doubt, see `classify.sender_of`). A From
#   whose mailbox cannot be read leaves the sender empty ("bad-address:from").
# * The key of a mail without Message-ID is ``"hash:" + sha256`` over its normalized From
#   address, Date (UTC ISO, or the folded raw text when unparseable), decoded Subject and
#   sorted To addresses: stable across mailboxes and servers that re-fold or re-encode.
# * Defects are short tokens, optionally ``token:field``: "headers-truncated",
#   "header-too-long:references", "bad-encoding:subject", "unknown-charset:subject",
#   "bad-address:from", "no-from", "no-message-id", "bad-message-id", "bad-date" (of a
#   mail without Message-ID),
#   "duplicate-header:from", "junk-line", "junk-reference", "too-many-references",
#   "naive-received", "multiple-from", "too-many-received", "guessed-charset:windows-1251"
#   (raw 8-bit header values that are not UTF-8 are read in the charset
#   `legacy_charset.guess` finds for them, else latin-1).

MAX_SUBJECT_CHARS = 1000
MAX_NAME_CHARS = 200
MAX_ADDRESSES = 500  # per address field

_UTC = dt.UTC
_ADDR_OK = re.compile(r"^[^\s@<>()\[\],;:\\\"]+@[^\s@<>()\[\],;:\\\"]+$")
_ADDR_SALVAGE = re.compile(r"[^\s@<>()\[\],;:\\\"']+@[^\s@<>()\[\],;:\\\"']+")
_WS = re.compile(r"\s+")


# Memos for the costly pure parts of a mail: one sender, recipient list or encoded subject
# recurs in thousands of mails of a mailbox. A memo maps a header value to its result *and*
# the defects that parsing it added, which a hit adds again; results are immutable, so
# sharing them is safe. Bounded: only values up to _MEMO_MAX_CHARS are kept and a memo is
# emptied when it reaches _MEMO_MAX_ENTRIES (a few MB for real mail; 10,000 hostile
# 500-character address lists take about 36 MB). Each dict operation is atomic under the
# GIL: concurrent parses can at worst lose an entry, never see a wrong one.
# Kept for target 1: without the memos a first sync costs +4.8 % instructions (+0.06 ratio).
_MEMO_MAX_ENTRIES = 10_000
_MEMO_MAX_CHARS = 500
_address_memo: dict[tuple[str, str], tuple[tuple[Address, ...], tuple[str, ...]]] = {}
_subject_memo: dict[str, tuple[str, tuple[str, ...]]] = {}


def _remember(memo: dict, key: object, value: object) -> None:
    if len(memo) >= _MEMO_MAX_ENTRIES:
        memo.clear()
    memo[key] = value


def _addresses(value: str | None, defects: set[str], field: str) -> tuple[Address, ...]:
    """The addresses of one field (memoized `_parse_addresses`)."""
    if value is None:
        return ()
    key = (value, field)
    hit = _address_memo.get(key)
    if hit is None:
        added: set[str] = set()
        hit = (_parse_addresses(value, added, field), tuple(added))
        if len(value) <= _MEMO_MAX_CHARS:
            _remember(_address_memo, key, hit)
    if hit[1]:
        defects.update(hit[1])
    return hit[0]


def _parse_addresses(value: str, defects: set[str], field: str) -> tuple[Address, ...]:
    """The mailboxes of one address field, by `addresses.parse_address_list` (the
    everyday shapes by `plain_addresses`, which gives the same pairs for them). An entry
    whose mailbox cannot be read is dropped with the defect ``bad-address:<field>``; a
    display name never supplies an address."""
    pairs = plain_addresses(value)
    if pairs is None:
        parsed = parse_address_list(value)
        pairs = list(parsed.entries)
        if not parsed.clean:
            defects.add(f"bad-address:{field}")
        if parsed.truncated:
            defects.add(f"header-too-long:{field}")
    result: list[Address] = []
    seen: set[str] = set()
    for name, addr in pairs:
        if not addr:
            continue
        addr = addr.strip().lower()
        if CONTROL_CHARS.search(addr):  # NUL, ESC, ...: never part of an address; shown by `status`
            defects.add(f"bad-address:{field}")
            addr = CONTROL_CHARS.sub("", addr)
        if addr.startswith("mailto:"):
            addr = addr[len("mailto:") :]
        if not _ADDR_OK.match(addr):
            salvaged = _ADDR_SALVAGE.findall(addr) if '"' not in addr else []
            if len(salvaged) == 1:
                addr = salvaged[0].strip(".").lower()
            else:
                defects.add(f"bad-address:{field}")
                continue
        if addr in seen:
            continue
        seen.add(addr)
        display = clean_text(decode_words(name, defects, field), MAX_NAME_CHARS)
        result.append(Address(addr, display))
        if len(result) >= MAX_ADDRESSES:
            defects.add(f"header-too-long:{field}")
            break
    return tuple(result)


def _to_utc(value: dt.datetime, defects: set[str], what: str) -> dt.datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        defects.add(f"naive-{what}")
        return value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC)


def _parse_date(value: str | None, defects: set[str]) -> dt.datetime | None:
    if not value:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:
        defects.add("bad-date")
        return None
    if parsed is None:
        defects.add("bad-date")
        return None
    try:
        if parsed.tzinfo is None:  # "-0000": UTC, local zone unknown (RFC 5322)
            return parsed.replace(tzinfo=_UTC)
        return parsed.astimezone(_UTC)
    except (OverflowError, ValueError):
        defects.add("bad-date")
        return None


def _stable_key(
    sender: Address,
    date: dt.datetime | None,
    raw_date: str | None,
    subject: str,
    to: tuple[Address, ...],
) -> str:
    date_text = date.isoformat() if date is not None else " ".join((raw_date or "").split())
    parts = [
        sender.address,
        date_text,
        subject,
        ",".join(sorted(a.address for a in to)),
    ]
    digest = hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"hash:{digest}"


def _subject(value: str, defects: set[str]) -> str:
    """The decoded, cleaned subject; encoded subjects are memoized (see `_address_memo`)."""
    if "=?" not in value:  # nothing to decode
        return clean_text(value, MAX_SUBJECT_CHARS)
    hit = _subject_memo.get(value)
    if hit is None:
        added: set[str] = set()
        hit = (clean_text(decode_words(value, added, "subject"), MAX_SUBJECT_CHARS), tuple(added))
        if len(value) <= _MEMO_MAX_CHARS:
            _remember(_subject_memo, value, hit)
    if hit[1]:
        defects.update(hit[1])
    return hit[0]


def _lowered(value: str | None) -> str | None:
    return None if value is None else " ".join(value.lower().split())


def _plain(value: str | None, limit: int = 2000) -> str | None:
    return None if value is None else clean_text(value, limit)


ANSWERED = "\\Answered"  # the IMAP flag of a mail replied to
_NO_FLAGS: frozenset[str] = frozenset()


def canonical_flags(flags: Iterable[str | bytes | int] | None) -> frozenset[str]:
    """The one form of a flag set: a frozenset of str, each flag spelled as the server
    sent it (bytes decoded as UTF-8, undecodable bytes replaced). Flags match
    case-insensitively (`has_flag`), so the spelling is kept as it came.

    The shell puts flags in this form where they come in: off the IMAP wire
    (`mail.uidfetch.flags_of`, once per distinct combination) and off a stored row. A
    set already in this form is returned as it is.
    """
    if not flags:
        return _NO_FLAGS
    if flags.__class__ is frozenset and all(f.__class__ is str for f in flags):
        return flags
    out = set()
    for f in flags:
        if isinstance(f, bytes):
            f = f.decode("utf-8", "replace")
        out.add(str(f))
    return frozenset(out)


def has_flag(flags: Iterable[str], flag: str) -> bool:
    """Whether ``flags`` hold ``flag``, compared case-insensitively (casefold): the one
    rule for ``\\Answered`` and the dismissal keyword, in the store and the core."""
    if flag in flags:
        return True
    if not flags:
        return False
    wanted = flag.casefold()
    return any(f.casefold() == wanted for f in flags)


def _as_datetime(value: dt.datetime | str, defects: set[str], what: str) -> dt.datetime:
    if value.__class__ is dt.datetime and value.tzinfo is _UTC:  # already what we want
        return value
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")
    return _to_utc(value, defects, what)


def parse_message(
    header_bytes: bytes,
    *,
    mailbox: str,
    folder: str,
    role: FolderRole,
    uid: int,
    received: dt.datetime,
    flags: Iterable[str | bytes] = (),
    gm_thrid: int | None = None,
    answered_at: dt.datetime | None = None,
    dismissed_at: dt.datetime | None = None,
    legacy_fetch: bool = False,
) -> Message:
    """Parse what ``BODY.PEEK[HEADER.FIELDS (...)]`` returned into a `Message`.

    Never raises on the bytes: whatever cannot be read is left empty and named in
    `Message.defects`. `received` (the INTERNALDATE) and the flag times are converted to
    UTC; a naive datetime is taken as UTC (defect "naive-received"). ``flags`` are put
    in their one form (`canonical_flags`). ``legacy_fetch``: the bytes were fetched by an
    ackwatch that did not ask for the trace headers.
    """
    defects: set[str] = set()
    received_utc = _as_datetime(received, defects, "received")
    answered_utc = None if answered_at is None else _as_datetime(answered_at, defects, "answered")
    dismissed_utc = (
        None if dismissed_at is None else _as_datetime(dismissed_at, defects, "dismissed")
    )
    if isinstance(header_bytes, str):
        try:  # text decoded with surrogateescape gets its bytes back
            header_bytes = header_bytes.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # other lone surrogates: invalid UTF-8, read as latin-1
            header_bytes = header_bytes.encode("utf-8", "surrogatepass")
    elif not isinstance(header_bytes, bytes):
        try:
            header_bytes = bytes(header_bytes)
        except Exception:
            defects.add("no-headers")
            header_bytes = b""
    if len(header_bytes) > MAX_HEADER_BYTES:
        defects.add("headers-truncated")
        header_bytes = header_bytes[:MAX_HEADER_BYTES]

    try:
        values = header_values(header_bytes, defects)
    except Exception:  # pragma: no cover - the splitter is total; belt and braces
        defects.add("unparseable-headers")
        values = {}
    get = values.get

    # Addresses ----------------------------------------------------------------------------
    from_raw = get("from")
    from_list = _addresses(from_raw, defects, "from")
    if not from_list:
        defects.add("no-from" if from_raw is None else "bad-address:from")
    sender = from_list[0] if from_list else Address("")
    extra_from = from_list[1:]
    if extra_from:
        defects.add("multiple-from")
    reply_to = _addresses(get("reply-to"), defects, "reply-to")
    to = _addresses(get("to"), defects, "to")
    cc = _addresses(get("cc"), defects, "cc")

    # Subject -----------------------------------------------------------------------------
    subject_raw = get("subject")
    subject = _subject(subject_raw, defects) if subject_raw else ""
    if subject_raw and len(subject_raw) > 4 * MAX_SUBJECT_CHARS:
        defects.add("header-too-long:subject")

    # Identity and thread headers -------------------------------------------------------------
    message_id: str | None = None
    mid_raw = get("message-id")
    if not mid_raw:
        defects.add("no-message-id")
    else:
        ids = extract_message_ids(mid_raw, limit=None)
        if ids:
            message_id = ids[0]
        else:
            defects.add("bad-message-id")
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    in_reply_to_raw = get("in-reply-to")
    references_raw = get("references")
    if in_reply_to_raw or references_raw:
        own_ids = {f"<{a.address}>" for a in (*from_list, *reply_to, *to, *cc)}
        in_reply_to = thread_ids(in_reply_to_raw, 10, own_ids, message_id, defects)
        references = thread_ids(references_raw, MAX_REFERENCES, own_ids, message_id, defects)
    thread_index = get("thread-index")
    thread_index = _WS.sub("", thread_index)[:4096] if thread_index else None

    if message_id is None:
        date_raw = get("date")
        key = _stable_key(sender, _parse_date(date_raw, defects), date_raw, subject, to)
    else:
        key = message_id

    return Message(
        key=key,
        message_id=message_id,
        mailbox=mailbox,
        folder=folder,
        role=role,
        uid=int(uid),
        received=received_utc,
        flags=canonical_flags(flags),
        gm_thrid=None if gm_thrid is None else int(gm_thrid),
        answered_at=answered_utc,
        dismissed_at=dismissed_utc,
        sender=sender,
        reply_to=reply_to,
        to=to,
        cc=cc,
        subject=subject,
        in_reply_to=in_reply_to,
        references=references,
        thread_index=thread_index or None,
        auto_submitted=_lowered(get("auto-submitted")),
        x_autoreply=_plain(get("x-autoreply"), 200),
        x_autorespond=_plain(get("x-autorespond"), 200),
        precedence=_lowered(get("precedence")),
        list_id=_plain(get("list-id")),
        list_unsubscribe=_plain(get("list-unsubscribe")),
        return_path=_plain(get("return-path"), 1000),
        x_ackwatch=_lowered(get("x-ackwatch")),
        extra_from=extra_from,
        auth_results=auth_results_of(get("authentication-results")),
        received_hops=hops_of(get("received"), defects),
        legacy_fetch=bool(legacy_fetch),
        defects=tuple(sorted(defects)),
    )
