"""The business clock: working time on a calendar of open hours, holidays and closed days.

Pure: no I/O, no reading of the current time. All datetimes given and returned are
timezone-aware; results are in the calendar's timezone (convert as needed).
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from .config import CalendarConfig, Config, Policy


class Clock(Protocol):
    """What an SLA policy needs from a clock (business or wall time)."""

    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime: ...

    def subtract(self, end: dt.datetime, duration: dt.timedelta) -> dt.datetime: ...

    def working_time_between(self, a: dt.datetime, b: dt.datetime) -> dt.timedelta: ...


class BusinessCalendar:
    """Open hours of one `CalendarConfig`.

    - ``add(start, d)``: the instant when ``d`` of open time has elapsed since ``start``;
      a start outside open hours counts from the next opening. ``add(t, 0)`` is the next
      opening at or after ``t``.
    - ``subtract(end, d)``: the latest instant ``s`` with ``working_time_between(s, end) == d``.
    - ``working_time_between(a, b)``: open time in [a, b); negative when b < a.
    """

    def __init__(self, config: CalendarConfig):
        raise NotImplementedError

    def is_open(self, t: dt.datetime) -> bool:
        raise NotImplementedError

    def next_open(self, t: dt.datetime) -> dt.datetime:
        """``t`` if open, else the next opening instant."""
        raise NotImplementedError

    def closing_time(self, day: dt.date) -> dt.datetime | None:
        """The day's last closing instant (for "end of day"), None when closed all day."""
        raise NotImplementedError

    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        raise NotImplementedError

    def subtract(self, end: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        raise NotImplementedError

    def working_time_between(self, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
        raise NotImplementedError


class WallClock:
    """Elapsed wall time (policies with ``clock: calendar``)."""

    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        raise NotImplementedError

    def subtract(self, end: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        raise NotImplementedError

    def working_time_between(self, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
        raise NotImplementedError


def clock_for(policy: Policy, config: Config) -> Clock:
    """The clock a policy counts on (cached per calendar)."""
    raise NotImplementedError
