"""Business clock: open hours, holidays, closed days, DST; wall clock; clock_for.

No test reads the real clock: every instant is built from literals or by hypothesis.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ackwatch.config import Agency, CalendarConfig, Config, OpenRange, Policy
from ackwatch.core import business_clock as calendar_module
from ackwatch.core.business_clock import BusinessCalendar, WallClock, business_calendar, clock_for

UTC = dt.UTC
H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)
US = dt.timedelta(microseconds=1)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# --------------------------------------------------------------------------- helpers


def _ranges(spec: str) -> tuple[OpenRange, ...]:
    """ "09:00-12:00,13:00-17:00" -> OpenRanges (minutes; "24:00" is 1440)."""
    out = []
    for part in spec.split(","):
        a, b = part.split("-")
        ah, am = map(int, a.split(":"))
        bh, bm = map(int, b.split(":"))
        out.append(OpenRange(ah * 60 + am, bh * 60 + bm))
    return tuple(out)


def make_calendar(
    tz: str,
    *,
    weekdays: str | None = None,
    name: str = "office",
    country: str | None = None,
    subdivision: str | None = None,
    closed: tuple[str, ...] = (),
    **days: str,
) -> BusinessCalendar:
    """A calendar; ``weekdays`` sets mon-fri, ``mon=..``..``sun=..`` set single days."""
    hours: list[tuple[OpenRange, ...]] = [()] * 7
    if weekdays:
        for i in range(5):
            hours[i] = _ranges(weekdays)
    for key, spec in days.items():
        hours[DAYS.index(key)] = _ranges(spec)
    return BusinessCalendar(
        CalendarConfig(
            name=name,
            timezone=tz,
            hours=tuple(hours),
            holidays=country,
            holiday_subdivision=subdivision,
            closed=frozenset(dt.date.fromisoformat(d) for d in closed),
        )
    )


def at(tz: str, text: str) -> dt.datetime:
    """Local wall time in ``tz`` ("2026-03-06 16:30")."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def u(t: dt.datetime) -> dt.datetime:
    """To UTC, so that comparisons are on instants (same-tzinfo compares wall time)."""
    return t.astimezone(UTC)


def wall(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M %Z")


WAW = "Europe/Warsaw"
KYIV = "Europe/Kyiv"
SOFIA = "Europe/Sofia"

WARSAW = make_calendar(WAW, weekdays="09:00-17:00", country="PL", name="warsaw")
SPLIT = make_calendar(WAW, weekdays="09:00-12:00,13:00-17:00", country="PL", name="split")
SOFIA_CAL = make_calendar(SOFIA, weekdays="09:00-18:00", country="BG", name="sofia")
SATURDAY = make_calendar(
    WAW, weekdays="08:00-16:00", sat="10:00-14:00", country="PL", name="saturday"
)
KYIV_CAL = make_calendar(KYIV, weekdays="09:00-18:00", country="UA", name="kyiv")
ALWAYS = make_calendar(WAW, name="always", **{d: "00:00-24:00" for d in DAYS})
# Sunday hours that straddle the DST transitions (gap 02:00-03:00, repeat 02:00-03:00).
NIGHT = make_calendar(
    WAW, weekdays="09:00-17:00", sun="01:00-02:30,02:45-04:00", name="night", country="PL"
)

CALENDARS = [WARSAW, SPLIT, SOFIA_CAL, SATURDAY, KYIV_CAL, ALWAYS, NIGHT]
calendars = pytest.mark.parametrize("cal", CALENDARS, ids=lambda c: c.config.name)

# DST transitions (UTC instants) in 2025-2027 for the EU/UA zones used here.
_TRANSITIONS = [
    utc(f"{d}T01:00")
    for d in ("2025-03-30", "2025-10-26", "2026-03-29", "2026-10-25", "2027-03-28", "2027-10-31")
]

instants = st.one_of(
    st.datetimes(
        min_value=dt.datetime(2025, 1, 1),
        max_value=dt.datetime(2027, 12, 31),
        timezones=st.just(UTC),
    ),
    st.builds(
        lambda base, off: base + off,
        st.sampled_from(_TRANSITIONS),
        st.timedeltas(min_value=-dt.timedelta(days=3), max_value=dt.timedelta(days=3)),
    ),
)
durations = st.one_of(
    st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(hours=30)),
    st.sampled_from([dt.timedelta(0), 30 * M, 2 * H, 8 * H, 24 * H, dt.timedelta(days=3)]),
)
prop = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


