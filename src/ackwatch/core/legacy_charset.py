"""Which legacy charset raw 8-bit header bytes are in, when they are not UTF-8.

RFC 5322 headers are ASCII, but old and misconfigured mail programs write the subject and
display names raw in the sender's local charset: cp1251 or koi8-r from Russia and
Ukraine, shift_jis from Japan, latin-1 from Western Europe. Reading all of them as
latin-1 garbles every non-Western one ("Ñìåòà" for "Смета").

How it decides (charset-normalizer, a maintained detector):

- Once per mail, over all of its raw 8-bit header values that are not valid UTF-8
  together: a subject and a display name say more than either alone (the detector is
  unreliable on a few bytes).
- Only among `CANDIDATES`, the legacy charsets of the languages agencies using ackwatch
  write (Western, Cyrillic, Central European) and Japanese: with every charset allowed,
  short Cyrillic reads as Greek or Hebrew and Japanese as Korean just as well. Chinese
  and Korean raw 8-bit headers are therefore still read as Western.
- The candidate with the least "chaos" wins, then the most language coherence, then the
  earlier in `CANDIDATES`: a tie on a few bytes goes to windows-1252, what latin-1
  reading gave before (an ISO-8859-2 Polish subject still ties with it and reads as
  Western, as before).
- None (the caller falls back to latin-1) when no candidate decodes the bytes plausibly.

charset-normalizer is imported on the first such mail only: most installations never see
one, and every start pays for what it imports.
"""

from __future__ import annotations

from collections.abc import Sequence

# Python codec name -> the name recorded in the defect (the charset's usual MIME label).
CANDIDATES: dict[str, str] = {
    "cp1252": "windows-1252",
    "cp1251": "windows-1251",
    "koi8_r": "koi8-r",
    "koi8_u": "koi8-u",
    "cp1250": "windows-1250",
    "iso8859_2": "iso-8859-2",
    "cp932": "shift_jis",  # Microsoft's shift_jis, a superset: what Japanese Windows sends
    "euc_jp": "euc-jp",
}
_ORDER = {codec: i for i, codec in enumerate(CANDIDATES)}
MAX_SAMPLE_BYTES = 4096  # the detector reads at most this much of a mail's raw values


def guess(values: Sequence[bytes]) -> tuple[str, str] | None:
    """(Python codec, MIME label) of the charset ``values`` (raw header values that are not
    UTF-8) are most plausibly in, or None."""
    sample = b"\n".join(values)[:MAX_SAMPLE_BYTES]
    if not sample:
        return None
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    try:
        matches = list(from_bytes(sample, cp_isolation=list(CANDIDATES)))
    except Exception:  # a third-party detector must never break parsing
        return None
    matches = [m for m in matches if m.encoding in CANDIDATES]
    if not matches:
        return None
    best = min(matches, key=lambda m: (round(m.chaos, 3), -round(m.coherence, 3),
                                       _ORDER[m.encoding]))
    return best.encoding, CANDIDATES[best.encoding]
