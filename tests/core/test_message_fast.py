"""The fast paths of `parse_message` give exactly what the plain implementation gave.

`reference_parse_message` below is the parser as it was before the fast paths (header
splitting in one regex pass, memoized addresses and encoded subjects): it is kept here,
and only here, as the oracle; dates and message ids it reads with the parser's own
functions, which have no fast path. Every test compares
whole `Message` values (``==`` and ``repr``, so time zones and types count too).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.hostile.corpus import all_cases

import ackwatch.core.headers as headers
import ackwatch.core.message as message
from ackwatch.core.addresses import parse_address_list
from ackwatch.core.headers import (
    MAX_FIELD_BYTES,
    MAX_HEADER_BYTES,
    clean_text,
    decode_raw_values,
    decode_words,
)
from ackwatch.core.message import (
    HEADER_FIELDS,
    MAX_ADDRESSES,
    MAX_NAME_CHARS,
    MAX_SUBJECT_CHARS,
    Address,
    FolderRole,
    Message,
    _stable_key,
    _to_utc,
    parse_message,
)
from ackwatch.core.message_ids import MAX_REFERENCES, extract_message_ids
from ackwatch.core.provenance import (
    MAX_AUTH_HEADERS,
    MAX_HOPS,
    UNKNOWN_HOP,
    parse_auth_results,
    parse_received,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mail"
RECEIVED = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)

# =========================================================================== the reference
# Verbatim from src/ackwatch/core/message.py before the fast paths (only renamed); it uses the
# unchanged helpers (decode_words, clean_text, normalize_message_id, ...).
# Since issue 18 it reads addresses with the general `parse_address_list` (no fast path)
# and keeps every Authentication-Results and Received value.

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
_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:(.*)$", re.DOTALL)
_LINE_SPLIT = re.compile(rb"\r\n|\n|\r")
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_BARE_ID = re.compile(r"[^\s<>,;\"()]+@[^\s<>,;\"()]+")
_ADDR_OK = re.compile(r"^[^\s@<>()\[\],;:\\\"]+@[^\s@<>()\[\],;:\\\"]+$")
_ADDR_SALVAGE = re.compile(r"[^\s@<>()\[\],;:\\\"']+@[^\s@<>()\[\],;:\\\"']+")
_WS = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_UTC = dt.UTC


def reference_split_headers(data: bytes, defects: set[str]) -> list[tuple[str, bytes]]:
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


def reference_addresses(value: str | None, defects: set[str], field: str) -> tuple[Address, ...]:
    if value is None:
        return ()
    parsed = parse_address_list(value)
    if not parsed.clean:
        defects.add(f"bad-address:{field}")
    if parsed.truncated:
        defects.add(f"header-too-long:{field}")
    result: list[Address] = []
    seen: set[str] = set()
    for name, addr in parsed.entries:
        if not addr:
            continue
        addr = addr.strip().lower()
        if _CONTROL.search(addr):
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
        display = clean_text(decode_words(name, defects, field), MAX_NAME_CHARS)
        result.append(Address(addr, display))
        if len(result) >= MAX_ADDRESSES:
            defects.add(f"header-too-long:{field}")
            break
    return tuple(result)


def reference_as_flags(flags: Iterable[str | bytes]) -> frozenset[str]:
    out = set()
    for f in flags or ():
        if isinstance(f, bytes):
            f = f.decode("utf-8", "replace")
        out.add(str(f))
    return frozenset(out)


def reference_as_datetime(value: dt.datetime | str, defects: set[str], what: str) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")
    return _to_utc(value, defects, what)


def reference_parse_message(
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
) -> Message:
    defects: set[str] = set()
    received_utc = reference_as_datetime(received, defects, "received")
    answered_utc = (
        None if answered_at is None else reference_as_datetime(answered_at, defects, "answered")
    )
    dismissed_utc = (
        None if dismissed_at is None else reference_as_datetime(dismissed_at, defects, "dismissed")
    )
    if isinstance(header_bytes, str):
        try:
            header_bytes = header_bytes.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
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
        fields = reference_split_headers(header_bytes, defects)
    except Exception:  # pragma: no cover
        defects.add("unparseable-headers")
        fields = []

    raw: dict[str, str] = {}
    capped = []
    trace: dict[str, list[str]] = {"authentication-results": [], "received": []}
    for name, value_bytes in fields:
        if len(value_bytes) > MAX_FIELD_BYTES:
            defects.add(f"header-too-long:{name}")
            if name == "references":
                value_bytes = value_bytes[-MAX_FIELD_BYTES:]
            else:
                value_bytes = value_bytes[:MAX_FIELD_BYTES]
        capped.append((name, value_bytes))
    # Raw 8-bit values are read in a guessed charset (one guess per mail).
    for name, text in decode_raw_values(capped, defects):
        if name in trace:
            trace[name].append(text)
        if name in raw:
            if name in _JOINED:
                raw[name] = raw[name] + _JOINED[name] + text
            elif name in _SINGLE and raw[name].strip() != text.strip():
                defects.add(f"duplicate-header:{name}")
            continue
        raw[name] = text

    def get(name: str) -> str | None:
        value = raw.get(name)
        return None if value is None else value.strip()

    def lowered(name: str) -> str | None:
        value = get(name)
        return None if value is None else " ".join(value.lower().split())

    from_list = reference_addresses(get("from"), defects, "from")
    if not from_list:
        defects.add("no-from" if get("from") is None else "bad-address:from")
    sender = from_list[0] if from_list else Address("")
    if len(from_list) > 1:
        defects.add("multiple-from")
    reply_to = reference_addresses(get("reply-to"), defects, "reply-to")
    to = reference_addresses(get("to"), defects, "to")
    cc = reference_addresses(get("cc"), defects, "cc")

    subject_raw = get("subject")
    subject = (
        clean_text(decode_words(subject_raw, defects, "subject"), MAX_SUBJECT_CHARS)
        if subject_raw
        else ""
    )
    if subject_raw and len(subject_raw) > 4 * MAX_SUBJECT_CHARS:
        defects.add("header-too-long:subject")
    message_id: str | None = None
    mid_raw = get("message-id")
    if mid_raw is None or not mid_raw:
        defects.add("no-message-id")
    else:
        ids = extract_message_ids(mid_raw, limit=None)
        if ids:
            message_id = ids[0]
        else:
            defects.add("bad-message-id")
    own_addresses = {a.address for a in (*from_list, *reply_to, *to, *cc)}

    def thread_ids(name: str, limit: int) -> tuple[str, ...]:
        value = get(name)
        if not value:
            return ()
        ids = extract_message_ids(value, limit=None)
        if not ids:
            defects.add("junk-reference")
            return ()
        kept = tuple(i for i in ids if i[1:-1].lower() not in own_addresses and i != message_id)
        if len(kept) != len(ids):
            defects.add("junk-reference")
        if len(kept) > limit:
            defects.add("too-many-references")
            kept = kept[-limit:]
        return kept

    in_reply_to = thread_ids("in-reply-to", 10)
    references = thread_ids("references", MAX_REFERENCES)
    thread_index = get("thread-index")
    thread_index = _WS.sub("", thread_index)[:4096] if thread_index else None

    key = message_id or _stable_key(
        sender, message._parse_date(get("date"), defects), get("date"), subject, to)
    auth_ids: set[str] = set()
    auth_results: tuple = ()
    for v in trace["authentication-results"][:MAX_AUTH_HEADERS]:
        authserv_id, results = parse_auth_results(v.strip())
        if authserv_id not in auth_ids:  # each id's topmost header only
            auth_ids.add(authserv_id)
            auth_results += results
    hops = tuple(parse_received(v.strip()) for v in trace["received"][:MAX_HOPS])
    if len(trace["received"]) > MAX_HOPS:
        defects.add("too-many-received")
        hops += (UNKNOWN_HOP,)

    def plain(name: str, limit: int = 2000) -> str | None:
        value = get(name)
        if value is None:
            return None
        return clean_text(value, limit)

    return Message(
        key=key,
        message_id=message_id,
        mailbox=mailbox,
        folder=folder,
        role=role,
        uid=int(uid),
        received=received_utc,
        flags=reference_as_flags(flags),
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
        auto_submitted=lowered("auto-submitted"),
        x_autoreply=plain("x-autoreply", 200),
        x_autorespond=plain("x-autorespond", 200),
        precedence=lowered("precedence"),
        list_id=plain("list-id"),
        list_unsubscribe=plain("list-unsubscribe"),
        return_path=plain("return-path", 1000),
        x_ackwatch=lowered("x-ackwatch"),
        extra_from=from_list[1:],
        auth_results=auth_results,
        received_hops=hops,
        legacy_fetch=False,
        defects=tuple(sorted(defects)),
    )


# =========================================================================== comparing


def _location(**kw: object) -> dict[str, object]:
    args: dict[str, object] = {
        "mailbox": "anna",
        "folder": "INBOX",
        "role": "inbox",
        "uid": 7,
        "received": RECEIVED,
    }
    args.update(kw)
    return args


def _same(a: object, b: object) -> None:
    assert a == b
    assert repr(a) == repr(b)  # time zones, tuple vs list, ...


def assert_parses_like_reference(data: object, **kw: object) -> Message:
    """The fast parser, twice (the second time from the memos), equals the reference."""
    args = _location(**kw)
    expected = reference_parse_message(data, **args)  # type: ignore[arg-type]
    first = parse_message(data, **args)  # type: ignore[arg-type]
    again = parse_message(data, **args)  # type: ignore[arg-type]
    assert dataclasses.asdict(first) == dataclasses.asdict(expected)
    _same(first, expected)
    _same(again, expected)
    return first


# =========================================================================== whole messages


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.eml")), ids=lambda p: p.stem)
def test_fixture_mails_parse_like_the_reference(path: Path):
    assert_parses_like_reference(path.read_bytes())


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c.name)
def test_hostile_corpus_parses_like_the_reference(case):
    assert_parses_like_reference(case.data)


def _block(*lines: str, end: str = "\r\n\r\n") -> bytes:
    return ("\r\n".join(lines) + end).encode("utf-8", "surrogatepass")


EVERYDAY = _block(
    "Return-Path: <eva@gmail.example>",
    "From: Eva <eva@gmail.example>",
    "To: big100k@agency.example",
    "Subject: SV: Logo files #6223",
    "Date: Tue, 17 Nov 2026 04:42:36 +0000",
    "Message-ID: <1.80001.b451e952@gmail.example>",
    "In-Reply-To: <1.p80001@gmail.example>",
    "References: <1.r80001@agency.example> <1.p80001@gmail.example>",
)

EDGE_BLOCKS = {
    "everyday": EVERYDAY,
    "everyday_without_blank_line": EVERYDAY[:-2],
    "everyday_without_final_crlf": EVERYDAY[:-4],
    "everyday_then_body": EVERYDAY + b"Body: text\r\n\xff\xfe raw body bytes\r\n",
    "lf_only": EVERYDAY.replace(b"\r\n", b"\n"),
    "cr_only": EVERYDAY.replace(b"\r\n", b"\r"),
    "mixed_line_ends": _block("From: a@b.example", "To: c@d.example\nSubject: x\rDate: y"),
    "cr_inside_a_value": _block("From: a@b.example", "Subject: one\rtwo", "To: c@d.example"),
    "crcrlf": _block("From: a@b.example\r", "Subject: s"),
    "leading_blank_lines": b"\r\n\r\n \t\r\n" + EVERYDAY,
    "leading_crlf_only": b"\r\n" + EVERYDAY,
    "mbox_from_line": b"From jan@acme.example Mon Nov 23 10:00:00 2026\r\n" + EVERYDAY,
    "mbox_from_line_with_colon": _block("From : jan@acme.example", "To: c@d.example"),
    "from_line_later_is_junk": _block("To: c@d.example", "From jan@acme.example Mon"),
    "continuation_first": b" folded\r\n" + EVERYDAY,
    "folded_fields": _block(
        "From: Jan",
        " Kowalski <jan@acme.example>",
        "References: <a@x.example>",
        "\t<b@x.example>",
        "  <c@x.example>",
        "Subject: =?utf-8?q?Za=C5=BC=C3=B3?=",
        " =?utf-8?q?=C5=82=C4=87?=",
    ),
    "whitespace_only_line_ends_block": _block("From: a@b.example", " \t", "To: c@d.example"),
    "whitespace_only_line_after_fold": _block("From: a@b.example", " x", "\t", "To: c@d.example"),
    "junk_line_in_the_middle": _block("From: a@b.example", "no colon here", "To: c@d.example"),
    "name_with_space_before_colon": _block("From \t: a@b.example", "To : c@d.example"),
    "name_with_inner_space": _block("Fr om: a@b.example", "To: c@d.example"),
    "empty_name": _block(": a@b.example", "To: c@d.example"),
    "colon_in_value": _block("Subject: a: b: c", "From: a@b.example"),
    "upper_and_lower_names": _block("FROM: A@B.EXAMPLE", "message-id: <X@Y.EXAMPLE>"),
    "duplicate_joined": _block(
        "To: a@b.example",
        "Cc: c@d.example",
        "To: e@f.example",
        "Cc: g@h.example",
        "References: <1@x>",
        "References: <2@x>",
    ),
    "duplicate_single_same": _block("From: a@b.example", "From:  a@b.example "),
    "duplicate_single_differs": _block(
        "From: a@b.example", "From: c@d.example", "Subject: one", "SUBJECT: two"
    ),
    "duplicate_unknown": _block("X-Junk: 1", "X-Junk: 2", "From: a@b.example"),
    "latin1_value": _block("From: a@b.example", "Subject: caf\udce9"),
    "nul_and_controls": _block("From: a@b.example\x00", "Subject: \x1b[31mred\x07", "To: \x7f"),
    "unicode_whitespace": _block(
        "From:\u00a0a@b.example\u2028", "Subject:\x1c x \x1f", "Message-ID:\x85<a@b.example>\x85"
    ),
    "tab_after_colon": _block("From:\ta@b.example", "To:\t\tc@d.example"),
    "empty_values": _block("From:", "To:", "Subject:", "Message-ID:", "Date:", "References:"),
    "only_crlf": b"\r\n",
    "empty": b"",
    "field_over_64k": _block("From: a@b.example", "Subject: " + "x" * (MAX_FIELD_BYTES + 10)),
    "block_just_over_64k": _block("From: a@b.example", "X-Pad: " + "y" * MAX_FIELD_BYTES),
    "references_over_64k": _block(
        "From: a@b.example",
        "References: " + " ".join(f"<r{i}@thread.example>" for i in range(4000)),
    ),
    "no_message_id": _block(
        "From: Jan <jan@acme.example>",
        "To: a@b.example, c@d.example",
        "Subject: Quote",
        "Date: Mon, 23 Nov 2026 10:00:00 +0100",
    ),
    "self_reference_and_address_as_id": _block(
        "From: jan@acme.example",
        "Message-ID: <m1@acme.example>",
        "In-Reply-To: <jan@acme.example>",
        "References: <m1@ACME.example> <p1@acme.example> <p1@acme.example>",
    ),
    "address_as_id_in_capitals": _block(
        "From: Jan <jan@acme.example>",
        "To: anna@agency.example",
        "Message-ID: <M1@Acme.example>",
        "In-Reply-To: <JAN@ACME.EXAMPLE>",
        "References: <p1@acme.example> <Anna@Agency.Example> <m1@acme.example> <M1@acme.EXAMPLE>",
    ),
    "too_many_in_reply_to": _block(
        "From: jan@acme.example", "In-Reply-To: " + " ".join(f"<i{i}@x.example>" for i in range(12))
    ),
    "odd_ids": _block(
        "From: jan@acme.example",
        "Message-ID: <@x> <a@> <a@b@C.EXAMPLE> <sp ace@x.example>",
        "In-Reply-To: prose <a@b.example> (comment)",
        "References: bare@ids.example other@IDS.example, <>",
    ),
    "long_id": _block("From: a@b.example", "Message-ID: <" + "l" * 990 + "@x.example>"),
    "long_ids_in_references": _block(
        "From: a@b.example",
        "References: <" + "l" * 996 + "@x.example> <" + "m" * 985 + "@y.example>",
    ),
    "encoded_subject_and_names": _block(
        "From: =?utf-8?B?0J7Qu9C10LrRgdCw0L3QtNGA?= <o@ua.example>",
        "To: =?iso-8859-2?q?Zofia_W=F3jcik?= <z@pl.example>, =?bogus?q?x?= <b@x.example>",
        "Subject: =?iso-8859-1?q?=C4nderungen_an_der_Pr=E4sentation?=",
    ),
    "broken_encoded_subject": _block("From: a@b.example", "Subject: =?utf-8?b?////?= =?x?q?y"),
    "bad_addresses": _block("From: <>", 'To: not an address, @, a@, "x" <y@z>', "Cc: a@b@c"),
    "dates": _block("From: a@b.example", "Date: 23 Nov 2026 17:52 -0000 (no zone)"),
}


@pytest.mark.parametrize("name", sorted(EDGE_BLOCKS))
def test_edge_case_blocks_parse_like_the_reference(name: str):
    assert_parses_like_reference(EDGE_BLOCKS[name])


def test_other_input_types_and_locations_parse_like_the_reference():
    text = EVERYDAY.decode() + "Subject: \udcff\ud800"
    for data in (EVERYDAY.decode(), text, bytearray(EVERYDAY), memoryview(EVERYDAY), 12345):
        assert_parses_like_reference(data)
    cet = dt.timezone(dt.timedelta(hours=1))
    assert_parses_like_reference(
        EVERYDAY,
        received=dt.datetime(2026, 11, 23, 10, 0),
        flags=[b"\\Seen", "\\Answered", b"\xff"],
        gm_thrid="12",
        answered_at=dt.datetime(2026, 11, 23, 11, 0, tzinfo=cet),
        dismissed_at="2026-11-23T12:00:00",
        uid="9",
    )
    assert_parses_like_reference(EVERYDAY, received="2026-11-23T10:00:00+01:00", flags=None)
    for flags in (frozenset({b"\\Seen", "\\Answered", b"\xff"}), frozenset({"\\Seen"})):
        assert_parses_like_reference(EVERYDAY, flags=flags)  # a set, as it comes off the wire
        assert_parses_like_reference(EVERYDAY, flags=flags)


def test_everyday_blocks_take_the_fast_paths():
    assert headers._plain_header_fields(EVERYDAY) is not None
    assert headers._plain_header_fields(EDGE_BLOCKS["folded_fields"]) is not None
    assert headers._plain_header_fields(EDGE_BLOCKS["lf_only"]) is None
    assert headers._plain_header_fields(EDGE_BLOCKS["junk_line_in_the_middle"]) is None


# =========================================================================== generated blocks

_names = st.sampled_from(
    [*HEADER_FIELDS, "from", "TO", "message-id", "X-Junk", "Received", "Fr om", "From ", ""]
)
_local = st.text(alphabet="abcXYZ019._-+=@<>\"' ", min_size=0, max_size=8)
_domain = st.text(alphabet="abcXYZ.-", min_size=0, max_size=8)
_everyday_address = st.builds(
    lambda name, local, domain: (
        f"{name} <{local}@{domain}.example>" if name else f"{local}@{domain}.example"
    ),
    st.sampled_from(["", "Jan Kowalski", '"Kowalski, Jan"', "=?utf-8?q?Zofia_W=C3=B3jcik?="]),
    st.sampled_from(["jan", "Anna.Nowak", "big100k", "x+tag"]),
    st.sampled_from(["acme", "agency", "Gmail", "client22"]),
)
_odd_address = st.builds(lambda a, b: f"{a}@{b}", _local, _domain)
_id = st.builds(lambda a, b: f"<{a}@{b}>", _local, _domain)
_everyday_id = st.builds(
    lambda n, d: f"<1.{n}@{d}.example>", st.integers(0, 99999), st.sampled_from(["ACME", "gmail"])
)


_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE_PARTS = ("weekday", "day", "month", "year", "time", "zone", "comment", "separator")


@st.composite
def _dates(draw) -> str:
    """Date values in the everyday shape (impossible numbers included) or with one part
    (sometimes every part) odd, so that both sides of the fast path's edge are tried."""
    odd_parts = draw(
        st.one_of(
            st.just(frozenset()),
            st.sampled_from(_DATE_PARTS).map(lambda part: frozenset({part})),
            st.just(frozenset(_DATE_PARTS)),
        )
    )

    def pick(part: str, usual: list[str], odd: list[str]) -> str:
        return draw(st.sampled_from(odd if part in odd_parts else usual))

    weekday = pick("weekday", ["", "Mon, ", "Tue, ", "Sun, "], ["Sun,", "sun, ", "Xyz, ", "Mon "])
    day = draw(st.integers(0, 39))
    day_text = pick("day", [str(day), f"{day:02}"], [f" {day}", f"{day},", f"{day:03}", "٢"])
    month = pick("month", list(_MONTH_NAMES), ["nov", "NOV", "November", "Foo", "Nov,"])
    year = draw(st.integers(0, 10000))
    year_text = pick(
        "year",
        [f"{year:04}", f"{year % 100:02}"],
        [str(year), f"{year:05}", f"{year}-", f"{year % 100:03}", "٢٠٢٦"],
    )
    hour, minute = draw(st.integers(0, 25)), draw(st.integers(0, 61))
    second = draw(st.one_of(st.none(), st.integers(0, 61)))
    time_text = f"{hour:02}:{minute:02}" + ("" if second is None else f":{second:02}")
    time_text = pick(
        "time", [time_text], [time_text.replace(":", "."), f"{hour}:{minute}", time_text + ","]
    )
    sign, zone_h, zone_m = (
        draw(st.sampled_from("+-")),
        draw(st.integers(0, 30)),
        draw(st.integers(0, 99)),
    )
    zone = pick(
        "zone",
        [f"{sign}{zone_h:02}{zone_m:02}", "+0000", "-0000", f"{sign}{zone_h % 15:02}00"],
        ["GMT", "UT", "UTC", "Z", "EST", "pdt", "CET", "", f"{sign}{zone_h}", "+01:00", "+1_00"],
    )
    comment = pick(
        "comment", ["", " (CET)", " (UTC)", " extra words"], ["  (x)", "\t(x)", "(y)", "X", ","]
    )
    sep = pick("separator", [" "], ["  ", "\t", "\u2003", "\x1c"])
    return weekday + sep.join([day_text, month, year_text, time_text, zone]) + comment


