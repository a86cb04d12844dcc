"""The accounts' own recent mail, parsed once for whoever asks.

`sla.recipient_for` tells who is away from what an account (and its backup, manager and
mentor) sent within the out-of-office look-back. The nudge planner and the promise
keeper ask for the accounts they have due at every step; `AccountMail` keeps what it
parsed for them, by key, until it is older than the look-back.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence

from ackwatch.config import Config
from ackwatch.core.message import Message
from ackwatch.daemon.parsedmail import ParsedMail
from ackwatch.store import Store


class AccountMail:
    """The parsed mail the accounts sent within the out-of-office look-back, by key.

    ``cache`` holds the copies of each key kept; it is pruned by age only (pruning it to
    the accounts of one call made each call re-parse the others' mail: an account's
    three days of sent mail at every nudge; bench/README.md, issue 24)."""

    def __init__(self, store: Store, config: Callable[[], Config], parsed: ParsedMail) -> None:
        self._store = store
        self._config = config
        self._parsed = parsed
        self.cache: dict[str, list[Message]] = {}
        self._ages: list[tuple[dt.datetime, str]] = []  # (newest copy, key), a heap

    def clear(self) -> None:
        """Forget everything kept (another node may have stored mail meanwhile)."""
        self.cache.clear()
        self._ages.clear()

    def seed(self, recent: Sequence[Message]) -> None:
        """Seed the cache from a full evaluation's messages: ``recent``, every copy it
        loaded received within the out-of-office look-back. The first start would
        otherwise parse the accounts' sent mail a second time at the first `_plan`. Only
        what that `_plan` asks for is kept: mail sent by the accounts of the pending
        items, their backups, managers and mentors."""
        senders = self._away_addresses(self._store.pending_accounts())
        kept: dict[str, list[Message]] = {}
        for m in recent:
            if m.sender.address in senders and m.key not in self.cache:
                kept.setdefault(m.key, []).append(m)
        self._keep(kept)

    def of_accounts(self, accounts: Iterable[str], now: dt.datetime) -> list[Message]:
        """The stored mail `sla.recipient_for` needs to tell who of ``accounts`` (and their
        backups, managers and mentors) is away at ``now``: what they sent within the
        out-of-office look-back."""
        addresses = self._away_addresses(accounts)
        if not addresses:
            return []
        since = now - self._config().notify.out_of_office_lookback
        keys = self._store.keys_from(addresses, since)
        self._forget_before(since)
        missing = keys - self.cache.keys()
        loaded = self._store.load_copies(since, keys=missing) if missing else ()
        fresh: dict[str, list[Message]] = {}
        for m in self._parsed.messages(loaded):
            fresh.setdefault(m.key, []).append(m)
        self._keep(fresh)
        return [m for k in keys for m in self.cache.get(k, ())]

    def _away_addresses(self, accounts: Iterable[str]) -> set[str]:
        return away_addresses(self._config(), accounts)

    def _keep(self, mail: Mapping[str, list[Message]]) -> None:
        self.cache.update(mail)
        for key, copies in mail.items():
            newest = max(m.received for m in copies)
            heapq.heappush(self._ages, (newest, key))

    def _forget_before(self, since: dt.datetime) -> None:
        """Drop the cached mail whose every copy is older than ``since`` (the look-back)."""
        ages, cache = self._ages, self.cache
        while ages and ages[0][0] < since:
            _, key = heapq.heappop(ages)
            copies = cache.get(key)
            if copies is not None and max(m.received for m in copies) < since:
                del cache[key]


def away_addresses(config: Config, accounts: Iterable[str]) -> set[str]:
    """``accounts`` with their backups, managers and mentors: whose absence
    `recipient_for` and `mentor_copy` may look at."""
    addresses: set[str] = set()
    for address in accounts:
        acc = config.account(address)
        addresses.add(address.lower())
        if acc is not None:
            addresses.update(a.lower() for a in (acc.backup, acc.manager, acc.mentor) if a)
    return addresses


__all__ = ["AccountMail", "away_addresses"]
