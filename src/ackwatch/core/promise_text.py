"""Promise keeper, parser half: when an acknowledgement says by when the work will be
ready, find that instant.

Pure core: no I/O, the clock is never read (``sent`` is the reference instant).

- `find_promise(text, sent=..., calendar=...)`: the promised instant and the sentence it
  came from, or None. Never raises on any text.

Its parts: `reply_text.strip_reply` (the new text of a reply, without quoted history and
signature), `promise_phrases` (the cue words and the hand-written phrases of each
language), `promise_dateparser` (what dateparser reads, within a budget). This module
splits sentences and resolves the phrases into instants.

How a promise is found
----------------------
The reply is stripped (`strip_reply`), split into sentences, and only sentences with a
promise cue ("by", "will", "do", "będzie", "до", "ще", "надішлю", "bis", ...) are read.
Sentences that are questions, requests to the client ("please send", "prześlij",
"надішліть", ...) or about absence or closure ("out of office", "urlop", "відпустка",
"closed", ...), payment terms ("termin płatności 14 dni") and an offer's validity
("valid until 15.12", "oferta ważna do") are skipped. Cues are per sentence, so a
sentence with two dates takes the earlier even when only the later is promised ("fully
booked this week, I'll send it next Wednesday" -> Friday): a reminder too early, never
too late. In each sentence, date and time phrases are found, a time is
attached to the nearest date phrase of its sentence, and each phrase becomes an instant.
The earliest instant strictly after ``sent`` wins.

Resolution rules (in the calendar's timezone, relative to ``sent``'s local date):

- A date without a time ("do piątku", "15.12", "tomorrow", "EOD") means the end of that
  working day: the calendar's closing time that day. When that day is closed (weekend,
  holiday, extra closed day) it means the closing time of the next open day: nobody
  works on a closed day, so "do jutra" said the day before a holiday is read by the
  agency and the client alike as "by the end of the next working day". When the day is
  ``sent``'s own day and it has already closed ("I'll send it today" at 19:00), the
  promise is 23:59 that day (what was said: today).
- An explicit time is kept as said, even past closing or on a closed day ("Saturday at
  10:00", "jutro o 19"): that is what the client was promised. A bare hour 1-7 without
  am/pm ("o 3", "at 5") is read as afternoon (13-19), business-hours reading; "noon",
  "południe", "до обіду" and "morning"/"rano" mean 12:00.
- A time without a date ("by 15:00", "EOD") is today when still ahead, else the next open
  day at that time.
- A weekday is the next such day strictly after ``sent``'s date, so "by Monday" sent on a
  Monday is next Monday; "this/coming Friday" is the same. "next Friday" / "w przyszły
  piątek" / "наступної п'ятниці" / "nächsten Freitag" is that day of the next week.
- "on the 15th" / "do 15-go" / "до 5-го" / "до 5-ти": that day of this month if not past,
  else of the next month. "do 12" alone (hour or day?) is not read.
- "next week" / "w przyszłym tygodniu" = Monday of the next week; "this week" / "end of
  the week" = the last open day of ``sent``'s week; "end of the month" = the last open day
  of the month; "N working days" counts open days; "within 2 hours" is wall time after
  ``sent``.
- Dates without a year are the next occurrence on or after ``sent``'s date, but only
  within `YEARLESS_HORIZON` (183 days): "12.11" written on 24 Nov refers to the past, not
  to next November. Dates with a year must not be before ``sent``'s date and at most
  `MAX_AHEAD` ahead.

What dateparser does and what is hand-written
---------------------------------------------
dateparser (``search_dates``, one language at a time) is used for dates written with a
month name in any of en/pl/uk/bg/ru/de ("15 grudnia", "December 15th", "на 3 декември",
"5 січня 2027 р.", "15. Dezember") and for day offsets ("in 3 days", "za 3 dni",
"через 3 дні", "след 3 дни"). Its matches are only accepted when they contain a month
name and a digit, or a day/week unit: on its own it also reports "We" (Wednesday), "May",
"Mar", "now", "+48" (year 2048), "1.5", "2.3", "12.50" and street numbers "15/12". It
reads only short windows around a month name next to a digit or a day/week unit, at most
12 (window, language) pairs per reply: its cost is about a millisecond per date per
language, and a hostile 16 kB reply of such dates took 3.9 s when it read every sentence.

Hand-written, because dateparser misses or gets them wrong (checked with dateparser 1.5):
Polish/Ukrainian/Russian weekdays in the genitive ("do piątku", "до п'ятниці",
"до пятницы": not found); weekdays in general (for the one "strictly after" rule);
"day after tomorrow" (dateparser: tomorrow); "next week" (dateparser: +7 days, not
Monday; pl/bg/ru forms not found); "end of the week/month", "EOD", "do końca dnia" (not
found); "15.12" without a year (not found); times after a date in pl/de ("jutro o 15",
"morgen um 12 Uhr": the hour is dropped); "za tydzień" (not found) and week offsets;
"on the 15th" (dateparser: the past 15th); "within 2 hours"; "N working days".
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ackwatch.config import CalendarConfig
from ackwatch.core.business_clock import business_calendar
from ackwatch.core.promise_dateparser import DateparserBudget, dateparser_mentions
from ackwatch.core.promise_phrases import CUE, MONTH_STEM, NOT_A_PROMISE, Mention, scan
from ackwatch.core.reply_text import strip_reply

MAX_SENTENCE = 300  # Promise.sentence is at most this long
YEARLESS_HORIZON = dt.timedelta(days=183)
MAX_AHEAD = dt.timedelta(days=731)
_MAX_SENTENCES = 200


@dataclass(frozen=True)
class Promise:
    """``promised``: aware, in the calendar's timezone; ``sentence``: where it was said."""

    promised: dt.datetime
    sentence: str


