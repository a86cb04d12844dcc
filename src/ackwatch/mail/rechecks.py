"""A watcher's pre-send re-checks: the requests waiting for its thread, and the early
attempt a re-check asks of a mailbox in backoff.

A mailbox that is down is retried with a backoff that grows to minutes, longer than
``notify.recheck_grace``. Without `EarlyRetry` a nudge held for such a mailbox would go
out unchecked at the grace's end even when the server had long been back. A re-check
therefore asks the watcher to try now, but at most once per ``every`` seconds (counting
its own attempts too), so that a dead server sees no more than that from ackwatch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ackwatch.mail.idle import Waker


@dataclass
class Recheck:
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


def finish(reqs: Iterable[Recheck], ok: bool) -> None:
    for r in reqs:
        r.ok = ok
        r.done.set()


class Rechecks:
    """Recheck requests waiting for the watcher thread: any thread asks, the watcher takes
    them (waking its wait through `wake`) and answers each."""

    def __init__(self, wake: Waker) -> None:
        self._wake = wake
        self._lock = threading.Lock()
        self._waiting: list[Recheck] = []

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def ask(self, timeout: float) -> bool:
        """Queue a request and wait up to `timeout` for its answer; False on a timeout."""
        req = Recheck()
        with self._lock:
            self._waiting.append(req)
        self._wake.set()
        if not req.done.wait(timeout):
            with self._lock:
                if req in self._waiting:
                    self._waiting.remove(req)
            return False
        return req.ok

    def take(self) -> list[Recheck]:
        # Clear first: a request that arrives after the take raises the flag again.
        self._wake.clear()
        with self._lock:
            reqs, self._waiting = self._waiting, []
        return reqs

    def fail_all(self) -> None:
        with self._lock:
            reqs, self._waiting = self._waiting, []
        finish(reqs, ok=False)


class EarlyRetry:
    """The backoff wait of a watcher, which a re-check can cut short: at most once per
    ``every`` seconds since the watcher's last attempt, whatever started it."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._last = float("-inf")  # time.monotonic() of the last attempt
        self.under_way = False  # an attempt asked by a re-check has not ended yet

    def ask(self) -> Literal["started", "under way"] | None:
        """Start an attempt now if allowed; None: the last one was too recent."""
        with self._lock:
            if self.under_way:
                return "under way"
            if time.monotonic() - self._last < self.every:
                return None
            self.under_way = True
        self._wake.set()
        return "started"

    def wait(self, seconds: float) -> None:
        """The backoff: ``seconds``, or less when `ask` starts an attempt (or `wake`)."""
        self._wake.wait(seconds)
        self._wake.clear()

    def wake(self) -> None:
        """End the wait at once (the watcher stops)."""
        self._wake.set()

    def attempting(self) -> None:
        """The watcher starts a session (a connect and a login)."""
        with self._lock:
            self._last = time.monotonic()

    def ended(self) -> None:
        """The attempt ended: the mailbox is up, or backs off again."""
        with self._lock:
            self.under_way = False


__all__ = ["EarlyRetry", "Recheck", "Rechecks", "finish"]
