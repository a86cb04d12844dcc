"""Property-based fuzzing of the core with Hypothesis (issue 6, "Hostile and broken input").

- `parse_message` on arbitrary bytes / text / header-shaped input: never raises, stays
  within its limits, is a function of its input.
- `assign_threads` on random Message-ID graphs (loops, self references, reused ids,
  dangling references, Thread-Index / X-GM-THRID / subject fallbacks): no exception,
  terminates, every id link is honoured, the result does not depend on input order.
- `sla.evaluate` on random conversations: an item is never acknowledged by itself (except
  by a flag), every client message belongs to exactly one item, replies acknowledge only
  later mail, and the result does not depend on arrival order.

Example counts are moderate so that the whole file runs in a few seconds.
"""

from __future__ import annotations

import base64
import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ackwatch.core import classify as cls_mod
from ackwatch.core import item_rules as sla
from ackwatch.core.message import HEADER_FIELDS, MAX_SUBJECT_CHARS, Address, Message, parse_message
from ackwatch.core.message_ids import MAX_REFERENCES
from ackwatch.core.threads import assign_threads
from configfactory import make_config

CONFIG = make_config()
BASE = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)  # Monday 09:00 in Warsaw
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _parse(data: bytes | str, role: str = "inbox") -> Message:
    return parse_message(data, mailbox="anna", folder="INBOX" if role == "inbox" else "Sent",
                         role=role, uid=1, received=BASE)  # type: ignore[arg-type]


def _check_parsed(m: Message) -> None:
    assert m.received == BASE
    assert len(m.subject) <= MAX_SUBJECT_CHARS
    assert len(m.references) <= MAX_REFERENCES
    assert m.key
    assert all(ord(c) >= 0x20 for a in (m.sender, *m.to, *m.cc, *m.reply_to) for c in a.address)
    assert "\r" not in m.subject and "\n" not in m.subject and "\x00" not in m.subject


# --------------------------------------------------------------------------- parse_message

_ENCODINGS = ("utf-8", "latin-1", "cp1251", "shift_jis", "utf-16-le")
_names = st.one_of(
    st.sampled_from([*HEADER_FIELDS, "from", "SUBJECT", "X-Junk", "", " From", "From "]),
    st.text(min_size=1, max_size=12),
)
_values = st.one_of(
    st.text(max_size=200),
    st.sampled_from([
        "=?utf-8?Q?caf=C3=A9?=", "=?x-unknown?Q?abc?=", "=?utf-8?B?w6k", "=?utf-8?b?====?=",
        "<a@b> <b@a> <a@b>", "<>", "<<<>>>", "\x00\x00", "Re: Re: Fwd:", "undisclosed:;",
        '"\\" <x@y>', "(((((", "Mon, 31 Dec 9999 23:59:59 -1200", "Sat, 01 Jan 0001 00:00 +1400",
        "a@b, " * 50, " \t ", "\u202eevil\u202c", "👩‍👩‍👧‍👦",
    ]),
)
_seps = st.sampled_from([b"\r\n", b"\n", b"\r", b"\r\n ", b"\r\n\t", b"", b"\x00"])


@st.composite
def header_blocks(draw: st.DrawFn) -> bytes:
    out = bytearray()
    for _ in range(draw(st.integers(0, 12))):
        name = draw(_names).encode("utf-8", "surrogatepass")
        value = draw(_values).encode(draw(st.sampled_from(_ENCODINGS)), "replace")
        out += name + draw(st.sampled_from([b": ", b":", b" : ", b""])) + value + draw(_seps)
    if draw(st.booleans()):
        out += b"\r\n"
    return bytes(out)


@FUZZ
@given(st.binary(max_size=3000))
def test_parse_message_never_raises_on_arbitrary_bytes(data: bytes):
    m = _parse(data)
    _check_parsed(m)
    assert _parse(data) == m


@FUZZ
@given(st.text(alphabet=st.characters(), max_size=500))
def test_parse_message_never_raises_on_arbitrary_text(text: str):
    # Text (lone surrogates included) is accepted too, as the bytes it stands for.
    _check_parsed(_parse(text))


