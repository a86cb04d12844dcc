"""The report as one self-contained HTML page: inline CSS and SVG, no script, no network.

Used by ``ackwatch report --format html`` and as the HTML part of the weekly digest.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

from ackwatch.core import promise_rules
from ackwatch.core.printable import clean
from ackwatch.reporting.dates import DateFigures, DateReport, share_text
from ackwatch.reporting.figures import (
    Group,
    HistogramBin,
    Report,
    below_target,
    client_demand,
)
from ackwatch.reporting.formatting import (
    DEFAULT_TARGET,
    format_level,
    format_minutes,
    period_text,
)

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
.below{background:var(--bad-bg);color:var(--bad);border-radius:8px;padding:8px 12px;margin:10px 0}
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
        base: float = top + plot_h
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


def _figures_table(
    groups: Sequence[Group],
    heading: str,
    target: float,
    limit: int,
    dated: Callable[[str | None], DateFigures] | None = None,
) -> str:
    """A group table; with ``dated`` (the group's date figures) a "By when" column: the
    share of acknowledgements read that named a date, and how many were read."""
    rows = []
    for g in groups[:limit]:
        f = g.figures
        by_when = ""
        if dated is not None:
            d = dated(g.name)
            by_when = (f'<td class="num">{share_text(d)} <span class="note">'
                       f"({d.with_date}/{d.with_date + d.without_date})</span></td>")
        rows.append(
            f'<tr><td class="s">{_e(g.name or "(no account)")}</td>'
            f'<td class="num">{f.client_emails}</td><td class="num">{f.acknowledged}</td>'
            f'<td class="num">{f.within_window}</td>{_level_cell(f.service_level, target)}'
            f'<td class="num">{format_minutes(f.median_minutes)}</td>'
            f'<td class="num">{format_minutes(f.p90_minutes)}</td>'
            f'<td class="num">{f.open}</td><td class="num">{f.overdue}</td>{by_when}</tr>'
        )
    more = (
        f'<p class="note">… and {len(groups) - limit} more (see --format csv or json)</p>'
        if len(groups) > limit else ""
    )
    by_when_head = '<th class="num">By when</th>' if dated is not None else ""
    return (
        f'<table><thead><tr><th>{_e(heading)}</th><th class="num">Emails</th>'
        '<th class="num">Acked</th><th class="num">In time</th><th class="num">Level</th>'
        '<th class="num">Median</th><th class="num">P90</th><th class="num">Open</th>'
        f'<th class="num">Overdue</th>{by_when_head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table>{more}'
    )


def _below_html(report: Report, target: float) -> str:
    """The clients under the target, however few their emails (never cut by a limit)."""
    below = below_target(client_demand(report, target))
    if not below:
        return f'<p class="note">No client below the target ({target * 100:g}%).</p>'
    names = " · ".join(
        f"<strong>{_e(c.client)}</strong> {format_level(c.service_level)} "
        f"({c.within_window} of {c.counted} in time, {c.emails} "
        f"{'email' if c.emails == 1 else 'emails'})"
        for c in below
    )
    return (f'<p class="below" id="below-target">Below the target ({target * 100:g}%), '
            f"however few their emails: {names}</p>")


def _promises_html(promises: promise_rules.Figures, limit: int) -> str:
    """Promises made in the period by outcome, per account and per client."""
    t = promises.totals
    if t.made == 0:
        return '<p class="note">No promise made in this period.</p>'

    def rows(heading: str, groups: Sequence[tuple[str | None, promise_rules.Counts]]) -> str:
        body = "".join(
            f'<tr><td class="s">{_e(name or "(no account)")}</td>'
            + "".join(f'<td class="num">{getattr(c, k)}</td>'
                      for k in promise_rules.COUNT_FIELDS)
            + "</tr>"
            for name, c in groups[:limit]
        )
        head = "".join(f'<th class="num">{k.capitalize()}</th>'
                       for k in promise_rules.COUNT_FIELDS)
        return (f"<table><thead><tr><th>{_e(heading)}</th>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")

    return (
        f'<p id="promise-totals">{t.made} made: {t.kept} kept, {t.moved} moved, '
        f"{t.broken} broken, {t.open} open.</p>"
        f"{rows('Account', promises.by_account)}{rows('Client', promises.by_client)}"
    )


def render_html(
    report: Report,
    *,
    target: float = DEFAULT_TARGET,
    max_groups: int = 25,
    max_breaches: int = 500,
    dates: DateReport | None = None,
    promises: promise_rules.Figures | None = None,
) -> str:
    """One self-contained page: inline CSS and SVG, no script, no network (a CSP forbids
    both). Every client-supplied string is HTML-escaped. With ``dates``: how many
    acknowledgements said by when, in total and per group; with ``promises``: the
    promises made in the period by outcome. The clients below ``target`` are named
    under the client table, however few their emails."""
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
    if dates is not None:
        d = dates.totals
        kpis.append(("Said by when", share_text(d),
                     f"{d.with_date} of {d.with_date + d.without_date} read named a date · "
                     f"{d.not_read} not read", ""))
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
    period = period_text(report, tz)
    promises_html = "" if promises is None else (
        '<section id="promises"><h2>Promises</h2>'
        f"{_promises_html(promises, max_groups)}</section>"
    )
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
{_figures_table(report.by_account, "Account", target, max_groups,
               dates.account if dates else None)}</section>
<section><h2>Service level by client</h2>
{_bars_svg(clients, target, "Service level by client", "No client email in this period.")}
{legend}
{_figures_table(report.by_client, "Client", target, max_groups,
               dates.client if dates else None)}
{_below_html(report, target)}</section>
{promises_html}<section><h2>Time to acknowledge</h2>
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


__all__ = ["render_html"]
