"""Promise keeper, daemon half: kept, broken, moved, and what is due. Pure.

An acknowledgement often says by when the work will be ready ("by Friday noon"); the
parser half (`ackwatch.core.promise_text`) finds that instant in the reply's text. This module
decides, from the recorded promises, the later agency messages of their threads and
``now``, what became of each promise and which reminders are due. Nothing here reads the
clock, the network or the disk.

Rules (the choices DESIGN.md leaves open are marked *):

- The *follow-up* of a promise is the first agency message of its thread that reaches
  the client (`classify.is_acknowledgement_candidate`), received strictly after the
  promise was made (INTERNALDATE of the promising message), other than that message.
- A follow-up received strictly before the promised instant settles the promise: it is
  **kept** (the delivery, or at least word to the client in time), or **moved** when the
  follow-up itself makes a new promise (its body is read for that; until it is read the
  promise counts as kept). The new promise replaces the old one.
- No follow-up before the promised instant: from ``now >= promised`` the promise is
  **broken**. A later follow-up does not mend it* (it stays broken; a new date in that
  follow-up opens a new promise).
- Until then it is **open**. Reminder: at ``promised - remind_before`` on the business
  clock of the account's calendar, to the account (its backup when away, as for
  nudges), with the account's mentor in Cc (as for nudges: not while away, and only
  within the mentor's hourly cap). *When that instant is not after the moment the promise was made (promised
  "within the hour" with a 2h lead), there is no reminder: the account just said it.
  *A reminder not sent before the promised instant (downtime) is skipped.
- Overdue notice: at the promised instant, to the account's manager with the account
  in Cc, while the promise is broken and nothing followed it (a late delivery seen
  before the notice goes out cancels it). No manager: no notice (skipped).
- Notices are batched and capped by the same routine as nudges (`dispatch.batches_due`
  and `dispatch.fit_to_cap`): everything due within ``notify.batch_window`` goes in one
  mail, and they share the per-recipient hourly cap (``notify.max_per_hour``). More due
  than the room left merge into one mail per kind (reminders, overdue notices); with
  no room left they wait for the hour to roll.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from ackwatch.config import CalendarConfig, Config, OpenRange
from ackwatch.core.business_clock import business_calendar
from ackwatch.core.dispatch import batches_due, fit_to_cap
from ackwatch.core.hourlycap import HourlyCap

State = Literal["open", "kept", "moved", "broken"]
NoticeKind = Literal["promise", "promise-overdue"]
NOTICE_KINDS: tuple[str, ...] = ("promise", "promise-overdue")
STATES: tuple[str, ...] = ("open", "kept", "moved", "broken")


@dataclass(frozen=True)
class Recorded:
    """The decision-relevant part of a recorded promise."""

    id: int
    source_key: str  # the agency message that made it
    account: str | None  # who made it (gets the reminder)
    made_at: dt.datetime  # received time (INTERNALDATE) of that message
    promised: dt.datetime
    remind_at: dt.datetime | None  # None: no reminder (see the module doc)
    reminder_done: bool = False
    overdue_done: bool = False


@dataclass(frozen=True)
class Later:
    """An agency message of the promise's thread that reaches the client."""

    key: str
    received: dt.datetime
    # Whether its body made a promise: True / False once read, None while not read.
    promised: bool | None = None


@dataclass(frozen=True)
class Assessment:
    state: State
    follow_key: str | None  # the follow-up message, if any
    settled_at: dt.datetime | None  # kept/moved: the follow-up's time; broken: the instant
    read_needed: bool  # the follow-up's body has not been read yet


@dataclass(frozen=True)
class Due:
    kind: NoticeKind
    promise_id: int
    account: str | None
    at: dt.datetime


@dataclass(frozen=True)
class Skip:
    kind: NoticeKind
    promise_id: int
    reason: str


@dataclass(frozen=True)
class Action:
    kind: NoticeKind
    to: str
    cc: tuple[str, ...]
    account: str | None  # whose promises (None for a merged mail spanning several)
    promise_ids: tuple[int, ...]
    due: dt.datetime
    cc_left_out: tuple[str, ...] = ()  # copies the hourly cap left out (`fit_to_cap`)


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    skips: tuple[Skip, ...]
    next_due: dt.datetime | None


# --------------------------------------------------------------------------- decisions


def follow_up(promise: Recorded, later: Iterable[Later]) -> Later | None:
    """The first message of ``later`` strictly after the promise was made (not itself)."""
    candidates = [m for m in later if m.received > promise.made_at and m.key != promise.source_key]
    return min(candidates, key=lambda m: (m.received, m.key), default=None)


