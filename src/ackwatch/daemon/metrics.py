"""Prometheus metrics (``metrics.listen: 127.0.0.1:9464``; off by default).

The core loop publishes an immutable `Snapshot` after each step; a scrape reads the
latest one, so serving metrics never touches the state database or blocks the core.

    ackwatch_items_pending{account}            open items
    ackwatch_items_overdue{account}            open items past their deadline
    ackwatch_oldest_pending_received_timestamp{account}
                                               unix time the longest-waiting open item
                                               arrived (its age: time() - this)
    ackwatch_earliest_deadline_timestamp{account}
                                               unix time of the earliest open deadline
                                               (overdue for how long: time() - this)
    ackwatch_nudges_sent_total{kind}           mails accepted by the SMTP server (from the outbox)
    ackwatch_mailbox_up{mailbox}               1 when the mailbox is connected and syncing
    ackwatch_last_sync_timestamp{mailbox}      unix time of the last completed sync
    ackwatch_poll_interval_seconds             `sync.poll_interval`, so that alert rules
                                               can say "three poll intervals"
    ackwatch_time_to_ack_seconds{clock}        histogram; business seconds for business policies
    ackwatch_smtp_tls_failures_total{reason}   SMTP connections that could not be made safe
                                               (STARTTLS missing or refused, handshake,
                                               certificate); the mail waits and is retried
    ackwatch_send_failures_total{outcome}      sends that failed: ``retried`` (temporary:
                                               the mail waits) or ``failed`` (refused for
                                               good, or could not be rendered)
    ackwatch_database_up                       0 while the state database cannot be
                                               reached (PostgreSQL restarting, failing
                                               over) and the daemon waits for it, else 1
    ackwatch_database_outages_total            such outages waited out since the start
    ackwatch_node_leader{node}                 1 when this node leads (evaluates and sends)
    ackwatch_mailboxes_held{node}              mailboxes this node watches (`daemon.cluster`)
    ackwatch_cluster_round_seconds{node}       histogram of this node's cluster rounds
                                               (heartbeat, leases, lead); one longer than
                                               half of `cluster.renew` is a node close
                                               to giving its mailboxes up

Served by `httpserve.HttpServer` (waitress: bounded connections, threads and idle time),
so no client of the endpoint can starve the daemon.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Histogram
    from prometheus_client.core import Metric

    from ackwatch.daemon.httpserve import HttpServer
    from ackwatch.store import Store

SEND_FAILURE_OUTCOMES = ("retried", "failed")
ROUND_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # 2.5 s: half of renew's 5 s
TIME_TO_ACK_BUCKETS = (
    300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 7 * 86400,
)


@dataclass(frozen=True)
class Snapshot:
    pending: Mapping[str, int] = field(default_factory=dict)
    overdue: Mapping[str, int] = field(default_factory=dict)
    sent: Mapping[str, int] = field(default_factory=dict)  # kind -> count
    mailbox_up: Mapping[str, bool] = field(default_factory=dict)
    last_sync: Mapping[str, float] = field(default_factory=dict)  # mailbox -> unix time
    oldest_received: Mapping[str, float] = field(default_factory=dict)  # account -> unix time
    earliest_deadline: Mapping[str, float] = field(default_factory=dict)  # account -> unix time
    poll_interval: float | None = None  # seconds


def snapshot_of(
    store: Store,
    pending: Mapping[str, int],
    overdue: Mapping[str, int],
    sent: Mapping[str, int],
    *,
    oldest_received: Mapping[str, dt.datetime] | None = None,
    earliest_deadline: Mapping[str, dt.datetime] | None = None,
    poll_interval: dt.timedelta | None = None,
) -> Snapshot:
    """What the metrics show now: the pending and overdue items per account and their
    oldest receipt and earliest deadline (kept by `pendingbook.PendingBook`), the mail
    sent by kind (``sent``: `Store.sent_counts`, read again only after a send), and each
    mailbox's health."""
    health = store.health()
    return Snapshot(
        pending=dict(pending),
        overdue=dict(overdue),
        sent=dict(sent),
        oldest_received={a: t.timestamp() for a, t in (oldest_received or {}).items()},
        earliest_deadline={a: t.timestamp() for a, t in (earliest_deadline or {}).items()},
        poll_interval=poll_interval.total_seconds() if poll_interval else None,
        mailbox_up={h.mailbox: h.state == "up" for h in health},
        last_sync={h.mailbox: h.last_sync.timestamp() for h in health if h.last_sync},
    )


