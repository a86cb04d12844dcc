"""A fast path for parsing the ``UID FETCH`` answers of a sync.

imapclient's `parse_fetch_response` is a general IMAP lexer written in Python; on a first
sync of 20,000 header blocks it took more time than the server needed to send them
(bench target 1). The answers a sync asks for have one regular shape::

    * 12 FETCH (UID 80001 INTERNALDATE "17-Nov-2026 00:58:06 +0000" FLAGS (\\Seen)
                BODY[HEADER.FIELDS (...)] {220}<literal>)

`parse_fetch` reads that shape with a few regular expressions and hands every answer it
does not recognise in full (another item, a quoted or NIL value in an unexpected place,
a second literal, odd spacing) to imapclient's parser, one answer at a time. The result
is the same mapping `parse_fetch_response(data, normalise_times=False,
uid_is_key=False)` returns: sequence number -> {item name: value}; the property tests
in tests/test_imapfetch.py compare the two.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from typing import Any

from imapclient.response_parser import parse_fetch_response

_HEAD = re.compile(rb"(\d+) \((.*)\Z", re.S)
_ITEM = re.compile(
    rb" ?(?:"
    rb"(UID|X-GM-THRID) (\d+)"
    rb"|(MODSEQ) \((\d+)\)"
    rb'|(INTERNALDATE) "([^"\\]*)"'
    rb'|(FLAGS) \(([^()"{}]*)\)'
    rb"|(BODY\[[A-Z0-9.]+(?: \([A-Z0-9 .-]*\))?\]) (?:\{(\d+)\}\Z|NIL|\"\")"
    rb")"
)
_DATE = re.compile(
    rb"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        (b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN",
         b"JUL", b"AUG", b"SEP", b"OCT", b"NOV", b"DEC"),
        start=1,
    )
}
_ZONES: dict[bytes, dt.timezone] = {}


class _Unrecognised(Exception):
    """This answer is left to imapclient's parser."""


def parse_fetch(data: Sequence[Any]) -> dict[int, dict[bytes, Any]]:
    """Sequence number -> items, as imapclient's ``parse_fetch_response(data, False, False)``.

    Raises what imapclient raises for an answer neither parser can read.
    """
    out: dict[int, dict[bytes, Any]] = {}
    for answer in _answers(data):
        try:
            seq, items = _parse_answer(answer)
        except _Unrecognised:
            for seq, items in parse_fetch_response(answer, False, False).items():
                out.setdefault(seq, {}).update(items)
            continue
        out.setdefault(seq, {}).update(items)
    return out


def _answers(data: Sequence[Any]) -> Iterator[list[Any]]:
    """Group imaplib's data into answers: literal tuples plus the line that closes them."""
    current: list[Any] = []
    for element in data:
        if element is None:
            continue
        current.append(element)
        if not isinstance(element, tuple):
            yield current
            current = []
    if current:
        yield current


def _parse_answer(answer: list[Any]) -> tuple[int, dict[bytes, Any]]:
    if len(answer) == 1 and isinstance(answer[0], bytes):
        head, literal, tail = answer[0], None, None
    elif (
        len(answer) == 2
        and isinstance(answer[0], tuple)
        and len(answer[0]) == 2
        and isinstance(answer[1], bytes)
    ):
        (head, literal), tail = answer
        if tail.strip() != b")":
            raise _Unrecognised
    else:
        raise _Unrecognised
    m = _HEAD.match(head)
    if m is None:
        raise _Unrecognised
    seq = int(m.group(1))
    body = m.group(2)
    if literal is None:
        if not body.endswith(b")"):
            raise _Unrecognised
        body = body[:-1]
    items: dict[bytes, Any] = {b"SEQ": seq}
    pos = 0
    while pos < len(body):
        im = _ITEM.match(body, pos)
        if im is None or im.end() == pos:
            raise _Unrecognised
        g = im.groups()
        if g[0] is not None:
            items[g[0]] = int(g[1])
        elif g[2] is not None:
            items[b"MODSEQ"] = (int(g[3]),)
        elif g[4] is not None:
            items[b"INTERNALDATE"] = _internaldate(g[5])
        elif g[6] is not None:
            items[b"FLAGS"] = tuple(g[7].split())
        else:
            name, size = g[8], g[9]
            if size is not None:
                if literal is None or int(size) != len(literal):
                    raise _Unrecognised
                items[name] = literal
                literal = None
            else:
                items[name] = None if im.group(0).endswith(b"NIL") else b""
        pos = im.end()
    if literal is not None:  # a literal that no item claimed
        raise _Unrecognised
    return seq, items


def _internaldate(text: bytes) -> dt.datetime:
    m = _DATE.match(text)
    if m is None:
        raise _Unrecognised
    day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
    month = _MONTHS.get(mon.upper())
    if month is None:
        raise _Unrecognised
    zone = _ZONES.get(sign + oh + om)
    if zone is None:
        offset = dt.timedelta(hours=int(oh), minutes=int(om))
        zone = dt.timezone(-offset if sign == b"-" else offset)
        _ZONES[sign + oh + om] = zone
    try:
        return dt.datetime(int(year), month, int(day), int(hh), int(mm), int(ss), tzinfo=zone)
    except ValueError:
        raise _Unrecognised from None
