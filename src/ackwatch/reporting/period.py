"""The period a report covers: ``[since, until)`` as aware instants (pure: no clock read).

Bounds given as a date mean 00:00 that day in the config's timezone; the default period
is the last full week, Monday 00:00 to Monday 00:00.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

UTC = dt.UTC


def _aware(t: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    return t.replace(tzinfo=tz) if t.tzinfo is None or t.utcoffset() is None else t


def local_midnight(day: dt.date, timezone: str) -> dt.datetime:
    """The first instant of ``day`` in ``timezone`` (as UTC)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def default_period(now: dt.datetime, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """The last full week before ``now``: Monday 00:00 to Monday 00:00 in ``timezone``."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    monday = today - dt.timedelta(days=today.weekday())
    return local_midnight(monday - dt.timedelta(days=7), timezone), local_midnight(
        monday, timezone
    )


_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_bound(text: str, timezone: str) -> dt.datetime:
    """``YYYY-MM-DD`` (00:00 that day in ``timezone``) or full ISO 8601 (without an offset:
    in ``timezone``) -> an aware instant. Raises ValueError with a readable message."""
    value = text.strip()
    try:
        if _DATE_RE.fullmatch(value):
            return local_midnight(dt.date.fromisoformat(value), timezone)
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"not a date (YYYY-MM-DD) or ISO 8601 date and time: {text!r}"
        ) from None
    return _aware(parsed, ZoneInfo(timezone))


def check_aware(since: dt.datetime, until: dt.datetime, now: dt.datetime) -> None:
    """ValueError unless the period's bounds and ``now`` are timezone-aware."""
    for name, value in (("since", since), ("until", until), ("now", now)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")


__all__ = ["check_aware", "default_period", "local_midnight", "parse_bound"]
