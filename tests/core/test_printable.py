"""The one function that makes outside text safe to print, and its JSON twin."""

from __future__ import annotations

import json
import sys
import unicodedata

from ackwatch.core.printable import clean, json_text

UNSAFE_CATEGORIES = ("Cc", "Cf", "Zl", "Zp", "Cs")
JOINERS = "\u200c\u200d"  # ZWNJ and ZWJ: Persian/Indic shaping and emoji sequences


def unsafe_characters() -> list[str]:
    return [
        chr(code)
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in UNSAFE_CATEGORIES and chr(code) not in JOINERS
    ]


def test_every_control_format_separator_and_surrogate_becomes_a_visible_escape():
    for ch in unsafe_characters():
        shown = clean(f"a{ch}b")
        assert shown.isprintable(), repr(ch)
        if ch not in "\t\n\r\x0b\x0c":
            assert shown == f"a{ch!r}b".replace("'", ""), (repr(ch), shown)


def test_terminal_sequences_and_bidi_overrides_are_shown_not_obeyed():
    assert clean("\x1b[2J\x1b]0;title\x07 invoice\u202egpj.exe") == (
        "\\x1b[2J\\x1b]0;title\\x07 invoice\\u202egpj.exe"
    )


def test_line_breaks_and_tabs_are_spaces():
    assert clean("Re: quote\r\n\tfor spring") == "Re: quote  \tfor spring".replace("\t", " ")


def test_everyday_text_emoji_sequences_and_joiners_are_kept():
    family = "\U0001F469\u200d\U0001F469\u200d\U0001F467"
    for text in ("Wycena świąt", "発注書の確認", "Відповідь", "مرحبا", f"Photo {family}",
                 "می\u200cخواهم"):
        assert clean(text) == text
    assert clean(None) == "" and clean("") == ""


def test_json_text_keeps_every_value_and_prints_nothing_unsafe():
    # Surrogates one at a time: two in a row would read back as one pair, as in any JSON.
    values = ["".join(c for c in unsafe_characters() if not "\ud800" <= c <= "\udfff"),
              "lone \ud800 surrogate", "\U000e0041 tag", "caf\u00e9 \u202e x"]
    text = json_text({"v": values})
    assert all(c == "\n" or c.isprintable() for c in text)
    assert json.loads(text) == {"v": values}
    assert json_text(["\u202e"], indent=None) == '["\\u202e"]'
