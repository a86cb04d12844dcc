"""A fast path for parsing the ``UID FETCH`` answers of a sync.

imapclient's `parse_fetch_response` is a general IMAP lexer written in Python; on a first
sync of 20,000 header blocks it took more time than the server needed to send them
(bench target 1). The answers a sync asks for have one regular shape::

    * 12 FETCH (UID 80001 INTERNALDATE "17-Nov-2026 00:58:06 +0000" FLAGS (\\Seen)
                BODY[HEADER.FIELDS (...)] {220}<literal>)

`parse_fetch` reads that shape with one regular expression (`_COMMON`, the items in the
order Dovecot and pymap send them), other orders item by item, and hands every answer it
does not recognise in full (another item, a quoted or NIL value in an unexpected place,
a second literal, odd spacing) to imapclient's parser, one answer at a time. The result
is the same mapping `parse_fetch_response(data, normalise_times=False,
uid_is_key=False)` returns: sequence number -> {item name: value}; the property tests
in tests/mail/test_imapfetch.py compare the two.

`read_answer` is the matching fast path on the wire: it reads a FETCH answer off
imaplib's connection with imaplib's rules but without its per-line overhead, and returns
the data in imaplib's shape (tests/integration/test_imap_fetch_reader.py compares the
two on Dovecot and pymap).
"""

from __future__ import annotations

import datetime as dt
import imaplib
import re
from collections.abc import Iterator, Sequence
from typing import Any

from imapclient.response_parser import parse_fetch_response

