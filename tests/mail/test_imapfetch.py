"""A first sync's FETCH answers are read by `imapfetch.parse_common`; every other batch by
imapclient's parser. Both give the same messages."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ackwatch.mail import uidfetch
from ackwatch.mail.imapfetch import parse_common

HEADER_ITEM = (
    b"BODY[HEADER.FIELDS (MESSAGE-ID IN-REPLY-TO REFERENCES FROM TO CC SUBJECT DATE"
    b" X-AUTO-RESPONSE-SUPPRESS LIST-ID)]"
)
OUTLOOK_HEADERS = (
    b"From: =?utf-8?Q?Kowalski=2C_Jan?= <jan.kowalski@client.example>\r\n"
    b"To: \"Anna (Agency)\" <anna@agency.example>\r\n"
    b"Subject: RE: {offer} (v2) \"final\"\r\n"
    b"Message-ID: <AM0PR01MB1234{5}@eurprd01.prod.outlook.com>\r\n\r\n"
)


def _answer_of(head: bytes, literal: bytes) -> list:
    return [(head + b" " + HEADER_ITEM + b" {%d}" % len(literal), literal), b")"]


def test_a_dovecot_answer_is_read_by_the_common_path():
    data = _answer_of(b'1 (UID 80001 INTERNALDATE "17-Nov-2026 00:58:06 +0000" FLAGS (\\Seen \\Recent)',
                      OUTLOOK_HEADERS)  # fmt: skip
    assert parse_common(data) == [
        (80001, dt.datetime(2026, 11, 17, 0, 58, 6, tzinfo=dt.UTC), (b"\\Seen", b"\\Recent"),
         OUTLOOK_HEADERS)
    ]  # fmt: skip


def test_internaldate_with_a_space_padded_day_and_a_negative_offset():
    data = _answer_of(b'3 (UID 9 INTERNALDATE " 7-Mar-2027 23:59:59 -0330" FLAGS ()', b"X: y")
    [(_, when, _, _)] = parse_common(data) or [(0, None, (), b"")]
    assert when == dt.datetime(2027, 3, 8, 3, 29, 59, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "data",
    [
        # the answer goes on after the literal (items after the header block)
        [(b"6 (" + HEADER_ITEM + b" {2}", b"ab"), b" UID 14 FLAGS (\\Seen))"],
        # a quoted header block
        [b'7 (UID 15 ' + HEADER_ITEM + b' "From: a@b.example")'],
        # an item a sync does not ask for
        [b"8 (UID 16 RFC822.SIZE 2048 FLAGS ())"],
        # the items in another order, with a Gmail thread id
        _answer_of(b'4 (X-GM-THRID 1278455344230334865 UID 12 INTERNALDATE'
                   b' "17-Nov-2026 00:58:06 +0000" FLAGS ()', b"X: y"),
        # a month name the common path does not read, an impossible date
        _answer_of(b'9 (UID 17 INTERNALDATE "01-Foo-2027 10:00:00 +0100" FLAGS ()', b"X: y"),
        _answer_of(b'9 (UID 17 INTERNALDATE "31-Feb-2027 10:00:00 +0100" FLAGS ()', b"X: y"),
        # the literal is shorter than announced
        [(b'12 (UID 20 INTERNALDATE "17-Nov-2026 00:58:06 +0000" FLAGS () ' + HEADER_ITEM
          + b" {5}", b"abc"), b")"],
    ],
)
def test_other_shapes_are_left_to_imapclient(data):
    assert parse_common(data) is None


_flag = st.sampled_from(
    [b"\\Seen", b"\\Answered", b"\\Flagged", b"\\Recent", b"$Ackwatch-Done", b"$Forwarded",
     b"NonJunk", b"$MDNSent"]
)
_literal = st.one_of(
    st.just(OUTLOOK_HEADERS),
    st.binary(max_size=300),
    st.text(max_size=100).map(lambda t: t.encode("utf-8")),
)


@st.composite
def _internaldate(draw) -> bytes:
    when = draw(st.datetimes(min_value=dt.datetime(1990, 1, 1),
                             max_value=dt.datetime(2090, 1, 1)))  # fmt: skip
    minutes = draw(st.integers(-14 * 60, 14 * 60))
    sign = b"-" if minutes < 0 else b"+"
    day = b"%2d" % when.day if draw(st.booleans()) else b"%02d" % when.day
    return (b'INTERNALDATE "' + day + when.strftime("-%b-%Y %H:%M:%S ").encode() + sign
            + b"%02d%02d" % divmod(abs(minutes), 60) + b'"')  # fmt: skip


@st.composite
def _answer(draw, seq: int) -> list:
    items: list[tuple[bytes, object]] = [(b"UID", b"UID %d" % draw(st.integers(1, 2**32 - 1)))]
    if draw(st.booleans()):
        items.append((b"INTERNALDATE", draw(_internaldate())))
    if draw(st.booleans()):
        flags = draw(st.lists(_flag, max_size=4, unique=True))
        items.append((b"FLAGS", b"FLAGS (" + b" ".join(flags) + b")"))
    if draw(st.booleans()):
        items.append((b"MODSEQ", b"MODSEQ (%d)" % draw(st.integers(1, 2**63 - 1))))
    if draw(st.booleans()):
        items.append((b"X-GM-THRID", b"X-GM-THRID %d" % draw(st.integers(1, 2**63 - 1))))
    items = draw(st.permutations(items))
    text = b" ".join(v for _, v in items)  # type: ignore[misc]
    body = draw(st.one_of(st.none(), st.just(b"NIL"), st.just(b'""'), _literal))
    prefix = b"%d (" % seq + text
    if body is None:
        return [prefix + b")"]
    if body in (b"NIL", b'""'):
        return [prefix + (b" " if text else b"") + HEADER_ITEM + b" " + body + b")"]
    head = prefix + (b" " if text else b"") + HEADER_ITEM + b" {%d}" % len(body)
    return [(head, body), b")"]


@st.composite
def _responses(draw) -> list:
    n = draw(st.integers(1, 5))
    out: list = []
    for seq in draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n)):
        out.extend(draw(_answer(seq)))
    return out


@st.composite
def _common_answers(draw) -> list:
    """What Dovecot and pymap send a sync: UID, INTERNALDATE, FLAGS, the header literal."""
    out: list = []
    for seq in draw(st.lists(st.integers(1, 10_000), min_size=1, max_size=5)):
        flags = draw(st.lists(_flag, max_size=4, unique=True))
        body = draw(_literal)
        head = (b"%d (UID %d " % (seq, draw(st.integers(1, 2**32 - 1))) + draw(_internaldate())
                + b" FLAGS (" + b" ".join(flags) + b") " + HEADER_ITEM + b" {%d}" % len(body))  # fmt: skip
        out += [(head, body), b")"]
    return out


def _the_general_way(data: list, wanted: list[int]) -> list[uidfetch.FetchedMessage]:
    return uidfetch._messages(uidfetch._parse_by_uid(data), wanted)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_responses(), _common_answers()))
def test_the_common_path_gives_the_messages_the_general_path_gives(data):
    common = parse_common(data)
    if common is not None:
        wanted = [uid for uid, *_ in common]
        assert uidfetch._common_messages(common, wanted) == _the_general_way(data, wanted)
        assert uidfetch._common_messages(common, wanted[1:]) == _the_general_way(data, wanted[1:])


@settings(max_examples=100, deadline=None)
@given(_common_answers())
def test_a_first_sync_batch_takes_the_common_path(data):
    seqs = [int(head.split(b" ", 1)[0]) for head, _ in data[::2]]
    assume(len(set(seqs)) == len(seqs))
    assert parse_common(data) is not None


def test_an_unsolicited_answer_or_a_repeated_sequence_number_takes_the_general_path():
    answer = [(b'3 (UID 21 INTERNALDATE "17-Nov-2026 00:58:06 +0000" FLAGS () ' + HEADER_ITEM
               + b" {4}", b"X: y"), b")"]  # fmt: skip
    assert parse_common(answer) == [
        (21, dt.datetime(2026, 11, 17, 0, 58, 6, tzinfo=dt.UTC), (), b"X: y")
    ]
    assert parse_common([b"2 (FLAGS (\\Seen \\Answered))", *answer]) is None
    assert parse_common(answer + answer) is None  # seq 3 twice: merged by the general path
    assert parse_common([(answer[0][0].replace(b"UID 21", b"UID 0"), b"X: y"), b")"]) is None
