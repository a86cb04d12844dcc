"""The service-level report: figures over a period, and renderers (pure: no I/O).

`compute(items, config, since=, until=, now=)` turns `ReportItem`s into a frozen `Report`;
`compute_stored` does the same (without the per-item rows of the CSV) from the store's raw
rows, as the CLI reads them; `render_json`, `render_csv`, `render_table` and
`render_html` turn a `Report` into text. Nothing here reads the clock, a file or the
database: ``now`` is a parameter.

Rules (issue 5, on top of DESIGN.md):

- Counted: every client email *received* in ``[since, until)`` that needed an
  acknowledgement; dropped items (the config no longer tracks that sender) are left out.
- Time to acknowledge: on the item's policy's clock, as the config says *now*: business
  minutes (open hours of the policy's calendar) for ``business`` policies, wall minutes
  for ``calendar`` ones. An item whose policy no longer exists is measured on its stored
  clock with the ``default`` policy's calendar (else the first calendar, else wall time).
- Within the window: acknowledged at or before the deadline (the deadline instant itself
  is in time). The report is "as of ``now``": an acknowledgement later than ``now`` is
  not known yet.
- Open: not acknowledged and the deadline not passed (``now <= deadline``); left out of
  the service level. Overdue: not acknowledged and ``now > deadline``; a miss.
- ``service_level = within_window / (acknowledged + overdue)``; None when that is 0.
- ``median_minutes`` / ``p90_minutes``: over the acknowledged items (late ones included),
  linear interpolation between closest ranks (``statistics.quantiles(method="inclusive")``,
  numpy's default): the median of an even count is the mean of the middle two.
- Per client: the configured client's name; mail from unknown senders is grouped by the
  sender address's domain (``gmail.com``), lower-cased.
- Groups are listed by number of client emails (descending), then by name.
- Breaches: acknowledged late, or overdue (never acknowledged, deadline passed), by
  received time.

Speed (issue 7: `ackwatch report` over a year of 1M client emails in well under 5 s on
2 cores): `compute_stored` streams the store's rows once and builds no object per item.
A row is five values: the group ``[account, client, client_address, policy, clock]`` as
one JSON string (decoded once per distinct group, which also fixes its accumulator, client
label and clock), the received time, the deadline and the acknowledgement as integer
microseconds since the epoch (the store's generated ``*_us`` columns: no ISO string is
parsed; datetimes are made only for a breach), and the subject only for possible
breaches. Wall minutes are the exact difference of the two instants; business minutes
come from a prefix sum over each calendar's open intervals (two bisections per item,
`_BusinessIndex`) instead of a walk over days; counts from one accumulator per (account,
client) pair, whose minutes are sorted once: the percentiles of an account, a client or
the total are selected across those sorted lists (`_kth`), never merged. `compute` runs
the same loop over `ReportItem`s. The table and html renderers cost O(groups + shown
breaches); json and csv are linear.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import datetime as dt
import html
import io
import json
import math
import operator
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from ackwatch.config import Config, Policy
from ackwatch.core.business_clock import BusinessCalendar, clock_for
from ackwatch.core.printable import clean, json_text

UTC = dt.UTC
DEFAULT_TARGET = 0.9
STATUSES = ("on_time", "late", "overdue", "open")

# Histogram bins of time to acknowledge, in minutes: [lower, upper).
HISTOGRAM_EDGES: tuple[float, ...] = (0, 15, 30, 60, 120, 240, 480, 1440, math.inf)
HISTOGRAM_LABELS: tuple[str, ...] = (
    "<15m", "15–30m", "30m–1h", "1–2h", "2–4h", "4–8h", "8h–1d", "≥1d",
)


# =========================================================================== values


class ReportItem(NamedTuple):
    """One client email as the report needs it (the CLI converts stored items).

    ``ack_at`` is None when the item is not acknowledged; ``dropped`` items (no longer
    tracked) are ignored by `compute`. An immutable named tuple rather than a frozen
    dataclass: building a million of them is 2.3x cheaper (0.5 vs 1.1 µs each).
    """

    key: str
    client: str | None
    client_address: str
    account: str | None
    subject: str
    received: dt.datetime
    deadline: dt.datetime
    ack_at: dt.datetime | None
    policy: str
    clock: str
    dropped: bool = False


@dataclass(frozen=True, slots=True)
class Figures:
    client_emails: int
    acknowledged: int
    within_window: int
    service_level: float | None  # 0..1; None when no item counts
    median_minutes: float | None  # over acknowledged items; None when there is none
    p90_minutes: float | None
    open: int  # not acknowledged, deadline not passed: left out of the service level
    overdue: int  # not acknowledged, deadline passed: a miss


FIGURE_FIELDS: tuple[str, ...] = (
    "client_emails", "acknowledged", "within_window", "service_level",
    "median_minutes", "p90_minutes", "open", "overdue",
)


@dataclass(frozen=True, slots=True)
class Group:
    """Figures of one account (``name`` None: no responsible account) or one client."""

    name: str | None
    figures: Figures


class Breach(NamedTuple):
    """A client email acknowledged late or never (a named tuple, as `ReportItem`: a year
    can hold a hundred thousand of them, 5x cheaper to build than a frozen dataclass)."""

    client: str
    client_address: str
    subject: str
    received: dt.datetime
    deadline: dt.datetime
    acknowledged: dt.datetime | None  # None: never (overdue)
    account: str | None


class ItemResult(NamedTuple):
    """One counted item with its outcome (a row of the CSV; a tuple: cheap at 1M)."""

    item: ReportItem
    client: str  # the client group: name, else the sender's domain
    minutes_to_ack: float | None  # None when not acknowledged (as of now)
    within_window: bool | None  # None while open
    status: str  # on_time | late | overdue | open


@dataclass(frozen=True, slots=True)
class HistogramBin:
    label: str
    lower: float  # minutes, inclusive
    upper: float  # minutes, exclusive (inf for the last bin)
    on_time: int
    late: int


@dataclass(frozen=True)
class Report:
    since: dt.datetime
    until: dt.datetime
    now: dt.datetime
    timezone: str  # the config's: every time is shown in it
    totals: Figures
    by_account: tuple[Group, ...]
    by_client: tuple[Group, ...]
    breaches: tuple[Breach, ...]
    histogram: tuple[HistogramBin, ...]
    items: tuple[ItemResult, ...]


# =========================================================================== period


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


# =========================================================================== compute


_MAX_INDEX_DAYS = 366 * 20  # longer spans (bogus data) fall back to the calendar's walk


class _BusinessIndex:
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


def _resolve_clock(policy_name: str, clock: str, config: Config) -> BusinessCalendar | None:
    """The business calendar to measure an item on, None for wall time (see the module
    doc); never raises."""
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
    """Time from ``received`` to ``ack`` on an item's policy's clock, as the config says
    now: open time of the policy's business calendar, else wall time. The one rule for the
    report (`_tally` gets the same figure faster from a `_BusinessIndex` of the calendar
    `_resolve_clock` picks) and the daemon's time-to-acknowledge histogram.

    An item whose policy is no longer in the config is measured on its stored ``clock``
    with the ``default`` policy's calendar (else the first calendar, else wall time): the
    report's fallback, chosen over plain wall time (the daemon's former one) so that the
    histogram and the report measure an item alike. A policy whose clock cannot be built
    is measured in wall time.
    """
    calendar = _resolve_clock(policy, clock, config)
    if calendar is None:
        return ack.astimezone(UTC) - received.astimezone(UTC)
    return calendar.working_time_between(received, ack)


def _measure(
    pair: tuple[str, str],
    config: Config,
    first: dt.datetime,
    last: dt.datetime,
    indexes: dict[BusinessCalendar, _BusinessIndex],
) -> _BusinessIndex | None:
    """For a (policy, clock) pair: a prefix-sum index of its business calendar spanning
    ``first..last`` (one per calendar, kept in ``indexes``), or None for wall time."""
    calendar = _resolve_clock(pair[0], pair[1], config)
    if calendar is None:
        return None
    index = indexes.get(calendar)
    if index is None:
        lo = first.astimezone(calendar.tz).date() - dt.timedelta(days=1)
        hi = last.astimezone(calendar.tz).date() + dt.timedelta(days=1)
        hi = min(hi, lo + dt.timedelta(days=_MAX_INDEX_DAYS))  # beyond: the walk
        index = indexes[calendar] = _BusinessIndex(calendar, lo, hi)
    return index


def client_group(client: str | None, client_address: str) -> str:
    """The client name, else the sender address's domain (lower-cased)."""
    if client:
        return client
    address = client_address.strip().lower()
    return address.rpartition("@")[2] or address or "(unknown)"