from ackwatch.mail import imapguard

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
_DATE_TEXT = rb"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"
_DATE = re.compile(_DATE_TEXT + rb"\Z")
# The whole head line of the answer a sync gets from Dovecot and pymap (the items in the
# order asked for): one match instead of one per item. Anything else takes the item loop.
_COMMON = re.compile(
    rb"(\d+) \(UID (\d+)"
    rb' INTERNALDATE "' + _DATE_TEXT + rb'"'
    rb" FLAGS \(([^()\"{}]*)\)"
    rb" (BODY\[[A-Z0-9.]+(?: \([A-Z0-9 .-]*\))?\]) \{(\d+)\}\Z"
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


def parse_common(data: Sequence[Any]) -> list[tuple[int, dt.datetime, tuple[bytes, ...], bytes]] | None:
    """(UID, INTERNALDATE, FLAGS, header literal) of every answer, in order, when every
    answer of ``data`` has the shape of a first sync's (`_COMMON`, a ``BODY[HEADER.FIELDS
    ...]`` literal, a UID above 0) and no sequence number repeats; None otherwise.

    For such data this is what `parse_fetch` gives, read straight off the answers with no
    dict per answer (a first sync reads tens of thousands): with no repeated sequence
    number, no answer is merged into another. Anything else, an unsolicited FLAGS
    answer among them, returns None for `parse_fetch` to read.
    """
    if len(data) % 2:
        return None
    out = []
    seqs: set[int] = set()
    match = _COMMON.match
    for i in range(0, len(data), 2):
        first, tail = data[i], data[i + 1]
        if type(first) is not tuple or len(first) != 2 or tail != b")":
            return None
        head, literal = first
        m = match(head) if type(head) is bytes and type(literal) is bytes else None
        if m is None:
            return None
        seq, uid, day, mon, year, hh, mm, ss, sign, oh, om, flags, name, size = m.groups()
        if (
            int(size) != len(literal)
            or not name.startswith(b"BODY[HEADER.FIELDS")
            or int(seq) in seqs
            or int(uid) <= 0
        ):
            return None
        seqs.add(int(seq))
        try:
            when = _datetime(day, mon, year, hh, mm, ss, sign, oh, om)
        except _Unrecognised:
            return None
        out.append((int(uid), when, tuple(flags.split()), literal))
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
    if literal is not None:
        common = _COMMON.match(head)
        if common is not None:
            return _parse_common(common, literal)
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


def _parse_common(m: re.Match[bytes], literal: Any) -> tuple[int, dict[bytes, Any]]:
    """What the item loop makes of a `_COMMON` head line, in one step."""
    seq_text, uid, *date, flags, name, size = m.groups()
    if int(size) != len(literal):
        raise _Unrecognised
    seq = int(seq_text)
    return seq, {
        b"SEQ": seq,
        b"UID": int(uid),
        b"INTERNALDATE": _datetime(*date),
        b"FLAGS": tuple(flags.split()),
        name: literal,
    }


def _internaldate(text: bytes) -> dt.datetime:
    m = _DATE.match(text)
    if m is None:
        raise _Unrecognised
    return _datetime(*m.groups())


def _datetime(
    day: bytes, mon: bytes, year: bytes, hh: bytes, mm: bytes, ss: bytes,
    sign: bytes, oh: bytes, om: bytes,
) -> dt.datetime:  # fmt: skip
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


# =========================================================================== wire reader


def read_answer(
    imap: imaplib.IMAP4, tag: bytes, name: str = "FETCH"
) -> tuple[str, list[Any], list[Any]]:
    """Read the answer to the command `tag` (sent already): (type, [text], FETCH data).

    The result of imaplib's ``_command_complete(name, tag)`` plus ``_untagged_response(...,
    "FETCH")``, several times faster on big answers: imaplib spends most of a header fetch
    in its per-line bookkeeping (a debug-log ``repr`` of every line, a method call per
    regular expression), not in the socket. Every line is still classified as imaplib
    classifies it: the usual one, an untagged FETCH announcing a literal, by one expression
    (`_FETCH_LITERAL`) that accepts just what imaplib's two accept together, every other
    line with imaplib's own expressions in imaplib's order. Every ``{n}`` literal is read
    as exactly n bytes and never looked into, so a header line such as ``A123 OK`` inside
    a literal cannot end the answer.

    * Untagged FETCH responses, ours and unsolicited ones, come back in imaplib's shape:
      ``(line, literal)`` tuples and the lines that close them; FETCH data imaplib held
      from before is included, as ``_untagged_response`` would include it.
    * Every other untagged response (EXISTS, EXPUNGE, RECENT, FLAGS, VANISHED,
      ``OK [code]``...) is filed in ``imap.untagged_responses`` as imaplib files it, so
      the watcher still sees the news about the selected folder.
    * ``BYE`` raises ``imap.abort``, a BAD completion ``imap.error`` (imaplib's messages);
      the completion of another command still in flight is filed in
      ``imap.tagged_commands``. A ``NO`` is returned (for the caller's ``_checkok``) with
      the FETCH data left in ``untagged_responses``, where imaplib leaves it.

    All reads go through ``imap.readline`` / ``imap.read``, the buffered socket file
    (plain or TLS), so the connection's timeout applies to every one of them.
    """
    fetched: list[Any] = imap.untagged_responses.pop("FETCH", None) or []
    try:
        imap._check_bye()
        try:
            typ, data = _read_until(imap, tag, fetched)
        except imapguard.Ended:
            raise
        except imap.abort as val:
            raise imap.abort(f"command: {name} => {val}")  # noqa: B904 - imaplib's chaining
        except imap.error as val:
            raise imap.error(f"command: {name} => {val}")  # noqa: B904
        imap._check_bye()
        if typ == "BAD":
            raise imap.error(f"{name} command error: {typ} {data}")
    except BaseException:
        _leave_fetch_data(imap, fetched)
        raise
    if typ != "OK":
        _leave_fetch_data(imap, fetched)
    return typ, data, fetched


def _leave_fetch_data(imap: imaplib.IMAP4, fetched: list[Any]) -> None:
    if fetched:
        imap.untagged_responses["FETCH"] = fetched


def _read_until(imap: imaplib.IMAP4, tag: bytes, fetched: list[Any]) -> tuple[str, list[Any]]:
    """imaplib's ``_get_tagged_response`` loop around a lean ``_get_response``."""
    tagged = imap.tagged_commands
    untagged = imap.untagged_responses
    tagre, status_re, literal_re = imap.tagre, imap.Untagged_status, imap.Literal
    untagged_re, continuation_re = imaplib.Untagged_response, imaplib.Continuation
    encoding = imap._encoding
    line_of = _line_reader(imap)
    read = imap.read

    def append(typ: str, dat: Any) -> None:
        if typ == "FETCH":
            fetched.append(dat)
        else:
            imap._append_untagged(typ, dat)

    fetch_literal = _FETCH_LITERAL.match
    while True:
        result = tagged[tag]
        if result is not None:
            del tagged[tag]
            return result
        if untagged.get("BYE"):
            imap._check_bye()
        resp = line_of()
        m = fetch_literal(resp)
        if m is not None:  # what the general path below makes of such a line, in one step
            fetched.append((m.group(1) + b" " + m.group(2), read(int(m.group(3)))))
            dat = line_of()  # the trailer, possibly announcing another literal
            if dat == b")":
                fetched.append(dat)
                continue
            while (lm := literal_re.match(dat)) is not None:
                fetched.append((dat, read(int(lm.group("size")))))
                dat = line_of()
            fetched.append(dat)
            continue
        m = tagre.match(resp)
        if m is not None:
            other = m.group("tag")
            if other not in tagged:
                raise imap.abort(f"unexpected tagged response: {resp!r}")
            typ = str(m.group("type"), encoding)
            dat = m.group("data")
            tagged[other] = (typ, [dat])
        else:
            m = untagged_re.match(resp)
            dat2 = None
            if m is None:
                m = status_re.match(resp)
                if m is not None:
                    dat2 = m.group("data2")
            if m is None:
                c = continuation_re.match(resp)
                if c is None:
                    raise imap.abort(f"unexpected response: {resp!r}")
                imap.continuation_response = c.group("data")
                continue
            typ = str(m.group("type"), encoding)
            dat = m.group("data")
            if dat is None:
                dat = b""
            if dat2:
                dat = dat + b" " + dat2
            while (lm := literal_re.match(dat)) is not None:
                append(typ, (dat, read(int(lm.group("size")))))
                dat = line_of()  # the trailer, possibly announcing another literal
            append(typ, dat)
        if typ in ("OK", "NO", "BAD"):
            code = imaplib.Response_code.match(dat)
            if code is not None:
                imap._append_untagged(str(code.group("type"), encoding), code.group("data"))


# An untagged FETCH response line announcing a literal: `imaplib.Untagged_status` with
# type FETCH (``* 12 FETCH (... {220}``), whose data then match `imaplib.Literal`.
# Groups: the sequence number, the rest of the line, the literal's size.
_FETCH_LITERAL = re.compile(rb"\* (\d+) FETCH (.*\{(\d+)\})\Z", re.ASCII)


def _line_reader(imap: imaplib.IMAP4) -> Any:
    """imaplib's ``_get_line`` without its debug log."""
    readline = imap.readline

    def line_of() -> bytes:
        line = readline()
        if not line:
            raise imap.abort("socket error: EOF")
        if not line.endswith(b"\r\n"):
            raise imap.abort(f"socket error: unterminated line: {line!r}")
        return line[:-2]

    return line_of