def open_or_at_closing(cal: BusinessCalendar, t: dt.datetime) -> bool:
    return cal.is_open(t) or cal.is_open(t - US)


# --------------------------------------------------------------------------- properties


@calendars
@prop
@given(a=instants, d=durations)
def test_subtract_undoes_add_for_open_starts(cal, a, d):
    assume(cal.is_open(a))
    assert u(cal.subtract(cal.add(a, d), d)) == a


@calendars
@prop
@given(a=instants, d=durations)
def test_subtract_of_add_is_next_opening_for_any_start(cal, a, d):
    assert u(cal.subtract(cal.add(a, d), d)) == u(cal.next_open(a))


@calendars
@prop
@given(a=instants, d=durations)
def test_working_time_from_start_to_add_is_the_duration(cal, a, d):
    assert cal.working_time_between(a, cal.add(a, d)) == d


@calendars
@prop
@given(a=instants, b=instants, d=durations)
def test_add_is_monotonic_in_start(cal, a, b, d):
    a, b = sorted((a, b))
    assert u(cal.add(a, d)) <= u(cal.add(b, d))


@calendars
@prop
@given(a=instants, d1=durations, d2=durations)
def test_add_is_monotonic_in_duration(cal, a, d1, d2):
    d1, d2 = sorted((d1, d2))
    assert u(cal.add(a, d1)) <= u(cal.add(a, d2))


@calendars
@prop
@given(a=instants, b=instants, c=instants)
def test_working_time_between_is_additive(cal, a, b, c):
    assert cal.working_time_between(a, b) + cal.working_time_between(
        b, c
    ) == cal.working_time_between(a, c)


@calendars
@prop
@given(a=instants, b=instants)
def test_working_time_between_is_antisymmetric_and_bounded_by_real_time(cal, a, b):
    w = cal.working_time_between(a, b)
    assert w == -cal.working_time_between(b, a)
    assert abs(w) <= abs(b - a)


@calendars
@prop
@given(a=instants, d=durations)
def test_add_result_is_open_or_at_a_closing(cal, a, d):
    r = cal.add(a, d)
    assert open_or_at_closing(cal, r)
    assert r.tzinfo == cal.tz


@calendars
@prop
@given(end=instants, d=durations)
def test_subtract_is_the_latest_start_with_that_working_time(cal, end, d):
    assume(d > dt.timedelta(0))
    s = cal.subtract(end, d)
    assert cal.working_time_between(s, end) == d
    assert cal.working_time_between(u(s) + US, end) < d
    assert cal.is_open(s)


@calendars
@prop
@given(t=instants)
def test_next_open_is_open_with_no_open_time_before_it(cal, t):
    n = cal.next_open(t)
    assert cal.is_open(n)
    assert cal.working_time_between(t, n) == dt.timedelta(0)
    assert u(n) >= t
    if cal.is_open(t):
        assert u(n) == t


@calendars
@prop
@given(t=instants)
def test_is_open_agrees_with_working_time_of_the_next_microsecond(cal, t):
    assert cal.is_open(t) == (cal.working_time_between(t, t + US) == US)


@prop
@given(
    a=instants, d=st.timedeltas(min_value=-dt.timedelta(days=40), max_value=dt.timedelta(days=40))
)
def test_wall_clock_add_subtract_and_between_are_real_elapsed_time(a, d):
    clock = WallClock(WAW)
    r = clock.add(a, d)
    assert clock.working_time_between(a, r) == d
    assert u(clock.subtract(r, d)) == a
    assert r.tzinfo == ZoneInfo(WAW)


# --------------------------------------------------------------------------- examples: basics


def test_friday_1630_with_2h_window_is_due_monday_1030():
    due = WARSAW.add(at(WAW, "2026-03-06 16:30"), 2 * H)
    assert wall(due) == "2026-03-09 10:30 CET"


def test_mail_received_saturday_counts_from_monday_0900():
    sat = at(WAW, "2026-03-07 11:00")
    assert wall(WARSAW.add(sat, 2 * H)) == "2026-03-09 11:00 CET"
    assert wall(WARSAW.add(sat, dt.timedelta(0))) == "2026-03-09 09:00 CET"
    assert wall(WARSAW.next_open(sat)) == "2026-03-09 09:00 CET"


