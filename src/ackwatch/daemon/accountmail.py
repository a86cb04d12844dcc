"""The accounts' own newest mail, parsed once for whoever asks who is away.

`sla.recipient_for` tells who is away from what an account (and its backup, manager and
mentor) sent lately: `item_rules.away_reason` walks an address's mail newest first and
stops at the first out-of-office notice or human message (`item_rules.away_evidence`).
So only that much is read: each address's newest mail, a page at a time from the
senders index, down to the first message that says something and the others of its
second. An account that writes a few hundred mails a day costs one indexed read of a
page and no parse at each plan, not its three days of sent mail read, parsed and kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence

from ackwatch.config import Config
from ackwatch.core.item_rules import away_evidence
from ackwatch.core.message import Message
from ackwatch.store import Store, StoredCopy

Parse = Callable[[Iterable[StoredCopy]], Iterable[Message]]

# The newest mail of an address is usually a human one and settles who is away: its
# senders rows are read one, then this many, then its square at a time (a run of
# automated mail before the message that settles it).
PAGE = 8


class AccountMail:
    """The newest mail of each address asked about, parsed, by key.

    ``cache`` holds the copies of the keys that some address's newest mail needs (key ->
    copies, all received within the look-back as of the last ask); a key leaves it when
    no address's newest mail needs it any more. Bounded by the addresses, not by what
    they send. The store and the config come with each ask: the board reads through a
    reader of its own each time."""

    def __init__(self, parse: Parse) -> None:
        self._parse = parse
        self.cache: dict[str, list[Message]] = {}
        self._needs: dict[str, tuple[str, ...]] = {}  # address -> keys of its newest mail
        self._loaded: set[tuple[dt.datetime, str]] = set()  # senders rows in the cache

    def clear(self) -> None:
        """Forget everything kept (another node may have stored mail meanwhile)."""
        self.cache.clear()
        self._needs.clear()
        self._loaded.clear()

    def of_accounts(
        self, store: Store, config: Config, accounts: Iterable[str], now: dt.datetime
    ) -> list[Message]:
        """The stored mail `sla.recipient_for` needs to tell who of ``accounts`` (and their
        backups, managers and mentors) is away at ``now``: for each address, its mail
        within the out-of-office look-back, newest first down to the first message that
        says something of its absence (with the others received in that second)."""
        since = now - config.notify.out_of_office_lookback
        out: list[Message] = []
        for address in sorted(away_addresses(config, accounts)):
            keys = self._newest_mail(store, config, address, since, now)
            self._needs[address] = keys
            out += (m for k in keys for m in self.cache[k] if since <= m.received <= now)
        needed = {k for keys in self._needs.values() for k in keys}
        for gone in self.cache.keys() - needed:
            del self.cache[gone]
        self._loaded = {row for row in self._loaded if row[1] in needed}
        return out

    def _newest_mail(
        self, store: Store, config: Config, address: str, since: dt.datetime, now: dt.datetime
    ) -> tuple[str, ...]:
        """The keys of ``address``'s mail `away_reason` looks at, newest first, parsed
        into the cache. The rows are read one, then `PAGE`, then more at a time; a key is
        parsed when the walk reaches it (with the rest of its page while nothing has
        settled the answer yet, as more of it is then likely needed)."""
        keys: dict[str, None] = {}
        settled_at: dt.datetime | None = None
        before: tuple[dt.datetime, str] | None = None
        limit = 1
        while True:
            rows = store.newest_from(address, since, now, limit, before)
            for n, (received, key) in enumerate(rows):
                if settled_at is not None and received < settled_at:
                    return tuple(keys)
                if (received, key) not in self._loaded:
                    self._load(store, rows[n:] if settled_at is None else rows[n:n + 1], since)
                keys[key] = None
                if settled_at is None and self._says_something(received, key, address, config):
                    settled_at = received
            if len(rows) < limit:
                return tuple(keys)
            before = rows[-1]
            limit = min(limit * PAGE, PAGE * PAGE)

    def _load(
        self, store: Store, rows: Sequence[tuple[dt.datetime, str]], since: dt.datetime
    ) -> None:
        """Parse the copies of the keys of ``rows`` that the cache does not hold as of
        those rows (a key new to it, or a copy of it stored since in another mailbox)."""
        missing = {key for received, key in rows if (received, key) not in self._loaded}
        fresh: dict[str, list[Message]] = {k: [] for k in missing}
        for m in self._parse(store.load_copies(since, keys=missing)):
            fresh[m.key].append(m)
        self.cache.update(fresh)
        self._loaded.update(row for row in rows if row[1] in missing)

    def _says_something(self, received: dt.datetime, key: str, address: str,
                        config: Config) -> bool:
        """Whether the copies of ``key`` received at ``received`` say something of
        ``address``'s absence (`away_evidence`)."""
        return any(
            m.received == received and m.sender.address == address
            and away_evidence(m, config) is not None
            for m in self.cache[key]
        )


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
