"""The promise parser's language tables and its hand-written phrase scanner.

What marks a sentence as a promise (`CUE`) or as none (`NOT_A_PROMISE`: questions,
requests to the client, absence, payment terms, an offer's validity), and the date and
time phrases of en/pl/uk/bg/ru/de that dateparser misses or gets wrong (weekdays in the
genitive, "next week", "EOD", "15.12", "jutro o 15", ...; see `promise_text` for which
and why). `scan` finds them in a sentence as `Mention` values; `promise_text` resolves
those into instants.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

_I = re.IGNORECASE


# =========================================================================== cues

CUE = re.compile(
    r"\b(?:by|until|till|til|before|will|shall|won't|going to|ready|send|deliver|get back|"
    r"have it|expect|plan|planning|promise|latest|no later than|deadline|due|eod|cob|"
    r"provide|share|finish|complete|done|back to you|reply|respond|confirm|aim|hope to|eta)\b"
    r"|\w['’]ll\b"
    r"|\b(?:do|najpóźniej|wracam|wracamy|odpowiedź|odpowiedzią|będzie|będą|będę|będziemy|prześl\w*|wyśl\w*|podeśl\w*|"
    r"przygotuj\w*|dostarcz\w*|odpisz\w*|odpowiem\w*|odpowiemy|odezw\w*|wrócę|wrócimy|"
    r"dam(?:y)? znać|potwierdz\w*|zrobi\w*|skończ\w*|przekaż\w*|gotow\w*|postaram\w*|"
    r"otrzyma\w*|dostanie\w*|termin\w*)\b"
    r"|\b(?:до|надішл\w*|відправ\w*|підготу\w*|пришл\w*|надам\w*|відповім\w*|"
    r"зв['’ʼ]?яж\w*|повідом\w*|зроб\w*|буде|будуть|будемо|буду|готов\w*|отрима\w*|"
    r"прийде|пізніше)\b"
    r"|\b(?:ще|изпрат\w*|получ\w*|най-късно)\b"
    r"|\b(?:вышл\w*|отправ\w*|подготов\w*|сдела\w*|будет|будут|будем|отвеч\w*|ответ\w*|"
    r"свяж\w*|позднее)\b"
    r"|\b(?:bis|werde|werden|wird|schick\w*|send\w*|liefer\w*|fertig|spätestens|"
    r"erhalten|bekommen|meld\w*|kommt|kommen)\b",
    _I,
)
NOT_A_PROMISE = re.compile(
    # absence and closure
    r"\b(?:out of (?:the )?office|ooo|on (?:annual )?leave|on vacation|on holiday|"
    r"public holiday|bank holiday|closed|urlop\w*|nieobecn\w*|poza biurem|zamknięt\w*|"
    r"nieczynn\w*|dzień wolny|dni wolne|відпуст\w*|відсутн\w*|зачинен\w*|не працю\w*|"
    r"отпуск\w*|отсъств\w*|затворен\w*|почивн\w*|почивк\w*|отсутств\w*|закрыт\w*|"
    r"urlaub\w*|abwesend\w*|geschlossen|nicht im büro|feiertag\w*)\b"
    # requests to the client
    r"|\b(?:please (?:send|confirm|provide|let|share|forward|reply|approve|get back)|"
    r"could you|can you|would you|let me know|let us know|kindly|"
    r"prosz[ęe] o|prosimy o|prosz[ęe] (?:przesłać|wysłać|potwierdzić)|daj(?:cie)? znać|"
    r"prześlij\w*|wyślij\w*|podeślij\w*|czy mo[żz]\w*|"
    r"надішліть|надішли|відправте|дайте знати|чи можете|"
    r"изпратете|потвърдете|можете ли|"
    r"пришлите|отправьте|вышлите|сообщите|"
    r"bitte (?:senden|schicken|bestätigen|teilen)|können sie|könnten sie|schicken sie|"
    r"senden sie)\b"
    # payment terms are the client's deadline, not the agency's promise
    r"|\b(?:payment|pay|płatnoś\w*|zapłat\w*|оплат\w*|сплат\w*|плащан\w*|zahlung\w*|"
    r"zahlbar)\b"
    # an offer's validity is the client's deadline too
    r"|\b(?:valid|ważn\w*|obowiązuje|дійсн\w*|валидн\w*|действ\w*|gültig)\b"
    r"|\?",
    _I,
)


# =========================================================================== phrases


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    kind: str  # date kinds: day, weekday, next_week, end_week, end_month, workdays,
    #            instant, ignore; time kinds: clock, eod
    value: Any = None  # by kind: a number, a timedelta, (year, month, day), a time


def _alternation(words: Iterable[str]) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


_WEEKDAY_FORMS: dict[int, tuple[str, ...]] = {
    0: ("monday", "poniedziałek", "poniedziałku", "poniedzialek", "poniedzialku",
        "понеділок", "понеділка", "понеділку", "понеделник", "понеделника",
        "понедельник", "понедельника", "montag"),
    1: ("tuesday", "wtorek", "wtorku", "вівторок", "вівторка", "вівторку", "вторник",
        "вторника", "dienstag"),
    2: ("wednesday", "środa", "środę", "środy", "sroda", "srode", "srody", "середа",
        "середу", "середи", "сряда", "срядата", "среда", "среду", "среды", "mittwoch"),
    3: ("thursday", "czwartek", "czwartku", "четвер", "четверга", "четвергу", "четвъртък",
        "четвъртъка", "четверг", "donnerstag"),
    4: ("friday", "piątek", "piątku", "piatek", "piatku", "п'ятниця", "п'ятницю",
        "п'ятниці", "пятниця", "пятницю", "пятниці", "петък", "петъка", "пятница",
        "пятницу", "пятницы", "freitag"),
    5: ("saturday", "sobota", "sobotę", "soboty", "sobote", "субота", "суботу", "суботи",
        "събота", "съботата", "суббота", "субботу", "субботы", "samstag", "sonnabend"),
    6: ("sunday", "niedziela", "niedzielę", "niedzieli", "niedziele", "неділя", "неділю",
        "неділі", "неделя", "неделята", "воскресенье", "воскресенья", "sonntag"),
}  # fmt: skip
_WEEKDAY_BY_FORM = {form: wd for wd, forms in _WEEKDAY_FORMS.items() for form in forms}
_EN_ABBREVIATIONS = {"mon": 0, "tue": 1, "tues": 1, "wed": 2, "thu": 3, "thur": 3,
                     "thurs": 3, "fri": 4, "sat": 5, "sun": 6}  # fmt: skip
_PAST_PREFIX = r"last|zeszł\w*|ubiegł\w*|минул\w*|минал\w*|прошл\w*|letzt\w*|vergangen\w*"
_NEXT_PREFIX = r"next|przyszł\w*|następn\w*|наступн\w*|следващ\w*|идн\w*|следующ\w*|nächst\w*"
_THIS_PREFIX = (
    r"this|coming|ten|tę|najbliższ\w*|цей|цю|найближч\w*|този|тази|этот|эту|ближайш\w*|"
    r"kommend\w*|diesen"
)
_WEEKDAY = re.compile(
    rf"(?<!\w)(?:(?P<prefix>{_PAST_PREFIX}|{_NEXT_PREFIX}|{_THIS_PREFIX})\s+)?"
    rf"(?P<day>{_alternation(_WEEKDAY_BY_FORM)})(?!\w)",
    _I,
)
_WEEKDAY_ABBR = re.compile(
    rf"(?<!\w)(?:by|on|until|till|before|this|(?P<prefix>next|last))\s+"
    rf"(?P<day>{_alternation(_EN_ABBREVIATIONS)})(?!\w)\.?",
    _I,
)
_PAST_PREFIX_RE = re.compile(rf"^(?:{_PAST_PREFIX})$", _I)
_NEXT_PREFIX_RE = re.compile(rf"^(?:{_NEXT_PREFIX})$", _I)
_DAY_OF_MONTH = re.compile(
    r"(?<!\w)(?:(?:on|by|until|till|before)\s+the\s+(?P<en>\d{1,2})(?:st|nd|rd|th)|"
    r"(?P<n>\d{1,2})-?(?:go|ego|tego|го|ого|ти|ри|ви|ми))(?!\w)",
    _I,
)

_RELATIVE_DAY = re.compile(
    r"(?<!\w)(?:"
    r"(?P<d2>(?:the )?day after tomorrow|pojutrze|післязавтра|вдругиден|послезавтра|übermorgen)"
    r"|(?P<d1>tomorrow|tmrw|jutro|jutra|jutrzejszego dnia|завтра|утре|(?<!guten )morgen)"
    r"|(?P<d0>today|dzisiaj|dziś|dzis|сьогодні|днес|сегодня|heute)"
    r")(?!\w)",
    _I,
)
_NEXT_WEEK = re.compile(
    r"(?<!\w)(?:(?:next|following) week|"
    r"(?:przyszł|następn)\w*\s+(?:tydzień|tygodni\w*|tyg\.?)|"
    r"наступн\w*\s+(?:тиждень|тижн\w*)|"
    r"(?:другата|следващата|идната)\s+седмица|"
    r"следующ\w*\s+недел\w*|"
    r"(?:nächst|kommend)\w*\s+woche)(?!\w)",
    _I,
)
_END_WEEK = re.compile(
    r"(?<!\w)(?:end of (?:the |this )?week|this week|"
    r"(?:koniec|końca|końcem) (?:tego )?tygodnia|w tym tygodniu|"
    r"кінця (?:цього )?тижня|цього тижня|на цьому тижні|"
    r"края на (?:тази )?седмицата|тази седмица|"
    r"конца (?:этой )?недели|на этой неделе|"
    r"ende (?:der|dieser) woche|diese woche|dieser woche)(?!\w)",
    _I,
)
_END_MONTH = re.compile(
    r"(?<!\w)(?:end of (?:the |this )?month|(?:koniec|końca|końcem) (?:tego )?miesiąca|"
    r"кінця (?:цього )?місяця|края на (?:този )?месеца|конца (?:этого )?месяца|"
    r"ende (?:des|dieses) monats|monatsende)(?!\w)",
    _I,
)
_WORKDAYS = re.compile(
    r"(?<!\w)(?P<n>\d{1,2})\s+(?:business|working|work)\s+days?|"
    r"(?<!\w)(?P<n2>\d{1,2})\s+dni\s+robocz\w*|"
    r"(?<!\w)(?P<n3>\d{1,2})\s+робоч\w*\s+дн\w*|"
    r"(?<!\w)(?P<n4>\d{1,2})\s+работни\s+дни|"
    r"(?<!\w)(?P<n5>\d{1,2})\s+рабоч\w*\s+дн\w*|"
    r"(?<!\w)(?P<n6>\d{1,2})\s+(?:werktag\w*|arbeitstag\w*)",
    _I,
)
_ONE = r"an?|one|the|jednej|одну|одн\w*|един|една|einer|eine"
_OFFSET = re.compile(
    r"(?<!\w)(?:within|in|w ciągu|za|протягом|впродовж|через|в рамките на|след|в течение|"
    r"innerhalb(?: von)?|binnen)\s+"
    rf"(?:(?P<n>\d{{1,3}})|(?:{_ONE}))?\s*"
    r"(?P<unit>hours?|hrs?|h|minutes?|mins?|godzin\w*|godz\.?|minut\w*|годин\w*|хвилин\w*|"
    r"часа|часов|час|минут\w*|stunden?|min\.?)(?!\w)",
    _I,
)
_WEEK_OFFSET = re.compile(
    r"(?<!\w)(?:within|in|w ciągu|za|за|через|протягом|впродовж|след|в рамките на|"
    r"innerhalb(?: von)?|binnen|in)\s+"
    r"(?:(?P<n>\d{1,2})|a|one|jednego|jeden|один|одного|одну|една|einer|eine)?\s*"
    r"(?P<unit>weeks?|tydzień|tygodnia|tygodnie|tygodni|тиждень|тижня|тижні|тижнів|седмица|"
    r"седмици|неделю|недели|недель|woche|wochen)(?!\w)",
    _I,
)
_EOD = re.compile(
    r"(?<!\w)(?:eod|cob|eob|end of (?:the )?(?:business |working |work )?day|"
    r"close of business|"
    r"końca (?:dzisiejszego )?dnia(?: pracy| roboczego)?|koniec dnia|"
    r"кінця (?:робочого )?дня|края на (?:работния )?деня|конца (?:рабочего )?дня|"
    r"ende des (?:arbeits)?tages|tagesende|feierabend|dienstschluss)(?!\w)",
    _I,
)
_NOON = re.compile(
    r"(?<!\w)(?:noon|midday|mid-day|w południe|do południa|przed południem|опівдні|"
    r"до обіду|до обяд|на обяд|в полдень|до обеда|bis mittag|mittags|mittag|"
    r"(?<!good )morning|rano|z rana|вранці|зранку|сутринта|утром|morgens)(?!\w)",
    _I,
)
_CLOCK = re.compile(
    r"(?<![\d.:/,])(?P<h>[01]?\d|2[0-3])\s*[:]\s*(?P<m>[0-5]\d)(?!\d)"
    r"(?:\s*(?P<ampm>am|pm|a\.m\.|p\.m\.))?",
    _I,
)
_AMPM = re.compile(
    r"(?<![\d.:/,])(?P<h>1[0-2]|0?[1-9])(?:[.:](?P<m>[0-5]\d))?\s*(?P<ampm>am|pm|a\.m\.|p\.m\.)"
    r"(?!\w)",
    _I,
)
_HOUR_WORD = re.compile(
    r"(?<![\d.:/,])(?P<h>[01]?\d|2[0-3])(?:[.:](?P<m>[0-5]\d))?\s*"
    r"(?:uhr|h|ч\.?|часа|o'clock)(?!\w)",
    _I,
)
_HOUR_AFTER = re.compile(
    r"(?<!\w)(?:o(?:\s+godz(?:inie|\.)?)?|godz\.?|at|around|около|о|в|um|gegen)\s*"
    r"(?P<h>[01]?\d|2[0-3])(?:[.:](?P<m>[0-5]\d))?(?![\d.,:/]?\d)",
    _I,
)
_HOUR_AFTER_OK = re.compile(
    r"\s*(?:$|[,;!)\-–—]|\.(?!\d)|\s(?:and|or|i|і|и|und|a|tomorrow|today|jutro|dziś|dzisiaj|"
    r"завтра|сьогодні|утре|днес|сегодня|morgen|heute|on|w|we|в|у|на|am|in|latest|"
    r"najpóźniej|найпізніше|най-късно|the|at|next|this|в|по)\b)",
    _I,
)
_DOT_DATE = re.compile(
    r"(?<![\w.,/:+\-])(?P<d>\d{1,2})\.(?P<m>\d{1,2})(?:\.(?P<y>\d{4}|\d{2}))?\.?"
    r"(?:\s?(?:r|г|р|roku)\.?)?(?!\w)(?![.,:/\-]?\d)",
    _I,
)
_SLASH_DATE = re.compile(
    r"(?<![\w./:\-])(?P<d>\d{1,2})/(?P<m>\d{1,2})(?:/(?P<y>\d{4}|\d{2}))?(?![\w/])(?![.,:\-]?\d)",
    _I,
)
_ISO_DATE = re.compile(r"(?<![\w./\-])(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?![\w/])", _I)
_DEADLINE_PREPOSITION = re.compile(
    r"(?:\b(?:by|until|till|before|on|do|na|dnia|dn\.|do dnia|до|на|bis|am|zum|termin|"
    r"deadline)\b:?)\s*$",
    _I,
)
_NOT_DATE_BEFORE = re.compile(
    r"(?:[$€£₴]|\b(?:nr|no|№|ul|al|tel|str|s|v|ver|wersj\w*|version|верс\w*|faktur\w*|invoice|order|zamówieni\w*|"
    r"рахун\w*|фактур\w*|счет\w*|rechnung\w*)\.?:?|#|№)\s*$",
    _I,
)
_NOT_DATE_AFTER = re.compile(
    r"^\s*(?:zł|zl|pln|gr|грн|uah|eur|euro|€|\$|usd|лв|bgn|руб|₽|%|kg|szt|шт|m2|m²|km|"
    r"mln|tys|тис|млн|хв|min|godz|h|ч|x|px|mm|cm)(?!\w)",
    _I,
)

MONTH_STEM = re.compile(
    r"(?<!\w)(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|"
    r"stycz|lut|mar|kwie|maj|czerw|lip|sierp|wrze|paźdz|pazdz|listop|grud|"
    r"січ|лют|берез|квіт|трав|черв|лип|серп|верес|жовт|листоп|груд|"
    r"янв|яну|фев|мар|апр|май|мая|юни|июн|юли|июл|авг|сеп|сен|окт|ное|ноя|дек|"
    r"mär|maer|mai|okt|dez)",
    _I,
)
DAY_UNIT = re.compile(
    r"(?<!\w)(?:days?|weeks?|dni|dzień|dnia|tydzień|tygodni\w*|дні|днів|день|дня|тиждень|"
    r"тижні|тижнів|дни|ден|дена|седмиц\w*|дней|недел[юиь]|недель|tag|tage|tagen|"
    r"woche|wochen)(?!\w)",
    _I,
)
YEAR = re.compile(r"\d{4}")
DIGIT = re.compile(r"\d")
_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "`": "'", "‘": "'"})


class _Claims:
    """Non-overlapping spans of a sentence already taken by a phrase."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, int]] = []

    def free(self, start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in self.spans)

    def take(self, start: int, end: int) -> bool:
        if start >= end or not self.free(start, end):
            return False
        self.spans.append((start, end))
        return True


