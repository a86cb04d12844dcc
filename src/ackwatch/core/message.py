"""What ackwatch knows of one mail: the header facts it needs, parsed leniently.

A `Message` is one copy of a mail in one folder of one watched mailbox. The same mail
seen in two mailboxes (To + Cc) gives two `Message` values with the same `key`; the
core treats them as one client email.

Only the header fields in `HEADER_FIELDS` are ever fetched (``BODY.PEEK[HEADER.FIELDS
(...)]``): never bodies. Parsing never raises on bad input: what cannot be read is left
empty and the reason is put in `Message.defects`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import dataclasses
import datetime as dt
import functools
import hashlib
import operator
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from ackwatch.core.addresses import parse_address_list
from ackwatch.core.provenance import (
    MAX_AUTH_HEADERS,
    MAX_HOPS,
    AuthResult,
    Hop,
    auth_results_of,
    hops_of,
)

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


_MESSAGE_FIELDS = tuple(f.name for f in dataclasses.fields(Message))
_MESSAGE_INDEX = {name: i for i, name in enumerate(_MESSAGE_FIELDS)}
_message_values = operator.attrgetter(*_MESSAGE_FIELDS)


def positional_constructor(cls: type) -> Callable[..., Any]:
    """A positional constructor of the frozen dataclass ``cls`` (every field given, in
    order): what its ``__init__`` does, minus the cost of that.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``
    (looked up anew for every field) and is called with keywords; for `Message`'s 29
    fields that is 5 us of a 25 us parse, on every copy a first sync fetches, and a
    first evaluation builds an `sla.Item` (12 fields, 1.4 us) for every client mail.
    This sets each slot through its descriptor, bound once, as dataclasses do, or each
    entry of the instance's ``__dict__`` for a class without slots: by generating the
    function (tests/test_message_fast.py compares it with ``__init__``). Refused for a
    class whose ``__init__`` does more: a ``__post_init__``, a field left out of it.
    """
    fields = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or not all(f.init for f in fields):
        raise TypeError(f"{cls.__name__}.__init__ does more than set its fields")
    names = tuple(f.name for f in fields)
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    if "__slots__" in cls.__dict__:
        body = []
        for i, name in enumerate(names):
            namespace[f"_set{i}"] = cls.__dict__[name].__set__
            body.append(f"    _set{i}(self, {name})\n")
    else:
        body = ["    d = self.__dict__\n", *(f"    d[{name!r}] = {name}\n" for name in names)]
    source = (
        f"def construct({', '.join(names)}):\n    self = _new(_cls)\n{''.join(body)}"
        "    return self\n"
    )
    exec(source, namespace)  # from field names only, as dataclasses does
    construct = namespace["construct"]
    construct.__qualname__ = f"{cls.__name__}.construct"
    return construct  # type: ignore[no-any-return]


_construct_message = positional_constructor(Message)


def evolve(m: Message, **changes: object) -> Message:
    """``dataclasses.replace(m, **changes)`` without its per-field machinery (3x faster:
    a first sync gives thousands of copies their flag times). Values are not validated,
    as `Message.__init__` does not validate them either."""
    values = list(_message_values(m))
    for name, value in changes.items():
        index = _MESSAGE_INDEX.get(name)
        if index is None:
            raise TypeError(f"Message has no field {name!r}")
        values[index] = value
    return _construct_message(*values)


# =========================================================================== parsing
#
# Decisions (documented here because every module relies on them):
#
# * Header splitting is done by hand, not by ``email.parser``: the stdlib feedparser treats
#   the first malformed line as the start of the body and silently drops every header after
#   it. We skip the bad line (defect "junk-line") and keep going. Addresses are read by
#   `addresses.parse_address_list` (ours: the same on every Python), dates by the email
#   package (``parsedate_to_datetime``).
# * From: its first mailbox is `Message.sender`, any further ones `Message.extra_from`
#   (defect "multiple-from": who sent it is in doubt, see `classify.sender_of`). A From
#   whose mailbox cannot be read leaves the sender empty ("bad-address:from").
# * Message ids keep their local part verbatim (it is case-sensitive and Gmail/Outlook ids
#   are base64-like, so lower-casing it would merge distinct ids) and lower-case the domain
#   part (case-insensitive, and the only part gateways are known to re-case). Whitespace
#   inside ``<...>`` (folding artefacts) is removed. The same `normalize_message_id` is used
#   for Message-ID, In-Reply-To and References, which is what makes them comparable.
# * The key of a mail without Message-ID is ``"hash:" + sha256`` over its normalized From
#   address, Date (UTC ISO, or the folded raw text when unparseable), decoded Subject and
#   sorted To addresses: stable across mailboxes and servers that re-fold or re-encode.
# * Defects are short tokens, optionally ``token:field``: "headers-truncated",
#   "header-too-long:references", "bad-encoding:subject", "unknown-charset:subject",
#   "bad-address:from", "no-from", "no-message-id", "bad-message-id", "bad-date",
#   "duplicate-header:from", "junk-line", "junk-reference", "too-many-references",
#   "naive-received", "multiple-from", "too-many-received", "guessed-charset:windows-1251"
#   (raw 8-bit header values that are not UTF-8 are read in the charset
#   `legacy_charset.guess` finds for them, else latin-1).

MAX_HEADER_BYTES = 1 << 20  # the whole fetched header block
MAX_FIELD_BYTES = 64 * 1024  # one field (References keeps its *last* 64 KiB)
MAX_SUBJECT_CHARS = 1000
MAX_NAME_CHARS = 200
MAX_ADDRESSES = 500  # per address field
MAX_REFERENCES = 100  # the most recent ids of References are kept

_UTC = dt.UTC

_SINGLE = frozenset(
    {
        "message-id",
        "from",
        "reply-to",
        "subject",
        "date",
        "thread-index",
        "auto-submitted",
        "x-autoreply",
        "x-autorespond",
        "precedence",
        "list-id",
        "list-unsubscribe",
        "return-path",
        "x-ackwatch",
    }
)
_JOINED = {"to": ", ", "cc": ", ", "references": " ", "in-reply-to": " "}
# Fields whose every copy counts, topmost first: joined with "\n" (no unfolded value
# holds one), at most this many (one more Received than is read: `hops_of` sees the cut).
_TRACE = {"authentication-results": MAX_AUTH_HEADERS, "received": MAX_HOPS + 1}

_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:(.*)$", re.DOTALL)
_LINE_SPLIT = re.compile(rb"\r\n|\n|\r")
_ANGLE_ID = re.compile(r"<([^<>]*)>")
# The everyday Message-ID / In-Reply-To / References: only blank-separated "<local@domain>"
# of printable ASCII (no space, "<" or ">"); the groups of _PLAIN_ID split at the last "@",
# like rpartition. _LOWER_ID_LIST: the same with no capital in any domain.
_PLAIN_ID_LIST = re.compile(r"(?:[ \t]*<[!-;=?-~]+@[!-;=?A-~]+>)+[ \t]*")
_LOWER_ID_LIST = re.compile(r"(?:[ \t]*<[!-;=?-~]+@[!-;=?\[-~]+>)+[ \t]*")
_PLAIN_ID = re.compile(r"<([!-;=?-~]+)@([!-;=?A-~]+)>")
_BRACKETED = re.compile(r"<[^<>]*>")
_BARE_ID = re.compile(r"[^\s<>,;\"()]+@[^\s<>,;\"()]+")
_ADDR_OK = re.compile(r"^[^\s@<>()\[\],;:\\\"]+@[^\s@<>()\[\],;:\\\"]+$")
_ADDR_SALVAGE = re.compile(r"[^\s@<>()\[\],;:\\\"']+@[^\s@<>()\[\],;:\\\"']+")
_ENCODED_WORD = re.compile(
    r"=\?(?P<cs>[^?\s*]+)(?:\*[^?\s]*)?\?(?P<enc>[qQbB])\?(?:(?P<t1>[^?]*?)\?=|(?P<t2>[^?\s]*))"
)
_WS = re.compile(r"\s+")
_ID_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")  # controls, space and DEL: never in an id
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # C0/C1 controls, DEL, surrogates
_CHARSET_ALIASES = {
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "x-mac-ce": "mac-latin2",
    "x-user-defined": "latin-1",
    "windows-874": "cp874",
    "ansi_x3.4-1968": "ascii",
    "us-ascii": "utf-8",  # 8-bit bytes labelled us-ascii are nearly always UTF-8
}
_UNKNOWN_CHARSETS = frozenset({"unknown-8bit", "unknown", "x-unknown", "8bit", "default", ""})


def _bytes_to_text(raw: bytes) -> tuple[str, bool]:
    """Raw header bytes as text: UTF-8 when valid, else latin-1 (never fails).

    Returns (text, clean) where clean is False when the fallback was needed.
    """
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("latin-1"), False


def _lookup_charset(name: str) -> str | None:
    name = name.strip().strip('"').lower()
    if name in _UNKNOWN_CHARSETS:
        return None
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


def _decode_charset(data: bytes, charset: str, defects: set[str], field: str) -> str:
    codec = _lookup_charset(charset)
    if codec is None:
        if charset.strip().lower() not in _UNKNOWN_CHARSETS:
            defects.add(f"unknown-charset:{field}")
        text, clean = _bytes_to_text(data)
        if not clean:
            defects.add(f"bad-encoding:{field}")
        return text
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        defects.add(f"bad-encoding:{field}")
        if codec != "utf_8":
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return data.decode(codec, errors="replace")
    except Exception:  # codec bugs on hostile input
        defects.add(f"bad-encoding:{field}")
        return data.decode("latin-1")


def _decode_word_bytes(enc: str, text: str, defects: set[str], field: str) -> bytes:
    if enc in "qQ":
        try:
            return binascii.a2b_qp(text.encode("ascii", "replace"), header=True)
        except (binascii.Error, ValueError):
            defects.add(f"bad-encoding:{field}")
            return text.encode("ascii", "replace")
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", text)
    if len(cleaned) % 4 == 1:  # a dangling sextet carries no full byte
        cleaned = cleaned[:-1]
        defects.add(f"bad-encoding:{field}")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned)
    except (binascii.Error, ValueError):
        defects.add(f"bad-encoding:{field}")
        return b""


def decode_words(value: str, defects: set[str] | None = None, field: str = "header") -> str:
    """Decode RFC 2047 encoded-words leniently.

    Tolerates unterminated words, spaces inside Q words, missing base64 padding and unknown
    charsets; joins adjacent words of one charset *before* decoding, so a multi-byte
    character split across two words (Outlook does that) survives. Never raises.
    """
    if defects is None:
        defects = set()
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: bytearray = bytearray()
    pending_cs: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending, pending_cs
        if pending_cs is not None:
            out.append(_decode_charset(bytes(pending), pending_cs, defects, field))
        pending = bytearray()
        pending_cs = None

    for m in _ENCODED_WORD.finditer(value):
        between = value[pos : m.start()]
        if between and not (between.isspace() and pending_cs is not None):
            flush()
            out.append(between)
        if m.group("t1") is None:
            defects.add(f"bad-encoding:{field}")  # unterminated encoded-word
            text = m.group("t2") or ""
        else:
            text = m.group("t1")
        cs = m.group("cs").lower()
        if pending_cs is not None and cs != pending_cs:
            flush()
        pending_cs = cs
        pending += _decode_word_bytes(m.group("enc"), text, defects, field)
        pos = m.end()
    flush()
    out.append(value[pos:])
    return "".join(out)


def _clean_text(value: str, limit: int) -> str:
    """Drop control characters (CR/LF/TAB become spaces), fold whitespace, cap length."""
    if _CONTROL.search(value) is None:  # the usual case: nothing to drop
        return " ".join(value.split())[:limit]
    chars = []
    for ch in value:
        cat = unicodedata.category(ch)
        if cat == "Cc" or cat == "Cs":
            chars.append(" " if ch in "\r\n\t\v\f" else "")
        else:
            chars.append(ch)
    return " ".join("".join(chars).split())[:limit]


def normalize_message_id(value: str) -> str | None:
    """``<Local@Domain.Example>`` -> ``<Local@domain.example>``; None when it is no id.

    Accepts the id with or without angle brackets; whitespace inside is dropped (folding);
    requires exactly one addr-spec-like ``local@domain`` with both parts non-empty.
    """
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    value = _WS.sub("", value)
    if not value or "<" in value or ">" in value or len(value) > 998:
        return None
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain:
        return None
    if _ID_FORBIDDEN.search(value):
        return None
    return f"<{local}@{domain.lower()}>"


def _plain_message_ids(value: str) -> list[str] | None:
    """`extract_message_ids` (without limit) for the everyday shape; None for others.

    The ids of a `_PLAIN_ID_LIST` value have no whitespace, brackets or control characters
    and both parts non-empty, so `normalize_message_id` would only lower-case the domain
    (and refuse an id over 998 characters: those take the general path). When no domain
    has a capital, the ids are the bracketed tokens as they stand.
    """
    if _LOWER_ID_LIST.fullmatch(value) is not None:
        ids = _BRACKETED.findall(value)
        if len(value) > 1000 and any(len(i) > 1000 for i in ids):
            return None
    elif _PLAIN_ID_LIST.fullmatch(value) is not None:
        parts = _PLAIN_ID.findall(value)
        if len(value) > 998 and any(len(local) + len(domain) >= 998 for local, domain in parts):
            return None
        ids = [f"<{local}@{domain.lower()}>" for local, domain in parts]
    else:
        return None
    return ids if len(ids) == 1 else list(dict.fromkeys(ids))


def extract_message_ids(value: str, *, limit: int | None = MAX_REFERENCES) -> tuple[str, ...]:
    """Every message id found in a References / In-Reply-To value, normalized.

    Bracketed ``<...>`` tokens are taken; comments, phrases and junk tokens are dropped.
    Only when no bracketed token exists are bare ``local@domain`` tokens accepted. Order is
    kept, duplicates are dropped, and with `limit` only the last (most recent) ids remain.
    """
    ids = _plain_message_ids(value)
    if ids is None:
        ids = _general_message_ids(value)
    if limit is not None and len(ids) > limit:
        ids = ids[-limit:]
    return tuple(ids)


def _general_message_ids(value: str) -> list[str]:
    tokens = _ANGLE_ID.findall(value)
    if not tokens:
        tokens = _BARE_ID.findall(value)
    seen: set[str] = set()
    ids: list[str] = []
    for tok in tokens:
        mid = normalize_message_id(tok)
        if mid is not None and mid not in seen:
            seen.add(mid)
            ids.append(mid)
    return ids


def thread_index_root(value: str | None) -> str | None:
    """The conversation part of an Outlook Thread-Index, as hex; None when unusable.

    A Thread-Index is base64 of a 22-byte header (FILETIME + conversation GUID) followed by
    one 5-byte block per reply; every message of one Outlook conversation shares the header.
    """
    if not value:
        return None
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", value)
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        raw = base64.b64decode(cleaned)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 22 or not any(raw[:22]):
        return None
    return raw[:22].hex()


def thread_index_depth(value: str | None) -> int:
    """How many replies deep an Outlook Thread-Index is (0 for a conversation start)."""
    if not value:
        return 0
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", value)
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        raw = base64.b64decode(cleaned)
    except (binascii.Error, ValueError):
        return 0
    return max(0, (len(raw) - 22) // 5)


def _split_headers(data: bytes, defects: set[str]) -> list[tuple[str, bytes]]:
    """(lower-cased name, raw unfolded value) pairs, in order; stops at the first blank line."""
    fields: list[tuple[str, list[bytes]]] = []
    for line in _LINE_SPLIT.split(data):
        if not line.strip(b" \t"):
            if fields:
                break  # end of the header block
            continue  # leading blank lines
        if line[:1] in (b" ", b"\t"):
            if fields:
                fields[-1][1].append(line)
            else:
                defects.add("junk-line")
            continue
        if not fields and line.startswith(b"From "):  # mbox separator
            continue
        m = _FIELD_NAME.match(line)
        if m is None:
            defects.add("junk-line")
            continue
        name = m.group(1).decode("ascii", "replace").lower()
        fields.append((name, [m.group(2)]))
    return [(name, b"".join(parts)) for name, parts in fields]


# One well-formed field: a name, a colon, the value and any non-blank continuation lines,
# every line ended by CRLF; groups: name, value (continuations keep their CRLF). Anything
# else matches as one line (up to the next CR or LF) with both groups empty.
_PLAIN_FIELD_OR_LINE = re.compile(
    r"([!-9;-~]+)[ \t]*:([^\r\n]*(?:\r\n[ \t]+[^ \t\r\n][^\r\n]*)*)\r\n|[^\r\n]*[\r\n]"
)
_NOT_A_FIELD = ("", "")


def _plain_header_fields(data: bytes) -> list[tuple[str, str]] | None:
    """(name as sent, unfolded text) pairs of an everyday header block; None for others.

    The everyday block is valid UTF-8, no larger than one field may be, and nothing but
    well-formed CRLF fields up to the first empty line (or the end): no leading blank line,
    mbox "From " line, junk line, bare CR or LF, or whitespace-only line. For it, this is
    what `_split_headers` and the per-field decoding give, in one regex pass: UTF-8
    decoding commutes with splitting at ASCII CR, LF and ":", and nothing is a defect.
    Every other block returns None and is read line by line.
    """
    if len(data) > MAX_FIELD_BYTES or data.startswith(b"From "):
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    end = text.find("\r\n\r\n")
    if end >= 0:
        end += 2  # keep the CRLF of the last field
    elif text.endswith("\r\n"):
        end = len(text)
    else:
        return None
    # The second alternative matches wherever a field does not, so the matches tile the
    # block and any line that is not a field shows up as _NOT_A_FIELD.
    fields = _PLAIN_FIELD_OR_LINE.findall(text, 0, end)
    if not fields or _NOT_A_FIELD in fields:
        return None
    if text.find("\r\n ", 0, end) >= 0 or text.find("\r\n\t", 0, end) >= 0:  # folded
        fields = [(name, value.replace("\r\n", "")) for name, value in fields]
    return fields


def _general_header_fields(data: bytes, defects: set[str]) -> list[tuple[str, str]]:
    """(lower-cased name, unfolded text) pairs of any block, values capped and decoded."""
    raw_fields = []
    for name, value_bytes in _split_headers(data, defects):
        if len(value_bytes) > MAX_FIELD_BYTES:
            defects.add(f"header-too-long:{name}")
            if name == "references":  # the most recent ids are at the end
                value_bytes = value_bytes[-MAX_FIELD_BYTES:]
            else:
                value_bytes = value_bytes[:MAX_FIELD_BYTES]
        raw_fields.append((name, value_bytes))
    return decode_raw_values(raw_fields, defects)


def decode_raw_values(
    raw_fields: list[tuple[str, bytes]], defects: set[str]
) -> list[tuple[str, str]]:
    """Header values as text: UTF-8 when valid; the others (raw 8-bit, defect
    "bad-encoding:<field>") in the legacy charset guessed once for all of them together
    (`legacy_charset.guess`, defect "guessed-charset:<charset>"), else latin-1. Never
    raises."""
    texts: list[str | None] = []
    for _, value_bytes in raw_fields:
        try:
            texts.append(value_bytes.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(None)
    if None in texts:
        from ackwatch.core.legacy_charset import (
            guess,  # only for mail with raw 8-bit, non-UTF-8 headers
        )

        guessed = guess([raw for (_, raw), text in zip(raw_fields, texts, strict=True)
                         if text is None])
        if guessed is not None:
            defects.add(f"guessed-charset:{guessed[1]}")
        for i, (name, raw) in enumerate(raw_fields):
            if texts[i] is not None:
                continue
            defects.add(f"bad-encoding:{name}")
            try:
                texts[i] = raw.decode(guessed[0]) if guessed else raw.decode("latin-1")
            except UnicodeDecodeError:  # one value cut inside a multi-byte character
                texts[i] = raw.decode("latin-1")
    return [(name, text or "") for (name, _), text in zip(raw_fields, texts, strict=True)]


def _header_values(data: bytes, defects: set[str]) -> dict[str, str]:
    """Lower-cased field name -> stripped value, the first of each name.

    Repeated To / Cc / References / In-Reply-To are joined; so are the first few
    Authentication-Results and Received (with "\n", see `_TRACE`); another repeated field
    keeps its first value, and a differing repeat of a single-valued field is a defect.
    """
    plain = _plain_header_fields(data)
    if plain is None:
        fields = _general_header_fields(data, defects)
    else:
        values = {name.lower(): text.strip() for name, text in plain}
        if len(values) == len(plain):  # no name repeats: the usual case
            return values
        fields = [(name.lower(), text) for name, text in plain]
    raw: dict[str, str] = {}
    traced: dict[str, int] = {}
    for name, text in fields:
        if name in _TRACE:  # each value stripped on its own: an empty one is a hop too
            text = text.strip()
        if name in raw:
            if name in _TRACE:
                count = traced.get(name, 1)
                if count < _TRACE[name]:
                    raw[name] = raw[name] + "\n" + text
                    traced[name] = count + 1
            elif name in _JOINED:
                raw[name] = raw[name] + _JOINED[name] + text
            elif name in _SINGLE and raw[name].strip() != text.strip():
                defects.add(f"duplicate-header:{name}")
            continue
        raw[name] = text
    return {name: text if name in _TRACE else text.strip() for name, text in raw.items()}


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDR = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_ENTRY = re.compile(
    rf'[ \t]*(?:"([^"\\\r\n]*)"[ \t]*<({_PLAIN_ADDR})>'
    rf"|((?:{_ATOM}[ \t]+)*{_ATOM})?[ \t]*<({_PLAIN_ADDR})>"
    rf"|({_PLAIN_ADDR}))[ \t]*(?:,|\Z)"
)
_BLANKS = re.compile(r"[ \t]+")


def plain_addresses(value: str) -> list[tuple[str, str]] | None:
    """`addresses.parse_address_list` for the everyday shapes, ten times faster; None
    otherwise.

    ``a@b.example``, ``Name <a@b.example>``, ``"Last, First" <a@b.example>``, separated
    by commas. Anything else (comments, groups, dots, ``@`` or non-ASCII in an unquoted
    name, escapes, stray commas) returns None and is left to the general reader
    (tests/test_addresses.py checks the two agree on everything this accepts).
    """
    out: list[tuple[str, str]] = []
    pos, end = 0, len(value)
    while pos < end:
        m = _PLAIN_ENTRY.match(value, pos)
        if m is None:
            return None
        quoted, addr1, phrase, addr2, bare = m.groups()
        if bare is not None:
            out.append(("", bare))
        elif addr1 is not None:
            out.append((quoted, addr1))
        else:
            out.append((_BLANKS.sub(" ", phrase) if phrase else "", addr2))
        pos = m.end()
    return out


# Memos for the costly pure parts of a mail: one sender, recipient list or encoded subject
# recurs in thousands of mails of a mailbox. A memo maps a header value to its result *and*
# the defects that parsing it added, which a hit adds again; results are immutable, so
# sharing them is safe. Bounded: only values up to _MEMO_MAX_CHARS are kept and a memo is
# emptied when it reaches _MEMO_MAX_ENTRIES (a few MB for real mail; 10,000 hostile
# 500-character address lists take about 36 MB). Each dict operation is atomic under the
# GIL: concurrent parses can at worst lose an entry, never see a wrong one.
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
        if _CONTROL.search(addr):  # NUL, ESC, ...: never part of an address; shown by `status`
            defects.add(f"bad-address:{field}")
            addr = _CONTROL.sub("", addr)
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
        display = _clean_text(decode_words(name, defects, field), MAX_NAME_CHARS)
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


_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: f"{number:02}" for number, name in enumerate(_MONTH_NAMES, 1)}
# "Mon, 23 Nov 2026 17:52:20 +0100 (CET)": weekday, seconds and what follows the zone
# optional; a four-digit year from 1000, hours 00-23, zone minutes 00-59.
_PLAIN_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{1,2}) ([A-Z][a-z]{2}) ([1-9][0-9]{3})"
    r" ((?:[01][0-9]|2[0-3]):[0-9]{2}(?::[0-9]{2})?) ([+-][0-9]{2})([0-5][0-9])(?: .*)?",
    re.DOTALL,
)


def _parse_plain_date(value: str) -> dt.datetime | None:
    """`_parse_date` for the everyday RFC 5322 shape, in UTC; None for anything else.

    What `_PLAIN_DATE` accepts is rewritten as ISO 8601 for `datetime.fromisoformat`,
    which gives what `email.utils.parsedate_to_datetime` gives for it: the weekday and
    whatever follows the zone are ignored, missing seconds are 0 and "-0000" is UTC.
    Impossible values (31 Feb, second 60, zones of a day or more, overflow) return None,
    so that the general path reports them exactly as before.
    """
    m = _PLAIN_DATE.fullmatch(value)
    if m is None:
        return None
    day, month, year, time, zone_hours, zone_minutes = m.groups()
    month = _MONTHS.get(month)
    if month is None:
        return None
    iso = f"{year}-{month}-{day:0>2}T{time}{zone_hours}:{zone_minutes}"
    try:
        return dt.datetime.fromisoformat(iso).astimezone(_UTC)
    except (OverflowError, ValueError):
        return None


def _parse_date(value: str | None, defects: set[str]) -> dt.datetime | None:
    if not value:
        return None
    value = value.strip()
    if not value:
        return None
    parsed = _parse_plain_date(value)
    if parsed is not None:
        return parsed
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
        return _clean_text(value, MAX_SUBJECT_CHARS)
    hit = _subject_memo.get(value)
    if hit is None:
        added: set[str] = set()
        hit = (_clean_text(decode_words(value, added, "subject"), MAX_SUBJECT_CHARS), tuple(added))
        if len(value) <= _MEMO_MAX_CHARS:
            _remember(_subject_memo, value, hit)
    if hit[1]:
        defects.update(hit[1])
    return hit[0]


def _thread_ids(
    value: str | None,
    limit: int,
    own_ids: set[str],
    message_id: str | None,
    defects: set[str],
) -> tuple[str, ...]:
    """In-Reply-To / References ids, without the mail's own id and its participants.

    `own_ids` are the participants' addresses as ids (``<address>``, lower-cased).
    """
    if not value:
        return ()
    ids = _plain_message_ids(value)
    if ids is None:
        ids = _general_message_ids(value)
    if not ids:
        defects.add("junk-reference")  # text, "<>", bare words: nothing usable
        return ()
    # A mailer that puts an address where an id belongs would link unrelated mail.
    if message_id in ids or not own_ids.isdisjoint(map(str.lower, ids)):
        defects.add("junk-reference")
        ids = [i for i in ids if i.lower() not in own_ids and i != message_id]
    if len(ids) > limit:
        defects.add("too-many-references")
        ids = ids[-limit:]
    return tuple(ids)


def _lowered(value: str | None) -> str | None:
    return None if value is None else " ".join(value.lower().split())


def _plain(value: str | None, limit: int = 2000) -> str | None:
    return None if value is None else _clean_text(value, limit)


def _as_flags(flags: Iterable[str | bytes]) -> frozenset[str]:
    if not flags:
        return frozenset()
    if flags.__class__ is frozenset:  # the sync's: a handful of sets, thousands of times
        return _flag_set(flags)  # type: ignore[arg-type]
    return _decoded_flags(flags)


@functools.lru_cache(maxsize=256)
def _flag_set(flags: frozenset[str | bytes]) -> frozenset[str]:
    return _decoded_flags(flags)


def _decoded_flags(flags: Iterable[str | bytes]) -> frozenset[str]:
    out = set()
    for f in flags:
        if isinstance(f, bytes):
            f = f.decode("utf-8", "replace")
        out.add(str(f))
    return frozenset(out)


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
    UTC; a naive datetime is taken as UTC (defect "naive-received"). ``legacy_fetch``:
    the bytes were fetched by an ackwatch that did not ask for the trace headers.
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
        values = _header_values(header_bytes, defects)
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

    # Subject and date -----------------------------------------------------------------------
    subject_raw = get("subject")
    subject = _subject(subject_raw, defects) if subject_raw else ""
    if subject_raw and len(subject_raw) > 4 * MAX_SUBJECT_CHARS:
        defects.add("header-too-long:subject")
    date_raw = get("date")
    date = _parse_date(date_raw, defects)

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
        in_reply_to = _thread_ids(in_reply_to_raw, 10, own_ids, message_id, defects)
        references = _thread_ids(references_raw, MAX_REFERENCES, own_ids, message_id, defects)
    thread_index = get("thread-index")
    thread_index = _WS.sub("", thread_index)[:4096] if thread_index else None

    key = message_id or _stable_key(sender, date, date_raw, subject, to)

    # Positional, in field order (a keyword call of 29 fields costs 1.5 us more):
    # tests/test_message_fast.py checks the result field by field.
    return _construct_message(
        key,
        message_id,
        mailbox,
        folder,
        role,
        int(uid),  # uid
        received_utc,  # received
        _as_flags(flags),  # flags
        None if gm_thrid is None else int(gm_thrid),  # gm_thrid
        answered_utc,  # answered_at
        dismissed_utc,  # dismissed_at
        sender,
        reply_to,
        to,
        cc,
        subject,
        date,
        in_reply_to,
        references,
        thread_index or None,  # thread_index
        _lowered(get("auto-submitted")),  # auto_submitted
        _plain(get("x-autoreply"), 200),  # x_autoreply
        _plain(get("x-autorespond"), 200),  # x_autorespond
        _lowered(get("precedence")),  # precedence
        _plain(get("list-id")),  # list_id
        _plain(get("list-unsubscribe")),  # list_unsubscribe
        _plain(get("return-path"), 1000),  # return_path
        _lowered(get("x-ackwatch")),  # x_ackwatch
        extra_from,
        auth_results_of(get("authentication-results")),  # auth_results
        hops_of(get("received"), defects),  # received_hops
        bool(legacy_fetch),  # legacy_fetch
        tuple(sorted(defects)),  # defects
    )
