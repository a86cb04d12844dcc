"""The Grafana dashboard (contrib/grafana/ackwatch.json) against a real Prometheus
(Debian's package) scraping the real Daemon's metrics endpoint: every query in it returns
data. The daemon runs in the test process (`tests.support.inprocess`): its state is
written through the store as the sync would, and its nudges go to aiosmtpd."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from pathlib import Path

import pytest
from tests.servers.imapserver import free_port
from tests.servers.prometheus import PrometheusServer
from tests.support.inprocess import MONDAY_0900, Clock, daemon, due_item
from tests.support.inprocess import sink as sink
from tests.support.storing import store_step
from tests.support.waiting import wait_for

from ackwatch.config import DigestConfig, MetricsConfig
from ackwatch.core.item_rules import Ack, Deadlines, Item
from ackwatch.daemon.evaluation import observe_acks
from configfactory import ANNA

pytestmark = pytest.mark.integration

DASHBOARD = Path(__file__).resolve().parents[2] / "contrib" / "grafana" / "ackwatch.json"
# Grafana's variables as the dashboard is opened: every job, a short range.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1m", "$job": ".+"}


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target in the dashboard, variables filled in."""
    queries = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries.append((panel["title"], expr))
    return queries


def acknowledged(key: str, after: dt.timedelta) -> Item:
    received = MONDAY_0900 - dt.timedelta(hours=2)
    deadline = received + dt.timedelta(hours=2)
    return Item(key=key, thread=key, message_id=key, client_address="jan@acme.example",
                client="Acme", subject="Quote " + key, received=received, mailboxes=("anna",),
                account=ANNA, ack=Ack("r-" + key, received + after, "reply", ANNA),
                deadlines=Deadlines("retainer", "calendar", deadline, deadline, None))


def has_data(result: list[dict]) -> bool:
    return bool(result) and all(not math.isnan(float(r["value"][1])) for r in result)


def test_every_dashboard_query_returns_data_from_a_real_prometheus(tmp_path, sink):
    clock = Clock(MONDAY_0900)
    port = free_port()
    d = daemon(tmp_path, sink, clock, metrics=MetricsConfig(listen=f"127.0.0.1:{port}"),
               digest=DigestConfig(enabled=False))
    d.metrics.serve(d.config.metrics.listen)
    (tmp_path / "prometheus").mkdir()
    try:
        d.reevaluate()
        d.store.sync_items([due_item("due", MONDAY_0900)], now=clock.t, initial_keys=set())
        store_step(d.store, [], now=clock.t, mailbox="anna")  # a completed sync
        d.store.set_health("office", "down", since=clock.t, last_error="connection refused")
        observe_acks(d.metrics, [acknowledged("early", dt.timedelta(minutes=20))], d.config)
        d.publisher.publish_metrics()
        with PrometheusServer(tmp_path / "prometheus", f"127.0.0.1:{port}") as prometheus:
            wait_for(lambda: prometheus.query('count_over_time(up{job="ackwatch"}[1m]) >= 2'),
                     30, "two scrapes of the daemon")
            # Then what the rate panels show: a nudge and an escalation sent, an ack.
            d.run_due()
            d.process_outbox()
            assert sink.messages
            observe_acks(d.metrics, [acknowledged("late", dt.timedelta(hours=3))], d.config)
            d.publisher.publish_metrics()

            def without_data() -> list[tuple[str, str]]:
                return [(title, expr) for title, expr in dashboard_queries()
                        if not has_data(prometheus.query(expr))]

            with contextlib.suppress(AssertionError):  # the assertion below names them
                wait_for(lambda: not without_data(), 30, "every dashboard query to have data",
                         step=0.5)
            assert without_data() == []
            assert len(dashboard_queries()) >= 10
    finally:
        d.metrics.close()
