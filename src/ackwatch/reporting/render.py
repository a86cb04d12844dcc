"""The report in the format asked for: the one choice of renderer that ``ackwatch report``
and the board's downloads (`web.downloads`) share."""

from __future__ import annotations

from ackwatch.core import promise_rules
from ackwatch.core.printable import json_text
from ackwatch.reporting import exports, html, table
from ackwatch.reporting.dates import DateReport
from ackwatch.reporting.figures import Report
from ackwatch.reporting.formatting import DEFAULT_TARGET


def render_report(
    report: Report,
    format: str,
    *,
    target: float = DEFAULT_TARGET,
    dates: DateReport | None = None,
    promises: promise_rules.Figures | None = None,
) -> str:
    """``report`` as ``format`` ("table", "json", "csv" or "html"). The promise figures,
    when given, are a section of the table and a key of the JSON (the CSV lists items,
    the HTML page has no section for them)."""
    if format == "json":
        data = exports.to_json_data(report, dates)
        if promises is not None:
            data["promises"] = promise_rules.figures_json(promises)
        return json_text(data) + "\n"
    if format == "csv":
        return exports.render_csv(report, dates)
    if format == "html":
        return html.render_html(report, target=target, dates=dates)
    if format == "table":
        text = table.render_table(report, target=target, dates=dates)
        if promises is not None:
            text += "\n" + promise_rules.figures_table(promises)
        return text
    raise ValueError(f"no report format {format!r}")
