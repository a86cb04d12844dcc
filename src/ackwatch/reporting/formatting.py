"""Text shared by the report's renderers: terminal columns, minutes, levels, times.

Every client-supplied string passes `printable.clean` before it is shown.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from ackwatch.core.printable import clean
from ackwatch.reporting.figures import Report

DEFAULT_TARGET = 0.9  # the service-level target table and html mark levels against


def _width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def fit(text: str, width: int) -> str:
    """``text`` cut (with "…") and padded to exactly ``width`` terminal columns."""
    text = clean(text)
    total = sum(_width(c) for c in text)
    if total > width:
        out, used = [], 0
        for ch in text:
            w = _width(ch)
            if used + w > width - 1:
                break
            out.append(ch)
            used += w
        text, total = "".join(out) + "…", used + 1
    return text + " " * (width - total)


def format_minutes(minutes: float | None) -> str:
    """``None`` -> "-", 0.4 -> "<1m", 42 -> "42m", 83 -> "1h23m", 7000 -> "116h"."""
    if minutes is None:
        return "-"
    if 0 < minutes < 1:
        return "<1m"
    m = round(minutes)
    if m < 60:
        return f"{m}m"
    hours, rest = divmod(m, 60)
    return f"{hours}h{rest:02d}m" if hours < 100 else f"{hours}h"


def format_level(level: float | None) -> str:
    return "-" if level is None else f"{level * 100:.1f}%"


def iso(t: dt.datetime | None, tz: dt.tzinfo) -> str | None:
    return None if t is None else t.astimezone(tz).isoformat(timespec="seconds")


def period_text(report: Report, tz: dt.tzinfo) -> str:
    """The period as a heading: whole days by their dates, else both instants."""
    since = report.since.astimezone(tz)
    until = report.until.astimezone(tz)
    if since.time() == dt.time() and until.time() == dt.time():
        last = until.date() - dt.timedelta(days=1)
        return f"{since:%a %d %b %Y} – {last:%a %d %b %Y}"
    return f"{since:%Y-%m-%d %H:%M} – {until:%Y-%m-%d %H:%M} (until excluded)"


__all__ = ["DEFAULT_TARGET", "fit", "format_level", "format_minutes", "iso", "period_text"]
