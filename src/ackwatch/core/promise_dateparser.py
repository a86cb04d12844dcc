"""Dates that dateparser reads for the promise parser: month names and day offsets.

dateparser (``search_dates``, one language at a time) reads dates written with a month
name in any of en/pl/uk/bg/ru/de and day offsets ("in 3 days", "za 3 dni"); only its
matches with a month name and a digit, or a day/week unit, are trusted. It is imported
on first use and given short windows only, within a per-reply budget (below).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ackwatch.core.promise_phrases import DAY_UNIT, DIGIT, MONTH_STEM, YEAR, Mention

_LANGS_LATIN = ("en", "pl", "de")
_LANGS_CYRILLIC = ("uk", "bg", "ru")
_SUPPORTED = frozenset(_LANGS_LATIN + _LANGS_CYRILLIC)


def _languages(sentence: str, hint: str | None) -> list[str]:
    cyrillic = any("\u0400" <= c <= "\u04ff" for c in sentence)
    latin = any(c.isascii() and c.isalpha() for c in sentence) or not cyrillic
    langs: list[str] = []
    if hint in _SUPPORTED:
        langs.append(hint)
    for group, present in ((_LANGS_CYRILLIC, cyrillic), (_LANGS_LATIN, latin)):
        if present:
            langs += [lang for lang in group if lang not in langs]
    return langs


# dateparser costs about a millisecond per date it finds, per language tried, over the
# whole text it is given: a hostile 16 kB reply of month names took 3.9 s. So it reads
# only short windows around what it can find (a month name next to a digit, a day or week
# unit), each (window, language) once per reply, and at most _DATEPARSER_CALLS of them per
# reply: whatever the reply, the dateparser part is bounded and the rest is linear. A
# real acknowledgement has one or two such dates; past the budget, the hand-written
# phrases (weekdays, "tomorrow", "15.12", ...) are still read.
_DATEPARSER_CALLS = 12
_WINDOW_MARGIN = 18  # characters each side of the anchor ("on the 3rd of December 2026")
_DIGIT_NEAR = 12  # a month name needs a digit this close to be a date
_WINDOW_MAX = 64  # overlapping windows are merged up to this length, then a new one starts


class DateparserBudget:
    """Per reply: dateparser's answers by (window, language), and the calls still allowed."""

    def __init__(self) -> None:
        self.calls_left = _DATEPARSER_CALLS
        self.answers: dict[tuple[str, str], list[tuple[str, object]]] = {}


def _windows(masked: str) -> list[tuple[int, int]]:
    """Spans of ``masked`` around each month name with a digit near it and each day or
    week unit, widened to whole words and merged where they overlap (up to `_WINDOW_MAX`
    characters: a run of dates is several windows, not one long one)."""
    spans: list[tuple[int, int]] = []
    anchors = [m for m in MONTH_STEM.finditer(masked)
               if DIGIT.search(masked, max(0, m.start() - _DIGIT_NEAR), m.end() + _DIGIT_NEAR)]
    anchors += list(DAY_UNIT.finditer(masked))
    for m in sorted(anchors, key=lambda m: m.start()):
        start = max(0, m.start() - _WINDOW_MARGIN)
        end = min(len(masked), m.end() + _WINDOW_MARGIN)
        while start > 0 and not masked[start - 1].isspace():
            start -= 1
        while end < len(masked) and not masked[end].isspace():
            end += 1
        if spans and start <= spans[-1][1] and max(end, spans[-1][1]) - spans[-1][0] <= _WINDOW_MAX:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans


def dateparser_mentions(
    masked: str,
    sentence: str,
    base: dt.datetime,
    tz_name: str,
    hint: str | None,
    budget: DateparserBudget,
) -> list[Mention]:
    """Dates written with a month name, and day/week offsets, found by dateparser."""
    has_month = bool(MONTH_STEM.search(masked)) and any(c.isdigit() for c in masked)
    if not has_month and not DAY_UNIT.search(masked):
        return []
    try:
        from dateparser.search import search_dates
    except ImportError:  # pragma: no cover - declared dependency
        return []
    settings = {
        "RELATIVE_BASE": base,
        "PREFER_DATES_FROM": "future",
        "TIMEZONE": tz_name,
        "RETURN_AS_TIMEZONE_AWARE": True,
        "DATE_ORDER": "DMY",
    }
    found: list[Mention] = []
    seen: set[tuple[str, object]] = set()
    for w_start, w_end in _windows(masked):
        window = masked[w_start:w_end]
        for lang in _languages(window, hint):
            key = (window, lang)
            if key not in budget.answers:
                if budget.calls_left <= 0:
                    return found  # the rest is read by the hand-written phrases only
                budget.calls_left -= 1
                try:
                    budget.answers[key] = search_dates(
                        window, languages=[lang], settings=settings) or []
                except Exception:  # a third-party parser must never break the caller
                    budget.answers[key] = []
            for phrase, value in budget.answers[key]:
                mention = _dateparser_mention(phrase, value, tz_name, window, w_start)
                if mention is None or (phrase, mention.value) in seen:
                    continue
                seen.add((phrase, mention.value))
                found.append(mention)
    return found


def _dateparser_mention(
    phrase: object, value: object, tz_name: str, window: str, offset: int
) -> Mention | None:
    """One dateparser match as a date mention, or None for what it finds but we do not
    trust: "We", "May", "now", "+48", "1.5", "12:00", ..."""
    if not isinstance(phrase, str) or not isinstance(value, dt.datetime):
        return None
    if any(c.isdigit() for c in phrase) and MONTH_STEM.search(phrase):
        year = value.year if YEAR.search(phrase) else None
        mention_value: object = (year, value.month, value.day)
    elif DAY_UNIT.search(phrase):
        try:
            day = value.astimezone(ZoneInfo(tz_name)).date() if value.tzinfo else value.date()
        except (ValueError, OverflowError):
            return None
        mention_value = (day.year, day.month, day.day)
    else:
        return None
    start = offset + max(window.find(phrase), 0)
    return Mention(start, start + len(phrase), "date", mention_value)

