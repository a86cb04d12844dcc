"""``ackwatch status``: the mailboxes' health, the client emails waiting for an
acknowledgement and the open promises, read from the state (also while the daemon runs)."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ackwatch.cli.common import EX_CANTCREAT, EX_OK, load, open_state, out, plural
from ackwatch.core.printable import clean, json_text

if TYPE_CHECKING:
    from ackwatch.config import Config
    from ackwatch.store import ClusterView, PromiseRecord, Store

NAME = "status"
HELP = "show the open items and the mailboxes' health (also while running)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the open items as a JSON array (with --mailboxes: the mailboxes' health)",
    )
    parser.add_argument(
        "--mailboxes", action="store_true", help="with --json: print the mailboxes' health"
    )
    parser.add_argument(
        "--promises",
        action="store_true",
        help="with --json: print the open promises (made to clients, not yet kept or moved)",
    )
    parser.add_argument(
        "--nodes",
        action="store_true",
        help="the nodes sharing a PostgreSQL state: last heartbeat, mailboxes, which leads "
        "(with --json: as JSON)",
    )


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _left(deadline: dt.datetime, now: dt.datetime) -> str:
    seconds = int((deadline - now).total_seconds())
    overdue = seconds < 0
    minutes_total = -(-abs(seconds) // 60)  # round up: "1m overdue", never "0m"
    days, rest = divmod(minutes_total, 1440)
    hours, minutes = divmod(rest, 60)
    text = f"{days}d{hours}h" if days else f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"
    return f"{text} overdue" if overdue else text


def _local(t: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """``t`` in ``zone``; in UTC when the conversion would overflow (year 1 or 9999)."""
    try:
        return t.astimezone(zone)
    except OverflowError:
        return t.astimezone(dt.UTC)


def _cut(text: str | None, width: int) -> str:
    """``text`` made safe to print (`clean`), cut to ``width`` characters with "…"."""
    text = clean(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def run(args: argparse.Namespace) -> int:
    config = load(args)
    store = open_state(config, readonly=True)
    if store is None:
        return EX_CANTCREAT
    now = dt.datetime.now(dt.UTC)
    try:
        items = store.items(state="pending")
        health = store.health()
        promised = _open_promises(store, now)
        view = _cluster_view(store)
    finally:
        store.close()
    zone = ZoneInfo(config.timezone)
    if args.nodes:
        return _nodes(view, config, zone, as_json=args.json)
    if args.json:
        if args.promises:
            data: object = [_promise_json(p, now) for p in promised]
        elif args.mailboxes:
            data = [
                {
                    "mailbox": h.mailbox,
                    "state": h.state,
                    "since": _iso(h.since),
                    "last_error": h.last_error,
                    "last_sync": _iso(h.last_sync),
                    "node": view.leases.get(h.mailbox),
                }
                for h in health
            ]
        else:
            data = [
                {
                    "message_id": r.message_id,
                    "key": r.key,
                    "from": r.client_address,
                    "client": r.client,
                    "subject": r.subject,
                    "received": _iso(r.received),
                    "deadline": _iso(r.deadline),
                    "nudge_at": _iso(r.nudge_at),
                    "escalate_at": _iso(r.escalate_at),
                    "account": r.account,
                    "policy": r.policy,
                    "mailboxes": list(r.mailboxes),
                    "state": "overdue" if r.deadline <= now else r.state,
                    "nudge": r.nudge_done,
                    "escalation": r.escalation_done,
                }
                for r in items
            ]
        out(json_text(data))
        return EX_OK
    out("Mailboxes:")
    known = {h.mailbox: h for h in health}
    for mb in config.mailboxes:
        h = known.get(mb.name)
        if h is None:
            out(f"  {clean(mb.name):<16} never synced")
            continue
        synced = _local(h.last_sync, zone).strftime("%Y-%m-%d %H:%M:%S") if h.last_sync else "never"
        error = f"  ({_cut(h.last_error, 40)})" if h.last_error and h.state != "up" else ""
        out(f"  {clean(mb.name):<16} {clean(h.state):<12} last sync {synced}{error}")
    out("")
    if not items:
        out("No client email waits for an acknowledgement.")
        _print_promises(promised, zone, now)
        return EX_OK
    out(f"{plural(len(items), 'client email')} waiting for an acknowledgement:")
    out(f"  {'ACCOUNT':<16} {'CLIENT':<12} {'SUBJECT':<20} {'RECEIVED':<11} {'DEADLINE':<11} LEFT")
    for r in items:
        account = (r.account or "-").split("@")[0]
        client = r.client or r.client_address
        out(
            f"  {_cut(account, 16):<16} {_cut(client, 12):<12} {_cut(r.subject, 20):<20} "
            f"{_local(r.received, zone).strftime('%a %H:%M'):<11} "
            f"{_local(r.deadline, zone).strftime('%a %H:%M'):<11} {_left(r.deadline, now)}"
        )
    _print_promises(promised, zone, now)
    return EX_OK


def _cluster_view(store: Store) -> ClusterView:
    """Who watches what and who leads; nobody on a state from before several nodes."""
    from ackwatch.store import ClusterView

    try:
        return store.cluster_view()
    except store.errors:
        return ClusterView((), {}, {}, None, 0)


def _nodes(view: ClusterView, config: Config, zone: ZoneInfo, *, as_json: bool) -> int:
    """``status --nodes``: each node's last heartbeat, its mailboxes, which one leads. A
    node is live while its heartbeat is younger than a lease (``cluster.lease``)."""
    lease = config.cluster.lease.total_seconds()
    rows = [
        {
            "node": n.name,
            "leader": n.name == view.leader,
            "live": n.age <= lease,
            "started_at": _iso(n.started_at),
            "heartbeat_at": _iso(n.heartbeat_at),
            "heartbeat_age_seconds": round(n.age, 3),
            "mailboxes": sorted(m for m, holder in view.leases.items() if holder == n.name),
        }
        for n in view.nodes
    ]
    if as_json:
        out(json_text(rows))
        return EX_OK
    if not rows:
        out("No node has run on this state with --node (one node: SQLite, or none running).")
        return EX_OK
    out(f"{plural(len(rows), 'node')}, epoch {view.epoch}:")
    for r in rows:
        role = "leader" if r["leader"] else "live" if r["live"] else "silent"
        held = r["mailboxes"]
        assert isinstance(held, list)
        mailboxes = ", ".join(clean(m) for m in held) or "-"
        beat = _local(dt.datetime.fromisoformat(str(r["heartbeat_at"])), zone)
        out(f"  {_cut(str(r['node']), 16):<16} {role:<7} heartbeat {beat:%H:%M:%S}"
            f" ({r['heartbeat_age_seconds']:.0f}s ago)  mailboxes: {mailboxes}")
    unheld = [mb.name for mb in config.mailboxes if mb.name not in view.leases]
    if unheld:
        out(f"  not watched by any node: {', '.join(clean(m) for m in unheld)}")
    return EX_OK


def _open_promises(store: Store, now: dt.datetime) -> list[PromiseRecord]:
    """`promise_rules.still_owed`; [] on a pre-promise state database."""
    from ackwatch.core.promise_rules import still_owed

    try:
        records = store.promises(states=("open", "broken"))
    except store.errors:
        return []
    return still_owed(records, now)


def _promise_json(p: PromiseRecord, now: dt.datetime) -> dict[str, object]:
    state = "overdue" if p.promised <= now else "open"
    return {
        "id": p.id,
        "account": p.account,
        "client": p.client,
        "client_address": p.client_address,
        "subject": p.subject,
        "item_key": p.item_key,
        "thread": p.thread,
        "made_at": _iso(p.made_at),
        "promised": _iso(p.promised),
        "remind_at": _iso(p.remind_at),
        "sentence": p.sentence,
        "state": state,
        "reminder": p.reminder_done,
        "overdue_notice": p.overdue_done,
    }


def _print_promises(promised: list[PromiseRecord], zone: ZoneInfo, now: dt.datetime) -> None:
    if not promised:
        return
    out("")
    out(f"{plural(len(promised), 'open promise')} to clients:")
    out(f"  {'ACCOUNT':<16} {'CLIENT':<12} {'PROMISED':<11} {'LEFT':<13} SENTENCE")
    for p in promised:
        account = (p.account or "-").split("@")[0]
        client = p.client or p.client_address
        sentence = " ".join(p.sentence.split())
        out(
            f"  {_cut(account, 16):<16} {_cut(client, 12):<12} "
            f"{_local(p.promised, zone).strftime('%a %H:%M'):<11} "
            f"{_left(p.promised, now):<13} \"{_cut(sentence, 60)}\""
        )