def test_mail_received_at_night_counts_from_the_morning():
    assert wall(WARSAW.add(at(WAW, "2026-03-10 06:12"), 2 * H)) == "2026-03-10 11:00 CET"
    assert wall(WARSAW.add(at(WAW, "2026-03-10 20:00"), 2 * H)) == "2026-03-11 11:00 CET"


def test_window_ending_exactly_at_closing_is_due_at_closing_not_next_morning():
    due = WARSAW.add(at(WAW, "2026-03-10 15:00"), 2 * H)
    assert wall(due) == "2026-03-10 17:00 CET"
    assert not WARSAW.is_open(due)
    assert u(WARSAW.closing_time(dt.date(2026, 3, 10))) == u(due)


def test_open_at_opening_instant_and_closed_at_closing_instant():
    assert WARSAW.is_open(at(WAW, "2026-03-10 09:00"))
    assert not WARSAW.is_open(at(WAW, "2026-03-10 08:59:59.999999"))
    assert WARSAW.is_open(at(WAW, "2026-03-10 16:59:59.999999"))
    assert not WARSAW.is_open(at(WAW, "2026-03-10 17:00"))


def test_inputs_in_any_timezone_results_in_calendar_timezone():
    ny = dt.datetime(2026, 3, 10, 4, 0, tzinfo=ZoneInfo("America/New_York"))  # 09:00 CET
    due = WARSAW.add(ny, 2 * H)
    assert due.tzinfo == ZoneInfo(WAW)
    assert wall(due) == "2026-03-10 11:00 CET"
    assert WARSAW.is_open(utc("2026-03-10T08:00"))


def test_naive_datetime_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        WARSAW.add(dt.datetime(2026, 3, 10, 10), H)


def test_subtract_from_a_closed_end_counts_back_from_the_previous_closing():
    assert wall(WARSAW.subtract(at(WAW, "2026-03-07 12:00"), H)) == "2026-03-06 16:00 CET"
    # nudge 30m before a Monday 09:15 deadline is Friday 16:45
    assert wall(WARSAW.subtract(at(WAW, "2026-03-09 09:15"), 30 * M)) == "2026-03-06 16:45 CET"


def test_subtract_landing_on_an_opening_returns_the_opening():
    assert wall(WARSAW.subtract(at(WAW, "2026-03-09 10:00"), H)) == "2026-03-09 09:00 CET"


def test_subtract_zero_is_the_end_itself():
    end = at(WAW, "2026-03-07 12:00")
    assert u(WARSAW.subtract(end, dt.timedelta(0))) == u(end)


def test_negative_durations_swap_add_and_subtract():
    t = at(WAW, "2026-03-09 10:00")
    assert u(WARSAW.add(t, -H)) == u(WARSAW.subtract(t, H))
    assert u(WARSAW.subtract(t, -H)) == u(WARSAW.add(t, H))


def test_working_time_between_is_negative_when_b_is_before_a():
    a, b = at(WAW, "2026-03-06 16:00"), at(WAW, "2026-03-09 10:00")
    assert WARSAW.working_time_between(a, b) == 2 * H
    assert WARSAW.working_time_between(b, a) == -2 * H


def test_closing_time_is_none_on_closed_days():
    assert WARSAW.closing_time(dt.date(2026, 3, 7)) is None  # Saturday
    assert WARSAW.closing_time(dt.date(2026, 11, 11)) is None  # holiday
    assert wall(SPLIT.closing_time(dt.date(2026, 3, 9))) == "2026-03-09 17:00 CET"


# --------------------------------------------------------------------------- split days, 24:00


def test_split_day_window_crossing_lunch_skips_the_break():
    start = at(WAW, "2026-03-02 11:00")
    due = SPLIT.add(start, 2 * H)
    assert wall(due) == "2026-03-02 14:00 CET"
    assert SPLIT.working_time_between(start, due) == 2 * H
    assert not SPLIT.is_open(at(WAW, "2026-03-02 12:30"))
    assert wall(SPLIT.add(at(WAW, "2026-03-02 12:15"), dt.timedelta(0))) == "2026-03-02 13:00 CET"
    assert wall(SPLIT.subtract(at(WAW, "2026-03-02 13:30"), H)) == "2026-03-02 11:30 CET"


