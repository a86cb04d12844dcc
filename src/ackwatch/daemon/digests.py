"""The managers' weekly digests: queued in the outbox once they are due, rendered from
the stored items when they are sent (`reporting.digest` holds the figures and text)."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

import structlog

from ackwatch.config import Config
from ackwatch.mail import compose
from ackwatch.store import OutboxRecord, Store

log = structlog.get_logger(__name__)


def queue_due(store: Store, config: Config, now: dt.datetime) -> dt.datetime | None:
    """Queue each recipient's weekly digest (managers and mentors:
    `digest_recipients`) once it is due; next digest time."""
    if not config.digest.enabled or config.smtp is None:
        return None
    # With the report module: only when digests are on.
    from ackwatch.reporting import digest
    from ackwatch.reporting.digest_recipients import recipients

    first = store.get_meta("first_started")
    if first is None:
        store.set_meta("first_started", now.isoformat())
        first = now.isoformat()
    started = dt.datetime.fromisoformat(first)
    for manager in recipients(config):
        due = digest.due_instant(config, manager, now)
        # Not when it is days late, nor for a week before this installation existed.
        if now - due > digest.CATCH_UP or started >= due:
            continue
        queued = store.enqueue_once(
            once_key=digest.week_key(config, manager, due),
            kind="digest",
            recipient=manager,
            message_id=compose.make_message_id(compose.message_id_domain(config)),
            now=now,
        )
        if queued is not None:
            log.info("action_queued", kind="digest", to=manager)
    return digest.next_due(config, now)


def render(store: Store, config: Config, record: OutboxRecord, now: dt.datetime) -> EmailMessage:
    """The mail of a queued digest: this week and the week before, for the accounts its
    recipient manages or mentors."""
    from ackwatch.reporting import digest
    from ackwatch.reporting.digest_recipients import recipients

    manager = record.recipient
    team = recipients(config).get(manager, ())
    this_since, this_until = digest.period(config, manager, record.created_at, 1)
    before_since, _ = digest.period(config, manager, record.created_at, 2)
    rows = store.report_rows(before_since, this_until)
    this_week = digest.team_report(config, rows, team, since=this_since, until=this_until,
                                   now=now)
    week_before = digest.team_report(config, rows, team, since=before_since,
                                     until=this_since, now=now)
    dated = digest.team_dates(store.ack_date_rows(this_since, this_until), this_week, team)
    dated_before = digest.team_dates(store.ack_date_rows(before_since, this_since),
                                     week_before, team)  # fmt: skip
    assert config.smtp is not None
    return digest.render(config, manager, this_week, week_before,
                         smtp_from=config.smtp.from_address, message_id=record.message_id,
                         dates=dated, dates_before=dated_before, team=team)
