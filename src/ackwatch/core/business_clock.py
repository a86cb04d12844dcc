"""The business clock: working time on a calendar of open hours, holidays and closed days.

Pure: no I/O, no reading of the current time. All datetimes given and returned are
timezone-aware; results are in the calendar's timezone (convert as needed).

How open hours become real time
-------------------------------
Open hours are local wall-clock times. For each local date the calendar computes, once
(cached), the day's open intervals as half-open ``[open, close)`` intervals of real time
(UTC); every operation then works on those intervals, so DST is handled in one place:

- A local boundary that exists once maps to that instant. A 09:00-17:00 day is 8h of real
  time even on a DST-change day, unless the transition falls inside the range; then the
  range counts the real elapsed time (00:00-24:00 is 23h in spring, 25h in autumn).
- Nonexistent local time (in the spring-forward gap, e.g. 02:30 in Warsaw on the last
  Sunday of March): the boundary is the first instant at which the wall clock reads that
  time or later, i.e. the transition instant (03:00 CEST). This applies to opening and
  closing boundaries alike.
- Ambiguous local time (the autumn repeated hour): an opening uses the first occurrence
  and a closing the last one, so the interval spans every instant whose wall-clock
  reading lies in the range (an open range 02:30-04:00 on the Warsaw fall-back day is
  2h30m of real time).
- Each local date owns the real time from its midnight to the next midnight (midnight
  mapped with the opening rule); a day's intervals are clipped to that span, so days never
  overlap, and an open range ending at 24:00 (end=1440) closes at the next midnight.

A day is closed when it is in ``closed``, is a public holiday of ``holidays`` (+
``holiday_subdivision``) as the ``holidays`` package reports it for that year (computed
lazily per year and cached), or has no weekly hours. Searches for the next/previous open
day are bounded: no opening within ``MAX_CLOSED_DAYS`` days raises ``ValueError``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from types import ModuleType
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ackwatch.config import CalendarConfig, Config, OpenRange, Policy

UTC = dt.UTC
MINUTES_PER_DAY = 1440
MAX_CLOSED_DAYS = 366  # a search that finds no opening within this many days raises
_DAY = dt.timedelta(days=1)
_ZERO = dt.timedelta(0)

Interval = tuple[dt.datetime, dt.datetime]  # [open, close) in UTC


class Clock(Protocol):
    """What an SLA policy needs from a clock (business or wall time)."""

    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime: ...

    def subtract(self, end: dt.datetime, duration: dt.timedelta) -> dt.datetime: ...

    def working_time_between(self, a: dt.datetime, b: dt.datetime) -> dt.timedelta: ...


def _utc(t: dt.datetime) -> dt.datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {t!r}")
    return t.astimezone(UTC)


def _validate_hours(config: CalendarConfig) -> None:
    if len(config.hours) != 7:
        raise ValueError(
            f"calendar {config.name!r}: hours must have 7 days (Mon..Sun), got {len(config.hours)}"
        )
    for weekday, ranges in enumerate(config.hours):
        previous_end = -1
        for r in ranges:
            if not (0 <= r.start < r.end <= MINUTES_PER_DAY):
                raise ValueError(
                    f"calendar {config.name!r}: day {weekday}: invalid open range "
                    f"{r.start}-{r.end} (minutes, need 0 <= start < end <= 1440)"
                )
            if r.start < previous_end:
                raise ValueError(
                    f"calendar {config.name!r}: day {weekday}: open ranges must be sorted "
                    "and must not overlap"
                )
            previous_end = r.end


def _holidays_package() -> ModuleType:
    """The holidays package, imported when a calendar names a country: it (and the
    dateutil it brings) costs 20 ms at every start, a tenth of ackwatch's imports."""
    import holidays

    return holidays


