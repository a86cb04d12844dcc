"""addresses.parse_address_list: the mailbox of an entry is the address in its last
``<...>``; a display name never supplies an address (DESIGN.md "Trust")."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ackwatch.core.addresses import MAX_ENTRIES, parse_address_list
from ackwatch.core.classify import classify
from ackwatch.core.message import parse_message
from configfactory import make_config

RECEIVED = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def mailboxes(value: str) -> list[str]:
    return [a for _, a in parse_address_list(value).entries]


def from_header(value: str, **kw: object) -> object:
    raw = (f"From: {value}\r\nTo: anna@agency.example\r\nSubject: Quote\r\n"
           "Message-ID: <q1@acme.example>\r\n\r\n").encode()
    args = {"mailbox": "anna", "folder": "INBOX", "role": "inbox", "uid": 1,
            "received": RECEIVED, **kw}
    return parse_message(raw, **args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the rule


def test_an_address_used_as_a_display_name_does_not_supply_the_mailbox():
    parsed = parse_address_list("anna@agency.example <attacker@evil.example>")
    assert parsed.entries == (("anna@agency.example", "attacker@evil.example"),)
    m = from_header("anna@agency.example <attacker@evil.example>")
    assert m.sender.address == "attacker@evil.example"  # type: ignore[attr-defined]
    assert m.extra_from == ()  # type: ignore[attr-defined]


def test_a_client_whose_display_name_holds_an_at_sign_is_the_client():
    config = make_config()
    for value in (
        "Kowalski@Acme <k@acme.example>",
        "=?utf-8?q?Kowalski=40acme?= <k@acme.example>",
        '"Kowalski@acme <boss@other.example>" <k@acme.example>',
    ):
        m = from_header(value)
        c = classify(m, config)  # type: ignore[arg-type]
        assert (m.sender.address, c.kind, c.client.name) == ("k@acme.example", "client", "Acme"), value  # type: ignore[attr-defined,union-attr]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"Nowak, Anna (PR) <x>" <anna@agency.example>', ["anna@agency.example"]),
        ('"quoted \\" <inner@evil.example>" <k@acme.example>', ["k@acme.example"]),
        ("Team: a@x.example, B@Y.example;, c@z.example", ["a@x.example", "B@Y.example",
                                                          "c@z.example"]),
        ("undisclosed-recipients:;", []),
        ("k@acme.example (Jan (the CEO) Kowalski)", ["k@acme.example"]),
        ("Jan <k@acme.example> (work, <evil@evil.example>)", ["k@acme.example"]),
        ("<@relay.example,@mx.acme.example:k@acme.example>", ["k@acme.example"]),
        ("jan . kowalski @ acme.example", ["jan.kowalski@acme.example"]),
        ("=?utf-8?B?S293YWxza2lAYWNtZQ==?= <k@acme.example>", ["k@acme.example"]),
        ("Jan < k@acme.example >", ["k@acme.example"]),
    ],
)
def test_odd_but_legal_shapes_give_their_mailbox(value, expected):
    parsed = parse_address_list(value)
    assert [a for a in mailboxes(value) if a] == expected
    assert parsed.clean


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Jan <a@x.example> <k@acme.example>", ["k@acme.example"]),  # the last <...> wins
        ("anna@agency.example attacker@evil.example", [""]),  # two words: no mailbox
        ("Anna Nowak", [""]),
        ('"never closed <k@acme.example>', [""]),
        ("Jan <k@acme.example", ["k@acme.example"]),
        ("Jan (never closed <k@acme.example>", [""]),
    ],
)
def test_malformed_entries_are_flagged_and_never_take_an_address_from_a_name(value, expected):
    parsed = parse_address_list(value)
    assert mailboxes(value) == expected
    assert not parsed.clean


def test_the_stdlib_address_parser_is_not_consulted(monkeypatch):
    """The same answer on every Python: email.utils.getaddresses is never asked."""
    import email.utils

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("getaddresses was called")

    monkeypatch.setattr(email.utils, "getaddresses", refuse)
    m = from_header('"Odd, Name" (c) <k@acme.example>, anna@agency.example <x@evil.example>')
    assert [a.address for a in (m.sender, *m.extra_from)] == [  # type: ignore[attr-defined]
        "k@acme.example", "x@evil.example"]


# --------------------------------------------------------------------------- From


def test_a_from_with_two_mailboxes_is_a_defect_and_keeps_both():
    m = from_header("Anna <anna@agency.example>, attacker@evil.example")
    assert m.sender.address == "anna@agency.example"  # type: ignore[attr-defined]
    assert [a.address for a in m.extra_from] == ["attacker@evil.example"]  # type: ignore[attr-defined]
    assert "multiple-from" in m.defects  # type: ignore[attr-defined]


def test_a_from_without_a_readable_mailbox_is_a_defect_with_an_empty_sender():
    m = from_header("anna@agency.example attacker@evil.example")
    assert m.sender.address == ""  # type: ignore[attr-defined]
    assert "bad-address:from" in m.defects  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- properties

_atom = st.text(alphabet="abcdefXYZ0123456789!#$%&'*+-/=?^_`{|}~", min_size=1, max_size=8)
_domain = st.lists(st.text(alphabet="abcxyz0129-", min_size=1, max_size=6), min_size=1,
                   max_size=3).map(lambda labels: ".".join(labels) + ".example")
_addr = st.builds(lambda local, domain: f"{local}@{domain}",
                  st.lists(_atom, min_size=1, max_size=2).map(".".join), _domain)
# Names full of what confuses address parsers, quoted as RFC 5322 wants.
_name_text = st.text(alphabet='ab Z@<>,;:()."\\é=?', min_size=0, max_size=12)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text: str) -> str:
    return "(" + "".join("\\" + c if c in "()\\" else c for c in text) + ")"


@st.composite
def _entry(draw) -> tuple[str, str]:
    """One legal mailbox and its addr-spec."""
    addr = draw(_addr)
    shape = draw(st.integers(0, 5))
    if shape == 0:
        return addr, addr
    if shape == 1:
        return f"{_quote(draw(_name_text))} <{addr}>", addr
    if shape == 2:  # an encoded word whose text holds "@" and "<"
        return f"=?utf-8?q?{draw(_atom).replace('?', '')}=40evil=3Cx?= <{addr}>", addr
    if shape == 3:
        return f"{addr} {_comment(draw(_name_text))}", addr
    if shape == 4:
        return f"{_quote(draw(_name_text))} {_comment(draw(_name_text))} <{addr}>", addr
    return f"<@route.example,@relay.example:{addr}>", addr


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_entry(), min_size=1, max_size=5), st.booleans())
def test_generated_legal_lists_give_exactly_their_mailboxes(entries, as_group):
    values = [value for value, _ in entries]
    body = ", ".join(values)
    header = f"Team {_quote('a:b')}: {body};" if as_group else body
    parsed = parse_address_list(header)
    assert parsed.clean, header
    assert [a for _, a in parsed.entries] == [addr for _, addr in entries]


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_without_error_and_within_bounds(value):
    parsed = parse_address_list(value)
    assert len(parsed.entries) <= MAX_ENTRIES
    for _, addr in parsed.entries:
        assert "<" not in addr and ">" not in addr


def test_a_bracket_opened_inside_a_bracket_starts_the_mailbox_again():
    """"<x<y@z>" holds one mailbox, y@z, in its last "<...>"; never one with a "<"."""
    assert mailboxes("<x<y@z>") == ["y@z"]
    assert mailboxes("<<") == [""]
    assert not parse_address_list("<x<y@z>").clean


def test_hostile_nesting_and_length_are_read_in_one_pass():
    """Deep comment nesting, an endless quoted string and a list of 50,000 entries: no
    recursion, a bounded answer."""
    deep = "(" * 60_000 + "x" + ")" * 60_000 + " <k@acme.example>"
    assert mailboxes(deep) == ["k@acme.example"]
    assert not parse_address_list(deep).clean
    assert mailboxes('"' + "a" * 100_000) == [""]
    many = parse_address_list(", ".join(f"u{i}@acme.example" for i in range(50_000)))
    assert len(many.entries) == MAX_ENTRIES and many.truncated