def assess(promise: Recorded, later: Iterable[Later], now: dt.datetime) -> Assessment:
    """What became of ``promise`` as of ``now`` (see the module doc)."""
    follow = follow_up(promise, later)
    if follow is None:
        if now >= promise.promised:
            return Assessment("broken", None, promise.promised, False)
        return Assessment("open", None, None, False)
    read_needed = follow.promised is None
    if follow.received < promise.promised:
        state: State = "moved" if follow.promised else "kept"
        return Assessment(state, follow.key, follow.received, read_needed)
    return Assessment("broken", follow.key, promise.promised, read_needed)


def notices_due(
    assessed: Iterable[tuple[Recorded, Assessment]], now: dt.datetime
) -> tuple[list[Due], list[Skip], dt.datetime | None]:
    """(notices not sent yet, due now or later; notices never to send; the next instant
    an open promise breaks). `plan` picks what is due at ``now``."""
    due: list[Due] = []
    skips: list[Skip] = []
    future: list[dt.datetime] = []
    for p, a in assessed:
        if a.state == "open":
            future.append(p.promised)  # it breaks then
            if not p.reminder_done and p.remind_at is not None:
                due.append(Due("promise", p.id, p.account, p.remind_at))
        elif a.state == "broken":
            if not p.reminder_done and p.remind_at is not None:
                skips.append(Skip("promise", p.id, "the promised instant passed first"))
            if not p.overdue_done and a.follow_key is None:
                due.append(Due("promise-overdue", p.id, p.account, p.promised))
    return due, skips, min(future, default=None)


def plan(
    due: Sequence[Due],
    *,
    now: dt.datetime,
    recipient_of: Callable[[str], str],
    manager_of: Callable[[str], str | None],
    batch_window: dt.timedelta,
    max_per_hour: int,
    sent_last_hour: Mapping[str, Sequence[dt.datetime]],
    mentor_of: Callable[[str], str | None] = lambda account: None,
) -> Plan:
    """The mails due at ``now``: reminders per (recipient, account) with the account's
    mentor (``mentor_of``) in Cc, overdue notices per (manager, account) with the account
    in Cc. When one notice of a group is due, the
    others due within ``batch_window`` go in the same mail, and the hourly cap applies
    as to nudges (`dispatch.fit_to_cap`: over the room left, one mail per kind)."""
    skips: list[Skip] = []
    groups: dict[tuple[NoticeKind, str, tuple[str, ...], str], list[tuple[dt.datetime, int]]]
    groups = defaultdict(list)
    for d in due:
        if not d.account:
            if d.at <= now:
                skips.append(Skip(d.kind, d.promise_id, "no responsible account"))
            continue
        if d.kind == "promise":
            to = recipient_of(d.account)
            mentor = mentor_of(d.account)
            copy = (mentor,) if mentor and mentor.lower() != to.lower() else ()
            groups[(d.kind, to, copy, d.account)].append((d.at, d.promise_id))
        else:
            manager = manager_of(d.account)
            if not manager:
                if d.at <= now:
                    skips.append(Skip(d.kind, d.promise_id, "no manager configured"))
                continue
            cc: tuple[str, ...] = (d.account,) if d.account.lower() != manager.lower() else ()
            groups[(d.kind, manager, cc, d.account)].append((d.at, d.promise_id))

    future: list[dt.datetime] = []
    per_recipient: dict[str, list[Action]] = defaultdict(list)
    for (kind, to, cc, account), batch in batches_due(dict(sorted(groups.items())), now=now,
                                                      window=batch_window, future=future):
        ids = tuple(dict.fromkeys(promise_id for _, promise_id in batch))
        per_recipient[to].append(Action(kind, to, cc, account, ids, batch[0][0]))
    cap = HourlyCap(max_per_hour, now, sent_last_hour)  # To or Cc, as for nudges
    actions = fit_to_cap(per_recipient, cap, _merged, future)
    return Plan(tuple(actions), tuple(skips), min(future, default=None))


def _merged(to: str, actions: Sequence[Action]) -> list[Action]:
    """``actions`` (in due order) as one mail per kind: the promise ids of each kind
    together, every Cc, the account when they share one (else None)."""
    by_kind: dict[str, list[Action]] = {}
    for a in actions:
        by_kind.setdefault(a.kind, []).append(a)
    merged = []
    for group in by_kind.values():
        if len(group) == 1:
            merged.append(group[0])
            continue
        accounts = {a.account for a in group}
        merged.append(Action(
            group[0].kind,
            to,
            tuple(dict.fromkeys(c for a in group for c in a.cc if c != to)),
            accounts.pop() if len(accounts) == 1 else None,
            tuple(dict.fromkeys(i for a in group for i in a.promise_ids)),
            min(a.due for a in group),
        ))
    return sorted(merged, key=lambda a: (a.due, a.kind))


