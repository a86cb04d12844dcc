"""Nudges and escalations: what is due for the pending items, planned and queued."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence

import structlog

from ackwatch.config import Config
from ackwatch.core import dispatch as scheduler
from ackwatch.core import hourlycap
from ackwatch.core import item_rules as sla
from ackwatch.core.message import Message
from ackwatch.mail import compose
from ackwatch.store import ItemRecord, Store

log = structlog.get_logger(__name__)

MessagesOfAccounts = Callable[[Iterable[str], dt.datetime], list[Message]]


def plan(
    store: Store,
    config: Config,
    now: dt.datetime,
    records: Sequence[ItemRecord],
    messages_of_accounts: MessagesOfAccounts,
) -> scheduler.Plan:
    """What is due at ``now`` for ``records`` (the pending items, as stored now: their
    nudge and escalation marks say what was done), and to whom (an account away is
    replaced as `sla.recipient_for` says, from what ``messages_of_accounts`` gives)."""
    views = [
        scheduler.Pending(
            r.key, r.account, r.nudge_at, r.escalate_at,
            r.nudge_done is not None, r.escalation_done is not None,
        )
        for r in records
    ]
    accounts = {r.account for r in records if r.account}
    messages = messages_of_accounts(accounts, now)
    recipients = {acc: sla.recipient_for(acc, config, now, messages) for acc in accounts}
    return scheduler.plan(
        views, config=config, now=now,
        recipient_of=lambda acc: recipients.get(acc, acc),
        sent_last_hour=store.reached_since(now - hourlycap.HOUR),
    )


def mailboxes_concerned(
    config: Config, actions: Sequence[scheduler.Action], items: dict[str, ItemRecord]
) -> set[str]:
    """The mailboxes whose sent folders can hold a reply to the actions' items."""
    names: set[str] = set()
    for action in actions:
        for key in action.item_keys:
            rec = items.get(key)
            if rec is not None:
                names.update(_mailboxes_of(config, rec))
    return names


def hold_unchecked(
    config: Config,
    actions: Sequence[scheduler.Action],
    items: Mapping[str, ItemRecord],
    unreached: Iterable[str],
    held_since: Mapping[str, dt.datetime],
    now: dt.datetime,
) -> scheduler.Hold:
    """`scheduler.hold_unchecked` for the items seen in a mailbox in ``unreached`` (whose
    pre-send re-check failed), logged: once when an item's hold begins, and when an item
    goes out unchecked."""
    down = set(unreached)
    unchecked = frozenset(
        key for a in actions for key in a.item_keys
        if (rec := items.get(key)) is not None and down & _mailboxes_of(config, rec)
    )
    hold = scheduler.hold_unchecked(
        actions, unchecked=unchecked, deadline_of={k: items[k].deadline for k in unchecked},
        held_since=held_since, now=now, grace=config.notify.recheck_grace,
    )  # fmt: skip
    def mailboxes(keys: Iterable[str]) -> list[str]:
        return sorted(down & {m for k in keys for m in _mailboxes_of(config, items[k])})

    started = [k for k in hold.held if k not in held_since]
    if started:
        until = min(hold.held[k] for k in started) + config.notify.recheck_grace
        log.warning("action_held", items=len(started), mailboxes=mailboxes(started),
                    until=until.isoformat(), reason="mailbox not re-checked")
    for reason in sorted(set(hold.unchecked_sent.values())):
        keys = [k for k, r in hold.unchecked_sent.items() if r == reason]
        log.warning("action_unchecked", items=len(keys), mailboxes=mailboxes(keys),
                    reason=reason)
    return hold


def _mailboxes_of(config: Config, rec: ItemRecord) -> set[str]:
    """The mailboxes whose sent folders can hold a reply to ``rec``."""
    return set(rec.mailboxes) | {
        mb.name for mb in config.mailboxes if mb.owner_address == rec.account
    }


def skip(store: Store, skips: Iterable[scheduler.Skip]) -> None:
    """Record the actions the plan gave up on."""
    for s in skips:
        store.mark_items_done(s.kind, [s.key], "skipped")
        log.warning("action_skipped", kind=s.kind, reason=s.reason)


def enqueue(
    store: Store, config: Config, actions: Iterable[scheduler.Action], now: dt.datetime
) -> None:
    """Record each action in the outbox (its items marked in the same transaction)."""
    for action in actions:
        store.enqueue(
            kind=action.kind,
            recipient=action.to,
            cc=action.cc,
            account=action.account,
            nudge_keys=action.nudge_keys,
            escalation_keys=action.escalation_keys,
            message_id=compose.make_message_id(compose.message_id_domain(config)),
            now=now,
        )
        log.info("action_queued", kind=action.kind, to=action.to, items=len(action.item_keys))
