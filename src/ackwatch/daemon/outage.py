"""Riding out a state database that cannot be reached for now (PostgreSQL restarted,
failed over, a network blip), in the process: the step that met it stored nothing
(`StoreUnavailable`: its transaction was rolled back whole), so the daemon reconnects
with a bounded backoff and does the step again.

While it waits it keeps feeding systemd's watchdog, says so in systemd's status line
and in the metrics (`ackwatch_database_up`), and logs the outage twice: when it starts
(`database_unreachable`) and when it ends (`database_reconnected`, with the attempts and
the outage's length). An outage longer than ``database.give_up_after`` ends the process
with a `StoreError` (exit 1: systemd starts it again); so does a database that refuses
us for good when we reconnect (a changed password, a newer schema).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import structlog

from ackwatch.config import Config
from ackwatch.store import Store, StoreError, StoreUnavailable

log = structlog.get_logger(__name__)

FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 10.0
WAIT_SLICE_SECONDS = 1.0  # the watchdog and a stop are looked at this often


class DatabaseOutage:
    """Waits out a lost state database for the core loop (`ride_out`).

    ``give_up_after``: the longest outage waited out (the config's, read at each
    outage); ``heartbeat``: feeds the watchdog; ``status``: systemd's STATUS= line;
    ``up``: the metrics' view (called with False when the outage starts, True when it
    ends)."""

    def __init__(
        self,
        store: Store,
        *,
        give_up_after: Callable[[], dt.timedelta],
        stop: threading.Event,
        heartbeat: Callable[[], None],
        status: Callable[[str], object],
        up: Callable[[bool], None],
    ) -> None:
        self._store = store
        self._give_up_after = give_up_after
        self._stop = stop
        self._heartbeat = heartbeat
        self._status = status
        self._up = up
        self.outages = 0

    def ride_out(self, lost: StoreUnavailable) -> bool:
        """Reconnect until the database answers; True once it does, False if a stop
        was asked meanwhile. `StoreError` when it refuses us for good, or after
        ``give_up_after``."""
        limit = self._give_up_after().total_seconds()
        started = time.monotonic()
        self.outages += 1
        self._up(False)
        log.warning("database_unreachable", error=str(lost), give_up_after_s=limit)
        attempts, delay, error = 0, FIRST_RETRY_SECONDS, str(lost)
        while not self._stop.is_set():
            self._heartbeat()
            attempts += 1
            try:
                self._store.reconnect()
            except StoreUnavailable as exc:
                error = str(exc)
            else:
                outage = round(time.monotonic() - started, 1)
                self._up(True)
                log.info("database_reconnected", attempts=attempts, outage_s=outage)
                return True
            elapsed = time.monotonic() - started
            if elapsed >= limit:
                log.error("database_outage_too_long", attempts=attempts,
                          outage_s=round(elapsed, 1), give_up_after_s=limit, error=error)
                raise StoreError(f"{error} (unreachable for {elapsed:.0f} s, more than "
                                 f"database.give_up_after: giving up)")
            self._status(f"state database unreachable for {elapsed:.0f} s,"
                         f" reconnecting (attempt {attempts})")
            self._sleep(min(delay, limit - elapsed))
            delay = min(delay * 2, MAX_RETRY_SECONDS)
        return False

    def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, feeding the watchdog; a stop ends it early."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0 and not self._stop.is_set():
            self._stop.wait(min(left, WAIT_SLICE_SECONDS))
            self._heartbeat()


def give_up_after(config: Config) -> dt.timedelta:
    """The longest state-database outage waited out (`database.give_up_after`; SQLite:
    none, a lost file is not waited for)."""
    return config.database.give_up_after if config.database is not None else dt.timedelta(0)
