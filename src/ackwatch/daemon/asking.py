"""The promise keeper's "say by when" notes (``promise.ask_for_date``, `core.date_asks`).

Run by the keeper (`keeper.PromiseKeeper`) on the core thread: `DateAsks.decide` at
each of its updates (after the reads of acknowledgements are recorded), `DateAsks.queue`
when it queues its notices. A note is recorded in the outbox with its items in one
transaction (`Store.enqueue_date_asks`), at most once per item; `notices.ask_mail`
renders it when it is sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

import structlog

from ackwatch.config import Config
from ackwatch.core import date_asks, hourlycap
from ackwatch.core import item_rules as sla
from ackwatch.core import promise_rules as promises
from ackwatch.daemon.bodyreader import ReadRequest
from ackwatch.mail import compose
from ackwatch.store import ItemRecord, Store

if TYPE_CHECKING:
    from ackwatch.daemon.keeper import KeeperHost

log = structlog.get_logger(__name__)

# (key, attempts so far, the item's fields, fallback account) -> the read, or None
ReadRequestFor = Callable[[str, int, dict[str, object], "str | None"], "ReadRequest | None"]
LaterBySource = Callable[[Store, Config, set[str]], dict[str, list[promises.Later]]]


class DateAsks:
    """The notes decided and due. ``host``: the keeper's `KeeperHost`; ``horizon``: the
    keeper's read horizon (older acknowledgements were never read)."""

    def __init__(self, host: KeeperHost, later_by_source: LaterBySource,
                 horizon: dt.timedelta):  # fmt: skip
        self.host = host
        self._later_by_source = later_by_source
        self._horizon = horizon
        self._due: list[date_asks.Due] = []

    def decide(
        self,
        now: dt.datetime,
        wanted: dict[str, ReadRequest],
        inflight: Collection[str],
        read_request: ReadRequestFor,
    ) -> list[dt.datetime]:
        """Decide the "say by when" notes (`date_asks`): record the skipped ones, keep
        the due ones for `queue`, add the reads they wait for to ``wanted``.
        Returns when to look again."""
        self._due = []
        config = self.host.config
        if not config.promise.ask_for_date:
            return []
        store = self.host.store
        candidates = store.date_ask_candidates(now - self._horizon)
        if not candidates:
            return []
        later_of = self._later_by_source(store, config, {c.ack_key for c in candidates if c.ack_key})
        reads = store.promise_reads(m.key for ms in later_of.values() for m in ms)
        skipped: dict[str, list[str]] = {}
        times: list[dt.datetime] = []
        for item in candidates:
            assert item.ack_key is not None and item.ack_at is not None
            later = [
                date_asks.Later(m.key, m.received, _named_date(reads.get(m.key)))
                for m in later_of.get(item.ack_key, ())
            ]
            d = date_asks.decide(item.ack_key, item.ack_at, later,
                                 grace=config.promise.ask_grace, now=now)  # fmt: skip
            account = _asked_account(config, item)
            if d.verdict in ("skip", "stale") or account is None:
                reason = ("a date followed in time" if d.verdict == "skip" else
                          "too late to be useful" if d.verdict == "stale" else
                          "no configured account wrote it")  # fmt: skip
                skipped.setdefault(reason, []).append(item.key)
                continue
            if d.verdict == "due":
                self._due.append(date_asks.Due(item.key, account, d.at))
                continue
            if d.verdict == "wait":
                times.append(d.at)
            for key in d.to_read:
                if key in inflight or key in wanted:
                    continue
                state = reads.get(key)
                if state is not None and state[2] is not None and state[2] > now:
                    times.append(state[2])
                    continue
                req = read_request(key, state[1] if state else 0, _item_dict(item), item.account)
                if req is not None:
                    wanted[key] = req
        for reason, keys in skipped.items():
            store.mark_date_asks(keys, "skipped", now)
            log.info("date_ask_skipped", items=len(keys), reason=reason)
        return times

    def queue(self, now: dt.datetime) -> dt.datetime | None:
        """Queue the "say by when" notes due now; when the next one is due (``now`` when
        some were queued: the others are decided again)."""
        if not self._due:
            return None
        config = self.host.config
        accounts = {d.account for d in self._due}
        messages = self.host.messages_of_accounts(accounts, now)
        recipients = {a: sla.recipient_for(a, config, now, messages) for a in accounts}
        actions, next_due = date_asks.plan(
            self._due,
            now=now,
            recipient_of=lambda a: recipients.get(a, a),
            batch_window=config.notify.batch_window,
            max_per_hour=config.notify.max_per_hour,
            sent_last_hour=self.host.store.reached_since(
                now - hourlycap.HOUR, set(recipients.values())
            ),
        )
        for action in actions:
            self.host.store.enqueue_date_asks(
                recipient=action.to,
                account=action.account,
                item_keys=action.item_keys,
                message_id=compose.make_message_id(compose.message_id_domain(config)),
                now=now,
            )
            log.info("action_queued", kind=action.kind, to=action.to, items=len(action.item_keys))
        if actions:
            self._due = []
            return now
        return next_due


def _named_date(state: tuple[str, int, dt.datetime | None] | None) -> bool | None:
    """Whether a read message named a date; None while not read (a failed read: no)."""
    if state is None or state[0] == "retry":
        return None
    return state[0] == "promise"


def _asked_account(config: Config, item: ItemRecord) -> str | None:
    """Who gets the note: the configured account that wrote the acknowledgement, else
    the item's account; None when neither is a configured account (never a client)."""
    for address in (item.ack_by, item.account):
        if address and config.account(address) is not None:
            return address
    return None


def _item_dict(item: ItemRecord) -> dict[str, object]:
    return {
        "thread": item.thread,
        "item_key": item.key,
        "client": item.client,
        "client_address": item.client_address,
        "subject": item.subject,
    }