@FUZZ
@given(header_blocks(), st.sampled_from(["inbox", "sent"]))
def test_parse_message_never_raises_on_header_shaped_input(data: bytes, role: str):
    m = _parse(data, role)
    _check_parsed(m)
    # ... and the rest of the core takes whatever came out.
    cls_mod.classify(m, CONFIG)
    assign_threads([m])
    sla.evaluate([m], CONFIG)


# --------------------------------------------------------------------------- threads

_IDS = [f"<m{i}@x.example>" for i in range(8)]
_PEOPLE = ["jan@acme.example", "eva@globex.example", "anna@agency.example", "x@new.example"]
_SUBJECTS = ["Budget", "Re: Budget", "AW: Budget", "Fwd: Re: budget", "Hello", "Re:", "Quote 7"]
_TI_ROOT = base64.b64encode(b"\x01" * 22).decode()
_TI_REPLY = base64.b64encode(b"\x01" * 22 + b"\x02" * 5).decode()


@st.composite
def graph_messages(draw: st.DrawFn, max_size: int = 10) -> list[Message]:
    """Random Message-ID graphs: ids reused between messages, self references, loops,
    references to mail never seen, plus Thread-Index / X-GM-THRID / subject fallbacks."""
    out = []
    for uid in range(1, draw(st.integers(1, max_size)) + 1):
        mid = draw(st.sampled_from([*_IDS, None]))
        key = mid or f"hash:{uid}"
        refs = tuple(draw(st.lists(st.sampled_from([*_IDS, "<ghost@x.example>"]), max_size=4)))
        irt = tuple(draw(st.lists(st.sampled_from(_IDS), max_size=2)))
        out.append(Message(
            key=key,
            message_id=mid,
            mailbox=draw(st.sampled_from(["anna", "piotr"])),
            folder="INBOX",
            role="inbox",
            uid=uid,
            received=BASE + dt.timedelta(minutes=draw(st.integers(-60 * 24 * 60, 60 * 24 * 60))),
            gm_thrid=draw(st.sampled_from([None, None, 1, 2])),
            sender=Address(draw(st.sampled_from(_PEOPLE))),
            to=(Address(draw(st.sampled_from(_PEOPLE))),),
            subject=draw(st.sampled_from(_SUBJECTS)),
            in_reply_to=irt,
            references=refs,
            thread_index=draw(st.sampled_from([None, None, _TI_ROOT, _TI_REPLY, "garbage!!"])),
        ))
    return out


def _threads(messages: list[Message]):
    return assign_threads(messages, subject_window=dt.timedelta(days=30),
                          agency_addresses=frozenset({"agency.example"}))


@settings(max_examples=200, deadline=2000)
@given(graph_messages(), st.randoms(use_true_random=False))
def test_assign_threads_on_random_id_graphs(messages: list[Message], rnd):
    threads = _threads(messages)
    keys = {m.key for m in messages}
    assert set(threads) == keys
    # Thread ids are keys of the input, and a thread's id is in its own thread.
    assert set(threads.values()) <= keys
    assert all(threads[t] == t for t in threads.values())
    # Every id link between two seen messages is honoured (loops and self references
    # included: they link nothing else and break nothing).
    for m in messages:
        for ref in (*m.in_reply_to, *m.references):
            if ref in keys:
                assert threads[ref] == threads[m.key]
    # Independent of the input order.
    shuffled = list(messages)
    rnd.shuffle(shuffled)
    assert _threads(shuffled) == threads
    assert _threads(list(reversed(messages))) == threads


def test_assign_threads_terminates_on_a_long_reference_chain_and_a_big_loop():
    n = 5000
    ids = [f"<c{i}@x.example>" for i in range(n)]
    messages = [
        Message(key=ids[i], message_id=ids[i], mailbox="anna", folder="INBOX", role="inbox",
                uid=i + 1, received=BASE + dt.timedelta(seconds=i),
                sender=Address("jan@acme.example"),
                # each mail refers to the next: one long chain that closes into a loop
                in_reply_to=(ids[(i + 1) % n],), references=(ids[(i + 1) % n], ids[i]))
        for i in range(n)
    ]
    threads = _threads(messages)
    assert set(threads.values()) == {ids[0]}


