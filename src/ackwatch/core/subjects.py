"""Subjects as threading sees them: reply and forward prefixes, trivial subjects.

`normalize_subject` strips the reply/forward prefixes of many languages and mail
programs, list tags and whitespace, and casefolds; `has_reply_prefix` tells a reply or
forward from a fresh mail; a trivial subject ("Hi", "Meeting", ...) never links mail
(`threads` step 4). The derived values are memoized, and `threads.assign_threads`
empties the memos after each run.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Reply / forward prefixes (compared case-insensitively), many languages and mail programs:
# EN re fw fwd; DE aw wg antw; PL odp pd; UK відп пересл; RU отв пересл; BG отг пре
# препр; Nordic sv vs vb vl fs; NL antw doorst; FR réf tr; ES rv; IT r i rif; PT res enc;
# TR ynt ilt; CZ/SK odp pr přep; HU v tov; EL απ σχετ πρθ; ZH/JA/KO and a few more.
_PREFIX_WORDS = (
    "re",
    "ree",
    "fw",
    "fwd",
    "fwrd",
    "aw",
    "wg",
    "antw",
    "antwort",
    "odp",
    "odpowiedź",
    "pd",
    "przekaż",
    "відп",
    "відповідь",
    "пересл",
    "перес",
    "переслано",
    "пп",
    "отв",
    "ответ",
    "отг",
    "отговор",
    "пре",
    "препр",
    "препратено",
    "fs",
    "sv",
    "svar",
    "vs",
    "vb",
    "vl",
    "vs",
    "doorst",
    "réf",
    "ref",
    "tr",
    "rv",
    "r",
    "i",
    "rif",
    "res",
    "enc",
    "ynt",
    "ilt",
    "ilet",
    "pr",
    "přep",
    "fwd",
    "odg",
    "v",
    "tov",
    "απ",
    "σχετ",
    "πρθ",
    "ατθ",
    "atb",
    "ats",
    "vast",
    "edasi",
    "rs",
    "회신",
    "전달",
    "回复",
    "回覆",
    "答复",
    "转发",
    "轉寄",
    "返信",
    "転送",
    "השב",
    "הועבר",
    "رد",
    "توجيه",
    "trs",
    "wtr",
)
_PREFIX = re.compile(
    r"^(?:"
    r"(?:" + "|".join(sorted({re.escape(w) for w in _PREFIX_WORDS}, key=len, reverse=True)) + r")"
    r"(?:\s*(?:\[\d{1,4}\]|\(\d{1,4}\)|\^\d{1,4}))?\s*[:：]"
    r"|\[[^\[\]\d]{1,60}\]"  # list and gateway tags: [acme-team], [EXTERNAL], [EXT]
    r"|\((?:fwd?|fw)\)"
    r"|\*{1,3}\s*(?:external|spam|suspicious)\s*\*{1,3}"
    r")\s*",
    re.IGNORECASE,
)
_TRAILING_FWD = re.compile(r"\s*\((?:fwd?|fw)\)\s*$", re.IGNORECASE)
# Every prefix, tag and "(fwd)" the expressions here take off holds one of these
# characters ("：" is ":" after NFKC): a subject with none of them has nothing to take
# off, and most subjects are such. One scan of the text instead of trying each of the
# expressions' hundred alternatives at each round.
_MARKS = re.compile(r"[:：(\[*]")
_REPLY_MARK = re.compile(
    r"^(?:"
    + "|".join(sorted({re.escape(w) for w in _PREFIX_WORDS}, key=len, reverse=True))
    + r")(?:\s*(?:\[\d{1,4}\]|\(\d{1,4}\)|\^\d{1,4}))?\s*[:：]",
    re.IGNORECASE,
)

# Subjects too common to thread by (compared after `normalize_subject`).
TRIVIAL_SUBJECTS = frozenset(
    {
        "",
        "hi",
        "hello",
        "hey",
        "hej",
        "witam",
        "cześć",
        "dzień dobry",
        "привіт",
        "добрий день",
        "здравствуйте",
        "hallo",
        "bonjour",
        "hola",
        "ciao",
        "test",
        "question",
        "pytanie",
        "info",
        "update",
        "fyi",
        "thanks",
        "thank you",
        "dzięki",
        "dziękuję",
        "no subject",
        "(no subject)",
        "brak tematu",
        "(brak tematu)",
        "без теми",
        "без темы",
        "kein betreff",
        "sans objet",
        "sin asunto",
        "urgent",
        "pilne",
        "document",
        "documents",
        "dokumenty",
        "scan",
        "skan",
        "invoice",
        "faktura",
        "photo",
        "photos",
        "zdjęcia",
        "attachment",
        "załącznik",
        "meeting",
        "spotkanie",
    }
)
MIN_SUBJECT_CHARS = 3  # letters or digits needed before a subject may link mail

# Subjects recur (a thread's mails share one; the daemon re-evaluates the same mail, and
# `link_values` sees every stored mail): what is derived from them is memoized, bounded,
# and forgotten after each `assign_threads` (a full memo is ~20 MB: a steady daemon must
# not keep it between evaluations; the store's `link_values` calls fill it again).
# Kept for target 1: without these memos a first sync costs +2.2 % instructions (+0.03 ratio).
_SUBJECT_MEMO = 65536


def _may_end_in_fwd(text: str) -> bool:
    """Whether `_TRAILING_FWD` may match: it needs a ")" followed by whitespace only (an
    unanchored search tries every position: a costly no on most subjects)."""
    return text.rstrip().endswith(")")


def normalize_subject(subject: str) -> str:
    """Strip reply/forward prefixes in many languages, list tags, whitespace; casefold.

    ``"RE: AW: [acme-team] Fwd: Wycena  (fwd)"`` -> ``"wycena"``. Bracketed tags with digits
    (``[Ticket #123]``) are kept: they tell different tickets apart.
    """
    text = unicodedata.normalize("NFKC", subject or "")
    text = " ".join(text.split())
    if _MARKS.search(text) is None:
        return text.casefold()
    for _ in range(200):  # bounded: each round removes at least one character
        stripped = _PREFIX.sub("", text, count=1)
        if _may_end_in_fwd(stripped):
            stripped = _TRAILING_FWD.sub("", stripped)
        if stripped == text:
            break
        text = stripped
    return " ".join(text.split()).casefold()


def is_trivial_subject(normalized: str) -> bool:
    """True when a normalized subject is too short or too common to link mail by."""
    if normalized in TRIVIAL_SUBJECTS:
        return True
    count = 0
    for c in normalized:
        if c.isalnum():
            count += 1
            if count >= MIN_SUBJECT_CHARS:
                return False
    return True


@functools.lru_cache(maxsize=_SUBJECT_MEMO)
def linking_subject(subject: str) -> str | None:
    """The normalized subject when it may link mail (not trivial), else None (a memo of
    `normalize_subject` and `is_trivial_subject`)."""
    normalized = normalize_subject(subject)
    return None if is_trivial_subject(normalized) else normalized


@functools.lru_cache(maxsize=_SUBJECT_MEMO)
def has_reply_prefix(subject: str) -> bool:
    """Whether a subject carries a reply/forward prefix (after any leading [tags])."""
    text = " ".join(unicodedata.normalize("NFKC", subject or "").split())
    if _MARKS.search(text) is None:
        return False
    for _ in range(20):
        if _REPLY_MARK.match(text) or (_may_end_in_fwd(text) and _TRAILING_FWD.search(text)):
            return True
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            return False
        text = stripped
    return False
