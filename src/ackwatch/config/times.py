"""Converters for time: durations, timezones, dates, days of the week, opening hours,
holiday countries and the digest's weekly time.

`parse_duration` and `format_duration` are public: the CLI and tests use them too.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ackwatch.config.model import OpenRange
from ackwatch.config.problems import (
    INVALID,
    Bad,
    Ctx,
    join_path,
    mapping,
    scalar,
    show,
    suggest,
)

_DURATION_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_DURATION_RE = re.compile(
    r"\s*(?:([0-9]+)\s*d)?\s*(?:([0-9]+)\s*h)?\s*(?:([0-9]+)\s*m)?\s*(?:([0-9]+)\s*s)?\s*"
)
_DURATION_HELP = "write a duration such as 30s, 45m, 2h, 1h30m or 3d"


def parse_duration(text: object) -> dt.timedelta:
    """``"30s"``, ``"45m"``, ``"2h"``, ``"1h30m"``, ``"3d"``, ``"0m"`` -> `timedelta`.

    Units are d, h, m, s, largest first, each at most once (``"1h 30m"`` is fine too).
    Raises `ValueError` with a readable message for an empty, negative, unit-less or
    otherwise malformed value.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration ({_DURATION_HELP}), got {show(text)}")
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"empty duration ({_DURATION_HELP})")
    if stripped.startswith("-"):
        raise ValueError(f"negative duration {show(text)} is not allowed")
    if stripped.isdigit():
        raise ValueError(f"duration {show(text)} has no unit ({_DURATION_HELP})")
    match = _DURATION_RE.fullmatch(stripped)
    if match is None or not any(match.groups()):
        raise ValueError(f"not a duration: {show(text)} ({_DURATION_HELP})")
    seconds = sum(
        int(number) * factor
        for number, (_, factor) in zip(match.groups(), _DURATION_UNITS, strict=True)
        if number is not None
    )
    try:
        return dt.timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"duration {show(text)} is too large") from None


def format_duration(value: dt.timedelta) -> str:
    """The inverse of `parse_duration`: ``timedelta(hours=1, minutes=30)`` -> ``"1h30m"``."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0m"
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    parts = []
    for unit, factor in _DURATION_UNITS:
        if seconds >= factor:
            parts.append(f"{seconds // factor}{unit}")
            seconds %= factor
    return sign + "".join(parts)


@scalar
def c_duration(value: object) -> dt.timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise Bad(str(exc)) from None


@scalar
def c_positive_duration(value: object) -> dt.timedelta:
    try:
        result = parse_duration(value)
    except ValueError as exc:
        raise Bad(str(exc)) from None
    if result <= dt.timedelta(0):
        raise Bad("must be longer than 0")
    return result


@scalar
def c_seconds(value: object) -> float:
    """A timeout: a number of seconds (``30``, ``2.5``) or a duration (``30s``, ``2m``)."""
    if isinstance(value, str):
        try:
            value = parse_duration(value).total_seconds()
        except ValueError:
            raise Bad(f"expected a number of seconds, got {show(value)}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Bad(f"expected a number of seconds, got {show(value)}")
    if not (value > 0 and math.isfinite(value)):
        raise Bad(f"must be more than 0 seconds, got {value}")
    return float(value)


@scalar
def c_timezone(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"expected a timezone name such as Europe/Warsaw, got {show(value)}")
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        from zoneinfo import available_timezones

        raise Bad(
            f"unknown timezone {show(value)}"
            + (
                _suggest_tz(name, available_timezones())
                or " (use an IANA name such as Europe/Warsaw)"
            )
        ) from None
    return name


def _suggest_tz(name: str, zones: Iterable[str]) -> str:
    by_lower = {z.lower(): z for z in zones}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f' (did you mean "{by_lower[close[0]]}"?)' if close else ""


@scalar
def c_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        raise Bad(f"expected a date (YYYY-MM-DD) without a time, got {show(value)}")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise Bad(f"not a valid date (YYYY-MM-DD): {show(value)}") from None
    raise Bad(f"expected a date (YYYY-MM-DD), got {show(value)}")


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HOURS_HELP = '"09:00-17:00", several ranges "09:00-12:00,13:00-17:00", or "closed"'
_RANGE_RE = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")


def _parse_days(spec: object) -> list[int]:
    """``"mon-fri"``, ``"sat"``, ``"mon,wed"``, ``"mon-wed,fri"`` -> weekday numbers."""
    if not isinstance(spec, str):
        raise Bad(f"expected days such as mon-fri, sat or mon,wed, got {show(spec)}")
    days: list[int] = []

    def day(name: str) -> int:
        name = name.strip().lower()
        if name in DAYS:
            return DAYS.index(name)
        if name in _DAY_NAMES:
            return _DAY_NAMES.index(name)
        raise Bad(
            f"unknown day {show(name)}; use mon, tue, wed, thu, fri, sat, sun"
            + suggest(name, DAYS)
        )

    for token in spec.split(","):
        if "-" in token:
            first, _, last = token.partition("-")
            a, b = day(first), day(last)
            if a > b:
                raise Bad(
                    f"day range {show(token.strip())} runs backwards; days go mon..sun "
                    f"(write e.g. {DAYS[a]}-sun,mon-{DAYS[b]})"
                )
            new = list(range(a, b + 1))
        else:
            new = [day(token)]
        for d in new:
            if d in days:
                raise Bad(f"{DAYS[d]} is given twice in {show(spec)}")
            days.append(d)
    return days


def _minutes(hours: str, minutes: str, *, end: bool) -> int:
    h, m = int(hours), int(minutes)
    if end and (h, m) == (24, 0):
        return 1440
    if h > 23 or m > 59:
        raise Bad(
            f"{hours}:{minutes} is not a time of day (00:00-23:59{', or 24:00' if end else ''})"
        )
    return h * 60 + m


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_ranges(value: object) -> tuple[OpenRange, ...]:
    """``"09:00-12:00,13:00-17:00"`` / ``"closed"`` -> sorted `OpenRange` tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise Bad(f"expected {_HOURS_HELP}, got the number {value} (quote the hours)")
    if not isinstance(value, str):
        raise Bad(f"expected {_HOURS_HELP}, got {show(value)}")
    if value.strip().lower() == "closed":
        return ()
    ranges: list[OpenRange] = []
    for part in value.split(","):
        match = _RANGE_RE.fullmatch(part.strip())
        if match is None:
            raise Bad(f"malformed hours {show(part.strip())}: expected {_HOURS_HELP}")
        start = _minutes(match[1], match[2], end=False)
        end = _minutes(match[3], match[4], end=True)
        if end <= start:
            raise Bad(
                f"in {show(part.strip())} the end is not after the start "
                "(a range cannot cross midnight: split it over two days, ending at 24:00)"
            )
        ranges.append(OpenRange(start, end))
    ranges.sort(key=lambda r: (r.start, r.end))
    merged: list[OpenRange] = []
    for r in ranges:
        if merged and r.start < merged[-1].end:
            prev = merged[-1]
            raise Bad(
                f"ranges {_hhmm(prev.start)}-{_hhmm(prev.end)} and "
                f"{_hhmm(r.start)}-{_hhmm(r.end)} overlap"
            )
        if merged and r.start == merged[-1].end:  # touching: one range
            merged[-1] = OpenRange(merged[-1].start, r.end)
        else:
            merged.append(r)
    return tuple(merged)


