"""What to send, to whom, and when to look again: the scheduler's decisions, pure.

`plan()` is a function of the pending items, what was already sent, the config and
``now``. The daemon calls it whenever something changed or the next due time came, sends
what it returns, and sleeps until ``Plan.next_due`` (or the next watcher event).

Rules (DESIGN.md):

- A nudge is due at the item's ``nudge_at``, to the responsible account, or to its backup
  when the account is away (``recipient_of``), with the account's mentor in Cc
  (``mentor_of``: none while the mentor is away). An escalation is due at ``escalate_at``,
  to the account's manager with the account in Cc (never the mentor). Each item is nudged at most once and
  escalated at most once (the caller marks items when it queues their mail).
- Batching: when one item of a recipient is due, every other item of that recipient due
  within ``notify.batch_window`` goes in the same mail. Escalations are grouped per
  (manager, account) so each mail is about one person's work, with that person in Cc.
- Cap: a person gets at most ``notify.max_per_hour`` mails per rolling hour, To or Cc
  (`hourlycap`). When the due mails to someone would exceed the room left, they are
  merged into one summary mail; with no room at all they wait until the oldest mail of
  the hour is an hour old. An escalation copies the account only while the account has
  room; the manager gets it either way. A mentor's copy likewise: over the mentor's cap
  the nudge goes to the account without it (`Action.cc_left_out` says who was left out).

The batching and the cap are one routine for every mail that goes out about items or
promises (`batches_due`, then `fit_to_cap`; `promise_rules.plan` uses them too), so
nudges and promise notices follow the same rule. A mail only ever carries one kind of
promise notice (reminders and overdue notices are kept apart in the outbox), so over
the cap the promise notices of a person merge into one mail per kind; should even that
be more than the room left, the earliest due go and the others wait for the hour.
- After a downtime, everything that came due meanwhile is due now: it goes out once,
  batched by the same rules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from ackwatch.config import Config
from ackwatch.core.hourlycap import HourlyCap

ActionKind = Literal["nudge", "escalation", "summary"]


@dataclass(frozen=True)
class Pending:
    """The scheduler's view of one pending item."""

    key: str
    account: str | None
    nudge_at: dt.datetime
    escalate_at: dt.datetime | None
    nudge_done: bool
    escalation_done: bool


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    to: str
    cc: tuple[str, ...]
    account: str | None  # whose items (None for a summary spanning several accounts)
    nudge_keys: tuple[str, ...]
    escalation_keys: tuple[str, ...]
    due: dt.datetime  # the earliest due time among its items
    cc_left_out: tuple[str, ...] = ()  # copies the hourly cap left out (`fit_to_cap`)

    @property
    def item_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.nudge_keys + self.escalation_keys))


@dataclass(frozen=True)
class Skip:
    """An action that can never be sent (no manager configured): mark it, do not retry."""

    kind: Literal["nudge", "escalation"]
    key: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """The mails that go now, the actions given up on, when to plan again, and the
    people found with no room left in their hour, with when a place frees for each
    (`fit_to_cap`): until then a mail to them cannot go, whatever else is due."""

    actions: tuple[Action, ...]
    skips: tuple[Skip, ...]
    next_due: dt.datetime | None
    capped: tuple[tuple[str, dt.datetime], ...] = ()


