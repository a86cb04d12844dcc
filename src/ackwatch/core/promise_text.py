"""Promise keeper, parser half (issue 8): when an acknowledgement says by when the work
will be ready, find that instant.

Pure core: no I/O, the clock is never read (``sent`` is the reference instant).

- `strip_reply(text)`: the new text of a reply, without quoted history and signature.
- `find_promise(text, sent=..., calendar=...)`: the promised instant and the sentence it
  came from, or None. Never raises on any text.

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

import bisect
import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ackwatch.config import CalendarConfig
from ackwatch.core.business_clock import business_calendar

MAX_INPUT_CHARS = 16 * 1024  # strip_reply / find_promise read at most this much text
MAX_SENTENCE = 300  # Promise.sentence is at most this long
YEARLESS_HORIZON = dt.timedelta(days=183)
MAX_AHEAD = dt.timedelta(days=731)
_MAX_SENTENCES = 200

_LANGS_LATIN = ("en", "pl", "de")
_LANGS_CYRILLIC = ("uk", "bg", "ru")
_SUPPORTED = frozenset(_LANGS_LATIN + _LANGS_CYRILLIC)

_I = re.IGNORECASE


@dataclass(frozen=True)
class Promise:
    """``promised``: aware, in the calendar's timezone; ``sentence``: where it was said."""

    promised: dt.datetime
    sentence: str


# =========================================================================== strip_reply

