"""Promise parsing core: strip_reply, the resolution rules, false positives, robustness.

The multilingual sentence table is in test_promise_table.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ackwatch.core.promise_text import MAX_SENTENCE, Promise, find_promise
from ackwatch.core.reply_text import MAX_INPUT_CHARS, strip_reply
from configfactory import hours, office_calendar

WARSAW = ZoneInfo("Europe/Warsaw")
CAL = office_calendar()
TUE = dt.datetime(2026, 11, 24, 10, 0, tzinfo=WARSAW)  # Tuesday


def promised(text: str, sent: dt.datetime = TUE, hint: str | None = None, cal=CAL):
    p = find_promise(text, sent=sent, calendar=cal, language_hint=hint)
    return None if p is None else p.promised


def at(month: int, day: int, hour: int = 17, minute: int = 0, year: int = 2026):
    return dt.datetime(year, month, day, hour, minute, tzinfo=WARSAW)


# --------------------------------------------------------------------------- strip_reply


def test_strip_reply_cuts_gmail_quote_header_and_quoted_lines():
    text = (
        "I'll send it tomorrow.\n\nOn Mon, 23 Nov 2026 at 09:12, Jan <jan@acme.example> "
        "wrote:\n> by Friday please\n"
    )
    assert strip_reply(text) == "I'll send it tomorrow."


def test_strip_reply_cuts_a_quote_header_wrapped_over_two_lines():
    text = (
        "Will do by Friday.\n\nOn Mon, Nov 23, 2026 at 9:12 AM Jan Kowalski <\n"
        "jan@acme.example> wrote:\n\n> Quote by 25.11?\n"
    )
    assert strip_reply(text) == "Will do by Friday."


@pytest.mark.parametrize(
    "header",
    [
        "W dniu 23.11.2026 o 09:12, Jan Kowalski pisze:",
        "pon., 23 lis 2026 o 09:12 Jan Kowalski <jan@acme.example> napisał(a):",
        "Am 23.11.2026 um 09:12 schrieb Jan Kowalski <jan@acme.example>:",
        "23.11.2026 09:12, Іван Петренко написав(ла):",
        "пн, 23 лист. 2026 р. о 09:12 Іван <ivan@client.example> пише:",
        "На 23.11.2026 г. в 9:12, Иван Петров написа:",
        "пн, 23 нояб. 2026 г. в 09:12, Иван Иванов <ivan@client.example>:",
        "-----Original Message-----",
        "-----Ursprüngliche Nachricht-----",
        "---------- Forwarded message ---------",
        "________________________________",
        "From: Jan Kowalski <jan@acme.example>\nSent: Monday, November 23, 2026 9:12 AM",
        "Od: Jan Kowalski <jan@acme.example>\nWysłano: poniedziałek, 23 listopada 2026 09:12",
    ],
)
def test_strip_reply_cuts_quoted_history_of_every_mail_program(header):
    text = f"Wyślę do piątku.\n\n{header}\nTo: Anna\n\nProszę o wycenę do 25.11 do 12:00.\n"
    assert strip_reply(text) == "Wyślę do piątku."


@pytest.mark.parametrize(
    "signature",
    [
        "-- \nAnna Nowak\n+48 601 512 123",
        "Sent from my iPhone",
        "Wysłane z mojego iPhone'a",
        "Pozdrawiam\nAnna Nowak\ntel. 601 512 123\nul. Marszałkowska 15/12, 00-001 Warszawa",
        "Best regards,\nAnna",
        "Pozdrawiam, Anna Nowak",
        "З повагою,\nОксана Коваль\n+380 44 123 45 67",
        "Поздрави,\nМария",
        "Mit freundlichen Grüßen\nAnna Nowak",
    ],
)
def test_strip_reply_cuts_the_signature(signature):
    assert strip_reply(f"Hi Jan,\nwill send it by Friday.\n\n{signature}\n") == (
        "Hi Jan,\nwill send it by Friday."
    )


def test_strip_reply_keeps_a_closing_word_followed_by_real_content():
    text = "Hi Jan,\nThanks!\nI'll send the quote by Friday.\nAnna"
    assert "by Friday" in strip_reply(text)


def test_strip_reply_keeps_a_reply_that_is_only_thanks():
    assert strip_reply("Thanks, got it!") == "Thanks, got it!"


def test_strip_reply_keeps_inline_answers_between_quoted_lines():
    text = "> Can you do Friday?\nYes, by Friday noon.\n> And the banners?\nMonday."
    assert strip_reply(text) == "Yes, by Friday noon.\nMonday."


# The shape of the hostile reply that took 3.9 s: 16 kB without a sentence end, full of
# month-name dates in Latin and Cyrillic script with promise cues, so every 300-character
# chunk went to dateparser whole, in all six languages.
HOSTILE_UNIT = "будет 15 грудня 15 December 3 dni "


def _dateparser_input(monkeypatch, text: str) -> int:
    """How many characters find_promise hands to dateparser for ``text`` (its cost)."""
    import dateparser.search

    read: list[int] = []
    real = dateparser.search.search_dates

    def counting(text: str, *args, **kwargs):
        read.append(len(text))
        return real(text, *args, **kwargs)

    monkeypatch.setattr(dateparser.search, "search_dates", counting)
    find_promise(text, sent=TUE, calendar=CAL)
    return sum(read)


def test_a_hostile_16_kb_reply_hands_dateparser_a_bounded_amount_of_text(monkeypatch):
    # An operation count rather than a time: what dateparser reads is what costs (about
    # a millisecond per date per language); 4 kB and 16 kB of the shape cost the same.
    small = _dateparser_input(monkeypatch, (HOSTILE_UNIT * 200)[: 4 * 1024])
    large = _dateparser_input(monkeypatch, (HOSTILE_UNIT * 800)[:MAX_INPUT_CHARS])
    assert large <= 12 * 100  # at most 12 windows of about 64 characters
    assert large <= small * 1.5


def test_a_hostile_16_kb_reply_parses_well_within_a_second():
    # A generous upper bound (the issue asks for < 100 ms; ~80 ms measured on a loaded
    # 2-core machine, 3.9 s before), for the case the operation count above misses.
    import time

    text = (HOSTILE_UNIT * 800)[:MAX_INPUT_CHARS]
    find_promise("Bis 15. Dezember. До 15 грудня. 15 December.", sent=TUE, calendar=CAL)
    started = time.perf_counter()
    find_promise(text, sent=TUE, calendar=CAL)
    assert time.perf_counter() - started < 1.0


def test_a_date_in_a_month_name_is_still_found_after_a_run_of_other_dates():
    text = "Termin: 1 grudnia. " * 3 + "I will send the quote by 30 November."
    assert promised(text) == at(11, 30)


def test_strip_reply_reads_at_most_16_kb():
    text = "x" * (MAX_INPUT_CHARS + 5000)
    assert len(strip_reply(text)) == MAX_INPUT_CHARS


def test_dates_in_quoted_history_are_ignored():
    text = (
        "Thanks, noted.\n\nOn Mon, 23 Nov 2026 at 09:12, Jan <jan@acme.example> wrote:\n"
        "> We will need it by Friday 12:00, I'll send the brief tomorrow.\n"
    )
    assert find_promise(text, sent=TUE, calendar=CAL) is None


def test_phone_number_in_a_signature_is_not_a_promise():
    text = "Noted, will check.\n\nAnna Nowak\nAccount Manager\ntel. +48 601 512 123\n"
    assert find_promise(text, sent=TUE, calendar=CAL) is None


# --------------------------------------------------------------------------- decisions


def test_promise_is_in_the_calendar_timezone_and_has_its_sentence():
    sent = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
    p = find_promise(
        "Hi Jan! Thanks for the brief. I'll send the quote by Friday noon. Anna",
        sent=sent,
        calendar=CAL,
    )
    assert p == Promise(at(11, 27, 12), "I'll send the quote by Friday noon.")
    assert p.promised.tzinfo == WARSAW
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.sentence = "x"  # type: ignore[misc]


def test_date_only_promise_is_the_closing_time_of_that_day():
    assert promised("Wycena będzie w czwartek.") == at(11, 26, 17)


def test_closing_time_follows_the_calendar():
    late = office_calendar(hours=hours("08:00-12:00,13:00-18:30"))
    assert promised("Wycena będzie w czwartek.", cal=late) == at(11, 26, 18, 30)


def test_date_only_promise_on_a_holiday_moves_to_the_next_working_days_end():
    # Tue 10 Nov: "tomorrow" is 11 Nov, Independence Day; the promise is Thu 12 Nov 17:00.
    sent = dt.datetime(2026, 11, 10, 15, 0, tzinfo=WARSAW)
    assert promised("Prześlę do jutra.", sent) == at(11, 12)


def test_date_only_promise_on_a_weekend_moves_to_monday():
    assert promised("I'll send it on Sunday.") == at(11, 30)


def test_explicit_time_on_a_closed_day_is_kept_as_said():
    assert promised("I'll send it on Saturday at 11:00.") == at(11, 28, 11)


def test_time_past_closing_is_kept_as_said():
    assert promised("Wyślę jutro o 21:30.") == at(11, 25, 21, 30)


def test_weekday_is_strictly_after_the_sent_date():
    assert promised("Wyślę we wtorek.") == at(12, 1)  # sent on a Tuesday


def test_by_monday_sent_on_a_monday_means_next_monday():
    monday = dt.datetime(2026, 11, 23, 9, 30, tzinfo=WARSAW)
    assert promised("I'll have it ready by Monday.", monday) == at(11, 30)


def test_next_weekday_is_that_day_of_next_week_and_this_weekday_the_coming_one():
    assert promised("I'll send it next Wednesday.") == at(12, 2)
    assert promised("I'll send it this Friday.") == at(11, 27)
    assert promised("Wyślę w przyszły piątek.") == at(12, 4)


def test_next_week_means_monday_of_next_week():
    friday = dt.datetime(2026, 11, 27, 16, 0, tzinfo=WARSAW)
    assert promised("Wyślę w przyszłym tygodniu.", friday) == at(11, 30)
    assert promised("We'll send it next week.") == at(11, 30)


def test_eod_is_todays_closing_and_after_closing_the_evening():
    assert promised("Will send by EOD.") == at(11, 24, 17)
    evening = dt.datetime(2026, 11, 24, 18, 0, tzinfo=WARSAW)
    assert promised("Wyślę dzisiaj.", evening) == at(11, 24, 23, 59)


def test_time_without_a_date_is_today_or_the_next_working_day():
    assert promised("Prześlę do 15:00.") == at(11, 24, 15)
    late = dt.datetime(2026, 11, 27, 16, 0, tzinfo=WARSAW)  # Friday
    assert promised("Prześlę do 15:00.", late) == at(11, 30, 15)


def test_bare_afternoon_hours_are_read_as_pm():
    assert promised("Wyślę jutro o 3.") == at(11, 25, 15)
    assert promised("Wyślę jutro o 10.") == at(11, 25, 10)


def test_yearless_date_rolls_into_next_year_only_when_near():
    december = dt.datetime(2026, 12, 28, 10, 0, tzinfo=WARSAW)
    assert promised("Wyślę do 5.01.", december) == at(1, 5, year=2027)
    # "12.11" written on 24 Nov is about the past, not next November
    assert promised("Wyślę wycenę 12.11.") is None
    assert promised("I'll send it by 12 November.") is None


def test_explicit_past_date_is_not_a_promise():
    assert promised("We will deliver by 20.11.2026.") is None


def test_earliest_future_promise_wins():
    text = "The final version will be ready by Friday. A first draft I'll send tomorrow."
    p = find_promise(text, sent=TUE, calendar=CAL)
    assert p is not None
    assert p.promised == at(11, 25)
    assert p.sentence == "A first draft I'll send tomorrow."


def test_wrapped_lines_are_one_sentence():
    text = (
        "Dzień dobry, dziękuję za przesłanie briefu, przygotujemy pierwsze koncepcje i\n"
        "prześlemy je w piątek do 12:00."
    )
    assert promised(text) == at(11, 27, 12)


def test_language_hint_is_only_a_hint():
    assert promised("Ще изпратя до петък.", hint="en") == at(11, 27)
    assert promised("I'll send it by Friday.", hint="bg") == at(11, 27)
    assert promised("I'll send it by Friday.", hint="xx") == at(11, 27)


def test_within_hours_is_wall_time_after_sent():
    assert promised("Odezwę się w ciągu 2 godzin.") == at(11, 24, 12)


def test_sentence_is_trimmed_to_300_characters():
    text = "I will send it by Friday " + "and " * 200 + "more."
    p = find_promise(text, sent=TUE, calendar=CAL)
    assert p is not None and len(p.sentence) <= MAX_SENTENCE


def test_naive_sent_is_a_programming_error():
    with pytest.raises(ValueError):
        find_promise("by Friday", sent=dt.datetime(2026, 11, 24, 10), calendar=CAL)


@pytest.mark.parametrize("text", ["", "   ", "\n\n", ">", "-- ", "?", "15.12", "by"])
def test_degenerate_input_gives_none(text):
    assert find_promise(text, sent=TUE, calendar=CAL) is None


# --------------------------------------------------------------------------- hypothesis

_FRAGMENTS = [
    "by Friday", "do piątku", "до п'ятниці", "до петък", "jutro", "tomorrow", "утре",
    "завтра", "15.12", "15/12/2026", "15 grudnia", "December 15", "o 15", "12:00", "noon",
    "EOD", "do końca dnia", "next week", "w przyszłym tygodniu", "I'll send", "będzie",
    "ще изпратя", "надішлю", "?", ".", "\n", "> ", "On Mon wrote:", "-- ", "Pozdrawiam",
    "15.000 zł", "2026/11/042", "+48 601 512 123", "31.02", "29.02", "00:00", "24:00",
    "9999-12-31", "0001-01-01", "in 99 hours", "in 999 weeks", "the 31st", "31-go",
    "day after tomorrow", "end of the month", "60 working days", "next Sunday",
]
_SENT = st.datetimes(
    min_value=dt.datetime(1990, 1, 1),
    max_value=dt.datetime(2200, 12, 31),
    timezones=st.sampled_from(
        [WARSAW, dt.UTC, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")]
    ),
)
_TEXT = st.one_of(
    st.text(max_size=400),
    st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=8), max_size=25).map(" ".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT, sent=_SENT, hint=st.sampled_from([None, "en", "pl", "uk", "bg", "ru", "zz"]))
def test_find_promise_never_raises_and_any_promise_is_after_sent(text, sent, hint):
    p = find_promise(text, sent=sent, calendar=CAL, language_hint=hint)
    if p is not None:
        assert p.promised > sent
        assert p.promised.utcoffset() is not None
        assert p.promised.tzinfo == WARSAW
        assert 0 < len(p.sentence) <= MAX_SENTENCE


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=2000))
def test_strip_reply_never_raises_and_never_grows(text):
    out = strip_reply(text)
    assert len(out) <= len(text)


def test_find_promise_with_a_calendar_that_is_never_open_gives_a_result_or_none():
    never = office_calendar(hours=((),) * 7)
    # The calendar cannot place a closing time; explicit times still work, nothing raises.
    assert promised("I'll send it by Friday.", cal=never) in (None, at(11, 27, 23, 59))
    assert promised("Wyślę w piątek o 12:00.", cal=never) == at(11, 27, 12)