# =========================================================================== sentences

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_ORDINAL_MONTH = re.compile(r"(?<!\d)\d{1,2}\.$")


def _sentences(text: str) -> list[str]:
    """Sentences of the stripped reply. Paragraph lines are joined when a line looks
    hard-wrapped (long, no end punctuation); a sentence ends at . ! ? … before an upper
    case letter (so "godz. 15", "Dec. 15" and "15.12." inside a sentence stay whole)."""
    out: list[str] = []
    lines = [line.strip() for line in text.split("\n")]
    joined: list[str] = []
    current = ""
    for line in lines:
        if not line:
            if current:
                joined.append(current)
            current = ""
            continue
        if current and len(current) >= 60 and not current.endswith((".", "!", "?", "…", ":")):
            current += " " + line
        else:
            if current:
                joined.append(current)
            current = line
    if current:
        joined.append(current)
    for para in joined:
        start = 0
        for m in _SENTENCE_END.finditer(para):
            nxt = para[m.end() : m.end() + 1]
            prev = para[m.start() - 1 : m.start()]
            tail = para[max(0, m.start() - 4) : m.start()]
            if _ORDINAL_MONTH.search(tail) and MONTH_STEM.match(para, m.end()):
                continue  # "bis 15. Dezember": a German ordinal, not a sentence end
            if prev in "!?…" or nxt[:1].isupper() or nxt in "\"„«(":
                out.append(para[start : m.start()])
                start = m.end()
        out.append(para[start:])
    result: list[str] = []
    for s in out:
        s = " ".join(s.split())
        while len(s) > MAX_SENTENCE:  # an overlong "sentence": chunks at spaces
            cut = s.rfind(" ", 0, MAX_SENTENCE)
            cut = cut if cut > 0 else MAX_SENTENCE
            result.append(s[:cut].strip())
            s = s[cut:].strip()
        if s:
            result.append(s)
    return result[:_MAX_SENTENCES]


# =========================================================================== resolution


