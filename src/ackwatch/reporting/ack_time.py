"""Time to acknowledge: the one rule, for the report, the digest and the metrics (pure).

An item is measured on its policy's clock as the config says *now*: open time of the
policy's business calendar (``clock: business``), else wall time. An item whose policy is
no longer in the config is measured on its stored ``clock`` with the ``default`` policy's
calendar (else the first calendar, else wall time); a policy whose clock cannot be built
is measured in wall time. `measuring_calendar` picks the calendar (None: wall time) and
`time_to_acknowledge` measures one item with it: the daemon's histogram uses it.

The report measures up to a million items with the same calendar, in two bisections each:
`BusinessIndex` is the calendar's open time as a prefix sum over its open intervals, and
times are integer microseconds since the epoch (`epoch_us`, what the store's ``*_us``
columns hold), so no ISO string is parsed and no datetime made per item.
"""

from __future__ import annotations

import bisect
import datetime as dt

from ackwatch.config import Config, Policy
from ackwatch.core.business_clock import BusinessCalendar, clock_for
from ackwatch.reporting.period import local_midnight

UTC = dt.UTC

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = dt.timedelta(microseconds=1)


def epoch_us(t: dt.datetime) -> int:
    """An aware instant as integer microseconds since the epoch (exact; what the store's
    ``*_us`` columns hold)."""
    return (t - _EPOCH) // _ONE_US


def from_epoch_us(us: int) -> dt.datetime:
    """The instant of `epoch_us` ``us``, in UTC (as the store's times parse)."""
    return _EPOCH + dt.timedelta(0, 0, us)  # positional: a fifth cheaper than microseconds=


_MAX_INDEX_DAYS = 366 * 20  # longer spans (bogus data) fall back to the calendar's walk


class BusinessIndex:
    """Open time of a `BusinessCalendar` as a prefix sum over its open intervals.

    ``seconds(a, b)`` equals ``calendar.working_time_between(a, b)`` (a <= b) in two
    bisections instead of a walk over days; outside the indexed span (whole local days
    ``first..last``) it asks the calendar.
    """

    def __init__(self, calendar: BusinessCalendar, first: dt.date, last: dt.date):
        self.calendar = calendar
        starts: list[float] = []
        ends: list[float] = []
        prefix: list[float] = [0.0]
        day = first
        while day <= last:
            for s, e in calendar.open_intervals(day):
                starts.append(s.timestamp())
                ends.append(e.timestamp())
                prefix.append(prefix[-1] + (ends[-1] - starts[-1]))
            day += dt.timedelta(days=1)
        self.starts, self.ends, self.prefix = starts, ends, prefix
        zone = calendar.config.timezone
        self.lo = local_midnight(first, zone).timestamp()
        self.hi = local_midnight(last + dt.timedelta(days=1), zone).timestamp()

    def seconds(self, a: dt.datetime, b: dt.datetime) -> float:
        return self.seconds_us(epoch_us(a), epoch_us(b))

    def seconds_us(self, a: int, b: int) -> float:
        """`seconds` of two instants given as `epoch_us`; ``a / 10**6`` is exactly what
        an aware datetime's ``timestamp()`` gives (both divide the integer microseconds
        once, correctly rounded)."""
        ta, tb = a / 1_000_000, b / 1_000_000
        if not (self.lo <= ta <= tb <= self.hi):
            return self.calendar.working_time_between(
                from_epoch_us(a), from_epoch_us(b)).total_seconds()
        starts, ends, prefix = self.starts, self.ends, self.prefix
        k = bisect.bisect_right(starts, tb)  # intervals opening at or before tb
        if k == 0:
            return 0.0
        e = ends[k - 1]
        upto_b = prefix[k - 1] + (tb if tb < e else e) - starts[k - 1]
        k = bisect.bisect_right(starts, ta, 0, k)
        if k == 0:
            return upto_b
        e = ends[k - 1]
        return upto_b - (prefix[k - 1] + (ta if ta < e else e) - starts[k - 1])


def measuring_calendar(policy_name: str, clock: str, config: Config) -> BusinessCalendar | None:
    """The business calendar an item of ``policy_name`` (stored with ``clock``) is measured
    on, None for wall time (the rule is in the module doc); never raises."""
    policy = config.policies.get(policy_name)
    if policy is None:
        if clock != "business":
            return None
        default = config.policies.get("default")
        calendar = default.calendar if default is not None else None
        if calendar not in config.calendars:
            calendar = next(iter(config.calendars), None)
        policy = Policy(
            name=policy_name,
            window=dt.timedelta(hours=2),
            clock="business",
            calendar=calendar,
            nudge_before=dt.timedelta(0),
            escalate_after=None,
        )
    try:
        resolved = clock_for(policy, config)
    except ValueError:
        return None
    return resolved if isinstance(resolved, BusinessCalendar) else None


def time_to_acknowledge(
    received: dt.datetime, ack: dt.datetime, policy: str, clock: str, config: Config
) -> dt.timedelta:
    """Time from ``received`` to ``ack`` on the clock `measuring_calendar` picks for the
    item's policy and stored clock: the calendar's open time, else wall time. The report
    gets the same figure from a `BusinessIndex` of that calendar (`index_for`)."""
    calendar = measuring_calendar(policy, clock, config)
    if calendar is None:
        return ack.astimezone(UTC) - received.astimezone(UTC)
    return calendar.working_time_between(received, ack)


def index_for(
    pair: tuple[str, str],
    config: Config,
    first: dt.datetime,
    last: dt.datetime,
    indexes: dict[BusinessCalendar, BusinessIndex],
) -> BusinessIndex | None:
    """For a (policy, clock) pair: a prefix-sum index of its business calendar spanning
    ``first..last`` (one per calendar, kept in ``indexes``), or None for wall time."""
    calendar = measuring_calendar(pair[0], pair[1], config)
    if calendar is None:
        return None
    index = indexes.get(calendar)
    if index is None:
        lo = first.astimezone(calendar.tz).date() - dt.timedelta(days=1)
        hi = last.astimezone(calendar.tz).date() + dt.timedelta(days=1)
        hi = min(hi, lo + dt.timedelta(days=_MAX_INDEX_DAYS))  # beyond: the walk
        index = indexes[calendar] = BusinessIndex(calendar, lo, hi)
    return index


__all__ = [
    "BusinessIndex",
    "epoch_us",
    "from_epoch_us",
    "index_for",
    "measuring_calendar",
    "time_to_acknowledge",
]
