"""SLA rules: pending items, acknowledgements, deadlines, who is responsible.

Pure functions of (messages, config, now).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from .config import Config
from .message import Message

AckKind = Literal["reply", "answered", "dismissed"]


@dataclass(frozen=True)
class Ack:
    key: str  # the acknowledging message's key (or the item's own key for flags)
    at: dt.datetime
    kind: AckKind
    by: str  # address of the agency sender ("" for flags)


@dataclass(frozen=True)
class Deadlines:
    policy: str
    clock: str
    deadline: dt.datetime
    nudge_at: dt.datetime
    escalate_at: dt.datetime | None


@dataclass(frozen=True)
class Item:
    key: str  # the first client message's key
    thread: str
    message_id: str | None
    client_address: str
    client: str | None  # configured client name, None for unknown senders
    subject: str
    received: dt.datetime
    mailboxes: tuple[str, ...]  # where the client message was seen
    account: str | None  # responsible account (before away/backup substitution)
    deadlines: Deadlines
    ack: Ack | None = None
    follow_ups: tuple[str, ...] = ()  # later client messages folded into this item

    @property
    def state(self) -> Literal["pending", "acknowledged"]:
        return "pending" if self.ack is None else "acknowledged"


def deadlines_for(received: dt.datetime, policy_name: str, config: Config) -> Deadlines:
    raise NotImplementedError


def responsible_account(message: Message, client_account: str | None, config: Config) -> str | None:
    raise NotImplementedError


def evaluate(messages: Iterable[Message], config: Config) -> tuple[Item, ...]:
    raise NotImplementedError


def recipient_for(account: str, config: Config, at: dt.datetime, messages: Iterable[Message]) -> str:
    raise NotImplementedError


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


def explain(
    config: Config, sender: str, received: dt.datetime, to: tuple[str, ...] = ()
) -> Explanation:
    raise NotImplementedError