class _Resolver:
    def __init__(self, sent: dt.datetime, calendar: CalendarConfig):
        self.cal = business_calendar(calendar)
        self.tz = self.cal.tz
        self.sent = sent.astimezone(self.tz)
        self.today = self.sent.date()

    # ---------------------------------------------------------------- days

    def closed(self, day: dt.date) -> bool:
        return self.cal.is_closed_day(day)

    def end_of_working_day(self, day: dt.date) -> dt.datetime:
        """The closing time of ``day``, or of the next open day when ``day`` is closed; on
        ``sent``'s own day after closing: 23:59 that day."""
        closing = None if self.closed(day) else self.cal.closing_time(day)
        if closing is None:  # a closed day (also "today" on a Saturday): the next open day
            start = dt.datetime.combine(day, dt.time(), tzinfo=self.tz)
            opening = self.cal.next_open(start)
            closing = self.cal.closing_time(opening.date())
            if closing is None:  # pragma: no cover - next_open returns an open day
                closing = dt.datetime.combine(day, dt.time(23, 59), tzinfo=self.tz)
        if closing <= self.sent and day == self.today:
            closing = dt.datetime.combine(day, dt.time(23, 59), tzinfo=self.tz)
        return closing

    def at(self, day: dt.date, hm: tuple[int, int]) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(*hm), tzinfo=self.tz)

    def next_open_day(self, after: dt.date) -> dt.date:
        day = after + dt.timedelta(days=1)
        for _ in range(400):
            if not self.closed(day):
                return day
            day += dt.timedelta(days=1)
        return after + dt.timedelta(days=1)

    def last_open_day(self, first: dt.date, last: dt.date) -> dt.date | None:
        day = last
        while day >= first:
            if not self.closed(day):
                closing = self.cal.closing_time(day)
                if closing is not None and closing > self.sent:
                    return day
            day -= dt.timedelta(days=1)
        return None

    def date_of(self, mention: Mention) -> dt.date | None:
        today = self.today
        kind, value = mention.kind, mention.value
        if kind in ("day", "days"):
            return today + dt.timedelta(days=int(value))
        if kind == "weekday":
            ahead = (int(value) - today.weekday()) % 7 or 7
            return today + dt.timedelta(days=ahead)
        if kind == "next_weekday":  # "next Friday": the Friday of next week
            monday = today + dt.timedelta(days=7 - today.weekday())
            return monday + dt.timedelta(days=int(value))
        if kind == "day_of_month":  # "on the 15th": this month, else the next one
            year, month = today.year, today.month
            for _ in range(3):
                try:
                    day = dt.date(year, month, int(value))
                except ValueError:
                    day = None
                if day is not None and day >= today:
                    return day
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            return None
        if kind == "next_week":
            return today + dt.timedelta(days=7 - today.weekday())
        if kind == "end_week":
            monday = today - dt.timedelta(days=today.weekday())
            found = self.last_open_day(today, monday + dt.timedelta(days=6))
            if found is None:
                nxt = monday + dt.timedelta(days=7)
                found = self.last_open_day(nxt, nxt + dt.timedelta(days=6))
            return found
        if kind == "end_month":
            first = today.replace(day=1)
            month_end = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
            found = self.last_open_day(today, month_end)
            if found is None:
                nxt = month_end + dt.timedelta(days=1)
                nxt_end = (nxt + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
                found = self.last_open_day(nxt, nxt_end)
            return found
        if kind == "workdays":
            day = today
            for _ in range(min(int(value), 60)):
                day = self.next_open_day(day)
            return day
        if kind == "date":
            year, month, dd = value
            if year is not None:
                try:
                    day = dt.date(year, month, dd)
                except ValueError:
                    return None
                if day < today or day - today > MAX_AHEAD:
                    return None
                return day
            for y in (today.year, today.year + 1):
                try:
                    day = dt.date(y, month, dd)
                except ValueError:
                    continue
                if day >= today:
                    return day if day - today <= YEARLESS_HORIZON else None
            return None
        return None

    def instant(self, mention: Mention, time: Mention | None) -> dt.datetime | None:
        if mention.kind == "instant":
            delta: dt.timedelta = mention.value
            return (self.sent.astimezone(dt.UTC) + delta).astimezone(self.tz)
        day = self.date_of(mention)
        if day is None:
            return None
        if time is None or time.kind == "eod":
            return self.end_of_working_day(day)
        return self.at(day, time.value)

    def time_only(self, time: Mention) -> dt.datetime:
        if time.kind == "eod":
            return self.end_of_working_day(self.today)
        candidate = self.at(self.today, time.value)
        if candidate > self.sent:
            return candidate
        return self.at(self.next_open_day(self.today), time.value)


def _distance(a: Mention, b: Mention) -> int:
    if a.end <= b.start:
        return b.start - a.end
    if b.end <= a.start:
        return a.start - b.end
    return 0


def _candidates(
    sentence: str,
    resolver: _Resolver,
    calendar: CalendarConfig,
    hint: str | None,
    budget: DateparserBudget,
) -> list[dt.datetime]:
    dates, times, masked = scan(sentence)
    base = resolver.sent.replace(tzinfo=None)
    dates += dateparser_mentions(masked, sentence, base, calendar.timezone, hint, budget)
    dates = [d for d in dates if d.kind != "ignore"]
    absolute = [d for d in dates if d.kind == "date"]
    # A weekday written next to a date ("w piątek, 4 grudnia") is only its label.
    dates = [
        d
        for d in dates
        if d.kind != "weekday" or not any(_distance(d, a) <= 3 for a in absolute)
    ]
    attachable = [d for d in dates if d.kind != "instant"]
    attached: dict[int, Mention] = {}
    unattached: list[Mention] = []
    for t in times:
        if not attachable:
            unattached.append(t)
            continue
        nearest = min(range(len(attachable)), key=lambda i: _distance(attachable[i], t))
        if nearest not in attached or _distance(attachable[nearest], t) < _distance(
            attachable[nearest], attached[nearest]
        ):
            attached[nearest] = t
    out: list[dt.datetime] = []
    for d in dates:
        index = next((i for i, a in enumerate(attachable) if a is d), None)
        instant = resolver.instant(d, attached.get(index) if index is not None else None)
        if instant is not None:
            out.append(instant)
    out += [resolver.time_only(t) for t in unattached]
    return out


def find_promise(
    text: str,
    *,
    sent: dt.datetime,
    calendar: CalendarConfig,
    language_hint: str | None = None,
) -> Promise | None:
    """The promise made in an acknowledgement: when the work will be ready.

    ``text`` is the plain-text body as sent (it is stripped with `strip_reply` first);
    ``sent`` (timezone-aware) is when it was sent; ``calendar`` gives the timezone and the
    closing times; ``language_hint`` (the account's language: en, pl, uk, bg, ru, de) is
    tried first. Returns the earliest promised instant strictly after ``sent``, in the
    calendar's timezone, with its sentence, or None. Never raises on any text; a naive
    ``sent`` is a programming error (ValueError). See the module doc for the rules.
    """
    if sent.tzinfo is None or sent.utcoffset() is None:
        raise ValueError(f"find_promise: sent must be timezone-aware, got {sent!r}")
    if not isinstance(text, str) or not text.strip():
        return None
    hint = language_hint.lower()[:2] if isinstance(language_hint, str) else None
    try:
        resolver = _Resolver(sent, calendar)
    except (ValueError, OverflowError):
        return None
    best: Promise | None = None
    budget = DateparserBudget()
    for sentence in _sentences(strip_reply(text)):
        if NOT_A_PROMISE.search(sentence) or not CUE.search(sentence):
            continue
        try:
            instants = _candidates(sentence, resolver, calendar, hint, budget)
        except (ValueError, OverflowError, ArithmeticError):
            continue  # dates at the end of the calendar, a calendar never open, ...
        for instant in instants:
            if instant <= resolver.sent:
                continue
            if best is None or instant < best.promised:
                best = Promise(promised=instant.astimezone(resolver.tz), sentence=sentence)
    return best


NO_CUE = "no promise word (by, will, do, będzie, до, bis, ...)"
NOT_PROMISE = "not a promise (a question, a request, an absence, payment or validity terms)"
NO_DATE = "a promise word, but no date or time ahead of the reply"


def sentences_read(
    text: str,
    *,
    sent: dt.datetime,
    calendar: CalendarConfig,
    language_hint: str | None = None,
) -> list[tuple[str, str]]:
    """Why no promise was found: each sentence `find_promise` looked at (the new text of
    the reply) with why it named no date (`NO_CUE`, `NOT_PROMISE`, `NO_DATE`); a sentence
    that did name one is left out. For ``ackwatch promise``; the same rules, read again."""
    if sent.tzinfo is None or sent.utcoffset() is None:
        raise ValueError(f"sentences_read: sent must be timezone-aware, got {sent!r}")
    if not isinstance(text, str) or not text.strip():
        return []
    hint = language_hint.lower()[:2] if isinstance(language_hint, str) else None
    try:
        resolver = _Resolver(sent, calendar)
    except (ValueError, OverflowError):
        return []
    budget = DateparserBudget()
    out: list[tuple[str, str]] = []
    for sentence in _sentences(strip_reply(text)):
        if NOT_A_PROMISE.search(sentence):
            out.append((sentence, NOT_PROMISE))
            continue
        if not CUE.search(sentence):
            out.append((sentence, NO_CUE))
            continue
        try:
            instants = _candidates(sentence, resolver, calendar, hint, budget)
        except (ValueError, OverflowError, ArithmeticError):
            instants = []
        if not any(i > resolver.sent for i in instants):
            out.append((sentence, NO_DATE))
    return out


__all__ = ["MAX_SENTENCE", "NOT_PROMISE", "NO_CUE", "NO_DATE", "Promise", "find_promise",
           "sentences_read"]
