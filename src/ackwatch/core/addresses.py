"""RFC 5322 address lists, read the same way on every Python (DESIGN.md "Trust").

`email.utils.getaddresses` changed its answers between Python patch levels (3.11.7 reads
``anna@agency.example <attacker@evil.example>`` as two addresses, later releases as none),
and who a mail is from decides whether it silences a nudge. This reader is ours, total
(never raises) and deterministic. The rules:

* An entry's mailbox is the address inside its *last* ``<...>``; whatever stands outside
  the brackets (atoms, quoted strings, encoded words, even text with ``@`` in it) is the
  display name and never supplies an address.
* An entry without brackets must be one addr-spec (``local@domain``; blanks around ``.``
  and ``@`` are allowed, as the obsolete syntax does); anything else in it (two words
  with ``@``, a bare name) gives no mailbox.
* ``,`` separates entries; ``Team: a@x, b@y;`` is a group (its name is dropped, its
  members are entries); ``(...)`` comments (nested) are dropped, or give the name of an
  entry that has no other (``a@x (Anna)``); ``<@route,@route:addr>`` keeps ``addr``.
* Bounded: at most `MAX_ENTRIES` entries are read; comment nesting deeper than
  `MAX_COMMENT_DEPTH` is a malformation. One pass over the text, no recursion.

What was malformed (an unterminated quote, comment or bracket, a stray ``>``, an entry
without a mailbox, two bracketed addresses in one entry) makes the list not ``clean``;
the caller names that as a defect of the mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ENTRIES = 500  # as many as `message.MAX_ADDRESSES` keeps
MAX_COMMENT_DEPTH = 32

# Up to the next character that means something outside quotes, comments and brackets.
_TEXT_RUN = re.compile(r'[^"()<>,;:\\]+')
_BLANKS = re.compile(r"\s+")
_BLANK_AROUND = re.compile(r"\s*([.@])\s*")


@dataclass(frozen=True, slots=True)
class ParsedList:
    """The entries of an address list as (display name, mailbox) pairs, in order; the
    mailbox is "" for an entry where none could be read. ``clean`` is False when
    anything read was malformed."""

    entries: tuple[tuple[str, str], ...]
    clean: bool
    truncated: bool = False  # more than MAX_ENTRIES entries: the rest was not read


class _Entry:
    __slots__ = ("angles", "comments", "spec", "words")

    def __init__(self) -> None:
        self.words: list[str] = []  # text outside brackets: atoms and quoted strings
        self.spec: list[str] = []  # the same as written (quoted strings keep their quotes)
        self.angles: list[str] = []  # the contents of each <...>
        self.comments: list[str] = []

    def empty(self) -> bool:
        return not self.angles and not "".join(self.spec).strip()


def _quoted(value: str, start: int) -> tuple[str, int, bool]:
    """The unescaped content of the quoted string at ``start`` (a ``"``), the index after
    it, and whether it was terminated."""
    out: list[str] = []
    i, end = start + 1, len(value)
    while i < end:
        ch = value[i]
        if ch == "\\" and i + 1 < end:
            out.append(value[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1, True
        else:
            out.append(ch)
            i += 1
    return "".join(out), end, False


def _comment(value: str, start: int) -> tuple[str, int, bool]:
    """The text of the (nested) comment at ``start`` (a ``(``), the index after it, and
    whether it was well-formed (terminated, nesting within bounds)."""
    depth, i, end = 0, start, len(value)
    ok = True
    out: list[str] = []
    while i < end:
        ch = value[i]
        if ch == "\\" and i + 1 < end:
            out.append(value[i + 1])
            i += 2
            continue
        if ch == "(":
            depth += 1
            if depth > MAX_COMMENT_DEPTH:
                ok = False
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return "".join(out[1:]), i + 1, ok
        out.append(ch)
        i += 1
    return "".join(out[1:]), end, False


def _addr_spec(text: str) -> str | None:
    """One addr-spec from text outside brackets, or None when it is not one."""
    text = _BLANK_AROUND.sub(r"\1", text.strip())
    if not text or "@" not in text or _BLANKS.search(text):
        return None
    return text


def _finish(entry: _Entry, out: list[tuple[str, str]]) -> bool:
    """Append the entry's (name, mailbox); False when it is malformed."""
    words = " ".join(w for w in (" ".join(entry.words)).split())
    comment = " ".join(" ".join(entry.comments).split())
    if entry.angles:
        inner = "".join(entry.angles[-1].split())
        if inner.startswith("@") and ":" in inner:  # obsolete route: <@a,@b:addr>
            inner = inner.rpartition(":")[2]
        out.append((words or comment, inner))
        return len(entry.angles) == 1 and bool(inner)
    address = _addr_spec("".join(entry.spec))
    if address is None:
        out.append((words or comment, ""))
        return False
    out.append((comment, address))
    return True


def parse_address_list(value: str) -> ParsedList:
    """The entries of an address header's value (see the module docstring)."""
    out: list[tuple[str, str]] = []
    clean = True
    entry = _Entry()
    in_group = False
    i, end = 0, len(value)
    while i < end and len(out) < MAX_ENTRIES:
        ch = value[i]
        if ch == '"':
            start = i
            text, i, ok = _quoted(value, i)
            entry.words.append(text)
            entry.spec.append(value[start:i])
            clean &= ok
        elif ch == "(":
            text, i, ok = _comment(value, i)
            entry.comments.append(text)
            entry.words.append(" ")  # a comment separates words
            entry.spec.append(" ")
            clean &= ok
        elif ch == "<":
            close = value.find(">", i + 1)
            if close < 0:
                clean = False
                close = end
            inside = value[i + 1 : close]
            if "<" in inside:  # "<x<y@z>": the mailbox is in the last "<...>"
                clean = False
                inside = inside.rpartition("<")[2]
            entry.angles.append(inside)
            i = close + 1
        elif ch in ",;":
            if not entry.empty():
                clean &= _finish(entry, out)
            entry = _Entry()
            if ch == ";":
                in_group = False
            i += 1
        elif ch == ":" and not in_group and not entry.angles:
            entry = _Entry()  # a group's name: dropped
            in_group = True
            i += 1
        elif ch == "\\":
            entry.words.append(value[i + 1 : i + 2])
            entry.spec.append(value[i : i + 2])
            clean = False  # an escape outside a quoted string is not legal
            i += 2
        elif ch in ":>)":
            clean = False  # a stray ">" or ")", or a second ":"
            entry.words.append(" ")
            entry.spec.append(" ")
            i += 1
        else:
            m = _TEXT_RUN.match(value, i)
            assert m is not None  # ch is none of the specials
            entry.words.append(m.group())
            entry.spec.append(m.group())
            i = m.end()
    truncated = i < end and bool(value[i:].strip(" \t,;"))
    if i >= end and not entry.empty():
        clean &= _finish(entry, out)
    return ParsedList(tuple(out), clean, truncated)


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDR = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_ENTRY = re.compile(
    rf'[ \t]*(?:"([^"\\\r\n]*)"[ \t]*<({_PLAIN_ADDR})>'
    rf"|((?:{_ATOM}[ \t]+)*{_ATOM})?[ \t]*<({_PLAIN_ADDR})>"
    rf"|({_PLAIN_ADDR}))[ \t]*(?:,|\Z)"
)
_PLAIN_BLANKS = re.compile(r"[ \t]+")


def plain_addresses(value: str) -> list[tuple[str, str]] | None:
    """`addresses.parse_address_list` for the everyday shapes, ten times faster; None
    otherwise.

    ``a@b.example``, ``Name <a@b.example>``, ``"Last, First" <a@b.example>``, separated
    by commas. Anything else (comments, groups, dots, ``@`` or non-ASCII in an unquoted
    name, escapes, stray commas) returns None and is left to the general reader
    (tests/core/test_addresses.py checks the two agree on everything this accepts).
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
            out.append((_PLAIN_BLANKS.sub(" ", phrase) if phrase else "", addr2))
        pos = m.end()
    return out