def _hour(h: int, minute: int, ampm: str | None, *, bare: bool) -> tuple[int, int] | None:
    if ampm:
        pm = ampm.lower().startswith("p")
        if not 1 <= h <= 12:
            return None
        h = (h % 12) + (12 if pm else 0)
    elif bare and 1 <= h <= 7:
        h += 12  # "o 3", "at 5": business hours, the afternoon
    if not (0 <= h <= 23 and 0 <= minute <= 59):
        return None
    return h, minute


def scan(sentence: str) -> tuple[list[Mention], list[Mention], str]:
    """Hand-written phrases: (date mentions, time mentions, the sentence with the claimed
    spans blanked out for dateparser)."""
    text = sentence.translate(_APOSTROPHES)
    claims = _Claims()
    dates: list[Mention] = []
    times: list[Mention] = []

    def each(
        pattern: re.Pattern[str], handle: Callable[[re.Match[str]], Mention | None]
    ) -> None:
        for m in pattern.finditer(text):
            if not claims.free(m.start(), m.end()):
                continue
            mention = handle(m)
            if mention is not None and claims.take(m.start(), m.end()):
                (times if mention.kind in ("clock", "eod") else dates).append(mention)

    def offset(m: re.Match[str]) -> Mention:
        n = int(m.group("n")) if m.group("n") else 1
        unit = m.group("unit").lower()
        minutes = unit.startswith(("min", "хв"))
        delta = dt.timedelta(minutes=n) if minutes else dt.timedelta(hours=n)
        return Mention(m.start(), m.end(), "instant", delta)

    def workdays(m: re.Match[str]) -> Mention:
        n = int(next(g for g in m.groups() if g))
        return Mention(m.start(), m.end(), "workdays", n)

    def relative(m: re.Match[str]) -> Mention:
        n = 2 if m.group("d2") else 1 if m.group("d1") else 0
        return Mention(m.start(), m.end(), "day", n)

    def weekday(m: re.Match[str]) -> Mention:
        prefix = m.groupdict().get("prefix")
        if prefix and _PAST_PREFIX_RE.match(prefix):
            return Mention(m.start(), m.end(), "ignore")
        day = m.group("day").lower()
        wd = _WEEKDAY_BY_FORM.get(day, _EN_ABBREVIATIONS.get(day))
        if prefix and _NEXT_PREFIX_RE.match(prefix):
            return Mention(m.start(), m.end(), "next_weekday", wd)
        return Mention(m.start(), m.end(), "weekday", wd)

    def day_of_month(m: re.Match[str]) -> Mention:
        return Mention(m.start(), m.end(), "day_of_month", int(m.group("en") or m.group("n")))

    def clock(m: re.Match[str]) -> Mention | None:
        groups = m.groupdict()
        hm = _hour(int(m.group("h")), int(groups.get("m") or 0), groups.get("ampm"), bare=True)
        return None if hm is None else Mention(m.start(), m.end(), "clock", hm)

    def hour_after(m: re.Match[str]) -> Mention | None:
        if not _HOUR_AFTER_OK.match(text, m.end()):
            return None  # "at 2 locations", "в 15 минут"
        return clock(m)

    def numeric(m: re.Match[str]) -> Mention | None:
        before = text[max(0, m.start() - 16) : m.start()]
        after = text[m.end() : m.end() + 8]
        if _NOT_DATE_BEFORE.search(before) or _NOT_DATE_AFTER.match(after):
            return None
        d, mo = int(m.group("d")), int(m.group("m"))
        y = m.group("y")
        year = None if y is None else int(y) + (2000 if len(y) == 2 else 0)
        one_digit_month = m.re is _DOT_DATE and year is None and len(m.group("m")) == 1
        if one_digit_month and not _DEADLINE_PREPOSITION.search(before):
            return None  # "1.5 mln", "2.3": a one-digit month without a year needs a "by"
        if m.re is _SLASH_DATE:
            if mo > 12 and d <= 12:  # 12/15/2026: month first (US)
                d, mo = mo, d
            if year is None and not _DEADLINE_PREPOSITION.search(before):
                return None  # "Marszałkowska 15/12": a slash without a year needs a "by"
        return Mention(m.start(), m.end(), "date", (year, mo, d))

    each(_OFFSET, offset)
    each(_WORKDAYS, workdays)
    each(
        _WEEK_OFFSET,
        lambda m: Mention(m.start(), m.end(), "days", 7 * int(m.group("n") or 1)),
    )
    each(_EOD, lambda m: Mention(m.start(), m.end(), "eod"))
    each(_END_MONTH, lambda m: Mention(m.start(), m.end(), "end_month"))
    each(_NEXT_WEEK, lambda m: Mention(m.start(), m.end(), "next_week"))
    each(_END_WEEK, lambda m: Mention(m.start(), m.end(), "end_week"))
    each(_RELATIVE_DAY, relative)
    each(_WEEKDAY, weekday)
    each(_WEEKDAY_ABBR, weekday)
    each(_NOON, lambda m: Mention(m.start(), m.end(), "clock", (12, 0)))
    each(_CLOCK, clock)
    each(_AMPM, clock)
    each(_HOUR_WORD, clock)
    each(_HOUR_AFTER, hour_after)
    each(_DAY_OF_MONTH, day_of_month)
    each(_ISO_DATE, numeric)
    each(_DOT_DATE, numeric)
    each(_SLASH_DATE, numeric)

    masked = list(text)
    for s, e in claims.spans:
        masked[s:e] = " " * (e - s)
    return dates, times, "".join(masked)

