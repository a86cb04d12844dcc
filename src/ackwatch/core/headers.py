"""The fetched header block as field values: splitting, unfolding and decoding.

Header splitting is done by hand, not by ``email.parser``: the stdlib feedparser treats
the first malformed line as the start of the body and silently drops every header after
it. We skip the bad line (defect "junk-line") and keep going. Raw 8-bit values that are
not UTF-8 are read in the charset `legacy_charset.guess` finds for them, else latin-1.
RFC 2047 encoded words are decoded leniently (`decode_words`). Nothing here raises on
the bytes; what cannot be read is named in the ``defects`` set passed in.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata

from ackwatch.core.provenance import MAX_AUTH_HEADERS, MAX_HOPS

MAX_HEADER_BYTES = 1 << 20  # the whole fetched header block
MAX_FIELD_BYTES = 64 * 1024  # one field (References keeps its *last* 64 KiB)

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
_ENCODED_WORD = re.compile(
    r"=\?(?P<cs>[^?\s*]+)(?:\*[^?\s]*)?\?(?P<enc>[qQbB])\?(?:(?P<t1>[^?]*?)\?=|(?P<t2>[^?\s]*))"
)
# C0/C1 controls, DEL and lone surrogates: never kept in a value (`clean_text`).
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
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


def clean_text(value: str, limit: int) -> str:
    """Drop control characters (CR/LF/TAB become spaces), fold whitespace, cap length."""
    if CONTROL_CHARS.search(value) is None:  # the usual case: nothing to drop
        return " ".join(value.split())[:limit]
    chars = []
    for ch in value:
        cat = unicodedata.category(ch)
        if cat == "Cc" or cat == "Cs":
            chars.append(" " if ch in "\r\n\t\v\f" else "")
        else:
            chars.append(ch)
    return " ".join("".join(chars).split())[:limit]


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


# Kept for target 1: without this pass a first sync costs +5.4 % instructions (+0.07 ratio).
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


def header_values(data: bytes, defects: set[str]) -> dict[str, str]:
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