_values = st.one_of(
    _everyday_address,
    st.lists(st.one_of(_everyday_address, _odd_address), min_size=1, max_size=4).map(", ".join),
    st.lists(st.one_of(_everyday_id, _id), min_size=1, max_size=4).map(" ".join),
    _dates(),
    st.sampled_from(["Quote for the spring campaign", "=?utf-8?b?0J/RgNC+?=", "auto-replied"]),
    st.from_regex(r"=\?[a-z0-9-]{0,12}\?[qQbBx]\?[^\s]{0,40}(\?=)?", fullmatch=True),
    st.text(max_size=60),
)
_line_ends = st.sampled_from(["\r\n"] * 8 + ["\n", "\r", "\r\r\n"])


@st.composite
def _header_blocks(draw) -> bytes:
    """Header blocks: half everyday (CRLF fields, maybe folded or repeated), half broken."""
    everyday = draw(st.booleans())
    lines: list[str] = []
    if not everyday and draw(st.booleans()):
        lines.append(draw(st.sampled_from(["", " \t", "From jan@acme.example Mon", " folded"])))
    for _ in range(draw(st.integers(0, 10))):
        name = draw(st.sampled_from(HEADER_FIELDS) if everyday else _names)
        value = draw(_values)
        ws = draw(st.sampled_from([" ", " ", "", "\t", "  "]))
        parts = [f"{name}:{ws}{value}"]
        if draw(st.integers(0, 5)) == 0:  # fold
            parts.append(draw(st.sampled_from([" ", "\t", "  "])) + draw(_values))
        if not everyday and draw(st.integers(0, 5)) == 0:  # junk or blank line
            parts.append(draw(st.sampled_from(["junk line", " ", "\t \t", "", "\x0b"])))
        lines.extend(parts)
    ends = [draw(_line_ends) if not everyday else "\r\n" for _ in lines]
    text = "".join(line + end for line, end in zip(lines, ends, strict=True))
    text += draw(st.sampled_from(["\r\n", "\r\n", "", "\r\nBody: x\r\n"]))
    encodings = ["utf-8"] if everyday else ["utf-8", "latin-1", "cp1250"]
    encoding = draw(st.sampled_from(encodings))
    return text.encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace")


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_header_blocks())
@example(EVERYDAY)
def test_generated_header_blocks_parse_like_the_reference(data: bytes):
    assert_parses_like_reference(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_parse_like_the_reference(data: bytes):
    assert_parses_like_reference(data)


# =========================================================================== memos


def test_a_memo_hit_replays_the_defects_of_the_first_parse():
    data = _block(
        "From: \x00bad\x00@x.example, <>",
        "To: =?bogus?q?x?= <a@b.example>",
        "Subject: =?bogus-charset?q?caf=E9?=",
    )
    first = assert_parses_like_reference(data)
    assert "bad-address:from" in first.defects
    assert "unknown-charset:to" in first.defects
    assert "unknown-charset:subject" in first.defects
    again = parse_message(data, **_location())  # type: ignore[arg-type]
    assert again.defects == first.defects
    # The same value in another field is another memo entry, with its own defect names.
    other = assert_parses_like_reference(data.replace(b"To:", b"Cc:"))
    assert "unknown-charset:cc" in other.defects and "unknown-charset:to" not in other.defects


def test_a_clean_parse_after_a_defective_one_gets_no_defects():
    assert_parses_like_reference(_block("From: a@b.example", "Subject: =?x?q?y?="))
    clean = assert_parses_like_reference(_block("From: a@b.example", "Subject: plain"))
    assert not any(d.startswith("unknown-charset") for d in clean.defects)


def test_memos_are_bounded(monkeypatch):
    monkeypatch.setattr(message, "_MEMO_MAX_ENTRIES", 3)
    monkeypatch.setattr(message, "_address_memo", {})
    monkeypatch.setattr(message, "_subject_memo", {})
    for i in range(10):
        assert_parses_like_reference(
            _block(f"From: P{i} <p{i}@x.example>", f"Subject: =?utf-8?q?n{i}?=")
        )
        assert len(message._address_memo) <= 3
        assert len(message._subject_memo) <= 3


def test_long_values_are_not_memoized(monkeypatch):
    monkeypatch.setattr(message, "_address_memo", {})
    monkeypatch.setattr(message, "_subject_memo", {})
    long_to = ", ".join(f"p{i}@crowd.example" for i in range(200))
    assert_parses_like_reference(
        _block("From: a@b.example", f"To: {long_to}", "Subject: =?utf-8?q?" + "x" * 2000 + "?=")
    )
    assert set(message._address_memo) == {("a@b.example", "from")}
    assert message._subject_memo == {}
