"""compose.render with hostile subjects, names and addresses (issue 6).

Client-supplied text reaches our mails: subjects, display names, addresses, Message-IDs.
Whatever it holds (HTML/script, raw or RFC 2047-encoded CR/LF, bidi controls, NUL, 10 kB,
emoji/ZWJ sequences, quotes and commas, unicode local parts), the rendered mail has exactly
our headers, no markup from the client in the HTML part, no bidi controls, capped lengths,
and it serializes (``as_bytes()``) and re-parses with the same header set.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from email.message import EmailMessage

import pytest

from ackwatch.core import item_rules as sla
from ackwatch.core.message import parse_message
from ackwatch.mail.compose import (
    ADDRESS_LIMIT,
    MAIL_SUBJECT_LIMIT,
    NAME_LIMIT,
    SUBJECT_LIMIT,
    Notice,
    NoticeLine,
    render,
)
from configfactory import make_config

NOW = dt.datetime(2026, 11, 23, 13, 32, 10, tzinfo=dt.UTC)
FROM = "ackwatch <ackwatch@agency.example>"
# Unicode's Bidi_Control property: marks, embeddings, overrides, isolates.
BIDI = "\u061c\u200e\u200f" + "".join(map(chr, range(0x202A, 0x202F))) + "".join(
    map(chr, range(0x2066, 0x206A))
)
FAMILY = "\U0001F469\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466"  # one ZWJ emoji
FLAG = "\U0001F1F5\U0001F1F1"

HOSTILE = {
    "html": '<script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:x">',
    "crlf_raw": "Quote\r\nBcc: victim@evil.example\r\n\r\n<script>alert(1)</script>",
    "lf_only": "Quote\nX-Injected: yes\nSubject: pwned",
    "cr_only": "Quote\rX-Injected: yes",
    "unicode_separators": "Quote\u2028X-Injected: yes\u2029\x85Bcc: a@b.example",
    "bidi": "invoice\u202egpj.exe\u202c \u2066isolated\u2069 \u200fmark\u200e \u061c",
    "nul": "Quote\x00\x00\x00Bcc: x@evil.example\x00",
    "ten_kb": "A" * 10_000,
    "ten_kb_words": "spam " * 2_000,
    "emoji_zwj": f"Family photo {FAMILY} {FLAG} 👍🏽 done",
    "quotes_commas": '"Kowalski, Jan" <jan@acme.example>, "O\'Brien", \\"x\\"',
    "dollar_template": "$subject ${items} $$ $greeting",
    "header_like_line": "Content-Type: text/html\r\n\r\n<h1>hi</h1>",
    "lone_surrogate": "broken \ud800 text",
}


def _line(subject: str = "Quote", **kw: object) -> NoticeLine:
    values: dict = {
        "client": "Acme",
        "client_address": "ceo@acme.example",
        "subject": subject,
        "received": NOW - dt.timedelta(minutes=90),
        "deadline": NOW + dt.timedelta(minutes=30),
        "message_id": "<client-1@acme.example>",
        "mailboxes": ("anna",),
    }
    values.update(kw)
    return NoticeLine(**values)


def _notice(*lines: NoticeLine, kind: str = "nudge", **kw: object) -> Notice:
    values: dict = {
        "kind": kind,
        "to": "anna@agency.example",
        "lines": lines,
        "now": NOW,
        "language": "en",
        "timezone": "Europe/Warsaw",
        "recipient_name": "Anna Nowak",
    }
    if kind == "escalation":
        values.update(to="kasia@agency.example", cc=("anna@agency.example",),
                      account="anna@agency.example", account_name="Anna Nowak")
    values.update(kw)
    return Notice(**values)


def _parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    return text, html


def _words(value: object) -> str:
    """A header value without whitespace: the stdlib's reader keeps the folding whitespace
    between two encoded-words, which RFC 2047 (6.2) says a reader ignores."""
    return "".join(str(value).split())


def _header_names(msg: EmailMessage) -> list[str]:
    return [k.lower() for k in msg]


EXPECTED_HEADERS = {
    "from", "to", "subject", "date", "message-id", "auto-submitted", "x-ackwatch",
    "mime-version", "content-type", "content-language",
}


def check_safe(msg: EmailMessage, *, cap: int = SUBJECT_LIMIT) -> tuple[str, str]:
    """The checks every rendered mail must pass; returns (text, html)."""
    names = _header_names(msg)
    assert set(names) - {"cc", "x-ackwatch-items"} == EXPECTED_HEADERS, names
    assert len(names) == len(set(names))  # no header twice
    for name in names:
        value = str(msg[name])
        assert "\r" not in value and "\n" not in value and "\x00" not in value
        assert not set(value) & set(BIDI)
    assert len(str(msg["Subject"])) <= MAIL_SUBJECT_LIMIT

    text, html = _parts(msg)
    assert "<script" not in html.lower()
    for tag in ("<img", "<a ", "<h1", "<iframe"):  # none in our templates, none from clients
        assert tag not in html.lower()
    assert not re.search(r"<[a-z]+[^>]*\son\w+\s*=", html, re.IGNORECASE)  # no event handlers
    for part in (text, html):
        assert not set(part) & set(BIDI)
        assert "\x00" not in part
        assert not re.search(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]", part)
        assert "X-Injected" not in part.split("\n")[0]
        # No line of the body is the continuation of an injected header block.
        assert not any(ln.startswith(("Bcc:", "X-Injected:", "Subject:")) for ln in part.split("\n"))
    # Client text is capped in both parts (subjects at SUBJECT_LIMIT, by default).
    for part in (text, html):
        longest = max((len(m) for m in re.findall(r"A{50,}|(?:spam ){20,}", part)), default=0)
        assert longest <= cap

    # Serializes and re-parses with the same header set and values.
    raw = msg.as_bytes()
    assert b"\x00" not in raw
    back = email.message_from_bytes(raw, policy=email.policy.default)
    assert _header_names(back) == names
    for name in names:
        if name != "content-type":  # the boundary parameter is kept, folding may differ
            assert _words(back[name]) == _words(msg[name]), name
    for name in ("to", "cc"):
        if name in names:
            assert [a.addr_spec for a in back[name].addresses] == [
                a.addr_spec for a in msg[name].addresses
            ]
            assert [_words(a.display_name) for a in back[name].addresses] == [
                _words(a.display_name) for a in msg[name].addresses
            ]
    btext, bhtml = _parts(back)
    assert (btext, bhtml) == (text, html)
    return text, html


# --------------------------------------------------------------------------- subjects


@pytest.mark.parametrize("kind", ["nudge", "escalation", "summary"])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_subject_renders_safely(name: str, kind: str):
    hostile = HOSTILE[name]
    msg = render(_notice(_line(hostile), kind=kind), smtp_from=FROM)
    check_safe(msg)
    assert msg["X-Ackwatch"] == kind


def test_html_from_the_client_is_shown_as_text():
    text, html = check_safe(render(_notice(_line(HOSTILE["html"])), smtp_from=FROM))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" in text  # plain text shows it literally: harmless


def test_crlf_in_a_subject_becomes_one_line():
    text, _ = check_safe(render(_notice(_line(HOSTILE["crlf_raw"])), smtp_from=FROM))
    assert "Quote Bcc: victim@evil.example <script>alert(1)</script>" in text


def test_ten_kilobyte_subject_is_cut_with_an_ellipsis():
    text, html = check_safe(render(_notice(_line(HOSTILE["ten_kb"])), smtp_from=FROM))
    assert "A" * (SUBJECT_LIMIT - 1) + "…" in text
    assert "A" * SUBJECT_LIMIT not in text and "A" * SUBJECT_LIMIT not in html


def test_emoji_and_zwj_sequences_survive_intact():
    text, html = check_safe(render(_notice(_line(HOSTILE["emoji_zwj"])), smtp_from=FROM))
    for part in (text, html):
        assert FAMILY in part and FLAG in part and "👍🏽" in part


def test_bidi_controls_are_gone_but_the_letters_stay():
    text, _ = check_safe(render(_notice(_line(HOSTILE["bidi"])), smtp_from=FROM))
    assert "invoicegpj.exe" in text and "isolated" in text and "mark" in text


def test_template_placeholders_in_a_subject_stay_literal():
    text, _ = check_safe(render(_notice(_line(HOSTILE["dollar_template"])), smtp_from=FROM))
    assert "$subject ${items} $$ $greeting" in text


# --------------------------------------------------------------------------- names, addresses


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_client_name_and_address_render_safely(name: str):
    hostile = HOSTILE[name]
    line = _line("Quote", client=hostile, client_address=f"{hostile}@evil.example",
                 mailboxes=(hostile, "anna"), account=hostile)
    for kind in ("nudge", "summary"):
        check_safe(render(_notice(line, kind=kind), smtp_from=FROM), cap=ADDRESS_LIMIT)


def test_long_client_name_is_capped():
    line = _line("Quote", client="A" * 10_000, mailboxes=("A" * 10_000,), account="A" * 10_000)
    for kind in ("nudge", "summary"):
        check_safe(render(_notice(line, kind=kind), smtp_from=FROM), cap=NAME_LIMIT)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_recipient_and_account_names_stay_out_of_the_headers(name: str):
    hostile = HOSTILE[name]
    msg = render(_notice(_line(), kind="escalation", recipient_name=hostile,
                         account_name=hostile), smtp_from=FROM)
    check_safe(msg)
    assert [a.addr_spec for a in msg["To"].addresses] == ["kasia@agency.example"]
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["anna@agency.example"]


def test_display_name_with_quotes_and_commas_is_one_address():
    msg = render(_notice(_line(), recipient_name='Nowak, Anna "The Boss" <x@evil.example>'),
                 smtp_from=FROM)
    check_safe(msg)
    back = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    (to,) = back["To"].addresses
    assert to.addr_spec == "anna@agency.example"
    assert to.display_name == 'Nowak, Anna "The Boss" <x@evil.example>'


@pytest.mark.parametrize(
    "display_name",
    [
        "Nowak, Anna " + "Bbbbbbbbb " * 8,  # a comma in a name longer than a header line
        "Anna Nowak " + "x" * 70 + " <kasia@evil.example>",
        '"' * 40 + "Anna",
        "Żółw, Jan \"x\" " + "Aaaaaaaaaa " * 6,
    ],
)
def test_long_display_name_with_specials_stays_one_recipient(display_name: str):
    # Regression: the email package folded such quoted names without their quotes, so the
    # mail went out with a To header naming two (or other) addresses.
    msg = render(_notice(_line(), recipient_name=display_name), smtp_from=FROM)
    check_safe(msg)
    back = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert [a.addr_spec for a in back["To"].addresses] == ["anna@agency.example"]
    assert not back["To"].defects


def test_client_address_with_unicode_local_part_is_shown():
    line = _line("Zamówienie", client="Żółw Sp. z o.o.", client_address="żółw@klient.example")
    text, html = check_safe(render(_notice(line), smtp_from=FROM))
    assert "żółw@klient.example" in text and "żółw@klient.example" in html


def test_recipient_with_unicode_local_part_is_refused_clearly():
    # ackwatch does not send SMTPUTF8 mail: such a recipient is a ValueError naming it,
    # never a half-encoded header.
    with pytest.raises(ValueError, match="not a usable email address"):
        render(_notice(_line(), to="żółw@agency.example"), smtp_from=FROM)


@pytest.mark.parametrize(
    "message_id",
    ["<a@b>\r\nBcc: x@evil.example", "<a\x00@b>", "<<script>@b>", "<" + "a" * 300 + "@b>",
     "<a b@c>", "<a@b>\u202e"],
)
def test_hostile_message_ids_never_reach_x_ackwatch_items(message_id: str):
    msg = render(_notice(_line(message_id=message_id), _line(message_id="<ok@acme.example>")),
                 smtp_from=FROM)
    check_safe(msg)
    assert str(msg["X-Ackwatch-Items"]) == "<ok@acme.example>"


# --------------------------------------------------------------------------- end to end


ENCODED = {
    "encoded_crlf": b"Subject: =?utf-8?Q?Quote=0D=0ABcc:_victim@evil.example=0D=0A?=",
    "encoded_script": b"Subject: =?utf-8?B?PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==?=",
    "encoded_bidi": b"Subject: =?utf-8?Q?invoice=E2=80=AEgpj.exe?=",
    "encoded_nul": b"Subject: =?utf-8?Q?a=00b=00Bcc:_x@y?=",
    "raw_8bit_html": "Subject: <script>ż</script>".encode("cp1250"),
    "name_with_crlf": b"From: =?utf-8?Q?Evil=0D=0ABcc:_x@y?= <evil@client.example>\r\n"
                      b"Subject: hi there",
}


@pytest.mark.parametrize("name", list(ENCODED))
def test_parsed_hostile_mail_renders_safely_end_to_end(name: str):
    """Raw header bytes -> parse_message -> sla.evaluate -> NoticeLine -> render."""
    raw = ENCODED[name]
    if not raw.startswith(b"From:"):
        raw = b"From: Jan <jan@client.example>\r\n" + raw
    raw += b"\r\nTo: anna@agency.example\r\nMessage-ID: <e2e.1@client.example>\r\n\r\n"
    config = make_config()
    m = parse_message(raw, mailbox="anna", folder="INBOX", role="inbox", uid=1,
                      received=NOW - dt.timedelta(hours=1))
    (item,) = sla.evaluate([m], config)
    line = NoticeLine(client=item.client or item.client_address,
                      client_address=item.client_address, subject=item.subject,
                      received=item.received, deadline=item.deadlines.deadline,
                      message_id=item.message_id, mailboxes=item.mailboxes)
    for kind in ("nudge", "escalation", "summary"):
        msg = render(_notice(line, kind=kind), smtp_from=FROM)
        check_safe(msg)
        assert str(msg["X-Ackwatch-Items"]) == "<e2e.1@client.example>"
