"""The core's queue of events (watchers' syncs and health, signals' wakes, the cluster's
news), applied in order on the core thread.

An event taken from the queue stays first in line until it is applied: one that meets a
lost database (`StoreUnavailable`: it stored nothing) is applied again, before any later
one, once the database is back. Putting it back on the queue instead would move it
behind later events of the same watcher and could apply an older cursor last.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Callable

from ackwatch.store import StoreUnavailable


class EventQueue:
    def __init__(self) -> None:
        # SimpleQueue: `put` is reentrant, so the signal handlers (which run on the core
        # thread, possibly inside a `get` of this very queue) cannot deadlock on it.
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._unapplied: deque[object] = deque()  # taken, not yet applied, oldest first

    def put(self, event: object) -> None:
        """From any thread."""
        self._queue.put(event)

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for an event (at once if one is taken and not
        applied yet); the next `drain` applies it first."""
        if self._unapplied:
            return
        try:
            self._unapplied.append(self._queue.get(timeout=timeout))
        except queue.Empty:
            return

    def drain(self, apply: Callable[[object], None]) -> int:
        """Apply the events waiting, in order; how many. One that meets a lost database
        stays first in line; one that fails otherwise is dropped, as the error says."""
        handled = 0
        while True:
            if not self._unapplied:
                try:
                    self._unapplied.append(self._queue.get_nowait())
                except queue.Empty:
                    return handled
            try:
                apply(self._unapplied[0])
            except StoreUnavailable:
                raise
            except BaseException:
                self._unapplied.popleft()
                raise
            self._unapplied.popleft()
            handled += 1
