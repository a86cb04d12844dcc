"""The promise table: real-sounding acknowledgements and the instant each one promises.

Office calendar: Europe/Warsaw, Mon-Fri 09:00-17:00, PL holidays, closed 24 and 31 Dec
(`configfactory.office_calendar`). Unless a row says otherwise the reply is sent on
Tuesday 24 November 2026 at 10:00 (Warsaw); Friday is 27 Nov, Monday 30 Nov.

Decisions pinned here (see `ackwatch.core.promise_text`):
- a date without a time = that day's closing (17:00); a closed day (weekend, holiday,
  24 Dec) = the closing of the next open day ("do jutra" on 10 Nov -> Thu 12 Nov, since
  11 Nov is Independence Day);
- an explicit time is kept as said, also past closing or on a closed day;
- a weekday is strictly after the sent date ("by Monday" on a Monday = next Monday);
- "next week" = Monday of the next week; "today" after closing = 23:59.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ackwatch.core.promise_text import find_promise, sentences_read
from configfactory import office_calendar

WARSAW = ZoneInfo("Europe/Warsaw")
CAL = office_calendar()
TUE = dt.datetime(2026, 11, 24, 10, 0, tzinfo=WARSAW)


def at(month: int, day: int, hour: int = 17, minute: int = 0, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=WARSAW)


def sent(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2026) -> dt.datetime:
    return at(month, day, hour, minute, year)


# (language, text, sent, expected instant or None)
PROMISES: list[tuple[str, str, dt.datetime, dt.datetime | None]] = [
    # ------------------------------------------------------------------ en
    ("en", "I'll send the quote by Friday noon.", TUE, at(11, 27, 12)),
    ("en", "The quote will be ready by Friday.", TUE, at(11, 27)),
    ("en", "We'll have it to you tomorrow at 3pm.", TUE, at(11, 25, 15)),
    ("en", "You'll get the mock-ups by December 15.", TUE, at(12, 15)),
    ("en", "Final files will be ready by 15/12/2026.", TUE, at(12, 15)),
    ("en", "I'll get it over to you by EOD.", TUE, at(11, 24)),
    ("en", "We'll send the revised brief the day after tomorrow.", TUE, at(11, 26)),
    ("en", "I will share the first concepts next week.", TUE, at(11, 30)),
    # "by Monday" written on a Monday: next Monday.
    ("en", "I'll have the banners ready by Monday.", sent(11, 23), at(11, 30)),
    # past closing: kept as said
    ("en", "Expect the draft by 6pm tomorrow.", TUE, at(11, 25, 18)),
    # tomorrow is a Saturday: the next working day's end
    ("en", "I'll send it tomorrow.", sent(11, 27, 15), at(11, 30)),
    ("en", "I'll get back to you within 2 hours.", TUE, at(11, 24, 12)),
    ("en", "The report will be done in 3 business days.", TUE, at(11, 27)),
    ("en", "I'll send the updated deck by end of day tomorrow.", TUE, at(11, 25)),
    ("en", "We should have the translation ready by the end of the week.", TUE, at(11, 27)),
    ("en", "I'll send the final invoice by 3 December.", TUE, at(12, 3)),
    # "today" written after closing: that evening
    ("en", "I'll send it today.", sent(11, 24, 18, 30), at(11, 24, 23, 59)),
    # an explicit time on a closed day is kept
    ("en", "You'll have it on Saturday at 10:00.", TUE, at(11, 28, 10)),
    ("en", "I'll send a draft tomorrow and the final version by Friday.", TUE, at(11, 25)),
    ("en", "Thanks for the brief! We will deliver on 2026-12-03.", TUE, at(12, 3)),
    # ------------------------------------------------------------------ pl
    ("pl", "Wycena będzie do piątku.", TUE, at(11, 27)),
    ("pl", "Wycenę prześlę w piątek do 12:00.", TUE, at(11, 27, 12)),
    ("pl", "Prześlę jutro o 15.", TUE, at(11, 25, 15)),
    ("pl", "Odpowiem pojutrze.", TUE, at(11, 26)),
    ("pl", "Materiały będą w przyszłym tygodniu.", TUE, at(11, 30)),
    ("pl", "Projekt wyślę 15 grudnia.", TUE, at(12, 15)),
    ("pl", "Poprawki prześlę do końca dnia.", TUE, at(11, 24)),
    # 11 November is a public holiday: "do jutra" = the end of Thursday the 12th
    ("pl", "Wycenę przygotuję do jutra.", sent(11, 10), at(11, 12)),
    ("pl", "Dokumenty będą gotowe do 15.12.", TUE, at(12, 15)),
    ("pl", "Odezwę się najpóźniej w czwartek o 9:30.", TUE, at(11, 26, 9, 30)),
    ("pl", "Zrobimy to w ciągu 3 dni roboczych.", TUE, at(11, 27)),
    ("pl", "Najpóźniej do końca tygodnia wyślę poprawki.", TUE, at(11, 27)),
    # Saturday: the next working day's end
    ("pl", "Wyślę w sobotę.", sent(11, 26), at(11, 30)),
    # 24 Dec closed, 25-26 Dec holidays, 27 Dec Sunday
    ("pl", "Pliki będą do 24.12.", sent(12, 21), at(12, 28)),
    ("pl", "Wycenę dostanie Pan jutro rano.", TUE, at(11, 25, 12)),
    ("pl", "Wyślę za tydzień.", TUE, at(12, 1)),
    ("pl", "Wycena będzie gotowa 4 grudnia.", TUE, at(12, 4)),
    ("pl", "Wycena będzie w piątek, 4 grudnia.", TUE, at(12, 4)),
    ("pl", "Odpiszę w środę do 18:00.", TUE, at(11, 25, 18)),
    ("pl", "Projekt będzie gotowy w przyszły wtorek.", sent(11, 25), at(12, 1)),
    ("pl", "Wrócę do Państwa z propozycją w poniedziałek.", TUE, at(11, 30)),
    ("pl", "Do końca dnia prześlę poprawki.", TUE, at(11, 24)),
    ("pl", "Kampania będzie gotowa do 10.01.", sent(12, 22), at(1, 11, year=2027)),
    # ------------------------------------------------------------------ uk
    ("uk", "Надішлю до 15.12.", TUE, at(12, 15)),
    ("uk", "Надішлю макети до п'ятниці.", TUE, at(11, 27)),
    ("uk", "Підготуємо пропозицію завтра до 12:00.", TUE, at(11, 25, 12)),
    ("uk", "Відповім післязавтра.", TUE, at(11, 26)),
    ("uk", "Надішлемо фінальну версію наступного тижня.", TUE, at(11, 30)),
    ("uk", "Кошторис буде готовий 3 грудня.", TUE, at(12, 3)),
    ("uk", "Зроблю до кінця дня.", TUE, at(11, 24)),
    ("uk", "Надішлю в понеділок о 10:00.", TUE, at(11, 30, 10)),
    ("uk", "Надішлю протягом 3 днів.", TUE, at(11, 27)),
    ("uk", "Дякую! Надішлю рахунок до середи.", TUE, at(11, 25)),
    # ------------------------------------------------------------------ bg
    ("bg", "Ще изпратя утре.", TUE, at(11, 25)),
    ("bg", "Ще изпратя офертата до петък.", TUE, at(11, 27)),
    ("bg", "Ще бъде готово до 16 часа.", TUE, at(11, 24, 16)),
    ("bg", "Ще ви изпратя предложението на 3 декември.", TUE, at(12, 3)),
    ("bg", "Ще ви отговоря вдругиден.", TUE, at(11, 26)),
    ("bg", "Ще изпратя макетите следващата седмица.", TUE, at(11, 30)),
    ("bg", "Ще получите файловете до края на деня.", TUE, at(11, 24)),
    ("bg", "Ще изпратя в сряда в 14:00.", TUE, at(11, 25, 14)),
    ("bg", "Офертата ще е готова до 15.12.", TUE, at(12, 15)),
    # ------------------------------------------------------------------ ru
    ("ru", "Пришлю 15 декабря.", TUE, at(12, 15)),
    ("ru", "Пришлю завтра в 12:00.", TUE, at(11, 25, 12)),
    ("ru", "Отправлю до пятницы.", TUE, at(11, 27)),
    ("ru", "Подготовим на следующей неделе.", TUE, at(11, 30)),
    # ------------------------------------------------------------------ de
    ("de", "Ich schicke Ihnen das Angebot bis Freitag.", TUE, at(11, 27)),
    ("de", "Das Angebot kommt morgen um 12 Uhr.", TUE, at(11, 25, 12)),
    ("de", "Wir liefern bis 15. Dezember.", TUE, at(12, 15)),
    ("de", "Ich melde mich übermorgen.", TUE, at(11, 26)),
]

FULL_EMAILS: list[tuple[str, str, dt.datetime, dt.datetime | None]] = [
    (
        "en",
        "Hi Jan,\n\nthanks for the brief. I'll send the first draft tomorrow.\n\n"
        "Best regards,\nAnna Nowak\nAccount Manager\ntel. +48 601 512 123\n\n"
        "On Mon, 23 Nov 2026 at 09:12, Jan Kowalski <jan@acme.example> wrote:\n"
        "> Could you send the quote by 25.11? We need it before 12:00.\n> Thanks\n",
        TUE,
        at(11, 25),
    ),
    (
        "pl",
        "Dzień dobry,\nwycena będzie gotowa w czwartek.\n\nPozdrawiam\nAnna Nowak\n"
        "tel. 601 512 123\n\n-----Original Message-----\nFrom: Jan Kowalski "
        "<jan@acme.example>\nSent: Monday, November 23, 2026 9:12 AM\nTo: Anna Nowak\n"
        "Subject: Wycena\n\nProsimy o wycenę do 25.11, spotkanie mamy w środę o 10:00.\n",
        TUE,
        at(11, 26),
    ),
    (
        "uk",
        "Добрий день!\nНадішлю кошторис завтра.\n\nЗ повагою,\nОксана\n\n"
        "пн, 23 лист. 2026 р. о 09:12 Іван <ivan@client.example> пише:\n"
        "> Чи можна отримати до 24.11 до 12:00?\n",
        TUE,
        at(11, 25),
    ),
    (
        "bg",
        "Здравейте,\nще изпратя офертата до петък.\n\nПоздрави,\nМария\n\n"
        "На 23.11.2026 г. в 9:12, Иван Петров написа:\n> Може ли до 25.11 в 12:00?\n",
        TUE,
        at(11, 27),
    ),
    (
        "pl",
        "Jasne, zajmę się tym.\nW dniu 23.11.2026 o 09:12, Jan Kowalski pisze:\n"
        "> Proszę o poprawki do środy 25.11, najpóźniej do 12:00.\n",
        TUE,
        None,
    ),
    (
        "en",
        "Got it, thanks.\n\nAnna Nowak | Agency Example\n+48 601 512 123 | ul. Marszałkowska "
        "15/12, 00-001 Warszawa\n\n________________________________\nFrom: Jan\n"
        "Sent: 23 November 2026 09:12\nSubject: Banners\n\nPlease send them by 25.11.\n",
        TUE,
        None,
    ),
]

NO_PROMISE: list[tuple[str, str]] = [
    ("en", "Thanks, got it!"),
    ("pl", "Dziękuję, przekażę dalej."),
    ("en", "Invoice 2026/11/042 attached."),
    ("uk", "Ціна 15.000 грн"),
    ("en", "I'm out of office until Monday, 30 November."),
    ("en", "Could you send us the logo by Friday?"),
    ("pl", "Wycena: 15.000 zł netto, termin płatności 14 dni."),
    ("pl", "Dziękujemy za przesłanie materiałów 20.11."),
    ("en", "Our office will be closed on 8 December."),
    ("uk", "Дякую, отримала."),
    ("bg", "Благодаря, получих го."),
    ("pl", "Spotkanie mamy w czwartek o 10."),
    ("en", "We need 15 banners in 3 sizes, I'll check with the studio."),
    ("uk", "Сума до сплати: 12.50 грн."),
    ("en", "Last Friday we sent the files, I'll check with the team."),
    ("pl", "Proszę o przesłanie logo do piątku."),
    ("en", "Call me at +48 601 512 123 if anything comes up."),
    ("en", "Version 2.3 will be deployed by the IT team."),
    ("pl", "Adres do korespondencji: ul. Marszałkowska 15/12, 00-001 Warszawa."),
    ("ru", "Спасибо, получили, передам коллегам."),
    ("de", "Danke, ist angekommen."),
    ("en", "The order from 02.11.2026 will be invoiced separately."),
]


# Acknowledgements that keep the two-hour rule but say nothing of by when: "no date"
# (issue 23), in every supported language.
DATELESS_ACKS: list[tuple[str, str]] = [
    ("en", "Thanks, on it."),
    ("en", "Got it, thanks! We'll take a look and get back to you."),
    ("pl", "Dziękuję, zajmę się tym."),
    ("pl", "Dzięki, otrzymałam, już nad tym pracujemy."),
    ("uk", "Дякую, беру в роботу."),
    ("uk", "Дякую, отримали, займемося."),
    ("bg", "Благодаря, поемам го."),
    ("ru", "Спасибо, беру в работу."),
    ("de", "Danke, ich kümmere mich darum."),
]


def _id(row: tuple) -> str:
    return f"{row[0]}:{row[1][:40]}"


@pytest.mark.parametrize("row", PROMISES + FULL_EMAILS, ids=_id)
def test_acknowledgement_promises_the_expected_instant(row):
    language, text, sent_at, expected = row
    promise = find_promise(text, sent=sent_at, calendar=CAL, language_hint=language)
    if expected is None:
        assert promise is None
        return
    assert promise is not None, "no promise found"
    assert promise.promised == expected
    assert promise.promised.tzinfo == WARSAW
    assert promise.sentence and len(promise.sentence) <= 300
    assert "\n" not in promise.sentence and ">" not in promise.sentence


@pytest.mark.parametrize("row", NO_PROMISE, ids=_id)
def test_sentence_without_a_promise_gives_none(row):
    language, text = row
    assert find_promise(text, sent=TUE, calendar=CAL, language_hint=language) is None


@pytest.mark.parametrize("row", NO_PROMISE, ids=_id)
def test_sentence_without_a_promise_gives_none_whatever_the_hint(row):
    _, text = row
    assert find_promise(text, sent=TUE, calendar=CAL, language_hint=None) is None


@pytest.mark.parametrize("row", DATELESS_ACKS, ids=_id)
def test_acknowledgement_without_a_date_gives_no_date(row):
    language, text = row
    assert find_promise(text, sent=TUE, calendar=CAL, language_hint=language) is None
    looked_at = sentences_read(text, sent=TUE, calendar=CAL, language_hint=language)
    assert " ".join(s for s, _ in looked_at) == text, "the sentences it looked at are shown"


def test_dateless_acknowledgements_cover_every_language():
    assert {row[0] for row in DATELESS_ACKS} == {row[0] for row in PROMISES}


def test_the_table_is_big_enough():
    assert len(PROMISES) + len(FULL_EMAILS) + len(NO_PROMISE) >= 60
    assert len(NO_PROMISE) >= 10
    assert {row[0] for row in PROMISES} >= {"en", "pl", "uk", "bg", "ru", "de"}