def plan(
    pending: Sequence[Pending],
    *,
    config: Config,
    now: dt.datetime,
    recipient_of: Callable[[str], str],
    sent_last_hour: Mapping[str, Sequence[dt.datetime]],
    mentor_of: Callable[[str], str | None] = lambda account: None,
) -> Plan:
    """Decide the mails due at ``now``.

    ``recipient_of(account)`` gives who receives that account's nudges right now (the
    account or its backup); ``mentor_of(account)`` who is copied on them (or None). ``sent_last_hour[address]`` lists when mails reaching that
    address (To or Cc) were queued during the last hour (for the cap).
    """
    window = config.notify.batch_window
    skips: list[Skip] = []
    future: list[dt.datetime] = []

    # Candidate groups: (kind, recipient, cc, account) -> [(due, key)]
    groups: dict[tuple[str, str, tuple[str, ...], str | None], list[tuple[dt.datetime, str]]]
    groups = defaultdict(list)
    for p in pending:
        if not p.nudge_done:
            if p.account is None:
                skips.append(Skip("nudge", p.key, "no responsible account"))
            else:
                mentor = mentor_of(p.account)
                copy = (mentor,) if mentor else ()
                groups[("nudge", recipient_of(p.account), copy, p.account)].append(
                    (p.nudge_at, p.key)
                )
        if not p.escalation_done and p.escalate_at is not None:
            account = config.account(p.account) if p.account else None
            manager = account.manager if account else None
            if manager is None:
                skips.append(Skip("escalation", p.key, "no manager configured"))
            else:
                assert p.account is not None
                groups[("escalation", manager, (p.account,), p.account)].append(
                    (p.escalate_at, p.key)
                )

    due_groups: dict[str, list[Action]] = defaultdict(list)
    for (kind, to, cc, whose), batch in batches_due(groups, now=now, window=window,
                                                    future=future):
        due_groups[to].append(_action(kind, to, cc, whose, batch))
    cap = HourlyCap(config.notify.max_per_hour, now, sent_last_hour)
    capped: list[tuple[str, dt.datetime]] = []
    actions = fit_to_cap(due_groups, cap, lambda to, built: [_summary(to, built)], future,
                         capped=capped)

    next_due = min(future) if future else None
    return Plan(tuple(actions), tuple(skips), next_due, tuple(capped))


def _action(
    kind: str,
    to: str,
    cc: tuple[str, ...],
    account: str | None,
    batch: list[tuple[dt.datetime, str]],
) -> Action:
    keys = tuple(k for _, k in batch)
    due = batch[0][0]
    cc = tuple(c for c in cc if c != to)
    if kind == "nudge":
        return Action("nudge", to, cc, account, keys, (), due)
    return Action("escalation", to, cc, account, (), keys, due)


def _summary(to: str, actions: Sequence[Action]) -> Action:
    nudge_keys = tuple(dict.fromkeys(k for a in actions for k in a.nudge_keys))
    escalation_keys = tuple(dict.fromkeys(k for a in actions for k in a.escalation_keys))
    cc = tuple(dict.fromkeys(c for a in actions for c in a.cc if c != to))
    accounts = {a.account for a in actions}
    account = accounts.pop() if len(accounts) == 1 else None
    return Action(
        "summary", to, cc, account, nudge_keys, escalation_keys, min(a.due for a in actions)
    )


# --------------------------------------------------------------------------- the rule

_K = TypeVar("_K", bound=Hashable)
_T = TypeVar("_T")


