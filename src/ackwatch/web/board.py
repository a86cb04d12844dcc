"""The board as values for the templates: `build(state, config, now, viewer)` (no I/O).

Times are shown in the config's timezone; each waiting item also carries its deadline and
nudge instants (ISO 8601, UTC) for the page's script, which ticks the countdown and turns
an item amber once its nudge is due (within the policy's ``nudge_before`` of the deadline)
and red once the deadline has passed. The server sets the same classes when it renders,
so the page is right without the script too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ackwatch.config import Config
from ackwatch.core import item_rules
from ackwatch.reporting import figures
from ackwatch.reporting.formatting import format_level, format_minutes
from ackwatch.web.access import Viewer
from ackwatch.web.state import State

NO_ACCOUNT = "(no account)"


@dataclass(frozen=True)
class Waiting:
    client: str
    sender: str
    subject: str
    received: str  # "Mon 14:05", local
    deadline: str
    deadline_iso: str  # UTC, for the script
    nudge_iso: str
    urgency: str  # "ok" | "soon" | "overdue"
    left: str  # "1h 05m", "12m 03s overdue"


@dataclass(frozen=True)
class AccountGroup:
    account: str  # address, or NO_ACCOUNT
    name: str
    items: tuple[Waiting, ...]
    overdue: int
    covered_by: str | None  # the account is away: who gets its nudges


@dataclass(frozen=True)
class Away:
    name: str
    account: str
    reason: str  # "absence" | "out-of-office"
    covered_by: str


@dataclass(frozen=True)
class OpenPromise:
    account: str
    client: str
    subject: str
    promised: str
    promised_iso: str
    sentence: str
    overdue: bool


@dataclass(frozen=True)
class MailboxDown:
    name: str
    state: str
    since: str
    error: str


@dataclass(frozen=True)
class ClientDemand:
    client: str
    emails: int
    level: str
    below: bool


@dataclass(frozen=True)
class Period:
    title: str
    emails: int
    level: str
    median: str
    p90: str
    overdue: int
    clients: tuple[ClientDemand, ...]
    below: tuple[str, ...]  # clients below the target, however few their mails


@dataclass(frozen=True)
class Board:
    viewer: str | None
    now_iso: str
    shown_at: str  # "14:32:05", local
    timezone: str
    waiting: int
    groups: tuple[AccountGroup, ...]
    away: tuple[Away, ...]
    promises: tuple[OpenPromise, ...]
    down: tuple[MailboxDown, ...]
    periods: tuple[Period, ...]
    target: str


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _local(t: dt.datetime, zone: ZoneInfo, fmt: str = "%a %H:%M") -> str:
    try:
        return t.astimezone(zone).strftime(fmt)
    except OverflowError:
        return t.astimezone(dt.UTC).strftime(fmt)


def local_date(now: dt.datetime, timezone: str) -> dt.date:
    return now.astimezone(ZoneInfo(timezone)).date()


def countdown(deadline: dt.datetime, now: dt.datetime) -> str:
    """How far ``deadline`` is from ``now``, either way: ``2d 4h``, ``1h 05m``, ``42m 17s``
    (the script's rule too; the label before it says whether it is left or overdue)."""
    seconds = abs(int((deadline - now).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days}d {hours}h"
    elif hours:
        text = f"{hours}h {minutes:02d}m"
    else:
        text = f"{minutes}m {secs:02d}s"
    return text


def urgency(deadline: dt.datetime, nudge_at: dt.datetime, now: dt.datetime) -> str:
    if now >= deadline:
        return "overdue"
    return "soon" if now >= nudge_at else "ok"


def _name(config: Config, address: str | None) -> str:
    account = config.account(address)
    return account.name if account is not None else (address or NO_ACCOUNT)


def _groups(state: State, config: Config, now: dt.datetime, viewer: Viewer, zone: ZoneInfo,
            covers: dict[str, str]) -> tuple[AccountGroup, ...]:
    by_account: dict[str, list[Waiting]] = {}
    for r in state.pending:
        if not viewer.sees(r.account):
            continue
        by_account.setdefault(r.account or NO_ACCOUNT, []).append(Waiting(
            client=r.client or figures.client_group(None, r.client_address),
            sender=r.client_address,
            subject=r.subject or "(no subject)",
            received=_local(r.received, zone),
            deadline=_local(r.deadline, zone),
            deadline_iso=_iso(r.deadline),
            nudge_iso=_iso(r.nudge_at),
            urgency=urgency(r.deadline, r.nudge_at, now),
            left=countdown(r.deadline, now),
        ))
    groups = [
        AccountGroup(
            account=account, name=_name(config, None if account == NO_ACCOUNT else account),
            items=tuple(sorted(items, key=lambda w: w.deadline_iso)),
            overdue=sum(1 for w in items if w.urgency == "overdue"),
            covered_by=covers.get(account),
        )
        for account, items in by_account.items()
    ]
    # The account with the most urgent item first.
    groups.sort(key=lambda g: (g.items[0].deadline_iso, g.name))
    return tuple(groups)


def _away(state: State, config: Config, now: dt.datetime, viewer: Viewer) -> tuple[Away, ...]:
    away = []
    for acc in config.accounts:
        if not viewer.sees(acc.email):
            continue
        reason = item_rules.away_reason(acc.email, config, now, state.account_mail)
        if reason is None:
            continue
        cover = item_rules.recipient_for(acc.email, config, now, state.account_mail)
        away.append(Away(name=acc.name, account=acc.email, reason=reason,
                         covered_by=_name(config, cover) if cover != acc.email else "nobody"))
    return tuple(away)


def _promises(state: State, now: dt.datetime, viewer: Viewer,
              zone: ZoneInfo, config: Config) -> tuple[OpenPromise, ...]:
    return tuple(
        OpenPromise(
            account=_name(config, p.account),
            client=p.client or figures.client_group(None, p.client_address),
            subject=p.subject or "(no subject)",
            promised=_local(p.promised, zone, "%a %d %b %H:%M"),
            promised_iso=_iso(p.promised),
            sentence=" ".join(p.sentence.split()),
            overdue=p.promised <= now,
        )
        for p in sorted(state.promises, key=lambda p: p.promised)
        if viewer.sees(p.account)
    )


def _down(state: State, zone: ZoneInfo) -> tuple[MailboxDown, ...]:
    return tuple(
        MailboxDown(name=h.mailbox, state=h.state,
                    since=_local(h.since, zone, "%a %d %b %H:%M"), error=h.last_error or "")
        for h in state.health if h.state != "up"
    )


def _period(title: str, items: Iterable[figures.ReportItem], config: Config,
            since: dt.datetime, now: dt.datetime, target: float) -> Period:
    report = figures.compute(list(items), config, since=since,
                             until=now + dt.timedelta(seconds=1), now=now, rows=False)
    t = report.totals
    demand = figures.client_demand(report, target)
    clients = tuple(
        ClientDemand(client=c.client, emails=c.emails, level=format_level(c.service_level),
                     below=c.below_target)
        for c in demand
    )
    return Period(
        title=title, emails=t.client_emails, level=format_level(t.service_level),
        median=format_minutes(t.median_minutes), p90=format_minutes(t.p90_minutes),
        overdue=t.overdue, clients=clients,
        below=tuple(c.client for c in figures.below_target(demand)),
    )


def _periods(state: State, config: Config, now: dt.datetime, viewer: Viewer,
             target: float) -> tuple[Period, ...]:
    mine: Sequence[figures.ReportItem] = [i for i in state.week if viewer.sees(i.account)]
    today_start = max(state.week_start, dt.datetime.combine(
        now.astimezone(ZoneInfo(config.timezone)).date(), dt.time(),
        tzinfo=ZoneInfo(config.timezone)).astimezone(dt.UTC))
    today = [i for i in mine if i.received >= today_start]
    return (
        _period("Today", today, config, today_start, now, target),
        _period("This week", mine, config, state.week_start, now, target),
    )


def build(state: State, config: Config, now: dt.datetime, viewer: Viewer) -> Board:
    zone = ZoneInfo(config.timezone)
    target = config.web.target
    away = _away(state, config, now, viewer)
    groups = _groups(state, config, now, viewer, zone,
                     {a.account: a.covered_by for a in away})
    return Board(
        viewer=viewer.name,
        now_iso=_iso(now),
        shown_at=_local(now, zone, "%H:%M:%S"),
        timezone=config.timezone,
        waiting=sum(len(g.items) for g in groups),
        groups=groups,
        away=away,
        promises=_promises(state, now, viewer, zone, config),
        down=_down(state, zone) if viewer.accounts is None else (),
        periods=_periods(state, config, now, viewer, target),
        target=format_level(target),
    )