class _Acc:
    """Running counts of one (account, client) pair."""

    __slots__ = ("late", "minutes", "open", "overdue", "within")

    def __init__(self) -> None:
        self.within = self.open = self.overdue = 0
        self.minutes: list[float] = []  # every acknowledged item's time to acknowledge
        self.late: list[float] = []  # the late ones' (for the histogram)


def _figures(accs: Sequence[_Acc]) -> Figures:
    """The figures of a group of pairs whose ``minutes`` are sorted: the percentiles are
    selected across the pairs' lists (`_kth`), never merged into one sorted list."""
    runs = [a.minutes for a in accs if a.minutes]
    acked = sum(len(r) for r in runs)
    within = sum(a.within for a in accs)
    open_ = sum(a.open for a in accs)
    overdue = sum(a.overdue for a in accs)
    counted = acked + overdue
    return Figures(
        client_emails=acked + overdue + open_,
        acknowledged=acked,
        within_window=within,
        service_level=within / counted if counted else None,
        median_minutes=_quantile_of_runs(runs, acked, 0.5),
        p90_minutes=_quantile_of_runs(runs, acked, 0.9),
        open=open_,
        overdue=overdue,
    )


def quantile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (type 7); None for no values."""
    return _quantile_of_runs([sorted_values], len(sorted_values), q)


def _quantile_of_runs(runs: Sequence[Sequence[float]], n: int, q: float) -> float | None:
    """`quantile` of the ``n`` values of the sorted ``runs`` taken together."""
    if n == 0:
        return None
    position = q * (n - 1)
    lower = math.floor(position)
    upper = min(lower + 1, n - 1)
    low = _kth(runs, lower)
    high = low if upper == lower else _kth(runs, upper)
    value = low + (high - low) * (position - lower)
    return round(value, 6)


def _kth(runs: Sequence[Sequence[float]], k: int) -> float:
    """The ``k``-th smallest (from 0) of the values of the sorted ``runs`` taken together,
    by bisection (O(runs² · log n) steps instead of merging the runs)."""
    if len(runs) == 1:
        return runs[0][k]
    lo = [0] * len(runs)
    hi = [len(r) for r in runs]
    while True:
        # pivot: the middle of the widest remaining range (halves it every time)
        j = max(range(len(runs)), key=lambda i: hi[i] - lo[i])
        pivot = runs[j][(lo[j] + hi[j]) // 2]
        below = [bisect.bisect_left(r, pivot, lo[i], hi[i]) for i, r in enumerate(runs)]
        upto = [bisect.bisect_right(r, pivot, lo[i], hi[i]) for i, r in enumerate(runs)]
        n_below = sum(b - a for a, b in zip(lo, below, strict=True))
        n_upto = sum(b - a for a, b in zip(lo, upto, strict=True))
        if k < n_below:
            hi = below
        elif k < n_upto:
            return pivot
        else:
            k -= n_upto
            lo = upto


def _merged(pairs: dict[tuple[str | None, str], _Acc], side: int) -> tuple[Group, ...]:
    """Groups by account (``side`` 0) or by client (1), busiest first, then by name."""
    merged: dict[str | None, list[_Acc]] = {}
    for key, acc in pairs.items():
        merged.setdefault(key[side], []).append(acc)
    groups = [Group(name, _figures(accs)) for name, accs in merged.items()]
    groups.sort(key=lambda g: (-g.figures.client_emails, g.name is None, g.name or ""))
    return tuple(groups)


def _histogram(accs: Sequence[_Acc]) -> tuple[HistogramBin, ...]:
    """Counts per bin over the pairs' sorted ``minutes`` (and ``late``, sorted here)."""
    runs = [a.minutes for a in accs]
    lates = [sorted(a.late) for a in accs]
    edges = HISTOGRAM_EDGES

    def count(lists: list[list[float]], lo: float, hi: float) -> int:
        return sum(bisect.bisect_left(v, hi) - bisect.bisect_left(v, lo) for v in lists)

    out = []
    for k in range(len(edges) - 1):
        lo, hi = edges[k], edges[k + 1]
        n_all, n_late = count(runs, lo, hi), count(lates, lo, hi)
        out.append(HistogramBin(HISTOGRAM_LABELS[k], lo, hi, n_all - n_late, n_late))
    return tuple(out)


