"""Text from outside (client subjects and names, server error texts) made safe to print.

A subject or an IMAP server's error text can hold terminal escape sequences (``ESC [2J``
clears the screen, ``ESC ] 0 ; ... BEL`` sets the window title), bidi overrides that
show "invoice\\u202egpj.exe" as "invoiceexe.jpg", zero-width characters, or lone
surrogates that make ``print`` raise. Everything ackwatch prints for a person goes
through `clean`; JSON for programs goes through `json_text`.

Unsafe: the Unicode categories Cc (C0 and C1 controls, DEL), Cf (format characters:
bidi marks, embeddings, overrides and isolates, zero-width space, word joiner, BOM, tag
characters, ...), Zl and Zp (line and paragraph separators) and Cs (surrogates), except
ZERO WIDTH NON-JOINER and ZERO WIDTH JOINER, which shape Persian and Indic words and
join emoji sequences and steer nothing. `tests/core/test_printable.py` checks the class
against `unicodedata`.
"""

from __future__ import annotations

import json
import re

# Beyond C0 (which `json.dumps` always escapes, so raw in JSON text it is layout).
_BEYOND_C0 = (
    "\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff"
    "\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
_UNSAFE = re.compile(f"[\x00-\x1f{_BEYOND_C0}]")
_UNSAFE_IN_JSON = re.compile(f"[{_BEYOND_C0}]")
# Folding whitespace in a subject or an error text is only spacing.
_AS_SPACE = frozenset("\t\n\r\x0b\x0c")


def _visible(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _AS_SPACE:
        return " "
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def clean(text: str | None) -> str:
    """``text`` safe for a terminal, a table cell or a web page: every unsafe character
    becomes a visible escape (``\\x1b``, ``\\u202e``), tab and line breaks a space."""
    if not text:
        return ""
    return _UNSAFE.sub(_visible, text)


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON writes characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_text(data: object, *, indent: int | None = 2) -> str:
    """``json.dumps(data, ensure_ascii=False)`` with every unsafe character written as a
    ``\\uXXXX`` escape: the same values for a program that reads it, and nothing that
    steers the terminal of a person who looks at it (``jq -r`` still gives the raw
    value, by choice of whoever runs it). Outside strings JSON text is ASCII, so the
    escapes only ever land inside string literals."""
    return _UNSAFE_IN_JSON.sub(_json_escape, json.dumps(data, indent=indent, ensure_ascii=False))