def test_open_range_ending_at_midnight_runs_into_the_next_day():
    cal = make_calendar(WAW, fri="18:00-24:00", sat="00:00-06:00", name="late")
    assert cal.is_open(at(WAW, "2026-03-06 23:59:59.999999"))
    assert cal.is_open(at(WAW, "2026-03-07 00:00"))
    assert wall(cal.add(at(WAW, "2026-03-06 23:00"), 2 * H)) == "2026-03-07 01:00 CET"
    assert wall(cal.closing_time(dt.date(2026, 3, 6))) == "2026-03-07 00:00 CET"
    assert cal.working_time_between(at(WAW, "2026-03-06 00:00"), at(WAW, "2026-03-08 00:00")) == (
        12 * H
    )
    # a full week of 24:00-ended ranges: Fri 6h + Sat 6h, then the next Friday
    assert wall(cal.add(at(WAW, "2026-03-07 05:00"), 2 * H)) == "2026-03-13 19:00 CET"


def test_saturday_hours_count():
    due = SATURDAY.add(at(WAW, "2026-03-06 15:00"), 2 * H)
    assert wall(due) == "2026-03-07 11:00 CET"
    assert not SATURDAY.is_open(at(WAW, "2026-03-08 11:00"))


# --------------------------------------------------------------------------- holidays, closed days


def test_polish_independence_day_is_closed():
    assert not WARSAW.is_open(at(WAW, "2026-11-11 10:00"))
    assert wall(WARSAW.add(at(WAW, "2026-11-10 16:00"), 2 * H)) == "2026-11-12 10:00 CET"


def test_polish_christmas_eve_is_a_holiday_from_2025_per_holidays_package():
    # The holidays package lists 24 Dec as a Polish public holiday from 2025 on.
    assert dt.date(2025, 12, 24) in holidays.country_holidays("PL", years=2025)
    assert dt.date(2024, 12, 24) not in holidays.country_holidays("PL", years=2024)
    assert not WARSAW.is_open(at(WAW, "2025-12-24 10:00"))  # Wednesday
    assert WARSAW.is_open(at(WAW, "2024-12-24 10:00"))  # Tuesday, a working day then


def test_polish_christmas_days_are_closed():
    # Tue 23 Dec 2025 16:00: 24, 25, 26 Dec closed, then the weekend
    assert wall(WARSAW.add(at(WAW, "2025-12-23 16:00"), 2 * H)) == "2025-12-29 10:00 CET"
    for day in ("2025-12-25", "2025-12-26"):
        assert WARSAW.closing_time(dt.date.fromisoformat(day)) is None


def test_extra_closed_dates_are_closed():
    cal = make_calendar(WAW, weekdays="09:00-17:00", country="PL", closed=("2026-12-31",))
    # Wed 30 Dec 16:00: 31 Dec closed, 1 Jan holiday, weekend -> Monday 4 Jan
    assert wall(cal.add(at(WAW, "2026-12-30 16:00"), 2 * H)) == "2027-01-04 10:00 CET"
    assert WARSAW.is_open(at(WAW, "2026-12-31 10:00"))


def test_24h_business_window_spanning_a_long_weekend():
    # Thu 30 Apr 2026 14:00; Fri 1 May holiday, Sat 2, Sun 3 (holiday) -> 3 days of 8h
    due = WARSAW.add(at(WAW, "2026-04-30 14:00"), 24 * H)
    assert wall(due) == "2026-05-06 14:00 CEST"
    # and over Christmas 2026 (24, 25 Dec Thu/Fri, 26 Sat)
    assert wall(WARSAW.add(at(WAW, "2026-12-23 12:00"), 24 * H)) == "2026-12-30 12:00 CET"


def test_holidays_are_computed_for_any_year():
    assert not WARSAW.is_open(at(WAW, "2100-11-11 10:00"))  # Thursday
    assert WARSAW.is_open(at(WAW, "2100-11-10 10:00"))
    assert WARSAW.is_open(at(WAW, "1999-12-24 10:00"))  # Friday; not a holiday then


def test_sofia_holiday_and_hours():
    assert not SOFIA_CAL.is_open(at(SOFIA, "2026-03-03 10:00"))  # Liberation Day
    assert wall(SOFIA_CAL.add(at(SOFIA, "2026-03-02 17:00"), 2 * H)) == "2026-03-04 10:00 EET"