_by_received = operator.attrgetter("received")


def _check_aware(since: dt.datetime, until: dt.datetime, now: dt.datetime) -> None:
    for name, value in (("since", since), ("until", until), ("now", now)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = dt.timedelta(microseconds=1)


def epoch_us(t: dt.datetime) -> int:
    """An aware instant as integer microseconds since the epoch (exact; what the store's
    ``*_us`` columns hold)."""
    return (t - _EPOCH) // _ONE_US


def from_epoch_us(us: int) -> dt.datetime:
    """The instant of `epoch_us` ``us``, in UTC (as the store's times parse)."""
    return _EPOCH + dt.timedelta(0, 0, us)  # positional: a fifth cheaper than microseconds=


def compute(
    items: Iterable[ReportItem],
    config: Config,
    *,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
    rows: bool = True,
) -> Report:
    """The figures of the client emails received in ``[since, until)``, as of ``now``.

    ``rows``: also keep one `ItemResult` per item (``Report.items``, what the CSV lists),
    by received time; without it ``Report.items`` is empty (cheaper for a million items).
    """
    _check_aware(since, until, now)
    selected = [i for i in items if since <= i.received < until and not i.dropped]
    selected.sort(key=_by_received)  # already sorted (the store's order): linear
    last_ack = max(
        (i.ack_at for i in selected if i.ack_at is not None and i.ack_at <= now),
        default=until,
    )
    outcomes: list[tuple[str, float | None, bool | None, str]] | None = [] if rows else None
    us = epoch_us
    report = _tally(
        (
            ((i.account, i.client, i.client_address, i.policy, i.clock), us(i.received),
             us(i.deadline), None if i.ack_at is None else us(i.ack_at), i.subject)
            for i in selected
        ),
        config, since=since, until=until, now=now, describe=_as_is,
        measure_until=max(last_ack, until), outcomes=outcomes,
    )
    if outcomes is None:
        return report
    return dataclasses.replace(
        report, items=tuple(ItemResult(i, *o) for i, o in zip(selected, outcomes, strict=True))
    )


def compute_stored(
    rows: Iterable[tuple[str, int, int, int | None, str | None]],
    config: Config,
    *,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
) -> Report:
    """`compute` (without ``Report.items``) straight from the store's raw rows, as
    ``Store.report_rows(since, until, stored=True)`` yields them: ``(group, received,
    deadline, ack_at or None, subject or None)`` of the items received in ``[since,
    until)``, dropped ones left out, in received order; ``group`` the JSON array
    ``[account, client, client_address, policy, clock]``, times as `epoch_us`;
    ``subject`` may be None where the item was acknowledged by its deadline. Builds no
    object per row and parses no time: a year of mail in one pass.
    """
    _check_aware(since, until, now)
    return _tally(
        rows, config, since=since, until=until, now=now, describe=json.loads,
        measure_until=max(now, until), outcomes=None,
    )


def _as_is(group: Any) -> Any:
    return group


def _tally(
    rows: Iterable[tuple],
    config: Config,
    *,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
    describe: Callable[[Any], Sequence[Any]],
    measure_until: dt.datetime,
    outcomes: list[tuple[str, float | None, bool | None, str]] | None,
) -> Report:
    """The `Report` of ``rows`` (``(group, received, deadline, ack_at, subject)``, by
    received time, times as `epoch_us`), ``describe(group)`` giving the group's
    ``(account, client, client_address, policy, clock)``. A group's pair accumulator,
    client label and clock are looked up once, when it first appears. Business
    calendars are indexed over ``since..measure_until`` (covering every acknowledgement
    up to ``now``). ``outcomes``: gets (client group, minutes, within, status) per row."""
    pairs: dict[tuple[str | None, str], _Acc] = {}
    domains: dict[str, str] = {}
    breaches: list[Breach] = []
    indexes: dict[BusinessCalendar, _BusinessIndex] = {}
    measures: dict[tuple[str, str], _BusinessIndex | None] = {}
    groups: dict[Any, tuple[_Acc, _BusinessIndex | None, str, str, str | None]] = {}
    now_us = epoch_us(now)
    at = from_epoch_us
    keep = outcomes.append if outcomes is not None else None
    for group, received, deadline, ack, subject in rows:
        known = groups.get(group)
        if known is None:
            account, client, address, policy, clock = describe(group)
            label = client
            if not label:
                label = domains.get(address)
                if label is None:
                    label = domains[address] = client_group(None, address)
            acc = pairs.get((account, label))
            if acc is None:
                acc = pairs[(account, label)] = _Acc()
            pair = (policy, clock)
            if pair not in measures:
                measures[pair] = _measure(pair, config, since, measure_until, indexes)
            known = groups[group] = (acc, measures[pair], label, address, account)
        acc, index, label, address, account = known
        if ack is not None and ack <= now_us:
            if index is None:  # wall time: exact to the microsecond
                seconds = (ack - received) / 1_000_000  # = timedelta.total_seconds()
                minutes = seconds / 60 if seconds > 0 else 0.0
            else:
                seconds = index.seconds_us(received, ack)
                minutes = round(seconds, 6) / 60 if seconds > 0 else 0.0
            acc.minutes.append(minutes)
            if ack <= deadline:
                acc.within += 1
                if keep:
                    keep((label, minutes, True, "on_time"))
            else:
                acc.late.append(minutes)
                breaches.append(
                    Breach(label, address, subject, at(received), at(deadline), at(ack),
                           account)
                )
                if keep:
                    keep((label, minutes, False, "late"))
        elif now_us > deadline:
            acc.overdue += 1
            breaches.append(
                Breach(label, address, subject, at(received), at(deadline), None, account)
            )
            if keep:
                keep((label, None, False, "overdue"))
        else:
            acc.open += 1
            if keep:
                keep((label, None, None, "open"))

    accs = list(pairs.values())
    for acc in accs:
        acc.minutes.sort()
    return Report(
        since=since,
        until=until,
        now=now,
        timezone=config.timezone,
        totals=_figures(accs),
        by_account=_merged(pairs, 0),
        by_client=_merged(pairs, 1),
        breaches=tuple(breaches),
        histogram=_histogram(accs),
        items=(),
    )


# =========================================================================== text helpers

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


def _iso(t: dt.datetime | None, tz: dt.tzinfo) -> str | None:
    return None if t is None else t.astimezone(tz).isoformat(timespec="seconds")


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _figures_dict(f: Figures) -> dict[str, object]:
    return {
        "client_emails": f.client_emails,
        "acknowledged": f.acknowledged,
        "within_window": f.within_window,
        "service_level": _round(f.service_level, 4),
        "median_minutes": _round(f.median_minutes, 2),
        "p90_minutes": _round(f.p90_minutes, 2),
        "open": f.open,
        "overdue": f.overdue,
    }


# =========================================================================== json


def to_json_data(report: Report) -> dict[str, object]:
    """The JSON document as Python data (see `render_json`)."""
    tz = ZoneInfo(report.timezone)
    return {
        "period": {"since": _iso(report.since, tz), "until": _iso(report.until, tz)},
        "totals": _figures_dict(report.totals),
        "by_account": [{"account": g.name, **_figures_dict(g.figures)} for g in report.by_account],
        "by_client": [{"client": g.name, **_figures_dict(g.figures)} for g in report.by_client],
        "breaches": [
            {
                "client": b.client,
                "subject": b.subject,
                "received": _iso(b.received, tz),
                "deadline": _iso(b.deadline, tz),
                "acknowledged": _iso(b.acknowledged, tz),
                "account": b.account,
            }
            for b in report.breaches
        ],
    }


def render_json(report: Report) -> str:
    """One object: ``period`` {since, until}, ``totals``, ``by_account``, ``by_client``,
    ``breaches``. Times ISO 8601 with the config timezone's offset; service level 0..1
    rounded to 4 places, minutes to 2."""
    return json_text(to_json_data(report)) + "\n"


# =========================================================================== csv

CSV_COLUMNS: tuple[str, ...] = (
    "received", "client", "client_address", "account", "subject", "policy", "clock",
    "deadline", "acknowledged", "minutes_to_ack", "within_window", "status",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str | None) -> str:
    """Client-supplied text for a spreadsheet: a leading = + - @ would start a formula
    (CSV injection), so such a value gets a leading apostrophe (OWASP's advice)."""
    text = text or ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def render_csv(report: Report) -> str:
    """One row per counted item, in received order, with a header row. ``within_window``
    is yes / no / empty (open); ``minutes_to_ack`` has one decimal, empty when not
    acknowledged; ``status`` is on_time, late, overdue or open."""
    tz = ZoneInfo(report.timezone)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in report.items:
        i = r.item
        writer.writerow(
            (
                _iso(i.received, tz),
                _cell(r.client),
                _cell(i.client_address),
                i.account or "",
                _cell(i.subject),
                i.policy,
                i.clock,
                _iso(i.deadline, tz),
                _iso(i.ack_at, tz) if r.minutes_to_ack is not None else "",
                "" if r.minutes_to_ack is None else f"{r.minutes_to_ack:.1f}",
                "" if r.within_window is None else ("yes" if r.within_window else "no"),
                r.status,
            )
        )
    return out.getvalue()


# =========================================================================== table

def _period_text(report: Report, tz: dt.tzinfo) -> str:
    since = report.since.astimezone(tz)
    until = report.until.astimezone(tz)
    if since.time() == dt.time() and until.time() == dt.time():
        last = until.date() - dt.timedelta(days=1)
        return f"{since:%a %d %b %Y} – {last:%a %d %b %Y}"
    return f"{since:%Y-%m-%d %H:%M} – {until:%Y-%m-%d %H:%M} (until excluded)"


_NAME_W = 18


def _figure_row(name: str, f: Figures, target: float) -> str:
    """One aligned row (80 columns; counts up to 9,999,999)."""
    flag = "!" if f.service_level is not None and f.service_level < target else " "
    return (
        f"  {fit(name, _NAME_W)} {f.client_emails:>7} {f.acknowledged:>7} "
        f"{f.within_window:>7} {format_level(f.service_level):>6}{flag} "
        f"{format_minutes(f.median_minutes):>6} {format_minutes(f.p90_minutes):>6} "
        f"{f.open:>5} {f.overdue:>7}"
    )


def _figure_header(title: str) -> str:
    return (
        f"  {title:<{_NAME_W}} {'EMAILS':>7} {'ACKED':>7} {'INTIME':>7} {'LEVEL':>6}  "
        f"{'MEDIAN':>6} {'P90':>6} {'OPEN':>5} {'OVERDUE':>7}"
    )


def _short_accounts(names: Iterable[str | None]) -> dict[str | None, str]:
    """Account addresses by their local part ("anna"), as ``status`` shows them, unless two
    accounts share one; no account: "(no account)"."""
    names = list(names)
    locals_ = [n.split("@")[0] for n in names if n]
    out: dict[str | None, str] = {}
    for n in names:
        if not n:
            out[n] = "(no account)"
        else:
            local = n.split("@")[0]
            out[n] = local if local and locals_.count(local) == 1 else n
    return out


def render_table(report: Report, *, target: float = DEFAULT_TARGET, max_breaches: int = 20) -> str:
    """Aligned text for an 80-column terminal: totals, per account, per client, then up to
    ``max_breaches`` breaches. A "!" after a service level marks it below ``target``."""
    tz = ZoneInfo(report.timezone)
    t = report.totals
    lines = [
        f"ackwatch report: {_period_text(report, tz)}",
        f"times in {report.timezone}; as of {report.now.astimezone(tz):%Y-%m-%d %H:%M}; "
        f"target {target * 100:g}%",
        "",
    ]
    if t.client_emails == 0:
        lines.append("No client email was received in this period.")
        return "\n".join(lines) + "\n"
    lines += [
        f"Service level {format_level(t.service_level)}: {t.within_window} of "
        f"{t.acknowledged + t.overdue} acknowledged within the window",
        f"Time to acknowledge: median {format_minutes(t.median_minutes)}, "
        f"90th percentile {format_minutes(t.p90_minutes)}",
        f"Open (not due yet) {t.open}, overdue {t.overdue}, received {t.client_emails}",
        "",
        _figure_header("TOTAL"),
        _figure_row("all accounts", t, target),
        "",
        _figure_header("ACCOUNT"),
    ]
    short = _short_accounts(g.name for g in report.by_account)
    lines += [_figure_row(short[g.name], g.figures, target) for g in report.by_account]
    lines += ["", _figure_header("CLIENT")]
    lines += [_figure_row(g.name or "(unknown)", g.figures, target) for g in report.by_client]
    lines.append("")
    if not report.breaches:
        lines.append("No breaches: every client email was acknowledged in time.")
    else:
        lines.append(
            f"Breaches ({len(report.breaches)}): acknowledged late or not at all"
        )
        lines.append(
            f"  {'RECEIVED':<12} {'DEADLINE':<12} {'ACKNOWLEDGED':<12} {'ACCOUNT':<8} "
            f"{'CLIENT':<12} SUBJECT"
        )
        for b in report.breaches[:max_breaches]:
            acked = f"{b.acknowledged.astimezone(tz):%d %b %H:%M}" if b.acknowledged else "never"
            account = (b.account or "-").split("@")[0]
            lines.append(
                f"  {b.received.astimezone(tz):%d %b %H:%M} {b.deadline.astimezone(tz):%d %b %H:%M}"
                f" {acked:<12} {fit(account, 8)} {fit(b.client, 12)} {fit(b.subject, 16)}"
            )
        if len(report.breaches) > max_breaches:
            lines.append(f"  … and {len(report.breaches) - max_breaches} more (--format csv)")
    return "\n".join(line.rstrip() for line in lines) + "\n"


# =========================================================================== html

_CSS = """
:root{--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9;--card:#fff;
--good:#15803d;--good-bg:#dcfce7;--warn:#b45309;--bad:#b91c1c;--bad-bg:#fee2e2;--accent:#1d4ed8}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1080px;margin:0 auto;padding:32px 28px 48px}
header{display:flex;justify-content:space-between;align-items:flex-end;gap:16px;
border-bottom:1px solid var(--line);padding-bottom:16px;margin-bottom:24px}
h1{font-size:24px;margin:0 0 4px;letter-spacing:-.01em}
h2{font-size:16px;margin:0 0 12px}
.sub,.note{color:var(--muted)}
.note{font-size:12px;margin:8px 0 0}
.brand{font-weight:600;color:var(--accent);letter-spacing:.04em;text-transform:uppercase;
font-size:11px;margin-bottom:6px}
.kpis{display:grid;grid-template-columns:repeat(6,1fr);gap:12px;margin-bottom:24px}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.kpi .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.kpi .value{font-size:26px;font-weight:650;margin-top:2px;font-variant-numeric:tabular-nums}
.kpi .detail{color:var(--muted);font-size:12px}
.kpi.good .value{color:var(--good)}.kpi.near .value{color:var(--warn)}.kpi.bad .value{color:var(--bad)}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;
padding:20px 22px;margin-bottom:20px}
section svg{margin:4px 0 8px}
.legend+table{margin-top:18px}
.chart-head{display:flex;justify-content:space-between;align-items:baseline;gap:12px}
svg{display:block;max-width:100%;height:auto}
svg text{font-family:inherit;fill:var(--ink)}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:7px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);font-weight:600}
td.num,th.num{text-align:right;white-space:nowrap}
td.when,td.acct{white-space:nowrap}
td.s{unicode-bidi:isolate;overflow-wrap:anywhere}
.pill{display:inline-block;border-radius:999px;padding:1px 8px;font-size:12px;font-weight:600}
.pill.late{background:#fef3c7;color:var(--warn)}.pill.never{background:var(--bad-bg);color:var(--bad)}
.lvl{font-weight:600}.lvl.good{color:var(--good)}.lvl.near{color:var(--warn)}.lvl.bad{color:var(--bad)}
.legend{display:flex;flex-wrap:wrap;gap:16px;color:var(--muted);font-size:12px;margin-top:6px}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;
vertical-align:-1px}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:28px}
@media print{body{background:#fff}section,.kpi{break-inside:avoid}}
"""

_GOOD, _NEAR, _BAD = "#16a34a", "#f59e0b", "#dc2626"
_NEAR_BAND = 0.1  # below the target by at most this much: amber, further below: red


def _tier(level: float | None, target: float) -> str:
    """good (at or above the target), near (within 10 points below), bad, or ""."""
    if level is None:
        return ""
    if level >= target:
        return "good"
    return "near" if level >= target - _NEAR_BAND - 1e-9 else "bad"


_TIER_COLOUR = {"good": _GOOD, "near": _NEAR, "bad": _BAD}


def _e(text: object) -> str:
    """HTML-escaped, control characters removed (every client string goes through here)."""
    return html.escape(clean(str(text)), quote=True)


def _cut(text: str, n: int) -> str:
    text = clean(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _bars_svg(groups: Sequence[Group], target: float, title: str, empty: str) -> str:
    """Horizontal service-level bars (0-100%) per group with a dashed target line."""
    if not groups:
        return f'<p class="note">{_e(empty)}</p>'
    label_w, bar_w, value_w, row_h, top = 230, 550, 180, 28, 24
    width = label_w + bar_w + value_w
    height = top + row_h * len(groups) + 22
    parts = [
        f'<svg role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
    ]
    x0 = label_w
    for pct in (0, 0.25, 0.5, 0.75, 1.0):
        x = x0 + bar_w * pct
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 20}" '
            'stroke="#eef0f3" stroke-width="1"/>'
            f'<text x="{x:.1f}" y="{height - 6}" font-size="10" text-anchor="middle" '
            f'style="fill:#6b7280">{pct * 100:.0f}%</text>'
        )
    for n, g in enumerate(groups):
        f = g.figures
        y = top + n * row_h
        name = g.name or "(no account)"
        counted = f.acknowledged + f.overdue
        parts.append(
            f'<text x="{label_w - 12}" y="{y + 16}" font-size="12.5" text-anchor="end">'
            f"<title>{_e(name)}</title>{_e(_cut(name, 32))}</text>"
            f'<rect x="{x0}" y="{y + 5}" width="{bar_w}" height="{row_h - 10}" rx="3" '
            'fill="#f3f4f6"/>'
        )
        if f.service_level is None:
            parts.append(
                f'<text x="{x0 + bar_w + 10}" y="{y + 16}" font-size="12" '
                f'style="fill:#6b7280">no data ({f.open} open)</text>'
            )
            continue
        colour = _TIER_COLOUR[_tier(f.service_level, target)]
        w = max(bar_w * f.service_level, 2.0)
        parts.append(
            f'<rect x="{x0}" y="{y + 5}" width="{w:.1f}" height="{row_h - 10}" rx="3" '
            f'fill="{colour}"><title>{_e(name)}: {format_level(f.service_level)} '
            f"({f.within_window} of {counted} in time)</title></rect>"
            f'<text x="{x0 + bar_w + 10}" y="{y + 16}" font-size="12.5" '
            f'style="font-variant-numeric:tabular-nums"><tspan font-weight="600">'
            f'{format_level(f.service_level)}</tspan><tspan dx="8" style="fill:#6b7280">'
            f"{f.within_window} of {counted}</tspan></text>"
        )
    tx = x0 + bar_w * target
    parts.append(
        f'<line x1="{tx:.1f}" y1="{top - 8}" x2="{tx:.1f}" y2="{height - 20}" '
        'stroke="#1d4ed8" stroke-width="1.5" stroke-dasharray="4 3"/>'
        f'<text x="{tx:.1f}" y="{top - 11}" font-size="10.5" text-anchor="middle" '
        f'style="fill:#1d4ed8">target {target * 100:g}%</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _histogram_svg(bins: Sequence[HistogramBin]) -> str:
    """Stacked columns per time-to-acknowledge bin: in time (green) and late (red)."""
    width, height, left, bottom, top = 960, 240, 44, 34, 14
    plot_w, plot_h = width - left - 10, height - top - bottom
    peak = max((b.on_time + b.late for b in bins), default=0)
    step = _nice_step(peak)
    y_max = max(step * math.ceil(peak / step), step) if peak else 1
    parts = [
        f'<svg role="img" aria-label="Time to acknowledge" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        "<title>Time to acknowledge (minutes on each item's policy clock)</title>",
    ]
    tick = 0
    while tick <= y_max:
        y = top + plot_h - plot_h * tick / y_max
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#eef0f3"/>'
            f'<text x="{left - 8}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'style="fill:#6b7280">{tick}</text>'
        )
        tick += step
    slot = plot_w / max(len(bins), 1)
    bar = slot * 0.62
    for k, b in enumerate(bins):
        x = left + slot * k + (slot - bar) / 2
        base = top + plot_h
        for count, colour, kind in ((b.on_time, _GOOD, "in time"), (b.late, _BAD, "late")):
            if count:
                h = plot_h * count / y_max
                base -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                    f'fill="{colour}"><title>{_e(b.label)}: {count} {kind}</title></rect>'
                )
        total = b.on_time + b.late
        if total:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{base - 5:.1f}" font-size="11" '
                f'text-anchor="middle" font-weight="600">{total}</text>'
            )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{height - 12}" font-size="11" '
            f'text-anchor="middle" style="fill:#374151">{_e(b.label)}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
        'stroke="#9ca3af"/></svg>'
    )
    return "".join(parts)


