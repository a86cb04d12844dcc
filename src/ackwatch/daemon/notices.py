"""The mail of a queued promise reminder, overdue notice or "say by when" note."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from email.message import EmailMessage

import structlog

from ackwatch.config import Config
from ackwatch.mail import compose
from ackwatch.store import ItemRecord, OutboxRecord, PromiseRecord, Store

log = structlog.get_logger(__name__)


def notice_mail(
    store: Store, config: Config, record: OutboxRecord, now: dt.datetime, *, enabled: bool
) -> EmailMessage | None:
    """The mail for a queued promise notice, or None when it was cancelled (nothing
    left to say: delivered or settled meanwhile) or failed to render (recorded)."""
    members = store.promises_of_outbox(record.id)
    if record.kind == "promise":
        live = [p for p in members if p.reminder_outbox == record.id and p.state == "open"]
    else:
        live = [
            p
            for p in members
            if p.overdue_outbox == record.id and p.state == "broken" and p.follow_key is None
        ]
    if not live or not enabled:
        store.outbox_close(record.id, "cancelled")
        store.mark_promises(record.kind, [p.id for p in members], "cancelled")
        log.info(
            "action_cancelled",
            kind=record.kind,
            to=record.recipient,
            reason="settled meanwhile" if enabled else "promise.enabled is false",
        )
        return None
    try:
        return render_notice(config, record, live, now)
    except Exception as exc:  # a broken template override: fail this mail, loudly
        store.outbox_close(record.id, "failed", error=f"render: {type(exc).__name__}")
        log.error(
            "mail_render_failed",
            kind=record.kind,
            to=record.recipient,
            error=type(exc).__name__,
            detail=str(exc)[:200],
        )
        return None


def render_notice(
    config: Config, record: OutboxRecord, members: Iterable[PromiseRecord], now: dt.datetime
) -> EmailMessage:
    """A promise reminder / overdue notice, as `compose.render_queued` says."""

    def name_of(address: str | None) -> str | None:
        return compose.account_display_name(config, address)

    members = tuple(members)
    if record.account is not None:
        account_name = name_of(record.account)
    else:  # a merged notice about several accounts' promises names each of them
        names = dict.fromkeys(n for p in members if (n := name_of(p.account)))
        account_name = ", ".join(names) or None
    lines = tuple(
        compose.NoticeLine(
            client=p.client or p.client_address,
            client_address=p.client_address,
            subject=p.subject,
            received=p.made_at,
            deadline=p.promised,
            account=name_of(p.account),
            sentence=p.sentence,
        )
        for p in members
    )
    return compose.render_queued(config, record, lines, now, account_name=account_name)


def ask_mail(
    store: Store, config: Config, record: OutboxRecord, now: dt.datetime, *, enabled: bool
) -> EmailMessage | None:
    """The mail of a queued "say by when" note, or None when it was cancelled (the option
    was turned off meanwhile) or failed to render (recorded)."""
    items = store.date_asks_of_outbox(record.id)
    if not items or not enabled:
        store.outbox_close(record.id, "cancelled")
        log.info("action_cancelled", kind=record.kind, to=record.recipient,
                 reason="promise.ask_for_date is off" if items else "nothing left")  # fmt: skip
        return None
    try:
        return render_ask(config, record, items, now)
    except Exception as exc:  # a broken template override: fail this mail, loudly
        store.outbox_close(record.id, "failed", error=f"render: {type(exc).__name__}")
        log.error("mail_render_failed", kind=record.kind, to=record.recipient,
                  error=type(exc).__name__, detail=str(exc)[:200])  # fmt: skip
        return None


def render_ask(
    config: Config, record: OutboxRecord, items: Iterable[ItemRecord], now: dt.datetime
) -> EmailMessage:
    """The note, in the recipient's language and timezone (a backup who is not an
    account gets the language of the account it is about). ``received`` of each line is
    when the acknowledgement was sent."""
    lines = tuple(
        compose.NoticeLine(
            client=i.client or i.client_address,
            client_address=i.client_address,
            subject=i.subject,
            received=i.ack_at or i.received,
            deadline=i.ack_at or i.received,
            message_id=i.message_id,
        )
        for i in items
    )
    return compose.render_queued(config, record, lines, now, account_name=None)