class _SnapshotCollector:
    def __init__(self) -> None:
        self.snapshot = Snapshot()
        # Counted by the core thread as they happen (not in the state database).
        self.tls_failures: dict[str, int] = {}
        # Both outcomes from the start, so that `increase()` sees the first failure.
        self.send_failures: dict[str, int] = dict.fromkeys(SEND_FAILURE_OUTCOMES, 0)
        self.database_up = True
        self.database_outages = 0
        self.node: tuple[str, bool, int] | None = None  # (name, leads, mailboxes held)

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.snapshot
        up = {mailbox: 1.0 if is_up else 0.0 for mailbox, is_up in s.mailbox_up.items()}
        gauge, counter = GaugeMetricFamily, CounterMetricFamily
        # (kind, name, help, label, value by label)
        for kind, name, documentation, label, values in (
            (gauge, "ackwatch_items_pending", "Client emails waiting for an acknowledgement",
             "account", s.pending),
            (gauge, "ackwatch_items_overdue", "Open client emails past their deadline",
             "account", s.overdue),
            (counter, "ackwatch_nudges_sent", "Mails accepted by the SMTP server",
             "kind", s.sent),
            (gauge, "ackwatch_oldest_pending_received_timestamp",
             "Unix time the longest-waiting open client email arrived",
             "account", s.oldest_received),
            (gauge, "ackwatch_earliest_deadline_timestamp",
             "Unix time of the earliest deadline among the open client emails",
             "account", s.earliest_deadline),
            (gauge, "ackwatch_mailbox_up", "1 when the mailbox is connected and syncing",
             "mailbox", up),
            (gauge, "ackwatch_last_sync_timestamp", "Unix time of the last completed sync",
             "mailbox", s.last_sync),
            (counter, "ackwatch_smtp_tls_failures",
             "SMTP connections that could not be made safe (the mail is retried)",
             "reason", dict(self.tls_failures)),
            (counter, "ackwatch_send_failures",
             "Sends that failed: retried (temporary) or failed (for good)",
             "outcome", dict(self.send_failures)),
        ):
            family = kind(name, documentation, labels=[label])
            for key, value in sorted(values.items()):
                family.add_metric([key], value)
            yield family
        yield GaugeMetricFamily(
            "ackwatch_database_up",
            "0 while the state database cannot be reached and the daemon waits for it",
            value=1.0 if self.database_up else 0.0,
        )
        yield CounterMetricFamily(
            "ackwatch_database_outages", "State database outages waited out",
            value=self.database_outages,
        )
        if self.node is not None:
            node, leads, held = self.node
            for name, documentation, value in (
                ("ackwatch_node_leader", "1 when this node leads (evaluates and sends)",
                 1.0 if leads else 0.0),
                ("ackwatch_mailboxes_held", "Mailboxes this node watches", float(held)),
            ):
                family = gauge(name, documentation, labels=["node"])
                family.add_metric([node], value)
                yield family
        if s.poll_interval is not None:
            yield GaugeMetricFamily(
                "ackwatch_poll_interval_seconds", "The configured sync.poll_interval",
                value=s.poll_interval,
            )


class Metrics:
    """One registry per daemon (tests can make several).

    prometheus-client is imported when the registry is first needed (served, rendered or
    a time to acknowledge observed), not at every start: 13 ms of a `run --once` that
    publishes its snapshot to nobody."""

    def __init__(self) -> None:
        self._collector = _SnapshotCollector()
        self._made: tuple[CollectorRegistry, Histogram, Histogram] | None = None
        self._server: HttpServer | None = None
        self._lock = threading.Lock()

    def _registry(self) -> tuple[CollectorRegistry, Histogram, Histogram]:
        with self._lock:
            if self._made is None:
                from prometheus_client import CollectorRegistry, Histogram

                registry = CollectorRegistry(auto_describe=True)
                registry.register(self._collector)
                time_to_ack = Histogram(
                    "ackwatch_time_to_ack_seconds",
                    "Time from receipt to acknowledgement, on the policy's clock",
                    labelnames=["clock"],
                    buckets=TIME_TO_ACK_BUCKETS,
                    registry=registry,
                )
                rounds = Histogram(
                    "ackwatch_cluster_round_seconds",
                    "Seconds a cluster round (heartbeat, leases, leadership) took",
                    labelnames=["node"],
                    buckets=ROUND_BUCKETS,
                    registry=registry,
                )
                self._made = (registry, time_to_ack, rounds)
            return self._made

    @property
    def registry(self) -> CollectorRegistry:
        return self._registry()[0]

    def serve(self, listen: str) -> None:
        """Serve ``/metrics`` on ``host:port`` (`httpserve`); `OSError` if it cannot bind."""
        from prometheus_client import make_wsgi_app

        from ackwatch.daemon.httpserve import HttpServer, parse_listen

        host, port = parse_listen(listen)
        server = HttpServer(make_wsgi_app(self.registry), host, port, name="metrics")
        server.start()
        self._server = server

    @property
    def port(self) -> int | None:
        """The port `serve` listens on (the kernel's choice for ``host:0``); None when
        not serving."""
        return None if self._server is None else self._server.port

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()

    def count_tls_failure(self, reason: str) -> None:
        """One SMTP connection that could not be made safe (`smtp.TLS_FAILURES`)."""
        with self._lock:
            failures = self._collector.tls_failures
            failures[reason] = failures.get(reason, 0) + 1

    def count_send_failure(self, outcome: str) -> None:
        """One send that failed: ``retried`` or ``failed`` (`SEND_FAILURE_OUTCOMES`)."""
        with self._lock:
            failures = self._collector.send_failures
            failures[outcome] = failures.get(outcome, 0) + 1

    def set_database_up(self, up: bool) -> None:
        """The state database reached again (True) or lost for now (False: counted)."""
        with self._lock:
            collector = self._collector
            if collector.database_up and not up:
                collector.database_outages += 1
            collector.database_up = up
    def set_node(self, node: str, *, leader: bool, held: int) -> None:
        """This node's name, whether it leads and how many mailboxes it watches."""
        if node:
            self._collector.node = (node, leader, held)

    def publish(self, snapshot: Snapshot) -> None:
        self._collector.snapshot = snapshot

    def observe_ack(self, clock: str, seconds: float) -> None:
        self._registry()[1].labels(clock=clock).observe(max(0.0, seconds))

    def observe_round(self, node: str, seconds: float) -> None:
        """One cluster round of ``node`` took ``seconds`` (`roundpace.RoundPace`)."""
        self._registry()[2].labels(node=node).observe(max(0.0, seconds))

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
