"""The report as aligned text for an 80-column terminal (`ackwatch report`, the digest)."""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from ackwatch.reporting.dates import DateFigures, DateReport, share_text
from ackwatch.reporting.figures import Figures, Report, below_target, client_demand
from ackwatch.reporting.formatting import (
    DEFAULT_TARGET,
    fit,
    format_level,
    format_minutes,
    period_text,
)

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


def _date_rows(report: Report, dates: DateReport) -> list[str]:
    """Per account and client: how many acknowledgements said by when."""
    t = dates.totals
    lines = [
        f"Said by when: {share_text(t)} ({t.with_date} of {t.with_date + t.without_date} "
        f"acknowledgements read named a date; {t.not_read} not read)",
        f"  {'ACCOUNT / CLIENT':<{_NAME_W}} {'DATE':>7} {'NO DATE':>7} {'NOT READ':>8} "
        f"{'SHARE':>6}",
    ]

    def row(name: str, f: DateFigures) -> str:
        return (f"  {fit(name, _NAME_W)} {f.with_date:>7} {f.without_date:>7} "
                f"{f.not_read:>8} {share_text(f):>6}")

    short = _short_accounts(g.name for g in report.by_account)
    lines += [row(short[g.name], dates.account(g.name)) for g in report.by_account]
    lines += [row(g.name or "(unknown)", dates.client(g.name)) for g in report.by_client]
    return lines


def _below_rows(report: Report, target: float) -> list[str]:
    """The clients under the target, however few their emails, worst first."""
    below = below_target(client_demand(report, target))
    if not below:
        return [f"No client below the target ({target * 100:g}%)."]
    lines = [f"Clients below the target ({target * 100:g}%), however few their emails:"]
    lines += [
        f"  {fit(c.client, _NAME_W)} {c.emails:>7} {'email ' if c.emails == 1 else 'emails'} "
        f"{format_level(c.service_level):>6} "
        f"({c.within_window} of {c.counted} in time)"
        for c in below
    ]
    return lines


def render_table(
    report: Report,
    *,
    target: float = DEFAULT_TARGET,
    max_breaches: int = 20,
    dates: DateReport | None = None,
) -> str:
    """Aligned text for an 80-column terminal: totals, per account, per client, (with
    ``dates``) how many acknowledgements said by when, then up to ``max_breaches``
    breaches. A "!" after a service level marks it below ``target``; the clients below it
    are listed again after the client rows, however few their emails."""
    tz = ZoneInfo(report.timezone)
    t = report.totals
    lines = [
        f"ackwatch report: {period_text(report, tz)}",
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
    lines += ["", *_below_rows(report, target), ""]
    if dates is not None:
        lines += [*_date_rows(report, dates), ""]
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


__all__ = ["render_table"]