def test_ukrainian_holidays_follow_the_holidays_package():
    assert not KYIV_CAL.is_open(at(KYIV, "2021-08-24 10:00"))  # Independence Day, Tuesday
    assert KYIV_CAL.is_open(at(KYIV, "2021-08-23 10:00")) is False  # substituted day off
    # Under martial law (from 2022) the package lists no UA public holidays; the
    # calendar must agree with whatever the package says.
    listed = dt.date(2026, 8, 24) in holidays.country_holidays("UA", years=2026)
    assert KYIV_CAL.is_open(at(KYIV, "2026-08-24 10:00")) is not listed


def test_holiday_subdivision_is_used():
    by = make_calendar("Europe/Berlin", weekdays="09:00-17:00", country="DE", subdivision="BY")
    be = make_calendar("Europe/Berlin", weekdays="09:00-17:00", country="DE", subdivision="BE")
    epiphany = at("Europe/Berlin", "2026-01-06 10:00")  # holiday in Bavaria, not Berlin
    assert not by.is_open(epiphany)
    assert be.is_open(epiphany)


# --------------------------------------------------------------------------- DST


def test_warsaw_spring_forward_weekend_keeps_local_office_hours():
    # last Sunday of March 2026 is 29 March
    due = WARSAW.add(at(WAW, "2026-03-27 16:00"), 2 * H)
    assert wall(due) == "2026-03-30 10:00 CEST"
    assert u(due) == utc("2026-03-30T08:00")
    week = WARSAW.working_time_between(at(WAW, "2026-03-23 00:00"), at(WAW, "2026-04-04 00:00"))
    assert week == 80 * H


def test_warsaw_fall_back_weekend_keeps_local_office_hours():
    # last Sunday of October 2026 is 25 October
    due = WARSAW.add(at(WAW, "2026-10-23 16:00"), 2 * H)
    assert wall(due) == "2026-10-26 10:00 CET"
    assert u(due) == utc("2026-10-26T09:00")
    assert WARSAW.working_time_between(at(WAW, "2026-10-23 09:00"), due) == 9 * H


def test_office_hours_on_a_dst_day_are_still_eight_hours():
    cal = make_calendar(WAW, name="7days", **{d: "09:00-17:00" for d in DAYS})
    for day in ("2026-03-29", "2026-10-25"):
        start = at(WAW, f"{day} 00:00")
        assert cal.working_time_between(start, start + dt.timedelta(days=1)) == 8 * H


def test_round_the_clock_calendar_counts_real_time_on_dst_days():
    spring = ALWAYS.working_time_between(at(WAW, "2026-03-29 00:00"), at(WAW, "2026-03-30 00:00"))
    autumn = ALWAYS.working_time_between(at(WAW, "2026-10-25 00:00"), at(WAW, "2026-10-26 00:00"))
    assert (spring, autumn) == (23 * H, 25 * H)
    assert wall(ALWAYS.add(at(WAW, "2026-03-28 12:00"), 24 * H)) == "2026-03-29 13:00 CEST"
    assert wall(ALWAYS.add(at(WAW, "2026-10-24 12:00"), 24 * H)) == "2026-10-25 11:00 CET"


def test_open_range_containing_the_transition_counts_real_elapsed_time():
    cal = make_calendar(WAW, sun="01:00-05:00", name="sunday-night")

    def sunday(day: str) -> dt.timedelta:
        d = dt.date.fromisoformat(day)
        return cal.working_time_between(
            at(WAW, f"{d} 00:00"), at(WAW, f"{d + dt.timedelta(1)} 00:00")
        )

    assert sunday("2026-03-22") == 4 * H
    assert sunday("2026-03-29") == 3 * H
    assert sunday("2026-10-25") == 5 * H


def test_open_range_starting_in_the_spring_gap_opens_at_the_transition():
    # 02:30 does not exist in Warsaw on 29 Mar 2026 (02:00 CET -> 03:00 CEST): the
    # range opens at the first instant the wall clock reads 02:30 or later (03:00 CEST).
    cal = make_calendar(WAW, sun="02:30-06:00", name="gap")
    opened = cal.next_open(at(WAW, "2026-03-29 00:00"))
    assert u(opened) == utc("2026-03-29T01:00")
    assert wall(opened) == "2026-03-29 03:00 CEST"
    assert cal.working_time_between(at(WAW, "2026-03-29 00:00"), at(WAW, "2026-03-30 00:00")) == (
        3 * H
    )
    assert not cal.is_open(utc("2026-03-29T00:59:59"))