# --------------------------------------------------------------------------- calendar


def account_calendar(config: Config, account: str | None) -> CalendarConfig:
    """The calendar of the account that made a promise (its own, else the first one;
    with none configured, Mon-Fri 09:00-17:00 in the config's timezone, as
    ``ackwatch promise`` does)."""
    calendar = config.calendar_for_account(account)
    if calendar is not None:
        return calendar
    office = (OpenRange(9 * 60, 17 * 60),)
    return CalendarConfig("default", config.timezone, (office,) * 5 + ((),) * 2)


def reminder_at(
    made_at: dt.datetime,
    promised: dt.datetime,
    remind_before: dt.timedelta,
    calendar: CalendarConfig,
) -> dt.datetime | None:
    """``promised - remind_before`` on the calendar's business clock; None when that is
    not after ``made_at`` (no reminder for a promise made inside its own lead time)."""
    try:
        at = business_calendar(calendar).subtract(promised, remind_before)
    except (ValueError, OverflowError):  # a calendar that is never open
        at = promised - remind_before
    return at if at > made_at else None


# --------------------------------------------------------------------------- listed

OWED_BROKEN_FOR = dt.timedelta(days=30)  # a broken promise stays listed this long


class Tracked(Protocol):
    """A recorded promise as far as `still_owed` reads it (`store.PromiseRecord`)."""

    @property
    def state(self) -> str: ...
    @property
    def follow_key(self) -> str | None: ...
    @property
    def promised(self) -> dt.datetime: ...


T = TypeVar("T", bound=Tracked)


def still_owed(promises: Iterable[T], now: dt.datetime) -> list[T]:
    """The promises the client is still waiting to hear back on, in their order: those
    nothing followed that are open, or broken (the date passed) within
    `OWED_BROKEN_FOR`. What ``ackwatch status`` and the board list."""
    return [
        p for p in promises
        if p.follow_key is None
        and (p.state == "open" or (p.state == "broken" and p.promised >= now - OWED_BROKEN_FOR))
    ]


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Counts:
    made: int = 0
    kept: int = 0
    moved: int = 0
    broken: int = 0
    open: int = 0

    def add(self, state: str) -> Counts:
        values = {f: getattr(self, f) for f in COUNT_FIELDS}
        values["made"] += 1
        if state in values:
            values[state] += 1
        return Counts(**values)


COUNT_FIELDS: tuple[str, ...] = ("made", "kept", "moved", "broken", "open")


@dataclass(frozen=True)
class Figures:
    totals: Counts
    by_account: tuple[tuple[str | None, Counts], ...]
    by_client: tuple[tuple[str, Counts], ...]


def figures(rows: Iterable[tuple[str | None, str, str]]) -> Figures:
    """Promises made in a period, by outcome: rows of (account, client, state)."""
    totals = Counts()
    accounts: dict[str | None, Counts] = {}
    clients: dict[str, Counts] = {}
    for account, client, state in rows:
        totals = totals.add(state)
        accounts[account] = accounts.get(account, Counts()).add(state)
        clients[client] = clients.get(client, Counts()).add(state)

    def order(pair: tuple) -> tuple:
        return (-pair[1].made, pair[0] or "")

    return Figures(
        totals,
        tuple(sorted(accounts.items(), key=order)),
        tuple(sorted(clients.items(), key=order)),
    )


def figures_json(f: Figures) -> dict[str, object]:
    def counts(c: Counts) -> dict[str, int]:
        return {name: getattr(c, name) for name in COUNT_FIELDS}

    return {
        "totals": counts(f.totals),
        "by_account": [{"account": a, **counts(c)} for a, c in f.by_account],
        "by_client": [{"client": n, **counts(c)} for n, c in f.by_client],
    }


def figures_table(f: Figures, limit: int = 20) -> str:
    """A short text section for ``ackwatch report`` (table format)."""
    t = f.totals
    if t.made == 0:
        return "Promises: none made in this period.\n"
    lines = [
        f"Promises: {t.made} made, {t.kept} kept, {t.moved} moved, {t.broken} broken, "
        f"{t.open} open",
        f"  {'ACCOUNT / CLIENT':<28} {'MADE':>5} {'KEPT':>5} {'MOVED':>5} {'BROKEN':>6} {'OPEN':>5}",
    ]

    def row(name: str, c: Counts) -> str:
        name = name if len(name) <= 28 else name[:27] + "…"
        return f"  {name:<28} {c.made:>5} {c.kept:>5} {c.moved:>5} {c.broken:>6} {c.open:>5}"

    lines += [row(a or "(none)", c) for a, c in f.by_account[:limit]]
    lines += [row(n, c) for n, c in f.by_client[:limit]]
    return "\n".join(lines) + "\n"
