"""The report in the format asked for: the one choice of renderer that ``ackwatch report``
and the board's downloads (`web.downloads`) share."""

from __future__ import annotations

from ackwatch.core import promise_rules
from ackwatch.core.printable import json_text
from ackwatch.reporting import exports, html, table
from ackwatch.reporting.dates import DateReport
from ackwatch.reporting.figures import Report
from ackwatch.reporting.formatting import DEFAULT_TARGET

FORMATS: tuple[str, ...] = ("table", "json", "csv", "csv-summary", "html")


def render_report(
    report: Report,
    format: str,
    *,
    target: float = DEFAULT_TARGET,
    dates: DateReport | None = None,
    promises: promise_rules.Figures | None = None,
) -> str:
    """``report`` as ``format`` (one of `FORMATS`). The promise figures, when given, are a
    section of the table and the HTML page, a key of the JSON and columns of the CSV
    summary (the per-email CSV lists emails, not promises)."""
    if format == "json":
        data = exports.to_json_data(report, dates, target=target)
        if promises is not None:
            data["promises"] = promise_rules.figures_json(promises)
        return json_text(data) + "\n"
    if format == "csv":
        return exports.render_csv(report, dates)
    if format == "csv-summary":
        return exports.render_csv_summary(report, target=target, promises=promises)
    if format == "html":
        return html.render_html(report, target=target, dates=dates, promises=promises)
    if format == "table":
        text = table.render_table(report, target=target, dates=dates)
        if promises is not None:
            text += "\n" + promise_rules.figures_table(promises)
        return text
    raise ValueError(f"no report format {format!r}")