def test_open_range_ending_in_the_spring_gap_closes_at_the_transition():
    cal = make_calendar(WAW, sun="01:00-02:30", name="gap-end")
    assert u(cal.closing_time(dt.date(2026, 3, 29))) == utc("2026-03-29T01:00")
    assert cal.working_time_between(at(WAW, "2026-03-29 00:00"), at(WAW, "2026-03-30 00:00")) == H


def test_open_range_in_the_repeated_hour_spans_both_occurrences():
    # 02:00-03:00 happens twice in Warsaw on 25 Oct 2026: an opening takes the first
    # occurrence (CEST), a closing the last one (CET).
    starts = make_calendar(WAW, sun="02:30-04:00", name="fold-start")
    assert u(starts.next_open(at(WAW, "2026-10-25 00:00"))) == utc("2026-10-25T00:30")
    assert u(starts.closing_time(dt.date(2026, 10, 25))) == utc("2026-10-25T03:00")
    ends = make_calendar(WAW, sun="01:00-02:30", name="fold-end")
    assert u(ends.closing_time(dt.date(2026, 10, 25))) == utc("2026-10-25T01:30")
    day = (at(WAW, "2026-10-25 00:00"), at(WAW, "2026-10-26 00:00"))
    assert starts.working_time_between(*day) == dt.timedelta(hours=2, minutes=30)
    assert ends.working_time_between(*day) == dt.timedelta(hours=2, minutes=30)


def test_kyiv_dst_weeks():
    # Kyiv: 03:00 EET -> 04:00 EEST on 29 Mar 2026, back on 25 Oct 2026
    due = KYIV_CAL.add(at(KYIV, "2026-03-27 17:00"), 2 * H)
    assert wall(due) == "2026-03-30 10:00 EEST"
    assert u(due) == utc("2026-03-30T07:00")
    due = KYIV_CAL.add(at(KYIV, "2026-10-23 17:00"), 2 * H)
    assert wall(due) == "2026-10-26 10:00 EET"
    gap = make_calendar(KYIV, sun="03:30-05:00", name="kyiv-gap")
    assert wall(gap.next_open(at(KYIV, "2026-03-29 00:00"))) == "2026-03-29 04:00 EEST"


def test_sofia_dst_weeks():
    due = SOFIA_CAL.add(at(SOFIA, "2026-10-23 17:00"), 2 * H)
    assert wall(due) == "2026-10-26 10:00 EET"
    assert u(due) == utc("2026-10-26T08:00")
    due = SOFIA_CAL.add(at(SOFIA, "2026-03-27 17:30"), 2 * H)
    assert wall(due) == "2026-03-30 10:30 EEST"


# --------------------------------------------------------------------------- bounded searches


def test_calendar_without_any_open_hours_raises_value_error():
    cal = make_calendar(WAW, name="never")
    t = at(WAW, "2026-03-09 10:00")
    assert not cal.is_open(t)
    assert cal.working_time_between(t, t + dt.timedelta(days=30)) == dt.timedelta(0)
    for call in (
        lambda: cal.next_open(t),
        lambda: cal.add(t, H),
        lambda: cal.add(t, dt.timedelta(0)),
        lambda: cal.subtract(t, H),
    ):
        with pytest.raises(ValueError, match="no open hours"):
            call()


def test_a_year_of_closed_days_raises_value_error():
    first = dt.date(2026, 1, 1)
    closed = tuple(str(first + dt.timedelta(days=i)) for i in range(400))
    cal = make_calendar(WAW, weekdays="09:00-17:00", closed=closed, name="shut")
    with pytest.raises(ValueError, match="no open hours within"):
        cal.add(at(WAW, "2026-01-01 10:00"), H)
    with pytest.raises(ValueError, match="no open hours within"):
        cal.subtract(at(WAW, "2027-01-20 10:00"), 8 * H * 20)


def test_a_long_closure_shorter_than_a_year_is_skipped():
    first = dt.date(2026, 1, 1)
    closed = tuple(str(first + dt.timedelta(days=i)) for i in range(300))
    cal = make_calendar(WAW, weekdays="09:00-17:00", closed=closed, name="long")
    assert wall(cal.add(at(WAW, "2026-01-01 10:00"), H)) == "2026-10-28 10:00 CET"