def _nice_step(peak: int) -> int:
    if peak <= 5:
        return 1
    raw = peak / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * magnitude:
            return int(m * magnitude)
    return int(10 * magnitude)  # pragma: no cover


def _level_cell(level: float | None, target: float) -> str:
    if level is None:
        return '<td class="num">–</td>'
    return (
        f'<td class="num"><span class="lvl {_tier(level, target)}">'
        f"{format_level(level)}</span></td>"
    )


def _figures_table(groups: Sequence[Group], heading: str, target: float, limit: int) -> str:
    rows = []
    for g in groups[:limit]:
        f = g.figures
        rows.append(
            f'<tr><td class="s">{_e(g.name or "(no account)")}</td>'
            f'<td class="num">{f.client_emails}</td><td class="num">{f.acknowledged}</td>'
            f'<td class="num">{f.within_window}</td>{_level_cell(f.service_level, target)}'
            f'<td class="num">{format_minutes(f.median_minutes)}</td>'
            f'<td class="num">{format_minutes(f.p90_minutes)}</td>'
            f'<td class="num">{f.open}</td><td class="num">{f.overdue}</td></tr>'
        )
    more = (
        f'<p class="note">… and {len(groups) - limit} more (see --format csv or json)</p>'
        if len(groups) > limit else ""
    )
    return (
        f'<table><thead><tr><th>{_e(heading)}</th><th class="num">Emails</th>'
        '<th class="num">Acked</th><th class="num">In time</th><th class="num">Level</th>'
        '<th class="num">Median</th><th class="num">P90</th><th class="num">Open</th>'
        f'<th class="num">Overdue</th></tr></thead><tbody>{"".join(rows)}</tbody></table>{more}'
    )


