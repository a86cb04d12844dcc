"""Raw 8-bit header values that are not UTF-8: read in the charset the detector finds for
the mail's raw values together, the guess named in the defects; latin-1 as the last
resort. Header shapes as old Outlook Express / The Bat! / Becky! send them."""

from __future__ import annotations

import datetime as dt

import pytest

from ackwatch.core.legacy_charset import guess
from ackwatch.core.message import parse_message

RECEIVED = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def raw_mail(name: str, subject: str, charset: str) -> bytes:
    return (
        f"From: {name} <client@client.example>\r\n".encode(charset)
        + b"To: anna@agency.example\r\n"
        + f"Subject: {subject}\r\n".encode(charset)
        + b"Message-ID: <raw.1@client.example>\r\n"
        + b"Date: Mon, 23 Nov 2026 09:00:00 +0300\r\n\r\n"
    )


def parse(data: bytes):
    return parse_message(data, mailbox="anna", folder="INBOX", role="inbox", uid=1,
                         received=RECEIVED)


@pytest.mark.parametrize(
    ("name", "subject", "charset", "label"),
    [
        ("Иван Петров", "Смета на рекламную кампанию", "cp1251", "windows-1251"),
        ("Иван Петров", "Смета на рекламную кампанию", "koi8-r", "koi8-r"),
        ("Олена Коваленко", "Кошторис на рекламну кампанію", "cp1251", "windows-1251"),
        ("Олена Коваленко", "Кошторис на рекламну кампанію", "koi8-u", "koi8-u"),
        ("山田太郎", "見積もりのお願い", "shift_jis", "shift_jis"),
        ("株式会社サンプル 佐藤", "発注書の確認をお願いします", "shift_jis", "shift_jis"),
        ("Jerzy Wójcik", "Wycena świąteczna – Łódź", "cp1250", "windows-1250"),
        ("François Müller", "Devis pour la réunion à Zürich", "latin-1", "windows-1252"),
    ],
)
def test_raw_8bit_subject_and_name_are_read_in_the_guessed_charset(name, subject, charset,
                                                                   label):
    m = parse(raw_mail(name, subject, charset))
    assert (m.sender.name, m.subject) == (name, subject)
    assert m.sender.address == "client@client.example"
    assert {f"guessed-charset:{label}", "bad-encoding:subject", "bad-encoding:from"} <= set(
        m.defects)


def test_a_utf8_value_beside_raw_cp1251_stays_utf8_and_the_guess_reads_only_the_others():
    data = ("From: Иван Петров <ivan@client.example>\r\n".encode()  # valid UTF-8
            + "Subject: Смета на рекламную кампанию\r\n".encode("cp1251")
            + b"Message-ID: <mixed.1@client.example>\r\n\r\n")
    m = parse(data)
    assert (m.sender.name, m.subject) == ("Иван Петров", "Смета на рекламную кампанию")
    assert "bad-encoding:from" not in m.defects
    assert "guessed-charset:windows-1251" in m.defects


def test_valid_utf8_headers_are_never_guessed():
    m = parse(raw_mail("Иван Петров", "Смета на рекламную кампанию", "utf-8"))
    assert m.subject == "Смета на рекламную кампанию"
    assert not [d for d in m.defects if d.startswith(("guessed-charset", "bad-encoding"))]


def test_nothing_to_guess_from_is_no_guess():
    assert guess([]) is None and guess([b""]) is None
