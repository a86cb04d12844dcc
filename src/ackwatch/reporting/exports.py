"""The report as data: one JSON document (`render_json`) and one CSV row per item
(`render_csv`), for scripts and spreadsheets. Times are ISO 8601 in the config's timezone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from ackwatch.core import promise_rules
from ackwatch.core.printable import json_text
from ackwatch.reporting.dates import DateReport, figures_dict
from ackwatch.reporting.figures import (
    Figures,
    Report,
    below_target,
    client_demand,
    client_group,
)
from ackwatch.reporting.formatting import DEFAULT_TARGET, iso


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


def to_json_data(
    report: Report, dates: DateReport | None = None, *, target: float = DEFAULT_TARGET
) -> dict[str, object]:
    """The JSON document as Python data (see `render_json`). With ``dates``, each figure
    set also says how many acknowledgements named a date (`dates.figures_dict`)."""
    tz = ZoneInfo(report.timezone)
    demand = client_demand(report, target)

    def with_dates(base: dict[str, object], f: object) -> dict[str, object]:
        return base if dates is None else {**base, **figures_dict(f)}  # type: ignore[arg-type]

    return {
        "period": {"since": iso(report.since, tz), "until": iso(report.until, tz)},
        "totals": with_dates(
            _figures_dict(report.totals), dates.totals if dates else None
        ),
        "by_account": [
            with_dates({"account": g.name, **_figures_dict(g.figures)},
                       dates.account(g.name) if dates else None)
            for g in report.by_account
        ],
        "by_client": [
            with_dates({"client": g.name, **_figures_dict(g.figures),
                        "below_target": d.below_target},
                       dates.client(g.name) if dates else None)
            for g, d in zip(report.by_client, demand, strict=True)
        ],
        "target": target,
        "clients_below_target": [c.client for c in below_target(demand)],
        "breaches": [
            {
                "client": b.client,
                "subject": b.subject,
                "received": iso(b.received, tz),
                "deadline": iso(b.deadline, tz),
                "acknowledged": iso(b.acknowledged, tz),
                "account": b.account,
            }
            for b in report.breaches
        ],
    }


def render_json(
    report: Report, dates: DateReport | None = None, *, target: float = DEFAULT_TARGET
) -> str:
    """One object: ``period`` {since, until}, ``totals``, ``by_account``, ``by_client``
    (each with ``below_target``), ``target``, ``clients_below_target`` (names, worst
    first, however few their emails), ``breaches``. Times ISO 8601 with the config
    timezone's offset; service level 0..1 rounded to 4 places, minutes to 2; with
    ``dates``: ``acks_with_date``, ``acks_without_date``, ``acks_not_read`` and
    ``date_share`` (0..1) in each group."""
    return json_text(to_json_data(report, dates, target=target)) + "\n"


# =========================================================================== csv

CSV_COLUMNS: tuple[str, ...] = (
    "received", "client", "client_address", "account", "subject", "policy", "clock",
    "deadline", "acknowledged", "minutes_to_ack", "within_window", "status", "ack_date",
)
_ACK_DATE = {"date": "date", "no_date": "no date"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str | None) -> str:
    """Client-supplied text for a spreadsheet: a leading = + - @ would start a formula
    (CSV injection), so such a value gets a leading apostrophe (OWASP's advice)."""
    text = text or ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def render_csv(report: Report, dates: DateReport | None = None) -> str:
    """One row per counted item, in received order, with a header row. ``within_window``
    is yes / no / empty (open); ``minutes_to_ack`` has one decimal, empty when not
    acknowledged; ``status`` is on_time, late, overdue or open; ``ack_date`` (with
    ``dates``, for acknowledged items) is "date", "no date" or "not read"."""
    found = dates.found if dates is not None else {}
    tz = ZoneInfo(report.timezone)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in report.items:
        i = r.item
        writer.writerow(
            (
                iso(i.received, tz),
                _cell(r.client),
                _cell(i.client_address),
                i.account or "",
                _cell(i.subject),
                i.policy,
                i.clock,
                iso(i.deadline, tz),
                iso(i.ack_at, tz) if r.minutes_to_ack is not None else "",
                "" if r.minutes_to_ack is None else f"{r.minutes_to_ack:.1f}",
                "" if r.within_window is None else ("yes" if r.within_window else "no"),
                r.status,
                "" if r.minutes_to_ack is None or dates is None
                else _ACK_DATE.get(found.get(i.key, ""), "not read"),
            )
        )
    return out.getvalue()


# =========================================================================== csv summary

SUMMARY_COLUMNS: tuple[str, ...] = (
    "group", "name", "client_emails", "acknowledged", "within_window", "service_level",
    "median_minutes", "p90_minutes", "open", "overdue", "below_target",
    *(f"promises_{k}" for k in promise_rules.COUNT_FIELDS),
)


def _promise_groups(
    groups: Sequence[tuple[str | None, promise_rules.Counts]], *, by_client: bool
) -> dict[str | None, promise_rules.Counts]:
    """Promise counts by the report's group names: a client without a configured name is
    stored by its address, the report groups it by the address's domain."""
    out: dict[str | None, promise_rules.Counts] = {}
    for name, c in groups:
        key = client_group(None, name) if by_client and name and "@" in name else name
        old = out.get(key)
        out[key] = c if old is None else promise_rules.Counts(
            *(getattr(old, k) + getattr(c, k) for k in promise_rules.COUNT_FIELDS))
    return out


def render_csv_summary(
    report: Report,
    *,
    target: float = DEFAULT_TARGET,
    promises: promise_rules.Figures | None = None,
) -> str:
    """One row for the total, then one per account and one per client (``group`` total,
    account or client): demand (``client_emails``) beside the service level (0..1),
    ``below_target`` yes / no / empty (nothing counted yet), and the promises made in the
    period by outcome (empty without ``promises``). A group with promises but no email
    received in the period gets a row of its own with empty figures."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(SUMMARY_COLUMNS)
    accounts = _promise_groups(promises.by_account, by_client=False) if promises else {}
    clients = _promise_groups(promises.by_client, by_client=True) if promises else {}

    def row(group: str, name: str | None, f: Figures | None,
            kept: promise_rules.Counts | None) -> None:
        figures: list[object] = [""] * 9
        if f is not None:
            level = f.service_level
            figures = [*_figures_dict(f).values(),
                       "" if level is None else ("yes" if level < target else "no")]
        counts: list[object] = ([""] * len(promise_rules.COUNT_FIELDS) if promises is None
                                else [getattr(kept or promise_rules.Counts(), k)
                                      for k in promise_rules.COUNT_FIELDS])
        writer.writerow([group, _cell(name), *figures, *counts])

    row("total", "", report.totals, promises.totals if promises else None)
    for g in report.by_account:
        row("account", g.name, g.figures, accounts.pop(g.name, None))
    for name, c in accounts.items():
        row("account", name, None, c)
    for g in report.by_client:
        row("client", g.name, g.figures, clients.pop(g.name, None))
    for name, c in clients.items():
        row("client", name, None, c)
    return out.getvalue()


__all__ = [
    "CSV_COLUMNS",
    "SUMMARY_COLUMNS",
    "render_csv",
    "render_csv_summary",
    "render_json",
    "to_json_data",
]