# --------------------------------------------------------------------------- sla.evaluate

_CLIENTS = ["jan@acme.example", "eva@globex.example", "x@new.example", "lead@gmail.example"]
_AGENCY = ["anna@agency.example", "piotr@agency.example"]


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    """Client mail, agency replies (to the client or only internal), auto-replies, flags,
    copies of one mail in several mailboxes, ids reused across client and agency mail."""
    out: list[Message] = []
    for uid in range(1, draw(st.integers(1, 12)) + 1):
        kind = draw(st.sampled_from(["client", "client", "reply", "reply", "internal", "auto"]))
        mid = draw(st.sampled_from([*_IDS, None]))
        received = BASE + dt.timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
        refs = tuple(draw(st.lists(st.sampled_from(_IDS), max_size=3)))
        flags: set[str] = set()
        answered_at = dismissed_at = None
        if kind == "client":
            sender = draw(st.sampled_from(_CLIENTS))
            to = (Address(draw(st.sampled_from(_AGENCY))),)
            role, folder, mailbox = "inbox", "INBOX", draw(st.sampled_from(["anna", "piotr"]))
            if draw(st.integers(0, 4)) == 0:
                flags.add("\\Answered")
                answered_at = received + dt.timedelta(minutes=draw(st.integers(-5, 300)))
            if draw(st.integers(0, 5)) == 0:
                flags.add("$Ackwatch-Done")
                dismissed_at = received + dt.timedelta(minutes=draw(st.integers(0, 300)))
        else:
            sender = draw(st.sampled_from(_AGENCY if kind != "auto" else _CLIENTS))
            target = _AGENCY if kind == "internal" else _CLIENTS
            to = (Address(draw(st.sampled_from(target))),)
            role, folder, mailbox = (
                ("sent", "Sent", "anna") if kind != "auto" else ("inbox", "INBOX", "anna")
            )
        out.append(Message(
            key=mid or f"hash:{uid}", message_id=mid, mailbox=mailbox, folder=folder,
            role=role, uid=uid, received=received, flags=frozenset(flags),
            answered_at=answered_at, dismissed_at=dismissed_at,
            sender=Address(sender), to=to,
            subject=draw(st.sampled_from(_SUBJECTS)),
            in_reply_to=refs[:1], references=refs,
            auto_submitted="auto-replied" if kind == "auto" else None,
        ))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations(), st.randoms(use_true_random=False))
def test_evaluate_invariants(messages: list[Message], rnd):
    items = sla.evaluate(messages, CONFIG)
    keys = {m.key for m in messages}
    # Never acknowledged by itself, except by a flag on it.
    for item in items:
        if item.ack is None:
            continue
        assert item.ack.key in keys
        if item.ack.kind == "reply":
            assert item.ack.key != item.key
            assert item.ack.key not in item.follow_ups
            assert item.ack.at >= item.received  # a reply naming it may share its instant
            assert cls_mod.is_agency_address(item.ack.by, CONFIG)
        else:
            assert item.ack.key == item.key
            assert item.ack.at >= item.received
    # Every client message (as classified) belongs to exactly one item.
    by_key: dict[str, list[Message]] = {}
    for m in messages:
        by_key.setdefault(m.key, []).append(m)
    members = [k for i in items for k in (i.key, *i.follow_ups)]
    assert len(members) == len(set(members))
    tracked = {
        k for k, copies in by_key.items()
        if sla.is_tracked(cls_mod.classify(sla._merge(copies, CONFIG).message, CONFIG))
    }
    assert set(members) == tracked
    # Sorted, and independent of the order in which the mail arrived.
    assert list(items) == sorted(items, key=lambda i: (i.received, i.key))
    shuffled = list(messages)
    rnd.shuffle(shuffled)
    assert sla.evaluate(shuffled, CONFIG) == items
