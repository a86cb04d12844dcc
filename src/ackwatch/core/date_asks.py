"""The "say by when" note (``promise.ask_for_date``): when an account's acknowledgement
named no date, one short note to the account. Pure: no I/O, ``now`` is a parameter.

Rules (the issue's, and where it is silent, marked *):

- Only for an acknowledgement whose text the keeper read and found without a date: so
  only replies seen live (history and ``promise.enabled: false`` are never read), never
  the \\Answered flag or a dismissal.
- Not when an agency mail of the thread that reaches the client, received after the
  acknowledgement and at most ``ask_grace`` after it, names a date (its text is read for
  that). The note waits until the grace has passed, and until those mails are read.
- At most one note per item (the store records the decision with the outbox row).
- To the account that wrote the acknowledgement when it is a configured account, else
  the item's account*; replaced by its backup when away, like nudges. Never to a
  client: an address that is no configured account gets nothing (skipped)*.
- *A note not sent within `STALE` after its time (a downtime) is skipped: "your reply
  yesterday did not say by when" is noise; the report still counts it.
- Batched per recipient within ``notify.batch_window`` and under the shared hourly cap
  (``notify.max_per_hour``, To or Cc), by the same routine as nudges (`dispatch`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ackwatch.core.dispatch import batches_due, fit_to_cap
from ackwatch.core.hourlycap import HourlyCap

KIND = "ask-date"
STALE = dt.timedelta(hours=4)

Verdict = Literal["wait", "read", "skip", "due", "stale"]


@dataclass(frozen=True)
class Later:
    """An agency message of the item's thread that reaches the client."""

    key: str
    received: dt.datetime
    named_date: bool | None  # True / False once its text is read; None: not read yet


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    at: dt.datetime  # when the note is (or was) due: the acknowledgement + the grace
    to_read: tuple[str, ...] = ()  # keys of later mails still to read


def decide(
    ack_key: str,
    ack_at: dt.datetime,
    later: Iterable[Later],
    *,
    grace: dt.timedelta,
    now: dt.datetime,
) -> Decision:
    """Whether the note about an acknowledgement that named no date is due at ``now``."""
    at = ack_at + grace
    within = [m for m in later if m.key != ack_key and ack_at < m.received <= at]
    if any(m.named_date for m in within):
        return Decision("skip", at)
    unread = tuple(sorted(m.key for m in within if m.named_date is None))
    if now < at:
        return Decision("wait", at, unread)
    if unread:
        return Decision("read", at, unread)
    if now > at + STALE:
        return Decision("stale", at)
    return Decision("due", at)


@dataclass(frozen=True)
class Due:
    item_key: str
    account: str  # the configured account the note is about
    at: dt.datetime


@dataclass(frozen=True)
class Action:
    kind: str
    to: str
    cc: tuple[str, ...]
    account: str | None
    item_keys: tuple[str, ...]
    due: dt.datetime
    cc_left_out: tuple[str, ...] = ()  # `dispatch.fit_to_cap`'s; a note copies nobody


def plan(
    due: Sequence[Due],
    *,
    now: dt.datetime,
    recipient_of: Callable[[str], str],
    batch_window: dt.timedelta,
    max_per_hour: int,
    sent_last_hour: Mapping[str, Sequence[dt.datetime]],
) -> tuple[list[Action], dt.datetime | None]:
    """The notes that go out at ``now`` (one mail per recipient and account, batched and
    capped as nudges are), and when the next one comes due."""
    groups: dict[tuple[str, str], list[tuple[dt.datetime, str]]] = defaultdict(list)
    for d in due:
        groups[(recipient_of(d.account), d.account)].append((d.at, d.item_key))
    future: list[dt.datetime] = []
    per_recipient: dict[str, list[Action]] = defaultdict(list)
    for (to, account), batch in batches_due(dict(sorted(groups.items())), now=now,
                                            window=batch_window, future=future):
        keys = tuple(dict.fromkeys(k for _, k in batch))
        per_recipient[to].append(Action(KIND, to, (), account, keys, batch[0][0]))
    cap = HourlyCap(max_per_hour, now, sent_last_hour)
    actions = fit_to_cap(per_recipient, cap, _merged, future)
    return actions, min(future, default=None)


def _merged(to: str, actions: Sequence[Action]) -> list[Action]:
    """Several accounts' notes to one person (a backup) as one mail."""
    accounts = {a.account for a in actions}
    return [Action(
        KIND, to, (), accounts.pop() if len(accounts) == 1 else None,
        tuple(dict.fromkeys(k for a in actions for k in a.item_keys)),
        min(a.due for a in actions),
    )]