def test_invalid_hours_and_unknown_country_raise_value_error():
    with pytest.raises(ValueError, match="7 days"):
        BusinessCalendar(CalendarConfig("x", WAW, hours=((),) * 5))
    with pytest.raises(ValueError, match="invalid open range"):
        BusinessCalendar(CalendarConfig("x", WAW, hours=((OpenRange(600, 540),),) + ((),) * 6))
    with pytest.raises(ValueError, match="overlap"):
        BusinessCalendar(
            CalendarConfig(
                "x", WAW, hours=((OpenRange(540, 720), OpenRange(700, 800)),) + ((),) * 6
            )
        )
    with pytest.raises(ValueError, match="holidays"):
        make_calendar(WAW, weekdays="09:00-17:00", country="XX")
    with pytest.raises(ValueError, match="timezone"):
        make_calendar("Mars/Olympus", weekdays="09:00-17:00")


# --------------------------------------------------------------------------- wall clock


def test_wall_clock_counts_real_time_across_dst():
    clock = WallClock(WAW)
    assert wall(clock.add(at(WAW, "2026-10-24 12:00"), 24 * H)) == "2026-10-25 11:00 CET"
    assert wall(clock.add(at(WAW, "2026-03-28 12:00"), 24 * H)) == "2026-03-29 13:00 CEST"
    # aware datetimes sharing a tzinfo would subtract as wall times (24h): must be 25h
    assert clock.working_time_between(at(WAW, "2026-10-25 00:00"), at(WAW, "2026-10-26 00:00")) == (
        25 * H
    )
    assert wall(clock.subtract(at(WAW, "2026-03-30 00:00"), 24 * H)) == "2026-03-28 23:00 CET"


def test_wall_clock_without_timezone_keeps_the_input_timezone():
    t = at(KYIV, "2026-03-28 12:00")
    assert WallClock().add(t, 24 * H).tzinfo == ZoneInfo(KYIV)
    assert wall(WallClock().add(t, 24 * H)) == "2026-03-29 13:00 EEST"


# --------------------------------------------------------------------------- clock_for


def _config(**policies: Policy) -> Config:
    office = CalendarConfig(
        "office", WAW, hours=(_ranges("09:00-17:00"),) * 5 + ((), ()), holidays="PL"
    )
    kyiv = CalendarConfig("kyiv", KYIV, hours=(_ranges("09:00-18:00"),) * 5 + ((), ()))
    return Config(
        path=Path("ackwatch.yaml"),
        timezone="Europe/Sofia",
        state_dir=Path("state"),
        agency=Agency(),
        calendars={"office": office, "kyiv": kyiv},
        policies=policies,
        accounts=(),
        clients=(),
        unknown_senders="track",
        mailboxes=(),
        smtp=None,
    )


def _policy(name: str, clock: str, calendar: str | None) -> Policy:
    return Policy(name, 2 * H, clock, calendar, 30 * M, dt.timedelta(0))  # type: ignore[arg-type]


def test_clock_for_business_policy_is_the_cached_calendar():
    default = _policy("default", "business", "office")
    config = _config(default=default)
    clock = clock_for(default, config)
    assert isinstance(clock, BusinessCalendar)
    assert clock is clock_for(default, _config(default=default))  # cached by calendar config
    assert clock is business_calendar(config.calendars["office"])
    assert wall(clock.add(at(WAW, "2026-03-06 16:30"), 2 * H)) == "2026-03-09 10:30 CET"


def test_clock_for_calendar_policy_is_wall_time_in_the_right_timezone():
    with_cal = _policy("retainer", "calendar", "kyiv")
    without = _policy("default", "calendar", None)
    config = _config(default=without, retainer=with_cal)
    t = utc("2026-03-06T15:30")
    a = clock_for(with_cal, config)
    b = clock_for(without, config)
    assert isinstance(a, WallClock)
    assert a.add(t, 24 * H).tzinfo == ZoneInfo(KYIV)
    assert b.add(t, 24 * H).tzinfo == ZoneInfo("Europe/Sofia")
    assert u(a.add(t, 24 * H)) == t + 24 * H


def test_clock_for_business_policy_without_known_calendar_raises():
    bad = _policy("default", "business", "missing")
    with pytest.raises(ValueError, match="calendar"):
        clock_for(bad, _config(default=bad))


# --------------------------------------------------------------------------- purity


def test_calendar_module_never_reads_the_clock():
    source = inspect.getsource(calendar_module)
    assert not re.search(r"\.now\(|\.today\(|utcnow|time\.time|monotonic", source)
