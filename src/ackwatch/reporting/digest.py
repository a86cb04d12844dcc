"""The weekly digest: each manager's team figures for the past week, by email.

When: once a week at ``digest.when`` (default Monday 09:00) in the manager's calendar
(their own when the manager is an account, else the first calendar, else the config's
timezone). The digest covers the past full week (Monday to Monday, in that timezone) for
the accounts whose ``manager`` or ``mentor`` is that person (`digest_recipients`), with
the week before for comparison.

Decisions (the spec is silent):
- After a downtime the digest is sent on return if it is at most `CATCH_UP` late;
  older ones are skipped (a digest arriving on Thursday about last week is noise). A new
  installation sends its first digest at the first digest instant after it started.
- At most once per manager and week: the week is recorded in the state's meta table in
  the same transaction that queues the mail, so restarts do not repeat it.
- The mail is in the recipient's language, chosen as for every queued mail
  (`digest_mail.language_for`); its HTML part is built for mail programs (tables and
  inline CSS, no SVG, no ``<style>``), not the report page. Per client it shows demand
  beside the service level and names every client below `TARGET`, however small.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from zoneinfo import ZoneInfo

from ackwatch.config import Config
from ackwatch.reporting.dates import DateReport, date_figures
from ackwatch.reporting.digest_mail import compose_digest
from ackwatch.reporting.digest_recipients import recipients
from ackwatch.reporting.figures import Report, ReportItem, compute

CATCH_UP = dt.timedelta(days=3)
TARGET = 0.9


def manager_timezone(config: Config, manager: str) -> str:
    cal = config.calendar_for_account(manager)
    return cal.timezone if cal is not None else config.timezone


def due_instant(config: Config, manager: str, now: dt.datetime) -> dt.datetime:
    """The latest digest instant at or before ``now`` for this manager."""
    tz = ZoneInfo(manager_timezone(config, manager))
    local = now.astimezone(tz)
    days_back = (local.weekday() - config.digest.weekday) % 7
    day = local.date() - dt.timedelta(days=days_back)
    due = dt.datetime.combine(day, config.digest.time, tzinfo=tz)
    if due > now:
        due -= dt.timedelta(days=7)
    return due


def week_key(config: Config, manager: str, due: dt.datetime) -> str:
    return f"digest:{manager}:{due.astimezone(ZoneInfo(manager_timezone(config, manager))).date()}"


def next_due(config: Config, now: dt.datetime) -> dt.datetime | None:
    if not config.digest.enabled:
        return None
    upcoming = [due_instant(config, m, now) + dt.timedelta(days=7) for m in recipients(config)]
    return min(upcoming, default=None)


def period(config: Config, manager: str, at: dt.datetime, weeks_back: int = 1
           ) -> tuple[dt.datetime, dt.datetime]:
    """The full week (Monday 00:00 to Monday 00:00) ``weeks_back`` weeks before ``at``."""
    tz = ZoneInfo(manager_timezone(config, manager))
    local = at.astimezone(tz).date()
    this_monday = local - dt.timedelta(days=local.weekday())
    start = this_monday - dt.timedelta(days=7 * weeks_back)
    return (
        dt.datetime.combine(start, dt.time(0), tzinfo=tz),
        dt.datetime.combine(start + dt.timedelta(days=7), dt.time(0), tzinfo=tz),
    )


def render(
    config: Config,
    manager: str,
    this_week: Report,
    week_before: Report,
    *,
    smtp_from: str,
    message_id: str,
    dates: DateReport | None = None,
    dates_before: DateReport | None = None,
    team: Sequence[str] | None = None,
) -> EmailMessage:
    """The digest mail to ``manager`` (any recipient: the words are theirs) about ``team``
    (default: the accounts ``manager`` manages), plain text and HTML (`digest_mail`)."""
    parts = compose_digest(
        config, manager, this_week, week_before,
        team=recipients(config).get(manager, ()) if team is None else team,
        target=TARGET, dates=dates or DateReport(), dates_before=dates_before or DateReport(),
        timezone=manager_timezone(config, manager),
    )
    msg = EmailMessage()
    msg["From"] = smtp_from
    msg["To"] = manager
    msg["Subject"] = parts.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Ackwatch"] = "digest"
    msg.set_content(parts.text, cte="quoted-printable")
    msg.add_alternative(parts.html, subtype="html", cte="quoted-printable")
    msg["Content-Language"] = parts.language  # after: the parts take Content-* headers
    return msg


def team_report(
    config: Config,
    rows: Sequence[tuple],
    accounts: Sequence[str],
    *,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
) -> Report:
    team = set(accounts)
    items = [ReportItem(*row) for row in rows if row[3] in team]
    return compute(items, config, since=since, until=until, now=now, rows=False)


def team_dates(rows: Sequence[tuple], report: Report, accounts: Sequence[str]) -> DateReport:
    """How many of the team's acknowledgements said by when (`dates.date_figures`)."""
    return date_figures(rows, report, accounts=accounts)