_WROTE = re.compile(
    r"(?:wrote|writes|napisał\(a\)|napisała?|pisze|schrieb|написав\(ла\)|написала?|"
    r"написав|написал\(а\)|написал|написа|пише|пишет|a écrit|escribió|ha scritto|schreef)"
    r"\s*:\s*$",
    _I,
)
_HEADER_START = re.compile(
    r"^\s*(?:On|W dniu|Dnia|Am|Le|El|Op|У|В|На)\s|^\s*\w{2,5}\.?,\s+\d|^\s*\d{1,4}[./-]\d",
    _I,
)
_ADDRESS_COLON = re.compile(r"\d.*<[^<>\s]+@[^<>\s]+>\s*:\s*$")
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(?:[^\n]*?(?:message|wiadomo|nachricht|повідомлен|сообщени|съобщени|писмо|"
    r"лист\b)[^\n]*?)\s*-{2,}\s*$",
    _I,
)
_FORWARD_INTRO = re.compile(
    r"^\s*(?:begin forwarded message|początek przekazywanej wiadomości|"
    r"anfang der weitergeleiteten nachricht)\s*:?\s*$",
    _I,
)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
_FROM_LINE = re.compile(r"^\s*\**(?:from|od|von|від|от|de)\s*:\**\s*\S", _I)
_SENT_LINE = re.compile(
    r"^\s*\**(?:sent|date|wysłano|wysłane|data|gesendet|datum|надіслано|дата|отправлено|"
    r"изпратено|envoyé)\s*:",
    _I,
)
_SIG_DASHES = re.compile(r"^-- ?$")
_MOBILE = re.compile(
    r"^\s*(?:sent from my|sent from|get outlook for|wysłane z|wysłano z|wysłane przy użyciu|"
    r"надіслано з|отправлено с|отправлено из|изпратено от|von meinem|gesendet von)\b",
    _I,
)
_VALEDICTION = re.compile(
    r"^\s*(?:best regards|kind regards|warm regards|warmest regards|regards|best wishes|"
    r"all the best|best|cheers|many thanks|thanks|thank you|"
    r"pozdrawiam(?: serdecznie| ciepło)?|serdecznie pozdrawiam|serdeczności|z poważaniem|"
    r"z pozdrowieniami|pozdrowienia|dziękuję|dzięki|"
    r"з повагою|з найкращими побажаннями|з найкращими побажанням|щиро ваш[аі]?|дякую|"
    r"поздрави|с уважение|с поздрав|благодаря|"
    r"с уважением|всего доброго|спасибо|"
    r"mit freundlichen grüßen|viele grüße|beste grüße|liebe grüße|freundliche grüße|"
    r"danke|lg|mfg|vg)\s*[,.!]?\s*(?P<rest>.*)$",
    _I,
)


def _is_quote_header(lines: list[str], i: int) -> int | None:
    """The index where quoted history starts if line ``i`` opens it, else None."""
    line = lines[i]
    stripped = line.strip()
    if not stripped or len(stripped) > 400:  # a header is short (and bounds the regexes)
        return None
    if _SEPARATOR.match(line) or _FORWARD_INTRO.match(line) or _UNDERSCORES.match(line):
        return i
    if _WROTE.search(line) or _ADDRESS_COLON.search(line):
        previous = lines[i - 1] if i > 0 else ""
        if (
            previous.strip()
            and not _HEADER_START.match(line)
            and _HEADER_START.match(previous)
            and not previous.rstrip().endswith((".", "!", "?"))
        ):
            return i - 1  # a header wrapped over two lines
        if _HEADER_START.match(line) or any(c.isdigit() for c in line) or "@" in line:
            return i
        return None
    if _FROM_LINE.match(line):
        for j in range(i + 1, min(i + 5, len(lines))):
            if _SENT_LINE.match(lines[j]):
                return i
    return None


def _name_like(line: str) -> bool:
    words = line.split()
    return (
        0 < len(words) <= 5
        and len(line.strip()) <= 60
        and not line.rstrip().endswith((".", "!", "?", ":"))
        and not any(c.isdigit() for c in line)
    )


def _valediction_at(lines: list[str], i: int, content: list[int]) -> bool:
    """True when line ``i`` is a closing ("Pozdrawiam", "Best regards, Anna") that starts
    the signature: there is content before it, its own rest is a name, what follows is a
    name (or nothing) and the block after it is short. ``content``: the indexes of the
    non-blank lines, in order (so that each line is judged in constant time)."""
    m = _VALEDICTION.match(lines[i])
    if m is None:
        return False
    rest = m.group("rest").strip()
    if rest and not (
        _name_like(rest) and all(w[:1].isupper() for w in rest.split())
    ):
        return False
    here = bisect.bisect_left(content, i)  # non-blank lines before line i
    if here == 0:
        return False
    after = content[here + 1 :] if here < len(content) and content[here] == i else content[here:]
    if len(after) > 15:
        return False
    return not after or _name_like(lines[after[0]])


def strip_reply(text: str) -> str:
    """Keep only the new text of a reply.

    Cuts the quoted history (the first "On ... wrote:" / "W dniu ... pisze:" / "Am ...
    schrieb:" / "... написав(ла):" / "... написа:" header, Gmail's "<date> Name
    <addr>:", "-----Original Message-----" and other "--- ... message ---" separators,
    a "From: / Sent:" block, a line of underscores, "Begin forwarded message:", and
    everything after it), drops remaining ">"-quoted lines (inline replies keep their
    unquoted answers), and cuts the signature: a "-- " line, "Sent from my iPhone" and
    its translations, or a closing ("Best regards", "Pozdrawiam", "З повагою",
    "Поздрави", ...) on its own line or followed by a name, when it comes after some
    content and what follows looks like a signature (a name first, at most 15 lines).
    A closing followed by a real sentence ("Thanks!\\nI'll send it by Friday.") is kept.
    Only the first `MAX_INPUT_CHARS` characters are read.
    """
    if not isinstance(text, str):
        return ""
    text = text[:MAX_INPUT_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    for i in range(len(lines)):
        start = _is_quote_header(lines, i)
        if start is not None:
            lines = lines[:start]
            break
    lines = [line for line in lines if not line.lstrip().startswith(">")]
    for i, line in enumerate(lines):
        if _SIG_DASHES.match(line) or (_MOBILE.match(line) and len(line.strip()) <= 80):
            lines = lines[:i]
            break
    content = [i for i, line in enumerate(lines) if line.strip()]
    for i in range(len(lines)):
        if _valediction_at(lines, i, content):
            lines = lines[:i]
            break
    return "\n".join(line.rstrip() for line in lines).strip()


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
            if _ORDINAL_MONTH.search(tail) and _MONTH_STEM.match(para, m.end()):
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


# =========================================================================== cues

_CUE = re.compile(
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
_NOT_A_PROMISE = re.compile(
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
class _Mention:
    start: int
    end: int
    kind: str  # date kinds: day, weekday, next_week, end_week, end_month, workdays,
    #            instant, ignore; time kinds: clock, eod
    value: object = None


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

_MONTH_STEM = re.compile(
    r"(?<!\w)(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|"
    r"stycz|lut|mar|kwie|maj|czerw|lip|sierp|wrze|paźdz|pazdz|listop|grud|"
    r"січ|лют|берез|квіт|трав|черв|лип|серп|верес|жовт|листоп|груд|"
    r"янв|яну|фев|мар|апр|май|мая|юни|июн|юли|июл|авг|сеп|сен|окт|ное|ноя|дек|"
    r"mär|maer|mai|okt|dez)",
    _I,
)
_DAY_UNIT = re.compile(
    r"(?<!\w)(?:days?|weeks?|dni|dzień|dnia|tydzień|tygodni\w*|дні|днів|день|дня|тиждень|"
    r"тижні|тижнів|дни|ден|дена|седмиц\w*|дней|недел[юиь]|недель|tag|tage|tagen|"
    r"woche|wochen)(?!\w)",
    _I,
)
_YEAR = re.compile(r"\d{4}")
_DIGIT = re.compile(r"\d")
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


def _scan(sentence: str) -> tuple[list[_Mention], list[_Mention], str]:
    """Hand-written phrases: (date mentions, time mentions, the sentence with the claimed
    spans blanked out for dateparser)."""
    text = sentence.translate(_APOSTROPHES)
    claims = _Claims()
    dates: list[_Mention] = []
    times: list[_Mention] = []

    def each(pattern: re.Pattern[str], handle: Callable[[re.Match[str]], _Mention | None]):
        for m in pattern.finditer(text):
            if not claims.free(m.start(), m.end()):
                continue
            mention = handle(m)
            if mention is not None and claims.take(m.start(), m.end()):
                (times if mention.kind in ("clock", "eod") else dates).append(mention)

    def offset(m: re.Match[str]) -> _Mention:
        n = int(m.group("n")) if m.group("n") else 1
        unit = m.group("unit").lower()
        minutes = unit.startswith(("min", "хв"))
        delta = dt.timedelta(minutes=n) if minutes else dt.timedelta(hours=n)
        return _Mention(m.start(), m.end(), "instant", delta)

    def workdays(m: re.Match[str]) -> _Mention:
        n = int(next(g for g in m.groups() if g))
        return _Mention(m.start(), m.end(), "workdays", n)

    def relative(m: re.Match[str]) -> _Mention:
        n = 2 if m.group("d2") else 1 if m.group("d1") else 0
        return _Mention(m.start(), m.end(), "day", n)

    def weekday(m: re.Match[str]) -> _Mention:
        prefix = m.groupdict().get("prefix")
        if prefix and _PAST_PREFIX_RE.match(prefix):
            return _Mention(m.start(), m.end(), "ignore")
        day = m.group("day").lower()
        wd = _WEEKDAY_BY_FORM.get(day, _EN_ABBREVIATIONS.get(day))
        if prefix and _NEXT_PREFIX_RE.match(prefix):
            return _Mention(m.start(), m.end(), "next_weekday", wd)
        return _Mention(m.start(), m.end(), "weekday", wd)

    def day_of_month(m: re.Match[str]) -> _Mention:
        return _Mention(m.start(), m.end(), "day_of_month", int(m.group("en") or m.group("n")))

    def clock(m: re.Match[str]) -> _Mention | None:
        groups = m.groupdict()
        hm = _hour(int(m.group("h")), int(groups.get("m") or 0), groups.get("ampm"), bare=True)
        return None if hm is None else _Mention(m.start(), m.end(), "clock", hm)

    def hour_after(m: re.Match[str]) -> _Mention | None:
        if not _HOUR_AFTER_OK.match(text, m.end()):
            return None  # "at 2 locations", "в 15 минут"
        return clock(m)

    def numeric(m: re.Match[str]) -> _Mention | None:
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
        return _Mention(m.start(), m.end(), "date", (year, mo, d))

    each(_OFFSET, offset)
    each(_WORKDAYS, workdays)
    each(
        _WEEK_OFFSET,
        lambda m: _Mention(m.start(), m.end(), "days", 7 * int(m.group("n") or 1)),
    )
    each(_EOD, lambda m: _Mention(m.start(), m.end(), "eod"))
    each(_END_MONTH, lambda m: _Mention(m.start(), m.end(), "end_month"))
    each(_NEXT_WEEK, lambda m: _Mention(m.start(), m.end(), "next_week"))
    each(_END_WEEK, lambda m: _Mention(m.start(), m.end(), "end_week"))
    each(_RELATIVE_DAY, relative)
    each(_WEEKDAY, weekday)
    each(_WEEKDAY_ABBR, weekday)
    each(_NOON, lambda m: _Mention(m.start(), m.end(), "clock", (12, 0)))
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


# =========================================================================== dateparser


def _languages(sentence: str, hint: str | None) -> list[str]:
    cyrillic = any("\u0400" <= c <= "\u04ff" for c in sentence)
    latin = any(c.isascii() and c.isalpha() for c in sentence) or not cyrillic
    langs: list[str] = []
    if hint in _SUPPORTED:
        langs.append(hint)  # type: ignore[arg-type]
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


class _DateparserBudget:
    """Per reply: dateparser's answers by (window, language), and the calls still allowed."""

    def __init__(self) -> None:
        self.calls_left = _DATEPARSER_CALLS
        self.answers: dict[tuple[str, str], list[tuple[str, object]]] = {}


def _windows(masked: str) -> list[tuple[int, int]]:
    """Spans of ``masked`` around each month name with a digit near it and each day or
    week unit, widened to whole words and merged where they overlap (up to `_WINDOW_MAX`
    characters: a run of dates is several windows, not one long one)."""
    spans: list[tuple[int, int]] = []
    anchors = [m for m in _MONTH_STEM.finditer(masked)
               if _DIGIT.search(masked, max(0, m.start() - _DIGIT_NEAR), m.end() + _DIGIT_NEAR)]
    anchors += list(_DAY_UNIT.finditer(masked))
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


def _dateparser_mentions(
    masked: str,
    sentence: str,
    base: dt.datetime,
    tz_name: str,
    hint: str | None,
    budget: _DateparserBudget,
) -> list[_Mention]:
    """Dates written with a month name, and day/week offsets, found by dateparser."""
    has_month = bool(_MONTH_STEM.search(masked)) and any(c.isdigit() for c in masked)
    if not has_month and not _DAY_UNIT.search(masked):
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
    found: list[_Mention] = []
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
) -> _Mention | None:
    """One dateparser match as a date mention, or None for what it finds but we do not
    trust: "We", "May", "now", "+48", "1.5", "12:00", ..."""
    if not isinstance(phrase, str) or not isinstance(value, dt.datetime):
        return None
    if any(c.isdigit() for c in phrase) and _MONTH_STEM.search(phrase):
        year = value.year if _YEAR.search(phrase) else None
        mention_value: object = (year, value.month, value.day)
    elif _DAY_UNIT.search(phrase):
        try:
            day = value.astimezone(ZoneInfo(tz_name)).date() if value.tzinfo else value.date()
        except (ValueError, OverflowError):
            return None
        mention_value = (day.year, day.month, day.day)
    else:
        return None
    start = offset + max(window.find(phrase), 0)
    return _Mention(start, start + len(phrase), "date", mention_value)


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

    def date_of(self, mention: _Mention) -> dt.date | None:
        today = self.today
        kind, value = mention.kind, mention.value
        if kind in ("day", "days"):
            return today + dt.timedelta(days=int(value))  # type: ignore[arg-type]
        if kind == "weekday":
            ahead = (int(value) - today.weekday()) % 7 or 7  # type: ignore[arg-type]
            return today + dt.timedelta(days=ahead)
        if kind == "next_weekday":  # "next Friday": the Friday of next week
            monday = today + dt.timedelta(days=7 - today.weekday())
            return monday + dt.timedelta(days=int(value))  # type: ignore[arg-type]
        if kind == "day_of_month":  # "on the 15th": this month, else the next one
            year, month = today.year, today.month
            for _ in range(3):
                try:
                    day = dt.date(year, month, int(value))  # type: ignore[arg-type]
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
            for _ in range(min(int(value), 60)):  # type: ignore[arg-type]
                day = self.next_open_day(day)
            return day
        if kind == "date":
            year, month, dd = value  # type: ignore[misc]
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

    def instant(self, mention: _Mention, time: _Mention | None) -> dt.datetime | None:
        if mention.kind == "instant":
            delta: dt.timedelta = mention.value  # type: ignore[assignment]
            return (self.sent.astimezone(dt.UTC) + delta).astimezone(self.tz)
        day = self.date_of(mention)
        if day is None:
            return None
        if time is None or time.kind == "eod":
            return self.end_of_working_day(day)
        return self.at(day, time.value)  # type: ignore[arg-type]

    def time_only(self, time: _Mention) -> dt.datetime:
        if time.kind == "eod":
            return self.end_of_working_day(self.today)
        candidate = self.at(self.today, time.value)  # type: ignore[arg-type]
        if candidate > self.sent:
            return candidate
        return self.at(self.next_open_day(self.today), time.value)  # type: ignore[arg-type]


def _distance(a: _Mention, b: _Mention) -> int:
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
    budget: _DateparserBudget,
) -> list[dt.datetime]:
    dates, times, masked = _scan(sentence)
    base = resolver.sent.replace(tzinfo=None)
    dates += _dateparser_mentions(masked, sentence, base, calendar.timezone, hint, budget)
    dates = [d for d in dates if d.kind != "ignore"]
    absolute = [d for d in dates if d.kind == "date"]
    # A weekday written next to a date ("w piątek, 4 grudnia") is only its label.
    dates = [
        d
        for d in dates
        if d.kind != "weekday" or not any(_distance(d, a) <= 3 for a in absolute)
    ]
    attachable = [d for d in dates if d.kind != "instant"]
    attached: dict[int, _Mention] = {}
    unattached: list[_Mention] = []
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
    budget = _DateparserBudget()
    for sentence in _sentences(strip_reply(text)):
        if _NOT_A_PROMISE.search(sentence) or not _CUE.search(sentence):
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


__all__ = ["MAX_INPUT_CHARS", "MAX_SENTENCE", "Promise", "find_promise", "strip_reply"]
