"""Nudges and escalations: what is due for the pending items, planned and queued."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

from ackwatch.config import Config
from ackwatch.core import dispatch as scheduler
from ackwatch.core import hourlycap
from ackwatch.core import item_rules as sla
from ackwatch.core.message import Message
from ackwatch.mail import compose
from ackwatch.store import ItemRecord, Store

if TYPE_CHECKING:
    from ackwatch.daemon.watchers import Recheck

log = structlog.get_logger(__name__)

MessagesOfAccounts = Callable[[Iterable[str], dt.datetime], list[Message]]


@dataclass(frozen=True)
class Due:
    """What `plan` found: the plan, the items it was made from by key, and who received
    for their accounts (`who_receives`)."""

    plan: scheduler.Plan
    items: dict[str, ItemRecord]
    receivers: tuple[dict[str, str], dict[str, str | None]] = ({}, {})


def plan(
    store: Store,
    config: Config,
    now: dt.datetime,
    messages_of_accounts: MessagesOfAccounts,
    capped: Mapping[str, dt.datetime] | None = None,
) -> Due:
    """What is due at ``now``, and to whom (an account away is replaced as
    `sla.recipient_for` says, from what ``messages_of_accounts`` gives).

    Until the earliest nudge or escalation not done yet comes due (one index lookup,
    `Store.next_action_after`), nothing else is read: a step runs at every watcher event,
    and one with an action only within the batch window would otherwise read those
    items, who of their accounts is away and the last hour's mail, for a plan that sends
    nothing. Once one is due, only the items with an action due within the batch window
    are read (`Store.items_due`: their nudge and escalation marks say what was done): a
    mail only ever batches items due by then, so the plan is the one all pending items
    would give, and the next due time beyond the window comes from the index. The cost
    of a step follows what is due, not what waits. An action that can never be sent (no
    account, no manager) is skipped when it comes due.

    ``capped`` (person -> when a place frees: the last plan's `scheduler.Plan.capped`)
    names the people over the hourly cap; those still over it (`still_capped`) have the
    actions that go only to them left unread (`skipped_for_cap`), and the earliest of
    their "frees at" joins ``next_due``, as the core would have put it there."""
    first = store.next_action_after(None)
    if first is None or first > now:
        return Due(scheduler.Plan((), (), first), {})
    horizon = now + config.notify.batch_window
    over_cap = still_capped(store, config, now, capped or {})
    no_nudges, no_escalations, carried, receivers = skipped_for_cap(
        config, now, over_cap, messages_of_accounts)
    records = store.items_due(horizon, skip_nudges_of=no_nudges,
                              skip_escalations_of=no_escalations)
    later = store.next_action_after(horizon)
    views = [
        scheduler.Pending(
            r.key, r.account, r.nudge_at, r.escalate_at,
            r.nudge_done is not None, r.escalation_done is not None,
        )
        for r in records
    ]
    accounts = {r.account for r in records if r.account}
    # Whose mails can go out now: the hourly cap reads only their people's last hour.
    nudged = {r.account for r in records
              if r.account and r.nudge_done is None and r.nudge_at <= horizon}
    escalated = {r.account for r in records if r.account and r.escalation_done is None
                 and r.escalate_at is not None and r.escalate_at <= horizon}
    recipients, mentors = who_receives(
        config, now, accounts - set(receivers[0]), messages_of_accounts)
    recipients.update(receivers[0])
    mentors.update(receivers[1])
    p = scheduler.plan(
        views, config=config, now=now,
        recipient_of=lambda acc: recipients.get(acc, acc),
        sent_last_hour=store.reached_since(now - hourlycap.HOUR, cap_people(
            config, nudged=nudged, escalated=escalated, recipients=recipients, mentors=mentors,
        )),
        mentor_of=lambda acc: mentors.get(acc),
    )
    found = {person.lower(): frees for person, frees in p.capped}
    for person, frees in carried.items():
        found.setdefault(person, frees)
    due_times = [t for t in (p.next_due, later, *carried.values()) if t is not None]
    p = dataclasses.replace(p, next_due=min(due_times, default=None),
                            capped=tuple(sorted(found.items())))
    return Due(p, {r.key: r for r in records}, (recipients, mentors))


def still_capped(
    store: Store, config: Config, now: dt.datetime, capped: Mapping[str, dt.datetime]
) -> dict[str, dt.datetime]:
    """The people of ``capped`` (person -> frees at) still over the hourly cap at ``now``.

    A person found with no room gets a place at ``frees at`` at the earliest: the oldest
    mail of their hour rolls out then. Any mail queued to them since (a nudge, an
    escalation, a promise notice or a copy: the promise keeper shares the cap, so none
    is while they have no room, and another node does not queue while this one leads)
    only adds to the hour and cannot bring that instant forward. So the memo may end
    early, never late; it ends at ``frees at``, when the next plan reads everything.
    What can free a place before then is a mail of their hour cancelled or failed (it
    no longer counts): hence their hour is counted again at each plan, one indexed
    count for these few people, rather than trusted."""
    waiting = {person: frees for person, frees in capped.items() if frees > now}
    if not waiting:
        return {}
    counts = store.reach_counts(now - hourlycap.HOUR, waiting)
    limit = config.notify.max_per_hour
    return {person: frees for person, frees in waiting.items()
            if counts.get(person, 0) >= limit}


def skipped_for_cap(
    config: Config, now: dt.datetime, capped: Mapping[str, dt.datetime],
    messages_of_accounts: MessagesOfAccounts,
) -> tuple[set[str], set[str], dict[str, dt.datetime],
           tuple[dict[str, str], dict[str, str | None]]]:
    """What a plan need not read while the people of ``capped`` are over the hourly cap:
    the accounts whose nudges go to one of them now (`who_receives`, asked only of the
    accounts that can have them as recipient: themselves, backup, manager), the accounts
    whose escalations do (their manager), the people those skips are for with when their
    place frees, and the receivers found on the way.

    Leaving those actions out changes no mail: `dispatch.fit_to_cap` gives a person with
    no room nothing, and a Cc is only admitted on a mail that goes, so the others' room
    is the same. Only the next due time would miss their "frees at", which is returned."""
    if not capped:
        return set(), set(), {}, ({}, {})
    managers = {acc.email: acc.manager.lower() for acc in config.accounts if acc.manager}
    no_escalations = {acc for acc, manager in managers.items() if manager in capped}
    maybe = [acc.email for acc in config.accounts
             if {acc.email, (acc.backup or "").lower(), (acc.manager or "").lower()} & set(capped)]
    recipients, mentors = who_receives(config, now, maybe, messages_of_accounts)
    no_nudges = {acc for acc, to in recipients.items() if to.lower() in capped}
    people = {to.lower() for acc, to in recipients.items() if acc in no_nudges}
    people |= {managers[acc] for acc in no_escalations}
    carried = {person: capped[person] for person in people if person in capped}
    return no_nudges, no_escalations, carried, (recipients, mentors)


def who_receives(
    config: Config, now: dt.datetime, accounts: Iterable[str],
    messages_of_accounts: MessagesOfAccounts,
) -> tuple[dict[str, str], dict[str, str | None]]:
    """Who receives the nudges of each of ``accounts`` at ``now`` (the account, or its
    backup while it is away: `sla.recipient_for`), and who is copied (`sla.mentor_copy`)."""
    accounts = set(accounts)
    messages = messages_of_accounts(accounts, now)
    return ({acc: sla.recipient_for(acc, config, now, messages) for acc in accounts},
            {acc: sla.mentor_copy(acc, config, now, messages) for acc in accounts})


def cap_people(
    config: Config,
    *,
    nudged: Iterable[str],
    escalated: Iterable[str],
    recipients: Mapping[str, str],
    mentors: Mapping[str, str | None],
) -> set[str]:
    """Everyone a plan's mails can reach, whose last hour the hourly cap must know: for
    the accounts ``nudged``, who receives their nudges now (``recipients``: the account
    or its backup while it is away) and their mentor (copied); for the accounts
    ``escalated``, their manager and the account itself (copied). A superset is harmless;
    a person left out would be capped as if nothing had reached them this hour."""
    people: set[str] = set()
    for account in nudged:
        people.add(recipients.get(account, account))
        if mentor := mentors.get(account):
            people.add(mentor)
    for account in escalated:
        people.add(account)
        acc = config.account(account)
        if acc is not None and acc.manager:
            people.add(acc.manager)
    return people


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


class SkipLog:
    """The `action_skipped` warnings: once per cause (kind, reason, account) and config,
    with the number of items (or promises) it held up then. It is for ops to act on
    (configure a manager); a line per item would repeat it for every client mail. Later
    skips of the same cause are debug lines; a new config (SIGHUP) tells each again."""

    def __init__(self) -> None:
        self._config: Config | None = None
        self._logged: set[tuple[str, str, str | None]] = set()

    def report(
        self, config: Config, kind: str, reason: str, account: str | None, count: int,
        *, unit: str = "items",
    ) -> None:
        if config is not self._config:
            self._config = config
            self._logged.clear()
        cause = (kind, reason, account)
        first = cause not in self._logged
        self._logged.add(cause)
        (log.warning if first else log.debug)(
            "action_skipped", kind=kind, reason=reason, account=account, **{unit: count}
        )


def skip(
    store: Store,
    config: Config,
    skips: Iterable[scheduler.Skip],
    items: dict[str, ItemRecord],
    skip_log: SkipLog,
) -> None:
    """Record the actions the plan gave up on (one write per cause), and say so
    (`SkipLog`)."""
    by_cause: dict[tuple[str, str, str | None], list[str]] = {}
    for s in skips:
        rec = items.get(s.key)
        by_cause.setdefault((s.kind, s.reason, rec.account if rec else None), []).append(s.key)
    for (kind, reason, account), keys in by_cause.items():
        store.mark_items_done(kind, keys, "skipped")
        skip_log.report(config, kind, reason, account, len(keys))


def enqueue(
    store: Store, config: Config, actions: Iterable[scheduler.Action], now: dt.datetime
) -> None:
    """Record each action in the outbox (its items marked in the same transaction)."""
    actions = list(actions)
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
    log_copies_left_out(actions)


class _Copied(Protocol):
    @property
    def cc_left_out(self) -> tuple[str, ...]: ...


def log_copies_left_out(mails: Iterable[_Copied]) -> None:
    """One ``copy_left_out`` line per person whose copies (Cc) the hourly cap left out of
    the mails just queued, with how many: the mails went without them (`dispatch.fit_to_cap`).
    Each mail is queued once, so each copy left out is told once."""
    counts: dict[str, int] = {}
    for mail in mails:
        for address in mail.cc_left_out:
            counts[address] = counts.get(address, 0) + 1
    for address, count in sorted(counts.items()):
        log.info("copy_left_out", cc=address, mails=count, reason="hourly cap")


class NudgeHost(Protocol):
    """What `NudgeStep` needs of the daemon that runs it (`service.Daemon`)."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> Store: ...

    def now(self) -> dt.datetime: ...

    def recheck(self, mailboxes: Iterable[str]) -> Recheck:
        """Re-check the mailboxes' sent folders now."""

    def refresh_if_changed(self) -> bool:
        """Apply the events waiting, re-evaluate if they changed the mail; True if so."""

    def messages_of_accounts(self, accounts: Iterable[str], now: dt.datetime) -> list[Message]:
        """What ``accounts``, their backups, managers and mentors sent lately."""


@dataclass(frozen=True)
class CappedWait:
    """A plan that queued nothing although actions were due: every one was over its
    recipient's hourly cap. Until ``until`` (the plan's next due time: when the cap
    frees a place, or the next action) planning again gives the same nothing, unless the
    config changed, an action came due past ``horizon`` (the plan's batch window), or
    someone else now receives for one of ``accounts`` (an account away or back:
    ``receivers`` is `who_receives` at the plan, which is bounded by the accounts, and
    cheap from their newest mail). Without it a person over the cap made every step plan
    the whole capped backlog again, with the person's hour: work growing with the
    backlog (bench/README.md, Session 13, the one-hour soak)."""

    config: Config
    horizon: dt.datetime
    until: dt.datetime
    accounts: frozenset[str]
    receivers: tuple[dict[str, str], dict[str, str | None]]

    def holds(self, store: Store, config: Config, now: dt.datetime,
              messages_of_accounts: MessagesOfAccounts) -> bool:
        if config is not self.config or now >= self.until:
            return False
        came_due = store.next_action_after(self.horizon)
        if came_due is not None and came_due <= now + config.notify.batch_window:
            return False
        return who_receives(config, now, self.accounts, messages_of_accounts) == self.receivers


class NudgeStep:
    """The nudges and escalations of each of the daemon's steps (core thread only).

    Keeps the items held back for a mailbox the pre-send re-check could not reach, and
    since when (`dispatch.hold_unchecked`); in memory: a restart grants a new grace.
    Keeps a plan that the hourly cap left empty (`CappedWait`) until it can change.
    Keeps the people the last plan found over the hourly cap, with when a place frees
    for each (`scheduler.Plan.capped`), so that the next plans do not read the actions
    that can only go to them (`plan`): else, while other mail still goes, every step
    would read and plan their whole capped backlog again, work growing with it. The
    memo is for this config (a new one may raise the cap) and this leadership (a new
    leader starts without it); each plan checks it against the outbox (`still_capped`)."""

    def __init__(self, host: NudgeHost) -> None:
        self.host = host
        self._skip_log = SkipLog()
        self._held: dict[str, dt.datetime] = {}
        self._capped: CappedWait | None = None
        self._over_cap: tuple[Config | None, dict[str, dt.datetime]] = (None, {})

    def forget_held(self) -> None:
        """Grant a new grace to every item held back (this node just became leader)."""
        self._held = {}
        self._capped = None
        self._over_cap = (None, {})

    def _plan(self, now: dt.datetime) -> Due:
        host = self.host
        config, people = self._over_cap
        due = plan(host.store, host.config, now, host.messages_of_accounts,
                   people if config is host.config else None)
        self._over_cap = (host.config, dict(due.plan.capped))
        return due

    def run_due(self) -> dt.datetime | None:
        """Queue the nudges and escalations due now (`plan`); next due time.

        When the re-check of the sent folders brings mail, the items are evaluated again
        and planned anew: an item answered a minute ago is no longer pending, and the
        skips just recorded are no longer due. Items whose mailboxes the re-check could
        not reach wait for them up to ``notify.recheck_grace`` (`hold_unchecked`);
        the step after the mailbox is back (its health event wakes the loop) or after the
        grace re-checks them again."""
        host = self.host
        now = host.now()
        capped = self._capped
        if capped is not None and capped.holds(host.store, host.config, now,
                                               host.messages_of_accounts):
            return capped.until
        self._capped = None
        due = self._plan(now)
        skip(host.store, host.config, due.plan.skips, due.items, self._skip_log)
        if not due.plan.actions:
            self._held = {}
            if due.items and due.plan.next_due is not None:  # due, but over the cap
                self._capped = CappedWait(
                    host.config, now + host.config.notify.batch_window, due.plan.next_due,
                    frozenset(due.receivers[0]), due.receivers,
                )
            return due.plan.next_due
        # Re-check the sent folders concerned right now; replies made a minute ago count.
        checked = host.recheck(mailboxes_concerned(host.config, due.plan.actions, due.items))
        # Apply whatever the re-check brought, even a partial one (a slow server).
        if host.refresh_if_changed():
            now = host.now()
            due = self._plan(now)
        hold = hold_unchecked(host.config, due.plan.actions, due.items, checked.failed,
                              self._held, now)  # fmt: skip
        self._held = dict(hold.held)
        enqueue(host.store, host.config, hold.actions, now)
        return min((t for t in (due.plan.next_due, hold.next_due) if t is not None), default=None)
