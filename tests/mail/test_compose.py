"""Rendering ackwatch's mails: languages, timezones, escaping, headers, overrides."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from ackwatch.mail.compose import (
    Notice,
    NoticeLine,
    clean_text,
    make_message_id,
    render,
    render_outbox,
)
from ackwatch.mail.templates import plural_category
from configfactory import make_config

# Monday 23 Nov 2026, 13:32:10 UTC = 14:32:10 in Warsaw (CET, UTC+1).
NOW = dt.datetime(2026, 11, 23, 13, 32, 10, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)
FROM = "ackwatch <ackwatch@agency.example>"


def line(
    n: int = 1,
    *,
    due_in: dt.timedelta = 30 * MIN,
    subject: str | None = None,
    client: str = "Acme",
    address: str = "ceo@acme.example",
    message_id: str | None = None,
    account: str | None = None,
    escalation: bool = False,
) -> NoticeLine:
    return NoticeLine(
        client=client,
        client_address=address,
        subject=subject if subject is not None else f"Quote request {n}",
        received=NOW - 90 * MIN,
        deadline=NOW + due_in,
        message_id=message_id if message_id is not None else f"<client-{n}@acme.example>",
        mailboxes=("anna",),
        account=account,
        escalation=escalation,
    )


def nudge(*lines: NoticeLine, **kw: object) -> Notice:
    values: dict = {
        "kind": "nudge",
        "to": "anna@agency.example",
        "lines": lines or (line(),),
        "now": NOW,
        "language": "en",
        "timezone": "UTC",
        "recipient_name": "Anna Nowak",
    }
    values.update(kw)
    return Notice(**values)


def escalation(*lines: NoticeLine, **kw: object) -> Notice:
    values: dict = {
        "kind": "escalation",
        "to": "kasia@agency.example",
        "cc": ("anna@agency.example",),
        "lines": lines or (line(due_in=-20 * MIN),),
        "now": NOW,
        "language": "en",
        "timezone": "Europe/Warsaw",
        "recipient_name": "Kasia Manager",
        "account": "anna@agency.example",
        "account_name": "Anna Nowak",
    }
    values.update(kw)
    return Notice(**values)


def roundtrip(msg: EmailMessage) -> EmailMessage:
    """What a receiving mail program sees: serialize, then parse."""
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(msg: EmailMessage) -> tuple[str, str]:
    msg = roundtrip(msg)
    text = msg.get_body(("plain",))
    body = msg.get_body(("html",))
    assert text is not None and body is not None
    return text.get_content(), body.get_content()


THREE = (
    line(1, due_in=30 * MIN),
    line(2, due_in=80 * MIN, client="Globex", address="buyer@globex.example"),
    line(3, due_in=-35 * MIN, client="initech@initech.example", address="initech@initech.example"),
)


# --------------------------------------------------------------------------- content


def test_nudge_lists_every_item_with_time_left() -> None:
    msg = render(nudge(*THREE), smtp_from=FROM)
    text, body = parts(msg)

    # Earliest deadline 12:57 UTC (the overdue one), shown as a time today.
    assert msg["Subject"] == "Acknowledge now: 3 client emails (first due 12:57)"
    for part in (text, body):
        for n in (1, 2, 3):
            assert f"Quote request {n}" in part
        assert "Acme" in part and "ceo@acme.example" in part
        assert "Globex" in part and "buyer@globex.example" in part
        assert "initech@initech.example" in part
        assert "received Mon 23 Nov 12:02" in part
        assert "Mon 23 Nov 14:02" in part  # deadline of item 1
        assert "30 min left" in part  # 29m50s rounds up
        assert "1 h 20 min left" in part
        assert "overdue by 35 min" in part
    # Earliest deadline first, so the overdue item leads.
    assert text.index("Quote request 3") < text.index("Quote request 1") < text.index(
        "Quote request 2"
    )
    # A client without a configured name is shown once, by address.
    assert "initech@initech.example <initech@initech.example>" not in text


def test_single_item_subject_and_other_day_deadline() -> None:
    tomorrow = line(1, due_in=dt.timedelta(hours=20))
    msg = render(nudge(tomorrow), smtp_from=FROM)
    assert msg["Subject"] == "Acknowledge now: 1 client email (due Tue 09:32)"
    text, _ = parts(msg)
    assert "20 h left" in text


def test_long_durations_and_other_year_dates() -> None:
    old = NoticeLine(
        "Acme", "ceo@acme.example", "Old one", received=dt.datetime(2025, 12, 30, 9, 0, tzinfo=dt.UTC),
        deadline=NOW - dt.timedelta(days=2, hours=3, minutes=4),
    )
    text, _ = parts(render(nudge(old), smtp_from=FROM))
    assert "received Tue 30 Dec 2025 09:00" in text
    assert "overdue by 2 d 3 h" in text


def test_nudge_in_polish_uses_polish_strings_and_warsaw_time() -> None:
    msg = render(nudge(*THREE, language="pl", timezone="Europe/Warsaw"), smtp_from=FROM)
    text, body = parts(msg)

    assert roundtrip(msg)["Subject"] == (
        "Potwierdź teraz: 3 maile od klientów (pierwszy termin 13:57)"
    )
    assert msg["Content-Language"] == "pl"
    for part in (text, body):
        assert "Dzień dobry," in part
        assert "otrzymano pon. 23 lis 13:02" in part
        assert "termin pon. 23 lis 15:02" in part  # 14:02 UTC in Warsaw
        assert "zostało 1 godz. 20 min" in part
        assert "po terminie o 35 min" in part
        assert "Europe/Warsaw" in part
    assert "Acknowledge" not in text and " left" not in text
    assert '<html lang="pl">' in body
    # Date header in the recipient's offset.
    assert msg["Date"] == "Mon, 23 Nov 2026 14:32:10 +0100"


@pytest.mark.parametrize(
    ("language", "n", "expected"),
    [
        ("pl", 1, "1 mail od klienta"),
        ("pl", 2, "2 maile od klientów"),
        ("pl", 5, "5 maili od klientów"),
        ("pl", 12, "12 maili od klientów"),
        ("pl", 22, "22 maile od klientów"),
        ("uk", 1, "1 лист від клієнта"),
        ("uk", 3, "3 листи від клієнтів"),
        ("uk", 11, "11 листів від клієнтів"),
        ("bg", 1, "1 имейл от клиент"),
        ("bg", 4, "4 имейла от клиенти"),
        ("en", 1, "1 client email"),
    ],
)
def test_plural_forms_per_language(language: str, n: int, expected: str) -> None:
    lines = tuple(line(i) for i in range(n))
    msg = render(nudge(*lines, language=language), smtp_from=FROM)
    assert expected in roundtrip(msg)["Subject"]


def test_plural_categories() -> None:
    assert [plural_category("pl", n) for n in (1, 2, 5, 21, 24, 112)] == [
        "one", "few", "many", "many", "few", "many"
    ]
    assert [plural_category("uk", n) for n in (1, 21, 11, 3, 14)] == [
        "one", "one", "many", "few", "many"
    ]


def test_ukrainian_and_bulgarian_templates_render() -> None:
    two = (line(1), line(2, due_in=-5 * MIN))

    uk = render(nudge(*two, language="uk", timezone="Europe/Kyiv"), smtp_from=FROM)
    text, body = parts(uk)
    assert roundtrip(uk)["Subject"] == "Підтвердьте зараз: 2 листи від клієнтів (перший термін 15:27)"
    for part in (text, body):
        assert "Добрий день," in part
        assert "пн 23 лист. 16:02" in part  # Kyiv is UTC+2 in November
        assert "залишилось 30 хв" in part
        assert "прострочено на 5 хв" in part

    bg = render(nudge(*two, language="bg", timezone="Europe/Sofia"), smtp_from=FROM)
    text, body = parts(bg)
    assert roundtrip(bg)["Subject"] == "Потвърдете сега: 2 имейла от клиенти (първи срок 15:27)"
    for part in (text, body):
        assert "Здравейте," in part
        assert "пн 23 ное 16:02" in part
        assert "остават 30 мин" in part
        assert "просрочено с 5 мин" in part

    esc = render(escalation(language="uk"), smtp_from=FROM)
    assert roundtrip(esc)["Subject"] == (
        "Прострочено: Anna Nowak має 1 лист від клієнта без підтвердження"
    )


@pytest.mark.parametrize("language", ["xx", "de", "", "../../etc", "PL-pl"])
def test_unknown_language_falls_back_to_english(language: str) -> None:
    msg = render(nudge(language=language), smtp_from=FROM)
    if language == "PL-pl":  # a region-qualified known language is that language
        assert msg["Content-Language"] == "pl"
        return
    assert msg["Content-Language"] == "en"
    assert msg["Subject"].startswith("Acknowledge now: 1 client email")
    text, _ = parts(msg)
    assert "Hello," in text


def test_summary_lists_account_and_both_kinds() -> None:
    notice = Notice(
        kind="summary",
        to="kasia@agency.example",
        lines=(
            line(1, account="Anna Nowak"),
            line(2, due_in=-50 * MIN, account="Piotr Kowalski", escalation=True),
        ),
        now=NOW,
        timezone="UTC",
    )
    msg = render(notice, smtp_from=FROM)
    text, body = parts(msg)
    assert msg["X-Ackwatch"] == "summary"
    assert msg["Subject"] == "Summary: 2 client emails without acknowledgement (first due 12:42)"
    for part in (text, body):
        assert "account: Anna Nowak" in part
        assert "account: Piotr Kowalski" in part
        assert "overdue by 50 min" in part


def test_digest_is_not_rendered_here_yet() -> None:
    with pytest.raises(NotImplementedError):
        render(nudge(kind="digest"), smtp_from=FROM)


def test_notice_requires_aware_times() -> None:
    with pytest.raises(ValueError, match="aware"):
        nudge(now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="aware"):
        NoticeLine("A", "a@x.example", "s", NOW.replace(tzinfo=None), NOW)


# --------------------------------------------------------------------------- untrusted input


def test_subject_with_script_tag_is_escaped_in_html() -> None:
    evil = line(
        subject='<script>alert("x")</script> & <b>bold</b>',
        client='<img src=x onerror=alert(1)>',
        address='"><svg/onload=alert(1)>@evil.example',
        message_id="<a@b>",
    )
    _, body = parts(render(nudge(evil), smtp_from=FROM))
    assert "<script" not in body.lower()
    assert "<img" not in body and "<svg" not in body and "<b>" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body


def test_crlf_in_subject_cannot_inject_headers() -> None:
    evil = line(
        subject="Invoice\r\nBcc: victim@evil.example\r\n\r\n<h1>body</h1>",
        client="Acme\nX-Injected: 1",
        message_id="<ok@x>\r\nBcc: victim@evil.example",
    )
    notice = escalation(
        evil,
        account_name="Anna\r\nBcc: victim@evil.example",
        recipient_name="Kasia\r\nX-Injected: yes",
    )
    msg = render(notice, smtp_from=FROM)
    raw = msg.as_bytes()
    parsed = roundtrip(msg)

    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    assert b"\nBcc:" not in raw and b"\nX-Injected:" not in raw
    assert parsed["Subject"] == (
        "Overdue: Anna Bcc: victim@evil.example has 1 client email without acknowledgement"
    )
    assert parsed["To"].addresses[0].addr_spec == "kasia@agency.example"
    assert parsed["X-Ackwatch-Items"] is None  # the broken message id was dropped
    text, _ = parts(msg)
    assert not any(ln.startswith(("Bcc:", "X-Injected")) for ln in text.splitlines())
    assert '"Invoice Bcc: victim@evil.example <h1>body</h1>"' in text
    # A recipient address from config that is not one is refused outright.
    with pytest.raises(ValueError, match="address"):
        render(nudge(to="anna@agency.example\r\nBcc: x@evil.example"), smtp_from=FROM)


def test_bidi_controls_are_stripped() -> None:
    bidi = "".join(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
    evil = line(
        subject="Invoice \u202efdp.exe",
        client="Ac\u2066me\u2069",
        address="ceo@acme.example",
    )
    msg = render(escalation(evil, account_name="An\u202ena"), smtp_from=FROM)
    text, body = parts(msg)
    for part in (text, body, str(roundtrip(msg)["Subject"])):
        assert not set(part) & set(bidi)
    assert "Invoice fdp.exe" in text and "Acme" in text
    assert clean_text("a\u202ab\u202cc\u2067d\u2069") == "abcd"


def test_ten_kilobyte_subject_is_truncated() -> None:
    huge = "Re: " + "quote " * 1707  # > 10 KB
    assert len(huge) > 10_000
    msg = render(nudge(line(subject=huge)), smtp_from=FROM)
    text, body = parts(msg)
    shown = next(ln.strip() for ln in text.splitlines() if ln.strip().startswith('"Re: quote'))
    assert len(shown) == 200 + 2  # the quotes around it
    assert shown.endswith('…"')
    assert len(text) < 2_000 and len(body) < 4_000
    assert len(clean_text("x" * 10_240)) == 200


# --------------------------------------------------------------------------- headers


def test_headers_mark_mail_as_ours_and_auto_generated() -> None:
    long_id = "<" + "x" * 120 + "@mail.gmail.com>"
    msg = render(
        nudge(line(1), line(2, message_id=long_id), line(3, message_id="")),
        smtp_from=FROM,
    )
    parsed = roundtrip(msg)
    assert parsed["From"] == FROM
    assert parsed["To"] == "Anna Nowak <anna@agency.example>"
    assert parsed["Cc"] is None
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Ackwatch"] == "nudge"
    assert parsed["X-Ackwatch-Items"].split() == ["<client-1@acme.example>", long_id]
    assert parsed["Date"] is not None
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    raw = msg.as_bytes()
    assert b"=?" not in raw.split(b"X-Ackwatch-Items:", 1)[1].split(b"\nMIME", 1)[0]
    assert all(len(ln) <= 998 for ln in raw.splitlines())
    assert raw.isascii()  # quoted-printable bodies, RFC 2047 headers: no 8BITMIME needed


def test_huge_item_list_omits_items_header() -> None:
    lines = tuple(line(i, message_id=f"<{'y' * 60}-{i}@acme.example>") for i in range(200))
    msg = render(nudge(*lines), smtp_from=FROM)
    assert msg["X-Ackwatch-Items"] is None
    assert msg["X-Ackwatch"] == "nudge"


@pytest.mark.parametrize("kind", ["nudge", "escalation", "summary"])
def test_no_precedence_bulk(kind: str) -> None:
    notice = escalation() if kind == "escalation" else nudge(kind=kind)
    parsed = roundtrip(render(notice, smtp_from=FROM))
    assert parsed["Precedence"] is None
    assert b"precedence" not in render(notice, smtp_from=FROM).as_bytes().lower()


def test_message_id_is_ours_and_unique() -> None:
    ids = {render(nudge(), smtp_from=FROM)["Message-ID"] for _ in range(50)}
    assert len(ids) == 50
    for mid in ids:
        assert re.fullmatch(r"<ackwatch\.[0-9a-f]{32}@agency\.example>", mid)
    own = render(nudge(), smtp_from=FROM, message_id_domain="mx.agency.example")["Message-ID"]
    assert own.endswith("@mx.agency.example>")
    kept = make_message_id("agency.example")
    assert render(nudge(), smtp_from=FROM, message_id=kept)["Message-ID"] == kept
    with pytest.raises(ValueError):
        make_message_id("bad domain>")


def test_escalation_goes_to_manager_cc_account() -> None:
    msg = render(
        escalation(line(1, due_in=-20 * MIN), line(2, due_in=-3 * MIN)), smtp_from=FROM
    )
    parsed = roundtrip(msg)
    assert parsed["To"].addresses[0].addr_spec == "kasia@agency.example"
    assert [a.addr_spec for a in parsed["Cc"].addresses] == ["anna@agency.example"]
    assert parsed["X-Ackwatch"] == "escalation"
    assert parsed["Subject"] == "Overdue: Anna Nowak has 2 client emails without acknowledgement"
    text, body = parts(msg)
    for part in (text, body):
        assert "Responsible: Anna Nowak (in Cc)" in part
        assert "overdue by 20 min" in part and "overdue by 3 min" in part


def test_cc_equal_to_recipient_is_dropped() -> None:
    msg = render(escalation(to="anna@agency.example"), smtp_from=FROM)
    assert msg["Cc"] is None


# --------------------------------------------------------------------------- overrides


def test_template_override_from_templates_dir(tmp_path: Path) -> None:
    (tmp_path / "pl").mkdir()
    (tmp_path / "pl" / "nudge.txt").write_text(
        "Agencja X: $emails\n$items\n-- $recipient_name ($timezone)\n", encoding="utf-8"
    )
    (tmp_path / "pl" / "strings.toml").write_text(
        '[nudge]\nsubject = "Pilne: $emails do $first_due"\n', encoding="utf-8"
    )
    (tmp_path / "item.html").write_text(
        "<li data-status=\"$status\">$subject</li>\n", encoding="utf-8"
    )

    msg = render(
        nudge(line(subject="<b>Wycena</b>"), language="pl", timezone="Europe/Warsaw"),
        smtp_from=FROM,
        templates_dir=tmp_path,
    )
    text, body = parts(msg)
    assert roundtrip(msg)["Subject"] == "Pilne: 1 mail od klienta do 15:02"
    assert text.startswith("Agencja X: 1 mail od klienta\n")
    assert text.rstrip().endswith("-- Anna Nowak (Europe/Warsaw)")
    assert "zostało 30 min" in text  # unchanged strings still come from the package
    # The HTML layout is the package's, the item override is used, escaping still applies.
    assert '<li data-status="left">&lt;b&gt;Wycena&lt;/b&gt;</li>' in body
    assert "Dzień dobry," in body

    # Other languages keep the package templates.
    en_text, _ = parts(render(nudge(), smtp_from=FROM, templates_dir=tmp_path))
    assert en_text.startswith("Hello,")


def test_one_layout_override_restyles_every_kind(tmp_path: Path) -> None:
    (tmp_path / "layout.html").write_text(
        '<html><body class="house-style">$intro<ul>$items</ul></body></html>\n',
        encoding="utf-8",
    )
    (tmp_path / "layout.txt").write_text("HOUSE $kind\n$items\n", encoding="utf-8")
    for notice in (nudge(), escalation()):
        text, body = parts(render(notice, smtp_from=FROM, templates_dir=tmp_path))
        assert text.startswith(f"HOUSE {notice.kind}\n")
        assert '<body class="house-style">' in body


def test_a_kind_layout_override_wins_over_the_shared_layout(tmp_path: Path) -> None:
    (tmp_path / "escalation.txt").write_text("ESCALATED\n$items\n", encoding="utf-8")
    escalated, _ = parts(render(escalation(), smtp_from=FROM, templates_dir=tmp_path))
    nudged, _ = parts(render(nudge(), smtp_from=FROM, templates_dir=tmp_path))
    assert escalated.startswith("ESCALATED\n")
    assert nudged.startswith("Hello,")  # the other kinds keep the package layout


def test_an_overdue_promise_is_listed_with_the_promise_item_template() -> None:
    promised = dataclasses.replace(line(due_in=-20 * MIN), sentence="I will send it by noon.")
    for kind in ("promise", "promise-overdue"):
        text, body = parts(render(nudge(promised, kind=kind), smtp_from=FROM))
        assert "I will send it by noon." in text
        assert "<blockquote" in body and "I will send it by noon." in body


def test_templates_dir_can_add_a_language(tmp_path: Path) -> None:
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "strings.toml").write_text(
        'greeting = "Hallo,"\n[nudge]\nsubject = "Jetzt bestätigen: $emails"\n'
        '[emails]\none = "$n Kundenmail"\nother = "$n Kundenmails"\n',
        encoding="utf-8",
    )
    msg = render(nudge(line(1), line(2), language="de"), smtp_from=FROM, templates_dir=tmp_path)
    assert roundtrip(msg)["Subject"] == "Jetzt bestätigen: 2 Kundenmails"
    text, _ = parts(msg)
    assert text.startswith("Hallo,")
    assert "30 min left" in text  # missing keys fall back to English


# --------------------------------------------------------------------------- outbox adapter


@dataclass(frozen=True)
class _Record:  # the fields of store.OutboxRecord that render_outbox reads
    kind: str
    recipient: str
    cc: tuple[str, ...]
    account: str | None
    escalation_keys: tuple[str, ...]
    message_id: str


@dataclass(frozen=True)
class _Item:  # the fields of store.ItemRecord that render_outbox reads
    key: str
    message_id: str | None
    client_address: str
    client: str | None
    subject: str
    received: dt.datetime
    deadline: dt.datetime
    mailboxes: tuple[str, ...]
    account: str | None


def test_render_outbox_uses_recipient_language_calendar_and_recorded_message_id() -> None:
    config = make_config()
    item = _Item("k1", "<c1@acme.example>", "ceo@mail.example", "Acme", "Wycena",
                 NOW - 90 * MIN, NOW - 10 * MIN, ("anna",), "anna@agency.example")
    mid = make_message_id("agency.example")

    # The manager (an account with language en) is told about Anna's item, Anna in Cc.
    esc = render_outbox(
        config,
        _Record("escalation", "kasia@agency.example", ("anna@agency.example",),
                "anna@agency.example", ("k1",), mid),
        [item],
        NOW,
    )
    assert esc["Message-ID"] == mid
    assert esc["Subject"] == "Overdue: Anna Nowak has 1 client email without acknowledgement"
    assert esc["Cc"] == "anna@agency.example"
    assert esc["From"] == config.smtp.from_address

    # Anna's own nudge: Polish, Warsaw time.
    nudge_msg = render_outbox(
        config,
        _Record("nudge", "anna@agency.example", (), "anna@agency.example", (), mid),
        [dataclasses.replace(item, deadline=NOW + 28 * MIN)],
        NOW,
    )
    assert roundtrip(nudge_msg)["Subject"] == "Potwierdź teraz: 1 mail od klienta (termin 15:00)"
    assert roundtrip(nudge_msg)["To"] == "Anna Nowak <anna@agency.example>"


def test_the_template_files_of_a_config_are_read_once_until_a_new_config(tmp_path: Path) -> None:
    base = make_config()
    config = dataclasses.replace(
        base, notify=dataclasses.replace(base.notify, templates_dir=tmp_path))
    (tmp_path / "layout.txt").write_text("FIRST $kind\n$items\n", encoding="utf-8")
    item = _Item("k1", "<c1@acme.example>", "ceo@mail.example", "Acme", "Wycena",
                 NOW - 90 * MIN, NOW + 28 * MIN, ("anna",), "anna@agency.example")
    record = _Record("nudge", "anna@agency.example", (), "anna@agency.example", (),
                     make_message_id("agency.example"))

    def text_of(cfg: object) -> str:
        return parts(render_outbox(cfg, record, [item], NOW))[0]  # type: ignore[arg-type]

    assert text_of(config).startswith("FIRST nudge")
    (tmp_path / "layout.txt").write_text("SECOND $kind\n$items\n", encoding="utf-8")
    assert text_of(config).startswith("FIRST nudge")  # the same config: read before
    reloaded = dataclasses.replace(config)  # what a SIGHUP's load gives: a new config
    assert text_of(reloaded).startswith("SECOND nudge")
