"""SLA rules: pending items, acknowledgements, deadlines, who is responsible.

Pure functions of (messages, config, instants): nothing here reads the clock, the network
or the disk. The rules are DESIGN.md "Semantics"; the choices the spec leaves open:

- Copies of one mail (same ``key``, seen in several mailboxes/folders) are one message:
  the earliest INTERNALDATE counts, flags are united and the earliest ``answered_at`` /
  ``dismissed_at`` wins. An inbox copy is preferred for classification.
- Equal timestamps (INTERNALDATE has one-second resolution): a message is acknowledged
  only by something *strictly later* than it. A reply received in the same second as the
  item's message does not acknowledge it; a client message received in the same second as
  an acknowledgement is not covered by it and opens a new item. Flags are the exception:
  ``\\Answered`` / the dismissal keyword on a message may count from that message's own
  received instant (their time is clamped to it; a flag whose time the shell did not
  record counts from the message's received time).
- Clock skew: a reply saved to Sent by a mail program carries the INTERNALDATE its
  program gave it, which can be seconds or minutes *before* the client mail it answers
  when that computer's clock runs slow. A reply whose In-Reply-To / References name a
  message of the thread is causally later than that message whatever the timestamps say:
  it counts from the latest message it names (never earlier than its own timestamp).
- At one instant, events are taken in this order: replies, flags on messages received
  earlier, client messages, replies that are only causally later (see above), flags on
  the messages received at that instant.
- Responsible account: the client's ``account``; else the first recipient (To, then Cc)
  that is a configured account; else the owner of the mailbox the mail was seen in
  (preferring, in config order, a mailbox whose owner is an account). The owner is
  returned even when it is not a configured account, so that *someone* is nudged (it has
  no manager, so there is no escalation). None only when the mailbox is unknown.
- Away accounts (`recipient_for`): replaced by their ``backup``; if the backup is away
  too (or there is none), by the account's ``manager`` when that one is not away; if
  everybody is away, the backup (else the manager, else the account itself). Backups are
  never chained: the backup's own backup is not consulted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from ackwatch.config import Config, MailboxConfig, Policy
from ackwatch.core import classify as cls_mod
from ackwatch.core.business_clock import Clock, WallClock, clock_for
from ackwatch.core.message import ANSWERED, Message, has_flag
from ackwatch.core.threads import assign_threads

AckKind = Literal["reply", "answered", "dismissed"]
AwayReason = Literal["absence", "out-of-office"]

_ZERO = dt.timedelta(0)
# Deadlines are computed for received times within this range (see `deadlines_for`).
_EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


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


# --------------------------------------------------------------------------- deadlines


def policy_named(policy_name: str, config: Config) -> Policy:
    """The named policy; an unknown name (the loader rejects those) falls back to default."""
    policy = config.policies.get(policy_name)
    return policy if policy is not None else config.policies["default"]


def policy_timezone(policy: Policy, config: Config) -> ZoneInfo:
    calendar = config.calendars.get(policy.calendar) if policy.calendar else None
    return ZoneInfo(calendar.timezone if calendar is not None else config.timezone)


@cls_mod.per_config
def _policy_clock(policy_name: str, config: Config) -> tuple[Policy, Clock, ZoneInfo]:
    """The policy of that name, its clock and its timezone (asked for every item)."""
    policy = policy_named(policy_name, config)
    return policy, clock_for(policy, config), policy_timezone(policy, config)


def deadlines_for(received: dt.datetime, policy_name: str, config: Config) -> Deadlines:
    """Deadline, nudge and escalation instants of a client mail received at ``received``.

    - deadline = ``received`` + window on the policy's clock (a mail received while closed
      counts from the next opening);
    - nudge_at = deadline - nudge_before on the same clock, but never before the instant
      the clock starts counting for this mail (the next opening at or after receipt);
    - escalate_at = deadline + escalate_after on the clock; with ``escalate_after == 0``
      it is the deadline itself (not the next opening after a deadline that falls exactly
      on a closing); None when the policy never escalates.

    All three are in the policy calendar's timezone (``config.timezone`` without one).
    Unknown policy names fall back to ``default`` (reported in ``Deadlines.policy``).
    """
    if received.tzinfo is None or received.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {received!r}")
    policy, clock, tz = _policy_clock(policy_name, config)
    # An INTERNALDATE in year 1 or 9999 (broken server or APPEND) would overflow the
    # datetime range on the clock; the deadlines of such a mail are computed from the
    # nearest instant of a sane range instead (the item keeps its real received time).
    received = min(max(received, _EARLIEST), _LATEST)
    if isinstance(clock, WallClock):
        return _wall_deadlines(received, policy, tz)
    start = clock.add(received, _ZERO)
    deadline = clock.add(received, policy.window)
    if policy.nudge_before <= _ZERO:
        nudge_at = deadline
    else:
        nudge_at = max(clock.subtract(deadline, policy.nudge_before), start)
    if policy.escalate_after is None:
        escalate_at = None
    elif policy.escalate_after <= _ZERO:
        escalate_at = deadline
    else:
        escalate_at = clock.add(deadline, policy.escalate_after)
    return _in_zone(policy, tz, deadline, nudge_at, escalate_at)


def _in_zone(
    policy: Policy,
    tz: ZoneInfo,
    deadline: dt.datetime,
    nudge_at: dt.datetime,
    escalate_at: dt.datetime | None,
) -> Deadlines:
    return Deadlines(
        policy=policy.name,
        clock=policy.clock,
        deadline=deadline.astimezone(tz),
        nudge_at=nudge_at.astimezone(tz),
        escalate_at=escalate_at.astimezone(tz) if escalate_at is not None else None,
    )


def _wall_deadlines(received: dt.datetime, policy: Policy, tz: ZoneInfo) -> Deadlines:
    """`deadlines_for` on a `WallClock` (``clock: calendar``), in UTC arithmetic: what the
    clock's ``add`` and ``subtract`` give, without converting each intermediate instant
    to the timezone and back (a first sync computes this for every item)."""
    start = received.astimezone(dt.UTC)
    deadline = start + policy.window
    if policy.nudge_before <= _ZERO:
        nudge_at = deadline
    else:
        nudge_at = max(deadline - policy.nudge_before, start)
    if policy.escalate_after is None:
        escalate_at = None
    elif policy.escalate_after <= _ZERO:
        escalate_at = deadline
    else:
        escalate_at = deadline + policy.escalate_after
    return _in_zone(policy, tz, deadline, nudge_at, escalate_at)


# --------------------------------------------------------------------------- responsibility


@dataclass(frozen=True)
class _Lookup:
    """`Config.account` / `Config.mailbox` as look-ups instead of scans (built once per
    evaluation: a config may list hundreds of mailboxes and accounts)."""

    accounts: frozenset[str]  # every account's email as configured
    mailboxes: Mapping[str, MailboxConfig]  # name -> the first mailbox of that name
    order: Mapping[str, int]  # mailbox name -> position in the config (the last one's)

    @classmethod
    def of(cls, config: Config) -> _Lookup:
        mailboxes: dict[str, MailboxConfig] = {}
        for mb in config.mailboxes:
            mailboxes.setdefault(mb.name, mb)
        return cls(
            accounts=frozenset(acc.email for acc in config.accounts),
            mailboxes=mailboxes,
            order={mb.name: i for i, mb in enumerate(config.mailboxes)},
        )

    def is_account(self, email: str | None) -> bool:
        """``config.account(email) is not None``."""
        if not email:
            return False
        return email.lower() in self.accounts


def _responsible(
    message: Message,
    mailboxes: Sequence[str],
    client_account: str | None,
    config: Config,
    lookup: _Lookup | None = None,
) -> str | None:
    if client_account:
        return client_account.lower()
    if lookup is None:
        lookup = _Lookup.of(config)
    for addr in message.to + message.cc:
        if addr.address and lookup.is_account(addr.address):
            return addr.address
    owners = [mb.owner_address for name in mailboxes if (mb := lookup.mailboxes.get(name)) is not None]
    for owner in owners:
        if lookup.is_account(owner):
            return owner
    return owners[0] if owners else None


def responsible_account(message: Message, client_account: str | None, config: Config) -> str | None:
    """Who must acknowledge ``message`` (before away/backup substitution).

    The client's ``account`` when set; else the first recipient (To, then Cc) that is a
    configured account; else the owner of the mailbox the copy was seen in, even when that
    owner is not a configured account (someone gets the nudge). None when the mailbox is
    not in the config.
    """
    return _responsible(message, (message.mailbox,), client_account, config)


# --------------------------------------------------------------------------- evaluation


def _has_flag(message: Message, flag: str) -> bool:
    """Whether the message carries ``flag``, compared case-insensitively (`has_flag`)."""
    return has_flag(message.flags, flag)


def _seen_time(c: Message, flag: str, seen: dt.datetime | None) -> dt.datetime | None:
    """When ``flag`` was seen on copy ``c`` (clamped to its receipt); None without it."""
    if not _has_flag(c, flag):
        return None
    return c.received if seen is None else max(seen, c.received)


def _flag_time(copies: Sequence[Message], flag: str, attr: str) -> dt.datetime | None:
    """Earliest instant a flag was seen on any copy (clamped to that copy's receipt)."""
    times = [t for c in copies if (t := _seen_time(c, flag, getattr(c, attr))) is not None]
    return min(times) if times else None


def _copy_order(m: Message) -> tuple:
    return (m.role != "inbox", m.received, m.mailbox, m.folder, m.uid)


@dataclass(frozen=True)
class _Merged:
    message: Message  # representative copy with the earliest received time and united flags
    mailboxes: tuple[str, ...]  # where it was seen, in config order


def _merge(copies: Sequence[Message], config: Config, lookup: _Lookup | None = None) -> _Merged:
    ordered = sorted(copies, key=_copy_order)
    rep = _representative(ordered, config)
    received = min(c.received for c in copies)
    answered_at = _flag_time(copies, ANSWERED, "answered_at")
    dismissed_at = _flag_time(copies, config.dismiss_keyword, "dismissed_at")
    flags = rep.flags if len(copies) == 1 else frozenset().union(*(c.flags for c in copies))
    if (rep.received, rep.flags, rep.answered_at, rep.dismissed_at) == (
        received, flags, answered_at, dismissed_at
    ):
        merged = rep  # the common case: one copy, flag times already as recorded
    else:
        merged = dataclasses.replace(
            rep, received=received, flags=flags, answered_at=answered_at,
            dismissed_at=dismissed_at,
        )
    order = (lookup or _Lookup.of(config)).order
    names = sorted({c.mailbox for c in copies}, key=lambda n: (order.get(n, len(order)), n))
    return _Merged(merged, tuple(names))


def _representative(ordered: Sequence[Message], config: Config) -> Message:
    """The copy a mail is classified by: the first in `_copy_order` (an inbox copy),
    unless that is agency-looking and not vouched for while another copy is (its sent
    copy). Then the vouched copy's headers speak for the mail, so that a mail that reuses
    the Message-ID of a real agency mail cannot lend its own To and In-Reply-To to it."""
    rep = ordered[0]
    if cls_mod.is_vouched(rep, config) or not cls_mod.is_agency_address(
        cls_mod.sender_of(rep, config), config
    ):
        return rep
    return next((c for c in ordered if cls_mod.is_vouched(c, config)), rep)


# Event priorities at one instant (see the module docstring).
_REPLY, _FLAG_EARLIER, _CLIENT, _CAUSAL_REPLY, _FLAG_SAME = 0, 1, 2, 3, 4
_FLAG_KIND_ORDER = {"answered": 0, "dismissed": 1}


@dataclass
class _Open:
    merged: _Merged
    cls: cls_mod.Classification
    thread: str
    members: set[str]
    follow_ups: list[str]


def is_tracked(c: cls_mod.Classification) -> bool:
    """Client mail per `classify` (which applies ``unknown_senders``; form leads are
    tracked even when unknown senders are ignored; a From without a readable mailbox is
    tracked with an empty ``client_address``)."""
    return c.kind == "client"


def _item(o: _Open, ack: Ack | None, config: Config, lookup: _Lookup) -> Item:
    m = o.merged.message
    client = o.cls.client
    policy = client.policy if client is not None else "default"
    return Item(
        key=m.key,
        thread=o.thread,
        message_id=m.message_id,
        client_address=(o.cls.client_address or "").lower(),
        client=client.name if client is not None else None,
        subject=m.subject,
        received=m.received,
        mailboxes=o.merged.mailboxes,
        account=_responsible(
            m, o.merged.mailboxes, client.account if client is not None else None, config, lookup
        ),
        deadlines=deadlines_for(m.received, policy, config),
        ack=ack,
        follow_ups=tuple(o.follow_ups),
    )


def evaluate(messages: Iterable[Message], config: Config) -> tuple[Item, ...]:
    """Every client item found in ``messages`` (open and acknowledged), see DESIGN.md.

    Deterministic: the result does not depend on the order of ``messages``; items are
    sorted by received time, then key.
    """
    return evaluate_threads(messages, config)[0]


def evaluate_threads(
    messages: Iterable[Message], config: Config
) -> tuple[tuple[Item, ...], Mapping[str, str]]:
    """`evaluate`, and the thread of every message key given (`threads.assign_threads`).

    Evaluating a set of messages made of whole threads gives, for those threads, the
    same items as evaluating everything: the daemon relies on it to re-evaluate only
    the threads that new mail can touch (see `threads.link_values`).
    """
    copies = list(messages)
    by_key: dict[str, list[Message]] = defaultdict(list)
    for m in copies:
        by_key[m.key].append(m)
    lookup = _Lookup.of(config)
    merged = {key: _merge(group, config, lookup) for key, group in by_key.items()}
    classes = {key: cls_mod.classify(mm.message, config) for key, mm in merged.items()}
    threads = assign_threads(
        copies,
        subject_window=config.thread_subject_window,
        agency_addresses=cls_mod.agency_identities(config),
    )

    per_thread: dict[str, list[str]] = defaultdict(list)
    for key in merged:
        per_thread[threads.get(key, key)].append(key)

    items: list[Item] = []
    for thread, keys in per_thread.items():
        items.extend(_walk_thread(thread, keys, merged, classes, config, lookup))
    items.sort(key=lambda i: (i.received, i.key))
    return tuple(items), threads


def _walk_thread(
    thread: str,
    keys: Iterable[str],
    merged: Mapping[str, _Merged],
    classes: Mapping[str, cls_mod.Classification],
    config: Config,
    lookup: _Lookup,
) -> list[Item]:
    # (instant, priority, sub-order, key, kind)
    events: list[tuple[dt.datetime, int, int, str, str]] = []
    keys = list(keys)
    thread_keys = set(keys)
    for key in keys:
        mm = merged[key]
        m = mm.message
        c = classes[key]
        if is_tracked(c):
            events.append((m.received, _CLIENT, 0, key, "client"))
            for kind, at in (("answered", m.answered_at), ("dismissed", m.dismissed_at)):
                if at is not None:
                    at = max(at, m.received)
                    prio = _FLAG_SAME if at == m.received else _FLAG_EARLIER
                    events.append((at, prio, _FLAG_KIND_ORDER[kind], key, kind))
        elif c.kind == "agency" and cls_mod.addressed_outside(m, config):
            # `classify.is_acknowledgement_candidate`, with the classification at hand.
            named = [
                merged[ref].message.received
                for ref in (*m.in_reply_to, *m.references)
                if ref in thread_keys and ref != key
            ]
            latest_named = max(named, default=None)
            if latest_named is not None and latest_named >= m.received:
                events.append((latest_named, _CAUSAL_REPLY, 0, key, "causal-reply"))
            else:
                events.append((m.received, _REPLY, 0, key, "reply"))
    events.sort()

    out: list[Item] = []
    current: _Open | None = None
    for at, _prio, _sub, key, kind in events:
        if kind == "client":
            if current is None:
                current = _Open(merged[key], classes[key], thread, {key}, [])
            else:
                current.members.add(key)
                current.follow_ups.append(key)
        elif current is None:
            continue
        elif kind in ("reply", "causal-reply"):
            # Strictly later than the item's message, or naming it (or a later message of
            # the thread). Replies sort before client mail of the same instant and causal
            # replies after it, so this always holds here; it states the rule.
            if at > current.merged.message.received or kind == "causal-reply":
                sender = merged[key].message.sender.address
                out.append(_item(current, Ack(key, at, "reply", sender), config, lookup))
                current = None
        elif key in current.members:  # a flag on the item's message or a follow-up
            flag: AckKind = "answered" if kind == "answered" else "dismissed"
            ack = Ack(current.merged.message.key, at, flag, "")
            out.append(_item(current, ack, config, lookup))
            current = None
    if current is not None:
        out.append(_item(current, None, config, lookup))
    return out


# --------------------------------------------------------------------------- away / backup


def _account_tz(account: str, config: Config) -> ZoneInfo:
    calendar = config.calendar_for_account(account)
    return ZoneInfo(calendar.timezone if calendar is not None else config.timezone)


def away_reason(
    account: str, config: Config, at: dt.datetime, messages: Iterable[Message]
) -> AwayReason | None:
    """Why ``account`` counts as away at ``at``: "absence", "out-of-office" or None.

    - "absence": a configured ``Account.away`` range (inclusive dates in the account's
      calendar timezone) covers the local date of ``at``.
    - "out-of-office": the account's own out-of-office auto-reply (from its address,
      classified ``out_of_office``, which an agency address's notice is only when
      `classify.is_vouched`) was received within ``notify.out_of_office_lookback``
      before ``at`` (inclusive) and no human message from that address (vouched for
      likewise) was received after it (up to ``at``): once they write again they are back.
    Messages received after ``at`` are not looked at.

    The account's messages are classified newest first, and only until the answer is
    known: usually the newest is a human one and settles it (an account's three days of
    sent mail are not classified again at every nudge).
    """
    address = account.lower()
    acc = config.account(address)
    if acc is not None and acc.away:
        day = at.astimezone(_account_tz(address, config)).date()
        if any(a.start <= day <= a.until for a in acc.away):
            return "absence"
    since = at - config.notify.out_of_office_lookback
    own = sorted(
        (m for m in messages if m.sender.address == address and since <= m.received <= at),
        key=lambda m: m.received,
        reverse=True,
    )
    human_at: dt.datetime | None = None  # the newest human message (all seen are newer)
    for m in own:
        if human_at is not None and m.received < human_at:
            return None  # an out-of-office from here on is followed by human mail
        evidence = away_evidence(m, config)
        if evidence == "out-of-office":
            return "out-of-office"  # the newest within the look-back; no human mail after
        if evidence == "human":
            human_at = m.received
    return None


def away_evidence(m: Message, config: Config) -> Literal["out-of-office", "human"] | None:
    """What ``m`` says of its sender's absence for `away_reason`: an out-of-office notice,
    a human message (they are back), or nothing (an own notice, an automated mail, a
    From an agency address that nobody vouched for: anyone can write that From).

    `away_reason` walks an address's mail newest first and looks no further back than
    the first message that says something (and the others of its second): a reader may
    give it only that much (`AccountMail`)."""
    c = cls_mod.classify(m, config)
    if c.out_of_office:
        return "out-of-office"
    if (
        c.kind != "own"
        and c.reason != "unverified-agency-sender"
        and cls_mod.auto_generated_reason(m) is None
    ):
        return "human"
    return None


def recipient_for(account: str, config: Config, at: dt.datetime, messages: Iterable[Message]) -> str:
    """Who receives ``account``'s nudges at ``at``.

    The account itself unless it is away (`away_reason`); then its ``backup``, or when the
    backup is away as well (or none is configured) its ``manager`` if that one is not away;
    when all of them are away, the backup, else the manager, else the account. Backups are
    not chained (the backup's backup is never used).
    """
    address = account.lower()
    msgs = list(messages)
    if away_reason(address, config, at, msgs) is None:
        return address
    acc = config.account(address)
    backup = acc.backup.lower() if acc is not None and acc.backup else None
    manager = acc.manager.lower() if acc is not None and acc.manager else None
    candidates = [c for c in (backup, manager) if c and c != address]
    for candidate in candidates:
        if away_reason(candidate, config, at, msgs) is None:
            return candidate
    return candidates[0] if candidates else address


def mentor_copy(account: str, config: Config, at: dt.datetime, messages: Iterable[Message]
                ) -> str | None:
    """Who is copied on ``account``'s nudges and promise reminders at ``at``: its
    ``mentor``, unless the mentor is away (`away_reason`). A copy is for reading along,
    not for acting: an away mentor's copy is not handed to anyone else (their backup
    mentors nobody), and skipping it spares an out-of-office inbox."""
    acc = config.account(account)
    if acc is None or acc.mentor is None:
        return None
    if away_reason(acc.mentor, config, at, messages) is not None:
        return None
    return acc.mentor