def c_hours(ctx: Ctx, value: object, path: str) -> Any:
    m = mapping(ctx, value, path)
    if m is None:
        return INVALID
    week: list[tuple[OpenRange, ...] | None] = [None] * 7
    given_by: dict[int, str] = {}
    ok = True
    for key, spec in m.items():
        kpath = join_path(path, key)
        try:
            days = _parse_days(key)
            ranges = _parse_ranges(spec)
        except Bad as exc:
            ctx.error(kpath, str(exc))
            ok = False
            continue
        for d in days:
            if d in given_by:
                ctx.error(kpath, f"{DAYS[d]} is already given by {show(given_by[d])}")
                ok = False
            else:
                given_by[d] = str(key)
                week[d] = ranges
    if not ok:
        return INVALID
    hours = tuple(day or () for day in week)
    if not any(hours):
        ctx.error(path, "no open hours on any day (a business clock would never run)")
        return INVALID
    return hours


def holidays_country(value: object) -> tuple[str, str | None]:
    if isinstance(value, bool):
        raise Bad(
            f"expected a country code such as PL or DE-BY, got {show(value)}: YAML reads "
            'unquoted NO, YES, ON and OFF as booleans; quote the code ("NO")'
        )
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"expected a country code such as PL or DE-BY, got {show(value)}")
    import holidays as holidays_pkg

    supported: Mapping[str, list[str]] = holidays_pkg.list_supported_countries()
    country, _, subdivision = value.strip().partition("-")
    country = country.upper()
    if country not in supported:
        raise Bad(
            f"unknown holiday country {show(country)} (an ISO 3166 code the holidays "
            "package supports, such as PL, DE, GB)" + _suggest_upper(country, supported)
        )
    if not subdivision:
        return country, None
    known = {str(s).upper(): str(s) for s in supported[country]}
    if subdivision.upper() not in known:
        listing = ", ".join(sorted(known.values())) or "none"
        raise Bad(f"unknown subdivision {show(subdivision)} of {country} (known: {listing})")
    return country, known[subdivision.upper()]


def _suggest_upper(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word.upper(), list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


_DIGEST_RE = re.compile(r"([a-z]+)\s+(\d{1,2}):(\d{2})", re.IGNORECASE)


@scalar
def c_weekly_time(value: object) -> tuple[int, dt.time]:
    match = _DIGEST_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise Bad(f'expected a weekday and a time such as "mon 09:00", got {show(value)}')
    day = match[1].lower()
    if day not in DAYS:
        raise Bad(f"unknown day {show(match[1])}; use mon..sun" + suggest(day, DAYS))
    minutes = _minutes(match[2], match[3], end=False)
    return DAYS.index(day), dt.time(minutes // 60, minutes % 60)
