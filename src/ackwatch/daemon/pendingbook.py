"""The pending items counted per account, kept up to date by what each evaluation changed.

The metrics (pending and overdue per account) and systemd's status line are published
after every step. Counting them from every pending item made each step cost in
proportion to what waits (10,000 items read and counted for one new mail); the book
changes only by the keys an evaluation touched, and an item turns overdue once, when its
deadline passes (a heap of deadlines). The oldest waiting mail and the earliest deadline
per account (for "overdue for 30 minutes" alerts) come from one heap per account each,
whose stale heads are dropped when read.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Callable, Iterable, Mapping

from ackwatch.store import ItemRecord


class _OldestByAccount:
    """The smallest time per account among the pending items, with lazy deletion: an
    entry is live while its key is pending in that account with that time."""

    def __init__(self) -> None:
        self._heaps: dict[str, list[tuple[dt.datetime, str]]] = {}

    def push(self, account: str, when: dt.datetime, key: str) -> None:
        heapq.heappush(self._heaps.setdefault(account, []), (when, key))

    def oldest(
        self, account: str, counts: Mapping[str, int], is_live: Callable[[str, str, dt.datetime], bool]
    ) -> dt.datetime | None:
        heap = self._heaps.get(account)
        if not heap:
            return None
        if len(heap) > 2 * counts.get(account, 0) + 16:  # mostly stale: rebuild
            heap[:] = [e for e in heap if is_live(account, e[1], e[0])]
            heapq.heapify(heap)
        while heap and not is_live(account, heap[0][1], heap[0][0]):
            heapq.heappop(heap)
        if not heap:
            del self._heaps[account]
            return None
        return heap[0][0]


class PendingBook:
    """Each pending item's account and deadline, and the counts per account."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        # key -> (account, deadline, received)
        self._items: dict[str, tuple[str, dt.datetime, dt.datetime]] = {}
        self._overdue_keys: set[str] = set()
        self._due: list[tuple[dt.datetime, str]] = []  # deadlines not passed yet (lazy)
        self.pending: dict[str, int] = {}
        self._overdue: dict[str, int] = {}
        self._by_received = _OldestByAccount()
        self._by_deadline = _OldestByAccount()

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

    def oldest_received(self) -> Mapping[str, dt.datetime]:
        """When the longest-waiting pending mail was received, per account."""
        def live(account: str, key: str, when: dt.datetime) -> bool:
            return self._items.get(key, (None, None, None))[::2] == (account, when)

        return self._oldest(self._by_received, live)

    def earliest_deadline(self) -> Mapping[str, dt.datetime]:
        """The earliest deadline among the pending items, per account."""
        def live(account: str, key: str, when: dt.datetime) -> bool:
            return self._items.get(key, (None, None, None))[:2] == (account, when)

        return self._oldest(self._by_deadline, live)

    def _oldest(
        self, heaps: _OldestByAccount, live: Callable[[str, str, dt.datetime], bool]
    ) -> dict[str, dt.datetime]:
        out = {}
        for account in self.pending:
            when = heaps.oldest(account, self.pending, live)
            if when is not None:
                out[account] = when
        return out

    def _add(self, r: ItemRecord) -> None:
        if r.key in self._items:
            self._remove(r.key)
        account = r.account or "-"
        self._items[r.key] = (account, r.deadline, r.received)
        self.pending[account] = self.pending.get(account, 0) + 1
        heapq.heappush(self._due, (r.deadline, r.key))
        self._by_received.push(account, r.received, r.key)
        self._by_deadline.push(account, r.deadline, r.key)

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
