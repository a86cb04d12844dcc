"""What the board shows, read from the state in one go (`read_state`) and kept until the
daemon says the state changed (`StateCache`).

The board never writes: it reads through the store's read-only reader (`Store.open_reader`,
a connection of its own, opened and closed per read), on the web server's threads, never on
the core loop. The core loop calls `StateCache.changed` after each step; a poll of the page
then finds the cache stale and reads again, once for all viewers.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ackwatch.config import Config
from ackwatch.core.message import Message
from ackwatch.core.promise_rules import still_owed
from ackwatch.daemon.accountmail import AccountMail
from ackwatch.daemon.parsedmail import messages_of
from ackwatch.reporting.figures import ReportItem
from ackwatch.reporting.period import local_midnight
from ackwatch.store import HealthRecord, ItemRecord, PromiseRecord, Store

MAX_AGE = dt.timedelta(seconds=60)  # read again at least this often: deadlines pass


@dataclass(frozen=True)
class State:
    """One read of everything the board shows, as of ``read_at``."""

    read_at: dt.datetime
    pending: tuple[ItemRecord, ...]
    promises: tuple[PromiseRecord, ...]  # open, and broken with no word to the client yet
    health: tuple[HealthRecord, ...]
    week_start: dt.datetime
    week: tuple[ReportItem, ...]  # client mail received since Monday 00:00 (report rows)
    account_mail: tuple[Message, ...]  # what accounts sent lately: who is away


def week_start(now: dt.datetime, timezone: str) -> dt.datetime:
    """Monday 00:00 of ``now``'s week in ``timezone``."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    return local_midnight(today - dt.timedelta(days=today.weekday()), timezone)


def _open_promises(store: Store, now: dt.datetime) -> tuple[PromiseRecord, ...]:
    return tuple(still_owed(store.promises(states=("open", "broken")), now))


def _account_mail(store: Store, config: Config, now: dt.datetime,
                  account_mail: AccountMail) -> tuple[Message, ...]:
    """What `item_rules.away_reason` needs to tell who of the accounts (and their backups
    and managers) is away: each one's newest mail (`AccountMail`, which keeps it parsed
    from one read to the next)."""
    addresses = {a.email for a in config.accounts}
    for a in config.accounts:
        addresses.update(x.lower() for x in (a.backup, a.manager) if x)
    return tuple(account_mail.of_accounts(store, config, addresses, now))


def read_state(store: Store, config: Config, now: dt.datetime,
               account_mail: AccountMail | None = None) -> State:
    start = week_start(now, config.timezone)
    until = now + dt.timedelta(seconds=1)
    return State(
        read_at=now,
        pending=tuple(store.pending_items()),
        promises=_open_promises(store, now),
        health=tuple(store.health()),
        week_start=start,
        week=tuple(store.report_rows(start, until, ReportItem)),
        account_mail=_account_mail(
            store, config, now, account_mail or AccountMail(messages_of)
        ),
    )


class StateCache:
    """The last `State`, read again when the daemon says the state changed or when it is
    a minute old. ``version`` names what the board shows: it changes with every read that
    may show something new, and with every start of the daemon (a page open across a
    restart sees a new version and redraws)."""

    def __init__(self, open_reader: Callable[[], Store], config: Callable[[], Config],
                 now: Callable[[], dt.datetime]) -> None:
        self._open_reader = open_reader
        self._config = config
        self._now = now
        self._boot = secrets.token_hex(4)
        self._generation = 0
        self._read_generation = -1
        self._state: State | None = None
        self._account_mail = AccountMail(messages_of)  # who is away: `read_state`
        self._lock = threading.Lock()

    def changed(self) -> None:
        """The state may have changed (called by the core loop; cheap, never blocks)."""
        self._generation += 1

    @property
    def version(self) -> str:
        state = self._state
        stamp = int(state.read_at.timestamp()) if state else 0
        return f"{self._boot}-{self._read_generation}-{stamp}"

    def get(self) -> State:
        """The current `State` (reads the store when stale; one reader at a time)."""
        with self._lock:
            now = self._now()
            state = self._state
            if (state is None or self._read_generation != self._generation
                    or now - state.read_at >= MAX_AGE):
                generation = self._generation
                store = self._open_reader()
                try:
                    state = read_state(store, self._config(), now, self._account_mail)
                finally:
                    store.close()
                self._state, self._read_generation = state, generation
            return state