def render_html(
    report: Report,
    *,
    target: float = DEFAULT_TARGET,
    max_groups: int = 25,
    max_breaches: int = 500,
) -> str:
    """One self-contained page: inline CSS and SVG, no script, no network (a CSP forbids
    both). Every client-supplied string is HTML-escaped."""
    tz = ZoneInfo(report.timezone)
    t = report.totals
    counted = t.acknowledged + t.overdue

    def when(x: dt.datetime) -> str:
        return f"{x.astimezone(tz):%a %d %b %H:%M}"

    level_kind = _tier(t.service_level, target)
    kpis = [
        ("Service level", format_level(t.service_level),
         f"{t.within_window} of {counted} in time · target {target * 100:g}%", level_kind),
        ("Client emails", str(t.client_emails), f"{t.acknowledged} acknowledged", ""),
        ("Median", format_minutes(t.median_minutes), "time to acknowledge", ""),
        ("90th percentile", format_minutes(t.p90_minutes), "time to acknowledge", ""),
        ("Overdue", str(t.overdue), "never acknowledged", "bad" if t.overdue else ""),
        ("Open", str(t.open), "not due yet", ""),
    ]
    kpi_html = "".join(
        f'<div class="kpi {kind}"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div><div class="detail">{_e(detail)}</div></div>'
        for label, value, detail, kind in kpis
    )
    accounts = report.by_account[:max_groups]
    clients = report.by_client[:max_groups]
    breach_rows = []
    for b in report.breaches[:max_breaches]:
        if b.acknowledged is None:
            acked = '<span class="pill never">never</span>'
        else:
            acked = f'{when(b.acknowledged)} <span class="pill late">late</span>'
        breach_rows.append(
            f'<tr><td class="when">{when(b.received)}</td><td class="when">{when(b.deadline)}</td>'
            f'<td class="when">{acked}</td><td class="s">{_e(b.client)}</td>'
            f'<td class="s">{_e(b.subject)}</td>'
            f'<td class="acct">{_e(b.account or "–")}</td></tr>'
        )
    if breach_rows:
        more = (
            f'<p class="note">… and {len(report.breaches) - max_breaches} more '
            "(see --format csv)</p>" if len(report.breaches) > max_breaches else ""
        )
        breaches_html = (
            '<table><thead><tr><th>Received</th><th>Deadline</th><th>Acknowledged</th>'
            "<th>Client</th><th>Subject</th><th>Account</th></tr></thead>"
            f'<tbody>{"".join(breach_rows)}</tbody></table>{more}'
        )
    else:
        breaches_html = '<p class="note">None: every client email was acknowledged in time.</p>'

    legend = (
        f'<div class="legend"><span><span class="sw" style="background:{_GOOD}"></span>'
        f"at or above the target</span><span><span class=\"sw\" style=\"background:{_NEAR}\">"
        f"</span>up to {_NEAR_BAND * 100:g} points below</span><span><span class=\"sw\" "
        f'style="background:{_BAD}"></span>further below</span></div>'
    )
    period = _period_text(report, tz)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="ackwatch">
