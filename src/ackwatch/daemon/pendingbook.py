"""The pending items counted per account, kept up to date by what each evaluation changed.

The metrics (pending and overdue per account) and systemd's status line are published
after every step. Counting them from every pending item made each step cost in
proportion to what waits (10,000 items read and counted for one new mail); the book
changes only by the keys an evaluation touched, and an item turns overdue once, when its
deadline passes (a heap of deadlines).
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable, Mapping

from ackwatch.store import ItemRecord


class PendingBook:
    """Each pending item's account and deadline, and the counts per account."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self._items: dict[str, tuple[str, dt.datetime]] = {}  # key -> (account, deadline)
        self._overdue_keys: set[str] = set()
        self._due: list[tuple[dt.datetime, str]] = []  # deadlines not passed yet (lazy)
        self.pending: dict[str, int] = {}
        self._overdue: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def reset(self, records: Iterable[ItemRecord]) -> None:
        """Every pending item, as stored now."""
        self._clear()
        for r in records:
            self._add(r)

    def replace(self, keys: Iterable[str], records: Iterable[ItemRecord]) -> None:
        """``keys`` evaluated again: ``records`` are the pending items among them now."""
        for key in keys:
            self._remove(key)
        for r in records:
            self._add(r)

    def overdue(self, now: dt.datetime) -> Mapping[str, int]:
        """Pending items past their deadline at ``now``, per account."""
        due = self._due
        while due and due[0][0] <= now:
            deadline, key = heapq.heappop(due)
            entry = self._items.get(key)
            if entry is None or entry[1] != deadline or key in self._overdue_keys:
                continue  # answered, or evaluated again, since it was pushed
            self._overdue_keys.add(key)
            self._overdue[entry[0]] = self._overdue.get(entry[0], 0) + 1
        return {a: n for a, n in self._overdue.items() if n}

    def _add(self, r: ItemRecord) -> None:
        if r.key in self._items:
            self._remove(r.key)
        account = r.account or "-"
        self._items[r.key] = (account, r.deadline)
        self.pending[account] = self.pending.get(account, 0) + 1
        heapq.heappush(self._due, (r.deadline, r.key))

    def _remove(self, key: str) -> None:
        entry = self._items.pop(key, None)
        if entry is None:
            return
        account = entry[0]
        self.pending[account] -= 1
        if not self.pending[account]:
            del self.pending[account]
        if key in self._overdue_keys:
            self._overdue_keys.discard(key)
            self._overdue[account] -= 1
