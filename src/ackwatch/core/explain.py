"""``ackwatch deadline``'s answer: what ackwatch would do with one hypothetical mail.

`explain` classifies a synthetic client mail from a sender at an instant and gives its
policy, clock, responsible account and deadlines by the same rules as `item_rules`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ackwatch.config import Config
from ackwatch.core import classify as cls_mod
from ackwatch.core.item_rules import (
    deadlines_for,
    is_tracked,
    policy_named,
    policy_timezone,
    responsible_account,
)
from ackwatch.core.message import Address, Message


@dataclass(frozen=True)
class Explanation:
    """Answer to "why did / didn't Anna get a nudge?" for one hypothetical client mail.

    Datetimes are in the policy calendar's timezone (the config's `timezone` for
    calendar-clock policies without a calendar).
    """

    tracked: bool  # False when the sender is agency-side, ignored, or unknown and ignored
    reason: str  # why it is (not) tracked, e.g. "client", "unknown-sender-tracked"
    policy: str | None
    clock: str | None
    client: str | None
    account: str | None
    received: dt.datetime
    deadline: dt.datetime | None
    nudge_at: dt.datetime | None
    escalate_at: dt.datetime | None


def _synthetic(config: Config, sender: str, received: dt.datetime, to: Sequence[str]) -> Message:
    sender = sender.strip().lower()
    recipients = tuple(a.strip().lower() for a in to if a.strip())
    mailbox = None
    for mb in config.mailboxes:
        if mb.owner_address in recipients or mb.username.lower() in recipients:
            mailbox = mb
            break
    if mailbox is None and config.mailboxes:
        mailbox = config.mailboxes[0]
    if not recipients and mailbox is not None:
        recipients = (mailbox.owner_address,)
    digest = hashlib.sha256(
        f"{sender}\0{received.isoformat()}\0{','.join(recipients)}".encode()
    ).hexdigest()[:24]
    message_id = f"<explain.{digest}@ackwatch.invalid>"
    return Message(
        key=message_id,
        message_id=message_id,
        mailbox=mailbox.name if mailbox is not None else "",
        folder=mailbox.folders.inbox[0] if mailbox is not None and mailbox.folders.inbox else "INBOX",
        role="inbox",
        uid=0,
        received=received.astimezone(dt.UTC),
        sender=Address(sender),
        to=tuple(Address(a) for a in recipients),
        subject="",
        return_path=f"<{sender}>",
    )


def _untracked_reason(c: cls_mod.Classification) -> str:
    if c.kind == "agency" or c.reason == "unverified-agency-sender":
        return "agency-sender"
    if c.reason == "unknown-sender":
        return "unknown-sender-ignored"
    return f"{c.kind}:{c.reason}"


def explain(
    config: Config, sender: str, received: dt.datetime, to: tuple[str, ...] = ()
) -> Explanation:
    """What ackwatch would do with a client mail from ``sender`` received at ``received``.

    ``to`` defaults to the first mailbox's owner. The mail is synthetic (plain headers, no
    thread): it shows the classification, policy, responsible account and deadlines.
    ``reason`` is "client" or "unknown-sender-tracked" when tracked; otherwise
    "agency-sender", "unknown-sender-ignored", or "<kind>:<classify reason>" (for example
    "ignored:ignore-sender").
    """
    if received.tzinfo is None or received.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {received!r}")
    message = _synthetic(config, sender, received, to)
    c = cls_mod.classify(message, config)
    if not is_tracked(c):
        return Explanation(
            tracked=False,
            reason=_untracked_reason(c),
            policy=None,
            clock=None,
            client=c.client.name if c.client is not None else None,
            account=None,
            received=received.astimezone(ZoneInfo(config.timezone)),
            deadline=None,
            nudge_at=None,
            escalate_at=None,
        )
    client = c.client
    policy = policy_named(client.policy if client is not None else "default", config)
    d = deadlines_for(received, policy.name, config)
    return Explanation(
        tracked=True,
        reason="client" if client is not None else "unknown-sender-tracked",
        policy=d.policy,
        clock=d.clock,
        client=client.name if client is not None else None,
        account=responsible_account(
            message, client.account if client is not None else None, config
        ),
        received=received.astimezone(policy_timezone(policy, config)),
        deadline=d.deadline,
        nudge_at=d.nudge_at,
        escalate_at=d.escalate_at,
    )
