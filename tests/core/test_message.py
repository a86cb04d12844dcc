"""parse_message: lenient header parsing into a frozen Message (never raises on bytes)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ackwatch.core.headers import decode_words
from ackwatch.core.message import MAX_SUBJECT_CHARS, Message, parse_message
from ackwatch.core.message_ids import (
    MAX_REFERENCES,
    extract_message_ids,
    normalize_message_id,
    thread_index_depth,
    thread_index_root,
)
from mailfactory import fixture_bytes, fixture_message, make_message

RECEIVED = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def parse(data: bytes, **kw: object) -> Message:
    args: dict[str, object] = {
        "mailbox": "anna",
        "folder": "INBOX",
        "role": "inbox",
        "uid": 7,
        "received": RECEIVED,
    }
    args.update(kw)
    return parse_message(data, **args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- fixtures


def test_outlook_client_mail_is_parsed():
    m = fixture_message("outlook_client.eml")
    assert m.key == m.message_id
    assert m.message_id == (
        "<AM9PR07MB7188C1A2B3D4E5F6A7B8C9D0E1F2A3B4C5D6@am9pr07mb7188.eurprd07.prod.outlook.com>"
    )
    assert m.sender.address == "jan.kowalski@acme.example"
    assert m.sender.name == "Jan Kowalski"
    assert [a.address for a in m.to] == ["anna@agency.example"]
    assert m.subject == "Quote for the spring campaign"
    assert m.thread_index == "Adtdjk8qPJp7Hl0vSmuMDR4vOktcbQ=="
    assert m.auto_submitted is None
    assert m.defects == ()


def test_outlook_reply_continues_the_thread_index_conversation():
    original = fixture_message("outlook_client.eml")
    answer = fixture_message("outlook_agency_reply.eml")
    assert thread_index_root(answer.thread_index) == thread_index_root(original.thread_index)
    assert thread_index_depth(original.thread_index) == 0
    assert thread_index_depth(answer.thread_index) == 1
    assert answer.in_reply_to == (original.message_id,)
    assert answer.references == (original.message_id,)
    assert answer.subject == "RE: Quote for the spring campaign"


def test_gmail_message_ids_keep_their_case():
    client = fixture_message("gmail_client.eml")
    answer = fixture_message("gmail_agency_reply.eml")
    assert client.message_id == "<CAJ5wq+Xk2pN7vR0dLm3hTz9QbY8s1uFjE4cGa6W_oKx=Vn2Q@mail.gmail.com>"
    assert answer.in_reply_to == (client.message_id,)


def test_folded_references_from_apple_mail_and_thunderbird():
    apple = fixture_message("apple_mail_reply.eml")
    assert len(apple.references) == 2
    assert apple.in_reply_to == (apple.references[-1],)
    assert apple.message_id == "<4E8B1C2D-7A3F-4B9E-A1C6-5D2E8F0B3A71@acme.example>"
    tb = fixture_message("thunderbird_reply.eml")
    assert tb.references[-1] == tb.in_reply_to[0]
    assert [a.address for a in tb.cc] == ["piotr@agency.example"]


def test_polish_q_encoded_subject_and_name_are_decoded():
    m = fixture_message("polish_odp_reply.eml")
    assert m.subject == "Odp: Wycena kampanii świątecznej – poprawki"
    assert m.sender.name == "Zofia Wójcik"
    assert m.defects == ()


def test_ukrainian_base64_subject_is_decoded():
    m = fixture_message("ukrainian_vidp_reply.eml")
    assert m.subject == "Відп: Запит на макет банера"
    assert m.sender.name == "Олександр Шевченко"


def test_base64_subject_split_across_encoded_words_is_joined():
    m = fixture_message("exchange_out_of_office_agency_pl.eml")
    assert m.subject == "Odpowiedź automatyczna: Banner sizes for the Black Friday campaign"


def test_auto_reply_headers_are_kept_lower_cased():
    m = fixture_message("exchange_out_of_office.eml")
    assert m.auto_submitted == "auto-replied"
    news = fixture_message("newsletter.eml")
    assert news.precedence == "bulk"
    assert news.list_id is not None and news.list_unsubscribe is not None
    bounce = fixture_message("bounce_mailer_daemon.eml")
    assert bounce.return_path == "<>"
    assert bounce.sender.address == "mailer-daemon@mx1.agency.example"


def test_form_lead_reply_to_is_parsed_and_lower_cased():
    m = fixture_message("form_lead.eml")
    assert m.reply_to[0].address == "lead@gmail.example"
    assert m.reply_to[0].name == "Ola Nowicka"


def test_ackwatch_header_is_kept():
    assert fixture_message("ackwatch_nudge.eml").x_ackwatch == "nudge"


def test_same_mail_in_two_mailboxes_has_one_key():
    data = fixture_bytes("cc_two_mailboxes.eml")
    in_anna = make_message(data, mailbox="anna", uid=11)
    in_piotr = make_message(data, mailbox="piotr", uid=873, received="2026-11-23T10:00:02+01:00")
    assert in_anna.key == in_piotr.key
    assert (in_anna.mailbox, in_piotr.mailbox) == ("anna", "piotr")


def test_missing_message_id_gets_a_stable_hash_key():
    data = fixture_bytes("no_message_id.eml")
    a = make_message(data, mailbox="anna", uid=1)
    b = make_message(data, mailbox="office", uid=99, received="2026-11-24T08:00:00+01:00")
    assert a.message_id is None
    assert a.key.startswith("hash:") and a.key == b.key
    assert "no-message-id" in a.defects


def test_hash_key_survives_refolding_and_reencoding():
    a = make_message(
        """
        From: Biuro <biuro@stara-drukarnia.example>
        To: anna@agency.example, piotr@agency.example
        Subject: Proof for the leaflet
        Date: Thu, 26 Nov 2026 13:00:00 +0100
        """
    )
    b = make_message(
        """
        From: =?utf-8?q?Biuro?= <BIURO@stara-drukarnia.example>
        To: piotr@agency.example,
         anna@agency.example
        Subject: =?utf-8?q?Proof_for_the?=
         leaflet
        Date: Thu, 26 Nov 2026 12:00:00 +0000
        """,
        mailbox="piotr",
    )
    assert a.key == b.key


def test_different_mails_without_message_id_get_different_keys():
    a = make_message("From: a@x.example\nSubject: one\nDate: Thu, 26 Nov 2026 13:00:00 +0100")
    b = make_message("From: a@x.example\nSubject: two\nDate: Thu, 26 Nov 2026 13:00:00 +0100")
    assert a.key != b.key


# --------------------------------------------------------------------------- message ids


def test_message_id_domain_is_lower_cased_local_part_kept():
    assert normalize_message_id("<AbC.123@Mail.Example.COM>") == "<AbC.123@mail.example.com>"
    assert normalize_message_id("AbC@Example.com") == "<AbC@example.com>"
    assert normalize_message_id("<>") is None
    assert normalize_message_id("<no-at-sign>") is None


def test_message_id_and_references_are_normalized_the_same_way():
    parent = make_message("From: a@x.example\nMessage-ID: <Part.1@Host.Example>")
    child = make_message(
        "From: b@y.example\nMessage-ID: <c@y.example>\nIn-Reply-To: <Part.1@HOST.example>"
        "\nReferences: <Part.1@host.EXAMPLE>"
    )
    assert child.in_reply_to == (parent.key,) and child.references == (parent.key,)


def test_folded_whitespace_inside_a_message_id_is_dropped():
    m = make_message("From: a@x.example\nMessage-ID: <very-long-id\n @host.example>")
    assert m.message_id == "<very-long-id@host.example>"


def test_references_junk_tokens_are_dropped_and_ids_deduplicated():
    ids = extract_message_ids("<a@x> junk <> <b c> (comment <d@e>) <a@x> <f@G>")
    assert ids == ("<a@x>", "<d@e>", "<f@g>")


def test_in_reply_to_with_prose_keeps_only_the_id():
    m = make_message(
        'From: a@x.example\nIn-Reply-To: <p1@host.example> (Jan\'s message of "Mon, 23 Nov")'
    )
    assert m.in_reply_to == ("<p1@host.example>",)


def test_references_that_are_only_junk_become_empty_with_a_defect():
    m = fixture_message("broken_references_reply.eml")
    assert m.in_reply_to == () and m.references == ()
    assert "junk-reference" in m.defects


def test_reference_equal_to_a_participant_address_is_junk():
    m = make_message(
        "From: a@x.example\nTo: jan@acme.example\nIn-Reply-To: <jan@acme.example>\n"
        "References: <real@host.example> <jan@acme.example>"
    )
    assert m.in_reply_to == ()
    assert m.references == ("<real@host.example>",)


def test_references_are_capped_to_the_most_recent():
    refs = " ".join(f"<r{i}@host.example>" for i in range(500))
    m = make_message(f"From: a@x.example\nReferences: {refs}")
    assert len(m.references) == MAX_REFERENCES
    assert m.references[-1] == "<r499@host.example>"
    assert "too-many-references" in m.defects


def test_a_mail_referencing_itself_drops_the_self_reference():
    m = make_message("From: a@x.example\nMessage-ID: <s@x.example>\nReferences: <s@x.example>")
    assert m.references == ()


# --------------------------------------------------------------------------- addresses


def test_addresses_are_lower_cased_and_invalid_ones_dropped():
    m = make_message(
        'From: "Kowalski, Jan" <Jan@ACME.example>\n'
        "To: anna@agency.example, undisclosed-recipients:;, <>, Piotr <PIOTR@Agency.Example>\n"
        'Cc: "alice@example.org"@attacker.example'
    )
    assert m.sender == m.sender.__class__("jan@acme.example", "Kowalski, Jan")
    assert [a.address for a in m.to] == ["anna@agency.example", "piotr@agency.example"]
    assert m.cc == ()
    assert "bad-address:cc" in m.defects


def test_encoded_display_name_with_comma_stays_one_address():
    m = make_message("From: =?UTF-8?Q?Kowalski=2C_Jan?= <jan@acme.example>")
    assert m.sender.name == "Kowalski, Jan" and m.sender.address == "jan@acme.example"


def test_missing_from_is_a_defect_not_an_error():
    m = make_message("To: anna@agency.example\nSubject: hello")
    assert m.sender.address == "" and "no-from" in m.defects


def test_repeated_to_headers_are_joined():
    m = make_message("From: a@x.example\nTo: b@y.example\nTo: c@z.example")
    assert [a.address for a in m.to] == ["b@y.example", "c@z.example"]


# --------------------------------------------------------------------------- subjects


def test_subject_control_characters_removed_and_whitespace_folded():
    m = make_message(b"From: a@x.example\r\nSubject: Hello\x07 \t  there\r\n  again\x00\r\n\r\n")
    assert m.subject == "Hello there again"


def test_encoded_newlines_in_subject_are_removed():
    m = make_message("From: a@x.example\nSubject: =?utf-8?Q?line1=0D=0Aline2?=")
    assert m.subject == "line1 line2"


def test_subject_is_capped():
    m = make_message("From: a@x.example\nSubject: " + "x" * 50_000)
    assert len(m.subject) == MAX_SUBJECT_CHARS


def test_unterminated_encoded_word_is_decoded_leniently():
    m = make_message("From: a@x.example\nSubject: =?UTF-8?Q?Wycena_=C5=9Bwi=C4=85t")
    assert m.subject == "Wycena świąt"
    assert "bad-encoding:subject" in m.defects


def test_unknown_charset_falls_back_without_raising():
    m = make_message("From: a@x.example\nSubject: =?x-klingon?Q?caf=C3=A9?=")
    assert m.subject == "café"
    assert "unknown-charset:subject" in m.defects


def test_raw_8bit_latin2_subject_does_not_raise():
    m = make_message(b"From: a@x.example\r\nSubject: Zam\xf3wienie \xb1\r\n\r\n")
    assert m.subject.startswith("Zam")
    assert "bad-encoding:subject" in m.defects


def test_raw_8bit_utf8_subject_is_read_as_utf8():
    m = make_message("From: a@x.example\nSubject: Zamówienie ąę".encode())
    assert m.subject == "Zamówienie ąę"
    assert "bad-encoding:subject" not in m.defects


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("=?utf-8?B?0JLRltC00L86?=", "Відп:"),
        ("=?utf-8?B?0JLRltC00L86", "Відп:"),  # missing padding and terminator
        ("=?utf-8?B?0JLRltC0?= =?utf-8?B?0L86?=", "Відп:"),  # space between words dropped
        ("=?iso-8859-2?Q?Zam=F3wienie?=", "Zamówienie"),
        ("=?windows-1251?B?z/Du4uXw6uA=?=", "Проверка"),
        ("=?utf-8?Q?Hello World?=", "Hello World"),  # raw space inside a Q word
        ("plain =?utf-8?q?x?= text", "plain x text"),
    ],
)
def test_decode_words_is_lenient(encoded: str, decoded: str):
    assert decode_words(encoded) == decoded


# --------------------------------------------------------------------------- robustness


def test_junk_line_does_not_lose_the_following_headers():
    m = make_message(
        b"From: a@x.example\r\nthis is not a header\r\nSubject: still here\r\n"
        b"Message-ID: <k@x.example>\r\n\r\n"
    )
    assert m.subject == "still here" and m.message_id == "<k@x.example>"
    assert "junk-line" in m.defects


def test_headers_stop_at_the_first_empty_line():
    m = make_message(b"From: a@x.example\r\n\r\nSubject: body text\r\n")
    assert m.subject == ""


def test_huge_header_is_truncated_with_a_defect():
    m = make_message(b"From: a@x.example\r\nList-Id: " + b"y" * 200_000 + b"\r\n\r\n")
    assert "header-too-long:list-id" in m.defects


def test_huge_input_is_truncated_with_a_defect():
    m = make_message(b"X-Junk: " + b"z" * (2 << 20) + b"\r\n\r\n")
    assert "headers-truncated" in m.defects


def test_received_is_converted_to_utc():
    m = make_message("From: a@x.example", received="2026-11-23T10:00:00+01:00")
    assert m.received == RECEIVED and m.received.tzinfo is dt.UTC


def test_naive_received_is_taken_as_utc_with_a_defect():
    m = parse(b"From: a@x.example\r\n\r\n", received=dt.datetime(2026, 11, 23, 9, 0))
    assert m.received == RECEIVED and "naive-received" in m.defects


def test_bad_date_header_of_a_mail_without_message_id_is_a_defect():
    m = make_message("From: a@x.example\nDate: the day after tomorrow")
    assert m.key.startswith("hash:") and "bad-date" in m.defects


def test_the_date_header_of_a_mail_with_a_message_id_is_not_read():
    """It counts for nothing then (the received time is the INTERNALDATE)."""
    m = make_message("From: a@x.example\nMessage-ID: <d@x.example>\nDate: no date at all")
    assert m.key == "<d@x.example>" and "bad-date" not in m.defects


def test_date_without_zone_is_utc_in_the_key_of_a_mail_without_message_id():
    keys = {make_message(f"From: a@x.example\nDate: {date}").key for date in (
        "Mon, 23 Nov 2026 09:00:00 -0000", "Mon, 23 Nov 2026 09:00:00 +0000",
        "Mon, 23 Nov 2026 10:00:00 +0100")}
    assert len(keys) == 1


def test_flags_may_come_as_bytes_from_imapclient():
    m = parse(b"From: a@x.example\r\n\r\n", flags=(b"\\Answered", "$Ackwatch-Done"))
    assert m.flags == frozenset({"\\Answered", "$Ackwatch-Done"})


def test_thread_index_root_rejects_garbage():
    assert thread_index_root(None) is None
    assert thread_index_root("not base64 at all!!") is None
    assert thread_index_root("AAAA") is None  # too short
    assert thread_index_root("Adtdjk8qPJp7Hl0vSmuMDR4vOktcbQ==") == (
        "01db5d8e4f2a3c9a7b1e5d2f4a6b8c0d1e2f3a4b5c6d"
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_parse_message_never_raises_on_arbitrary_bytes(data: bytes):
    m = parse(data)
    assert isinstance(m, Message)
    assert m.key
    assert m.received.tzinfo is dt.UTC


_header_names = st.sampled_from(
    [
        "From",
        "To",
        "Cc",
        "Reply-To",
        "Subject",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Date",
        "Thread-Index",
        "Auto-Submitted",
        "Return-Path",
        "X-Ackwatch",
        "X-Junk",
    ]
)
_header_values = st.one_of(
    st.text(max_size=200),
    st.from_regex(r"=\?[a-z0-9-]{0,12}\?[qQbBx]\?[^\s]{0,40}(\?=)?", fullmatch=True),
    st.from_regex(r"(<[^<>]{0,30}>\s?){0,5}", fullmatch=True),
    st.from_regex(r'("[^"]{0,10}"\s?)?<?[a-zA-Z.]{0,8}@?[a-z.]{0,8}>?(,\s?)?', fullmatch=True),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_header_names, _header_values), max_size=12))
def test_parse_message_never_raises_on_header_shaped_input(headers: list[tuple[str, str]]):
    data = "".join(f"{n}: {v}\r\n" for n, v in headers).encode("utf-8", "surrogatepass")
    m = parse(data)
    assert "\n" not in m.subject and "\r" not in m.subject
    assert all(a.address == a.address.lower() for a in (*m.to, *m.cc, *m.reply_to))


# --------------------------------------------------------------------------- address fast path

_addr_piece = st.text(alphabet="abcXYZ09._-+'=?%!", min_size=0, max_size=6)
_name_piece = st.text(alphabet="ab Z\t.,;:()\"\\<>@=?_-'é", min_size=0, max_size=8)


@st.composite
def _address_entry(draw) -> str:
    addr = draw(_addr_piece) + draw(st.sampled_from(["@", "", "@@"])) + draw(_addr_piece)
    shape = draw(st.integers(0, 3))
    if shape == 0:
        return addr
    name = draw(_name_piece)
    if shape == 1:
        return f"{name} <{addr}>"
    if shape == 2:
        return f'"{name}" <{addr}>'
    return f"{name}<{addr}>{draw(_name_piece)}"


@settings(max_examples=500, deadline=None)
@given(st.lists(_address_entry(), max_size=4), st.sampled_from([",", ", ", " ,", ",,"]))
def test_plain_address_fast_path_agrees_with_the_general_reader(entries, sep):
    from ackwatch.core.addresses import parse_address_list, plain_addresses

    value = sep.join(entries)
    fast = plain_addresses(value)
    if fast is not None:
        general = parse_address_list(value)
        assert general.clean
        # Blanks in names are folded when the Message is made (`headers.clean_text`).
        assert [(" ".join(n.split()), a) for n, a in fast] == list(general.entries)


def test_everyday_address_lists_take_the_fast_path():
    from ackwatch.core.addresses import plain_addresses

    for value in (
        "Tom <tom@client32.example>",
        '"Kowalski, Jan" <jan.kowalski@client.example>, anna@agency.example',
        "=?utf-8?B?0JDQvdC90LA=?= <anna@agency.example>",
    ):
        assert plain_addresses(value) is not None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.integers(min_value=1, max_value=80))
def test_clean_text_fast_path_matches_the_character_walk(value, limit):
    import unicodedata

    from ackwatch.core.headers import clean_text

    chars = []
    for ch in value:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs"):
            chars.append(" " if ch in "\r\n\t\v\f" else "")
        else:
            chars.append(ch)
    assert clean_text(value, limit) == " ".join("".join(chars).split())[:limit]