class BusinessCalendar:
    """Open hours of one `CalendarConfig`.

    - ``add(start, d)``: the instant when ``d`` of open time has elapsed since ``start``;
      a start outside open hours counts from the next opening. ``add(t, 0)`` is the next
      opening at or after ``t``. When the time runs out exactly at a closing, the result is
      that closing (17:00, not the next morning). A negative ``d`` means ``subtract``.
    - ``subtract(end, d)``: the latest instant ``s`` with ``working_time_between(s, end) == d``.
      With ``end`` in a closed period this counts back from the previous closing; when the
      time runs out exactly at an opening, the result is that opening. ``subtract(end, 0)``
      is ``end``. A negative ``d`` means ``add``.
    - ``working_time_between(a, b)``: open time in [a, b); negative when b < a.

    Open intervals are half-open: open at the opening instant, closed at the closing one.
    """

    def __init__(self, config: CalendarConfig):
        _validate_hours(config)
        try:
            self.tz = ZoneInfo(config.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"calendar {config.name!r}: unknown timezone {config.timezone!r}"
            ) from exc
        if config.holidays:
            try:  # validate the country/subdivision now rather than on first use
                _holidays_package().country_holidays(
                    config.holidays, subdiv=config.holiday_subdivision, years=()
                )
            except NotImplementedError as exc:
                raise ValueError(
                    f"calendar {config.name!r}: holidays {config.holidays!r}"
                    f" (subdivision {config.holiday_subdivision!r}) not supported: {exc}"
                ) from exc
        self.config = config
        self._holiday_years: dict[int, frozenset[dt.date]] = {}
        # Per-instance cache (a method-level lru_cache would be shared and keep self alive).
        self._intervals = functools.lru_cache(maxsize=8192)(self._compute_intervals)

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.config.name!r}, {self.config.timezone!r})"

    # ------------------------------------------------------------------ days

    def holidays_in(self, year: int) -> frozenset[dt.date]:
        """Public holidays of the calendar's country in ``year`` (cached per year)."""
        cached = self._holiday_years.get(year)
        if cached is None:
            if self.config.holidays and dt.MINYEAR <= year <= dt.MAXYEAR:
                found = _holidays_package().country_holidays(
                    self.config.holidays, subdiv=self.config.holiday_subdivision, years=year
                )
                cached = frozenset(d for d in found if d.year == year)
            else:
                cached = frozenset()
            self._holiday_years[year] = cached
        return cached

    def is_closed_day(self, day: dt.date) -> bool:
        """True when ``day`` is a holiday, an extra closed date, or has no weekly hours."""
        return (
            not self.config.hours[day.weekday()]
            or day in self.config.closed
            or day in self.holidays_in(day.year)
        )

    def open_intervals(self, day: dt.date) -> tuple[Interval, ...]:
        """The day's open intervals ``[open, close)`` in UTC, sorted, merged (cached)."""
        return self._intervals(day)

    def _compute_intervals(self, day: dt.date) -> tuple[Interval, ...]:
        if self.is_closed_day(day):
            return ()
        day_start = self._to_utc(day, 0, opening=True)
        day_end = self._to_utc(day + _DAY, 0, opening=True)
        out: list[list[dt.datetime]] = []
        for r in self.config.hours[day.weekday()]:
            s = max(self._to_utc(day, r.start, opening=True), day_start)
            e = (
                day_end
                if r.end >= MINUTES_PER_DAY
                else min(self._to_utc(day, r.end, opening=False), day_end)
            )
            if s >= e:
                continue
            if out and s <= out[-1][1]:
                out[-1][1] = max(out[-1][1], e)
            else:
                out.append([s, e])
        return tuple((s, e) for s, e in out)

    def _to_utc(self, day: dt.date, minute: int, *, opening: bool) -> dt.datetime:
        """The real instant of local wall time ``minute`` on ``day`` (see module doc)."""
        naive = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
        u0 = naive.replace(tzinfo=self.tz, fold=0).astimezone(UTC)
        u1 = naive.replace(tzinfo=self.tz, fold=1).astimezone(UTC)
        if u0 == u1:
            return u0
        lo, hi = min(u0, u1), max(u0, u1)
        if u0.astimezone(self.tz).replace(tzinfo=None) == naive:
            # Ambiguous: exists twice. Opening: first occurrence; closing: last one.
            return lo if opening else hi
        # Nonexistent: the first instant whose wall reading is >= naive (the transition).
        # Wall reading at lo is before the gap, at hi after it; bisect on whole seconds
        # (tz transitions are on whole seconds).
        lo_s, hi_s = 0, int((hi - lo).total_seconds())
        while hi_s - lo_s > 1:
            mid = (lo_s + hi_s) // 2
            t = lo + dt.timedelta(seconds=mid)
            if t.astimezone(self.tz).replace(tzinfo=None) >= naive:
                hi_s = mid
            else:
                lo_s = mid
        return lo + dt.timedelta(seconds=hi_s)

    def _local_date(self, u: dt.datetime) -> dt.date:
        return u.astimezone(self.tz).date()

    def _check_ever_open(self) -> None:
        if not any(self.config.hours):
            raise ValueError(f"calendar {self.config.name!r} has no open hours on any weekday")

    def _forward(self, u: dt.datetime) -> Iterator[Interval]:
        """Open intervals that end after ``u``, in order (bounded closed-day search)."""
        return self._walk(u, later=True)

    def _backward(self, u: dt.datetime) -> Iterator[Interval]:
        """Open intervals that start before ``u``, latest first (bounded search)."""
        return self._walk(u, later=False)

    def _walk(self, u: dt.datetime, *, later: bool) -> Iterator[Interval]:
        """Open intervals from ``u`` on, day by day, towards ``later`` times or earlier
        ones; a run of more than MAX_CLOSED_DAYS closed days is an error."""
        self._check_ever_open()
        day = self._local_date(u)
        step = _DAY if later else -_DAY
        closed_run = 0
        while True:
            found = False
            intervals = self._intervals(day)
            for s, e in intervals if later else reversed(intervals):
                if e > u if later else s < u:
                    found = True
                    yield s, e
            if found:
                closed_run = 0
            else:
                closed_run += 1
                if closed_run > MAX_CLOSED_DAYS:
                    raise ValueError(
                        f"calendar {self.config.name!r}: no open hours within "
                        f"{MAX_CLOSED_DAYS} days {'after' if later else 'before'} "
                        f"{u.astimezone(self.tz).isoformat()}"
                    )
            day += step

    # ------------------------------------------------------------------ public API

    def is_open(self, t: dt.datetime) -> bool:
        u = _utc(t)
        return any(s <= u < e for s, e in self._intervals(self._local_date(u)))

    def next_open(self, t: dt.datetime) -> dt.datetime:
        """``t`` if open, else the next opening instant."""
        u = _utc(t)
        s, _e = next(self._forward(u))
        return max(s, u).astimezone(self.tz)

    def closing_time(self, day: dt.date) -> dt.datetime | None:
        """The day's last closing instant (for "end of day"), None when closed all day."""
        intervals = self._intervals(day)
        return intervals[-1][1].astimezone(self.tz) if intervals else None

    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        if duration < _ZERO:
            return self.subtract(start, -duration)
        u = _utc(start)
        remaining = duration
        for s, e in self._forward(u):
            s = max(s, u)
            available = e - s
            if remaining <= available:
                return (s + remaining).astimezone(self.tz)
            remaining -= available
        raise AssertionError("unreachable")  # pragma: no cover

    def subtract(self, end: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        if duration < _ZERO:
            return self.add(end, -duration)
        u = _utc(end)
        if duration == _ZERO:
            return u.astimezone(self.tz)
        remaining = duration
        for s, e in self._backward(u):
            e = min(e, u)
            available = e - s
            if remaining <= available:
                return (e - remaining).astimezone(self.tz)
            remaining -= available
        raise AssertionError("unreachable")  # pragma: no cover

    def working_time_between(self, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
        ua, ub = _utc(a), _utc(b)
        if ub < ua:
            return -self.working_time_between(b, a)
        total = _ZERO
        day, last = self._local_date(ua), self._local_date(ub)
        while day <= last:
            for s, e in self._intervals(day):
                lo, hi = max(s, ua), min(e, ub)
                if hi > lo:
                    total += hi - lo
            day += _DAY
        return total


class WallClock:
    """Elapsed wall time (policies with ``clock: calendar``).

    Arithmetic is on real elapsed time (UTC), so a day with a DST change is 23h or 25h
    long. Results are in ``timezone`` when given, else in the input's timezone.
    """

    def __init__(self, timezone: str | None = None):
        self.tz: dt.tzinfo | None = ZoneInfo(timezone) if timezone else None

    def __repr__(self) -> str:
        return f"WallClock({getattr(self.tz, 'key', None)!r})"

    def _out(self, u: dt.datetime, like: dt.datetime) -> dt.datetime:
        return u.astimezone(self.tz or like.tzinfo)

    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        return self._out(_utc(start) + duration, start)

    def subtract(self, end: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        return self._out(_utc(end) - duration, end)

    def working_time_between(self, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
        # Both to UTC first: aware datetimes sharing a tzinfo subtract as wall times.
        return _utc(b) - _utc(a)


@functools.lru_cache(maxsize=128)
def business_calendar(config: CalendarConfig) -> BusinessCalendar:
    """One shared `BusinessCalendar` per calendar config (by value: name, hours, ...)."""
    return BusinessCalendar(config)


@functools.lru_cache(maxsize=128)
def _wall_clock(timezone: str | None) -> WallClock:
    return WallClock(timezone)


def clock_for(policy: Policy, config: Config) -> Clock:
    """The clock a policy counts on (cached per calendar).

    ``business``: the policy's calendar (ValueError when missing or unknown).
    ``calendar``: wall time, results in the policy calendar's timezone when it names one,
    else in the config's ``timezone``.
    """
    calendar = config.calendars.get(policy.calendar) if policy.calendar else None
    if policy.clock == "business":
        if calendar is None:
            raise ValueError(
                f"policy {policy.name!r}: clock=business needs a known calendar, "
                f"got {policy.calendar!r}"
            )
        return business_calendar(calendar)
    if policy.clock == "calendar":
        return _wall_clock(calendar.timezone if calendar is not None else config.timezone)
    raise ValueError(f"policy {policy.name!r}: unknown clock {policy.clock!r}")


__all__ = [
    "MAX_CLOSED_DAYS",
    "BusinessCalendar",
    "Clock",
    "OpenRange",
    "WallClock",
    "business_calendar",
    "clock_for",
]