<title>Service level report · {_e(period)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header>
<div><div class="brand">ackwatch</div><h1>Service level report</h1>
<div class="sub">{_e(period)} · times in {_e(report.timezone)}</div></div>
<div class="sub">as of {_e(f"{report.now.astimezone(tz):%Y-%m-%d %H:%M}")}</div>
</header>
<div class="kpis">{kpi_html}</div>
<section><h2>Service level by account</h2>
{_bars_svg(accounts, target, "Service level by account", "No client email in this period.")}
{legend}
{_figures_table(report.by_account, "Account", target, max_groups)}</section>
<section><h2>Service level by client</h2>
{_bars_svg(clients, target, "Service level by client", "No client email in this period.")}
{legend}
{_figures_table(report.by_client, "Client", target, max_groups)}</section>
<section><h2>Time to acknowledge</h2>
{_histogram_svg(report.histogram)}
<div class="legend"><span><span class="sw" style="background:{_GOOD}"></span>within the window</span>
<span><span class="sw" style="background:{_BAD}"></span>late</span>
<span>business minutes for business-hours policies, wall minutes otherwise</span></div>
</section>
<section><h2>Breaches ({len(report.breaches)})</h2>
<p class="note" style="margin:-6px 0 10px">Acknowledged after the deadline, or not at all.</p>
{breaches_html}</section>
<footer>Service level: acknowledged within the window ÷ (acknowledged + overdue); emails not yet
due are left out. Median and 90th percentile over acknowledged emails.</footer>
</main>
</body>
</html>
"""


__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_TARGET",
    "FIGURE_FIELDS",
    "Breach",
    "Figures",
    "Group",
    "HistogramBin",
    "ItemResult",
    "Report",
    "ReportItem",
    "client_group",
    "compute",
    "compute_stored",
    "default_period",
    "parse_bound",
    "quantile",
    "render_csv",
    "render_html",
    "render_json",
    "render_table",
]