class Mail(Protocol):
    """What `fit_to_cap` reads of a planned mail (`Action`, `promise_rules.Action`): a
    dataclass, as it replaces the Cc."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @property
    def kind(self) -> str: ...
    @property
    def to(self) -> str: ...
    @property
    def cc(self) -> tuple[str, ...]: ...
    @property
    def account(self) -> str | None: ...
    @property
    def due(self) -> dt.datetime: ...
    @property
    def cc_left_out(self) -> tuple[str, ...]: ...


_M = TypeVar("_M", bound=Mail)


def batches_due(
    groups: Mapping[_K, Sequence[tuple[dt.datetime, _T]]],
    *,
    now: dt.datetime,
    window: dt.timedelta,
    future: list[dt.datetime],
) -> Iterator[tuple[_K, list[tuple[dt.datetime, _T]]]]:
    """Each group (one mail's worth: recipient, Cc, account, kind) with a member due at
    ``now``, with its members due up to ``now + window``, sorted. When the group comes
    due next (nothing due yet, or members past the window) is appended to ``future``."""
    horizon = now + window
    for key, members in groups.items():
        earliest = min(t for t, _ in members)
        if earliest > now:
            future.append(earliest)
            continue
        batch = sorted(m for m in members if m[0] <= horizon)
        later = [t for t, _ in members if t > horizon]
        if later:
            future.append(min(later))
        yield key, batch


def fit_to_cap(
    per_recipient: Mapping[str, Sequence[_M]],
    cap: HourlyCap,
    merge: Callable[[str, Sequence[_M]], Sequence[_M]],
    future: list[dt.datetime],
    *,
    capped: list[tuple[str, dt.datetime]] | None = None,
) -> list[_M]:
    """The mails that go out now, within each person's hourly room (the module doc).

    Per recipient: the due mails go as they are while they fit in the room left; more
    than that are merged (``merge(to, mails)``, in due order); no room at all, or a
    merge still larger than the room, and what does not go waits until the oldest mail
    of the hour rolls out (appended to ``future``). Then each Cc is kept only while the
    copied person has room; the others go into the mail's ``cc_left_out``. Consumes room
    in ``cap``. Each recipient with no room at all is appended to ``capped`` with when a
    place frees: their room is what their hour left them (this loop takes room only
    from each mail's own recipient, and the copies come after it), so none of their
    mails can go before then.
    """
    actions: list[_M] = []
    for to, mails in sorted(per_recipient.items()):
        room = cap.room(to)
        if room <= 0:
            future.append(cap.free_at(to))
            if capped is not None:
                capped.append((to, cap.free_at(to)))
            continue
        built = sorted(mails, key=lambda a: (a.due, a.kind, a.account or ""))
        chosen = list(merge(to, built)) if len(built) > room else built
        if len(chosen) > room:
            chosen = chosen[:room]
            future.append(cap.free_at(to))
        for _ in chosen:
            cap.take(to)
        actions.extend(chosen)
    # Then the copies: a Cc counts for the copied person too, within the room left.
    return [_admit_copies(a, cap) if a.cc else a for a in actions]


def _admit_copies(mail: _M, cap: HourlyCap) -> _M:
    kept = cap.admit_cc(mail.cc)
    left_out = tuple(c for c in mail.cc if c not in kept)
    return dataclasses.replace(mail, cc=kept, cc_left_out=left_out)


# --------------------------------------------------------------------------- unchecked mailboxes


@dataclass(frozen=True)
class Hold:
    """What `hold_unchecked` decided: the actions that go out now (without the items
    held), the items held with the instant each hold began, the items that go out
    although their mailbox could not be re-checked (with why), and when the earliest hold
    ends."""

    actions: tuple[Action, ...]
    held: Mapping[str, dt.datetime]
    unchecked_sent: Mapping[str, str]  # item key -> "grace over" | "deadline"
    next_due: dt.datetime | None


def hold_unchecked(
    actions: Sequence[Action],
    *,
    unchecked: frozenset[str],
    deadline_of: Mapping[str, dt.datetime],
    held_since: Mapping[str, dt.datetime],
    now: dt.datetime,
    grace: dt.timedelta,
) -> Hold:
    """Hold back the items of ``actions`` whose mailboxes the pre-send re-check could not
    reach (``unchecked``: their keys) for ``grace`` from the first time they were held
    (``held_since``; now for a new one), so that a reply made just before an outage is not
    nudged about when the mailbox comes back within the grace.

    A nudge is sent at once instead when holding it for the whole grace would carry it past
    the item's deadline (``deadline_of``): its point is to arrive while there is time left.
    An escalation's deadline is already past; it is held for the whole grace. An action
    left with no item is dropped; the others keep their kind and recipients.
    """
    held: dict[str, dt.datetime] = {}
    sent_unchecked: dict[str, str] = {}
    kept: list[Action] = []
    for action in actions:
        nudges = [k for k in action.nudge_keys if not _hold(
            k, True, unchecked, deadline_of, held_since, now, grace, held, sent_unchecked)]
        escalations = [k for k in action.escalation_keys if not _hold(
            k, False, unchecked, deadline_of, held_since, now, grace, held, sent_unchecked)]
        if not nudges and not escalations:
            continue
        kept.append(dataclasses.replace(
            action, nudge_keys=tuple(nudges), escalation_keys=tuple(escalations)))
    ends = [since + grace for since in held.values()]
    return Hold(tuple(kept), held, sent_unchecked, min(ends) if ends else None)


def _hold(
    key: str,
    is_nudge: bool,
    unchecked: frozenset[str],
    deadline_of: Mapping[str, dt.datetime],
    held_since: Mapping[str, dt.datetime],
    now: dt.datetime,
    grace: dt.timedelta,
    held: dict[str, dt.datetime],
    sent_unchecked: dict[str, str],
) -> bool:
    """Whether the item ``key`` stays out of its action now (`hold_unchecked`)."""
    if key not in unchecked:
        return False
    since = held_since.get(key, now)
    until = since + grace
    deadline = deadline_of.get(key)
    if is_nudge and deadline is not None and until > deadline:
        sent_unchecked[key] = "deadline"
        return False
    if now >= until:
        sent_unchecked[key] = "grace over"
        return False
    held[key] = since
    return True
