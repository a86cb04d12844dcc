"""The broken-mail corpus (issue 6, "Hostile and broken input").

Three sources, each a list of `Case` (a name and the raw header bytes as IMAP would return
them, or a whole message: the parser stops at the first blank line anyway):

- `hand_written()`: the ``*.eml`` files next to this module (raw 8-bit latin-1 / cp1251 /
  shift_jis headers, unknown charsets, unterminated encoded-words, NUL bytes, lines
  without a colon, whitespace-only folds, far past / future dates, missing, junk and
  duplicate Message-IDs, self references, garbage addresses, empty input, only CRLF).
- `generated()`: what is too big or too regular to keep as a file (1 MB headers, 5,000
  References, a From with 1,000 addresses, deep comment nesting, ...).
- `stdlib_messages()`: CPython's own email test messages (``test/test_email/data``), when
  the Python install ships the ``test`` package (`STDLIB_SKIP_REASON` says why not).

`normal_mail()` is the well-formed client mail that follows a broken one: it must still
become an item whatever came before it.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent

# The normal mail comes from a sender and with a subject no corpus mail shares, so that
# no threading fallback can fold it into a broken mail's item.
NORMAL_SENDER = "Grace Hopper <grace@normal-client.example>"
NORMAL_SUBJECT = "Banner sizes for the autumn launch"


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes

    def __repr__(self) -> str:  # pytest ids / hypothesis output: never 1 MB of bytes
        return f"Case({self.name!r}, {len(self.data)} bytes)"


def hand_written() -> list[Case]:
    return [Case(p.stem, p.read_bytes()) for p in sorted(HERE.glob("*.eml"))]


def _join(*lines: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n"


def generated() -> list[Case]:
    base = b"To: anna@agency.example"
    refs = b" ".join(b"<ref.%d@thread.example>" % i for i in range(5000))
    thousand = b", ".join(b"Person %d <p%d@crowd.example>" % (i, i) for i in range(1000))
    cases = [
        Case(
            "one_mb_single_header",
            _join(b"From: jan@big.example", base, b"Subject: " + b"A" * (1 << 20)),
        ),
        Case(
            "over_one_mb_of_header_lines",
            # more than MAX_HEADER_BYTES of lines: the From comes last and is cut off
            b"".join(b"X-Filler-%d: %s\r\n" % (i, b"x" * 100) for i in range(11000))
            + _join(b"From: jan@big.example", base, b"Subject: after a megabyte"),
        ),
        Case(
            "references_5000",
            _join(
                b"From: jan@refs.example",
                base,
                b"Subject: Re: long thread",
                b"Message-ID: <refs.5000@refs.example>",
                b"In-Reply-To: <ref.4999@thread.example>",
                b"References: " + refs,
            ),
        ),
        Case(
            "references_5000_folded",
            _join(
                b"From: jan@refs.example",
                base,
                b"Subject: Re: long folded thread",
                b"Message-ID: <refs.folded@refs.example>",
                b"References:" + b"".join(b"\r\n <ref.%d@thread.example>" % i for i in range(5000)),
            ),
        ),
        Case(
            "from_1000_addresses",
            _join(b"From: " + thousand, base, b"Subject: many senders",
                  b"Message-ID: <crowd.1@crowd.example>"),
        ),
        Case(
            "to_and_cc_50000_addresses",
            _join(
                b"From: jan@crowd.example",
                b"To: " + b", ".join(b"t%d@crowd.example" % i for i in range(50000)),
                b"Cc: " + b",".join(b"c%d@crowd.example" % i for i in range(50000)),
                b"Subject: huge recipient list",
            ),
        ),
        Case(
            "deeply_nested_comments",
            _join(b"From: " + b"(" * 5000 + b"jan@nest.example" + b")" * 5000, base,
                  b"Subject: nested", b"Reply-To: " + b"(" * 20000),
        ),
        Case(
            "quoted_string_never_closed",
            _join(b'From: "' + b"\\" * 5000 + b"jan@quote.example", base, b"Subject: quotes"),
        ),
        Case(
            "encoded_word_flood",
            _join(b"From: jan@words.example", base,
                  b"Subject: " + b" ".join([b"=?utf-8?q?=C5=BC?="] * 6000)
                  + b" =?utf-8?b?" + b"////" * 3000),
        ),
        Case(
            "split_multibyte_encoded_words",
            _join(b"From: jan@words.example", base,
                  b"Subject: =?utf-8?b?xZ?= =?utf-8?b?vDs8w?= =?shift_jis?B?gqA?="),
        ),
        Case(
            "nul_flood",
            _join(b"From: jan@nul.example", base, b"Subject: " + b"\x00" * 100000,
                  b"Message-ID: <\x00\x00@nul.example>"),
        ),
        Case("only_nul_bytes", b"\x00" * 4096),
        Case("only_whitespace_lines", b" \r\n\t\r\n \t \r\n" * 1000),
        Case("continuation_without_field", b"  folded first\r\n\tmore\r\n" + base + b"\r\n\r\n"),
        Case("random_8bit_bytes", bytes((i * 7919 + 13) % 256 for i in range(20000))),
        Case(
            "mixed_8bit_everywhere",
            _join(
                "From: Ĺukasz Żółw <łukasz@klient.example>".encode("cp1250"),
                "To: Анна <anna@agency.example>".encode("koi8-r"),
                "Subject: 件名 Temat zamówienia".encode("shift_jis", "replace"),
                b"Message-ID: <\xff\xfe@bytes.example>",
            ),
        ),
        Case(
            "dates_out_of_range",
            _join(b"From: jan@dates.example", base, b"Subject: dates",
                  b"Date: Sat, 99 Foo 99999999999999999999 99:99:99 +9999",
                  b"Message-ID: <dates.1@dates.example>"),
        ),
        Case(
            "loop_in_references",
            _join(b"From: jan@loop.example", base, b"Subject: Re: loop",
                  b"Message-ID: <loop.a@loop.example>",
                  b"In-Reply-To: <loop.b@loop.example>",
                  b"References: <loop.b@loop.example> <loop.a@loop.example> <loop.b@loop.example>"),
        ),
        Case(
            "forged_ackwatch_header_from_outside",
            _join(b"From: mallory@evil.example", base, b"Subject: not a nudge",
                  b"X-Ackwatch: nudge", b"X-Ackwatch-Items: <\r\n\r\n>",
                  b"Message-ID: <forged.1@evil.example>"),
        ),
    ]
    return cases


STDLIB_DIR: Path | None = None
STDLIB_SKIP_REASON = ""
try:  # the "test" package is optional in Python installs (Debian ships it separately)
    import test.test_email as _test_email

    STDLIB_DIR = Path(os.path.dirname(_test_email.__file__)) / "data"
    if not any(STDLIB_DIR.glob("msg_*.txt")):
        STDLIB_DIR = None
        STDLIB_SKIP_REASON = "test.test_email has no data/msg_*.txt files"
except ImportError as exc:  # pragma: no cover - depends on the interpreter
    STDLIB_SKIP_REASON = f"the stdlib test package is not installed ({exc})"


def stdlib_messages() -> list[Case]:
    if STDLIB_DIR is None:
        return []
    return [Case(f"stdlib_{p.stem}", p.read_bytes()) for p in sorted(STDLIB_DIR.glob("msg_*.txt"))]


def all_cases() -> list[Case]:
    return hand_written() + generated() + stdlib_messages()


def normal_mail(n: int, received: dt.datetime) -> bytes:
    """A well-formed client mail (unknown sender, tracked) with a unique Message-ID."""
    date = received.strftime("%a, %d %b %Y %H:%M:%S +0000")
    return _join(
        f"From: {NORMAL_SENDER}".encode(),
        b"To: Anna Nowak <anna@agency.example>",
        f"Subject: {NORMAL_SUBJECT} #{n}".encode(),
        f"Date: {date}".encode(),
        f"Message-ID: <normal.{n}@normal-client.example>".encode(),
    )


def normal_key(n: int) -> str:
    return f"<normal.{n}@normal-client.example>"
