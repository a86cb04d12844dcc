"""The service-level figures of a period: counts, percentiles, breaches (pure: no I/O).

`compute(items, config, since=, until=, now=)` turns `ReportItem`s into a frozen `Report`;
`compute_stored` does the same (without the per-item rows of the CSV) from the store's raw
rows, as the CLI reads them. The renderers (`table`, `exports`, `html`) turn a `Report`
into text. Nothing here reads the clock, a file or the database: ``now`` is a parameter.

Rules (on top of DESIGN.md):

- Counted: every client email *received* in ``[since, until)`` that needed an
  acknowledgement; dropped items (the config no longer tracks that sender) are left out.
- Time to acknowledge: `ack_time` (the item's policy's clock, as the config says *now*).
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

Speed (`ackwatch report` reads a year of a million client emails in one pass):
`compute_stored` streams the store's rows once and builds no object per item.
A row is five values: the group ``[account, client, client_address, policy, clock]`` as
one JSON string (decoded once per distinct group, which also fixes its accumulator, client
label and clock), the received time, the deadline and the acknowledgement as integer
microseconds since the epoch (the store's generated ``*_us`` columns: no ISO string is
parsed; datetimes are made only for a breach), and the subject only for possible
breaches. Wall minutes are the exact difference of the two instants; business minutes
come from `ack_time.BusinessIndex` (two bisections per item) instead of a walk over
days; counts from one accumulator per (account, client) pair, whose minutes are sorted
once: the percentiles of an account, a client or the total are selected across those
sorted lists (`_kth`), never merged. `compute` runs the same loop over `ReportItem`s.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import json
import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ackwatch.config import Config
from ackwatch.core.business_clock import BusinessCalendar
from ackwatch.reporting.ack_time import BusinessIndex, epoch_us, from_epoch_us, index_for
from ackwatch.reporting.period import check_aware

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
    dataclass: a million of them are built, at less than half the cost.
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
    can hold a hundred thousand of them)."""

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


@dataclass(frozen=True, slots=True)
class ClientDemand:
    """One client's demand (client emails received) beside its service level."""

    client: str
    emails: int  # demand: client emails received in the period
    within_window: int
    counted: int  # acknowledged + overdue: what the service level is over
    service_level: float | None  # None while nothing counts (all still open)
    below_target: bool  # a known level under the target, however few the mails


def client_demand(report: Report, target: float) -> tuple[ClientDemand, ...]:
    """Per client, busiest first (``report.by_client``'s order): demand and service level
    side by side. The one source of "demand per client" for the report, the digest and
    the board."""
    out = []
    for g in report.by_client:
        f = g.figures
        level = f.service_level
        out.append(ClientDemand(
            client=g.name or "(unknown)", emails=f.client_emails,
            within_window=f.within_window, counted=f.acknowledged + f.overdue,
            service_level=level, below_target=level is not None and level < target,
        ))
    return tuple(out)


def below_target(demand: Iterable[ClientDemand]) -> tuple[ClientDemand, ...]:
    """The clients under the target, worst level first (then busiest, then by name): a
    client with two mails and one late is listed as surely as one with two hundred."""
    return tuple(sorted(
        (c for c in demand if c.below_target),
        key=lambda c: (c.service_level or 0.0, -c.emails, c.client),
    ))


# =========================================================================== figures


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
    check_aware(since, until, now)
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
    rows: Iterable[tuple[str, int, int, int | None, str]],
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
    ``[account, client, client_address, policy, clock]``, times as `epoch_us`. Builds no
    object per row and parses no time: a year of mail in one pass.
    """
    check_aware(since, until, now)
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
    indexes: dict[BusinessCalendar, BusinessIndex] = {}
    measures: dict[tuple[str, str], BusinessIndex | None] = {}
    groups: dict[Any, tuple[_Acc, BusinessIndex | None, str, str, str | None]] = {}
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
                measures[pair] = index_for(pair, config, since, measure_until, indexes)
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


__all__ = [
    "FIGURE_FIELDS",
    "HISTOGRAM_EDGES",
    "HISTOGRAM_LABELS",
    "Breach",
    "ClientDemand",
    "Figures",
    "Group",
    "HistogramBin",
    "ItemResult",
    "Report",
    "ReportItem",
    "below_target",
    "client_demand",
    "client_group",
    "compute",
    "compute_stored",
    "quantile",
]
