"""The state database unreachable, as the board sees it (`StoreUnavailable`: PostgreSQL
restarting, failing over, a network blip).

The board answers ``503`` with ``Retry-After`` while it lasts, and the page's script says
it is stale, as while the daemon restarts. The outage is logged twice, not once per
request (a page polls twice a second): ``web_database_unreachable`` when the board first
meets it, ``web_database_reconnected`` (with its length and the requests refused) at the
first read that succeeds. Meanwhile the database is tried at most once every
`RETRY_AFTER` seconds, whatever the number of open pages; the other requests are refused
at once, so that a database that does not answer (a connect waits up to 10 s) cannot hold
every worker of the web server.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import structlog

from ackwatch.store import StoreUnavailable

log = structlog.get_logger(__name__)

RETRY_AFTER = dt.timedelta(seconds=5)


class DatabaseOutage:
    """Whether the board is in an outage, and when to try the database again.
    ``now``: the board's clock."""

    def __init__(self, now: Callable[[], dt.datetime]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._since: dt.datetime | None = None
        self._next_try: dt.datetime | None = None
        self._refused = 0

    def wait(self) -> bool:
        """True when a request should be refused without trying the database (an outage,
        tried again less than `RETRY_AFTER` ago); False lets this request try (and be the
        only one trying until it `failed` or `succeeded`)."""
        with self._lock:
            if self._since is None:
                return False
            now = self._now()
            if self._next_try is not None and self._since <= now < self._next_try:
                self._refused += 1
                return True
            self._next_try = now + RETRY_AFTER  # this request tries; the others wait
            return False

    def failed(self, exc: StoreUnavailable) -> None:
        """A read met the outage: logged if it is the first of this outage."""
        with self._lock:
            now = self._now()
            self._next_try = now + RETRY_AFTER
            self._refused += 1
            if self._since is None:
                self._since, self._refused = now, 1
                log.warning("web_database_unreachable", error=str(exc),
                            retry_after_s=int(RETRY_AFTER.total_seconds()))

    def succeeded(self) -> None:
        """A read succeeded: the end of the outage, if there was one."""
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            since, self._since, self._next_try = self._since, None, None
            if since is not None:
                log.info("web_database_reconnected",
                         outage_s=round((self._now() - since).total_seconds(), 1),
                         requests_refused=self._refused)
