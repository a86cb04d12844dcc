"""The FETCH answers of a sync: read off the wire, and parsed when they have a first
sync's shape. Both are speed paths kept for bench target 1 (bench/README.md, session
10): of one ``run --once`` (20k INBOX, 4k in the window; 6.8 G instructions), imaplib's
own reading loop would add 1.5 G instructions and imapclient's parser 4.5 G, about +0.27
and +0.8 on target 1's ratio (limit 1.5).

`read_answer` reads a FETCH answer off imaplib's connection with imaplib's rules but
without its per-line overhead, and returns the data in imaplib's shape
(tests/integration/test_imap_fetch_reader.py compares the two on Dovecot and pymap).

`parse_common` reads the answers a first sync gets from Dovecot and pymap::

    * 12 FETCH (UID 80001 INTERNALDATE "17-Nov-2026 00:58:06 +0000" FLAGS (\\Seen)
                BODY[HEADER.FIELDS (...)] {220}<literal>)

with one regular expression per answer. Any batch with another shape is left to
imapclient's parser (`uidfetch`); tests/mail/test_imapfetch.py checks that both give
the same messages.
"""

from __future__ import annotations

import datetime as dt
import imaplib
import re
from collections.abc import Sequence
from typing import Any

from ackwatch.mail import imapguard

_DATE_TEXT = rb"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"
# The whole head line of the answer a sync gets from Dovecot and pymap (the items in the
# order asked for).
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


def parse_common(data: Sequence[Any]) -> list[tuple[int, dt.datetime, tuple[bytes, ...], bytes]] | None:
    """(UID, INTERNALDATE, FLAGS, header literal) of every answer, in order, when every
    answer of ``data`` has the shape of a first sync's (`_COMMON`, a ``BODY[HEADER.FIELDS
    ...]`` literal, a UID above 0) and no sequence number repeats; None otherwise.

    For such data this is what imapclient's parser gives, read straight off the answers
    with no dict per answer (a first sync reads tens of thousands): with no repeated
    sequence number, no answer is merged into another. Anything else, an unsolicited
    FLAGS answer among them, returns None for imapclient's parser to read.
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
        when = _datetime(day, mon, year, hh, mm, ss, sign, oh, om)
        if when is None:
            return None
        out.append((int(uid), when, tuple(flags.split()), literal))
    return out


def _datetime(
    day: bytes, mon: bytes, year: bytes, hh: bytes, mm: bytes, ss: bytes,
    sign: bytes, oh: bytes, om: bytes,
) -> dt.datetime | None:  # fmt: skip
    """The INTERNALDATE of those parts; None for a month name or a value it cannot be."""
    month = _MONTHS.get(mon.upper())
    if month is None:
        return None
    zone = _ZONES.get(sign + oh + om)
    if zone is None:
        offset = dt.timedelta(hours=int(oh), minutes=int(om))
        zone = dt.timezone(-offset if sign == b"-" else offset)
        _ZONES[sign + oh + om] = zone
    try:
        return dt.datetime(int(year), month, int(day), int(hh), int(mm), int(ss), tzinfo=zone)
    except ValueError:
        return None


# =========================================================================== wire reader


def read_answer(
    imap: imaplib.IMAP4, tag: bytes, name: str = "FETCH"
) -> tuple[str, list[Any], list[Any]]:
    """Read the answer to the command `tag` (sent already): (type, [text], FETCH data).

    The result of imaplib's ``_command_complete(name, tag)`` plus ``_untagged_response(...,
    "FETCH")``, several times faster on big answers: imaplib spends most of a header fetch
    in its per-line bookkeeping (a debug-log ``repr`` of every line, a method call per
    regular expression), not in the socket. Every line is still classified with
    imaplib's own expressions in imaplib's order. Every ``{n}`` literal is read as
    exactly n bytes and never looked into, so a header line such as ``A123 OK`` inside a
    literal cannot end the answer.

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

    while True:
        result = tagged[tag]
        if result is not None:
            del tagged[tag]
            return result
        if untagged.get("BYE"):
            imap._check_bye()
        resp = line_of()
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
