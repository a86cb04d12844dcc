"""What the daemon tells the outside after a step: the metrics and systemd's STATUS line.

Both read the pending items' counts from a `PendingBook` kept up to date with the keys
each evaluation touched (`Evaluator.take_changes`): every pending item is read only at
the first publication and after an evaluation of everything. The sent counts are read
again only after a mail went out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from ackwatch.config import Config
from ackwatch.daemon.delivery import Delivery
from ackwatch.daemon.evaluation import Evaluator
from ackwatch.daemon.metrics import Metrics, Snapshot, snapshot_of
from ackwatch.daemon.pendingbook import PendingBook
from ackwatch.store import Store


class Publisher:
    def __init__(
        self,
        store: Store,
        config: Callable[[], Config],
        now: Callable[[], dt.datetime],
        evaluation: Evaluator,
        delivery: Delivery,
        metrics: Metrics,
    ) -> None:
        self._store = store
        self._config = config
        self._now = now
        self._evaluation = evaluation
        self._delivery = delivery
        self._metrics = metrics
        self._book = PendingBook()
        self._sent_counts: dict[str, int] | None = None
        self._sent_seen = 0
        self._published = Snapshot()

    def pending_counts(self) -> PendingBook:
        """The pending items' counts, brought up to date with the evaluations since the
        last call."""
        changed = self._evaluation.take_changes()
        if changed is None:
            self._book.reset(self._store.pending_items())
        elif changed:
            self._book.replace(changed, self._store.pending_items(changed))
        return self._book

    def publish_metrics(self) -> None:
        book = self.pending_counts()
        if self._sent_seen != self._delivery.sent or self._sent_counts is None:
            self._sent_seen = self._delivery.sent
            self._sent_counts = self._store.sent_counts()
        config = self._config()
        self._published = snapshot_of(
            self._store, book.pending, book.overdue(self._now()), self._sent_counts,
            oldest_received=book.oldest_received(),
            earliest_deadline=book.earliest_deadline(),
            poll_interval=config.sync.poll_interval,
        )
        self._metrics.publish(self._published)

    def status_line(self, next_due: dt.datetime | None) -> str:
        """systemd's STATUS= line; the mailboxes up as the metrics just published them
        (`publish_metrics` runs first in each step: the health is read once)."""
        up = sum(self._published.mailbox_up.values())
        pending = len(self.pending_counts())
        nxt = next_due.astimezone(dt.UTC).strftime("%H:%M:%SZ") if next_due else "none"
        return (f"mailboxes up {up}/{len(self._config().mailboxes)}, pending {pending},"
                f" next action {nxt}")
