"""The report as data: one JSON document (`render_json`) and one CSV row per item
(`render_csv`), for scripts and spreadsheets. Times are ISO 8601 in the config's timezone.
"""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

from ackwatch.core.printable import json_text
from ackwatch.reporting.dates import DateReport, figures_dict
from ackwatch.reporting.figures import Figures, Report
from ackwatch.reporting.formatting import iso


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


def to_json_data(report: Report, dates: DateReport | None = None) -> dict[str, object]:
    """The JSON document as Python data (see `render_json`). With ``dates``, each figure
    set also says how many acknowledgements named a date (`dates.figures_dict`)."""
    tz = ZoneInfo(report.timezone)

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
            with_dates({"client": g.name, **_figures_dict(g.figures)},
                       dates.client(g.name) if dates else None)
            for g in report.by_client
        ],
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


def render_json(report: Report, dates: DateReport | None = None) -> str:
    """One object: ``period`` {since, until}, ``totals``, ``by_account``, ``by_client``,
    ``breaches``. Times ISO 8601 with the config timezone's offset; service level 0..1
    rounded to 4 places, minutes to 2; with ``dates``: ``acks_with_date``,
    ``acks_without_date``, ``acks_not_read`` and ``date_share`` (0..1) in each group."""
    return json_text(to_json_data(report, dates)) + "\n"


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


__all__ = ["CSV_COLUMNS", "render_csv", "render_json", "to_json_data"]
