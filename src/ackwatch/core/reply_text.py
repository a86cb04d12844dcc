"""The new text of a reply: without the quoted history and the signature.

`strip_reply` is what the promise parser reads (`promise_text.find_promise`): quote
headers ("On ... wrote:", "W dniu ... pisze:", Outlook's From/Sent blocks), forwarded
parts, "-- " signatures, mobile footers and closing valedictions in the supported
languages end the new text. Pure; never raises on any text.
"""

from __future__ import annotations

import bisect
import re

MAX_INPUT_CHARS = 16 * 1024  # strip_reply / find_promise read at most this much text

_I = re.IGNORECASE


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

