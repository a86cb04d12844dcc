"""The Prometheus exposition: names and labels ops build dashboards on."""

from __future__ import annotations

import urllib.request

from ackwatch.daemon.metrics import Metrics, Snapshot


def scrape(m: Metrics) -> dict[str, float]:
    out = {}
    for line in m.render().decode().splitlines():
        if line.startswith("ackwatch_"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_snapshot_gauges_and_counters_are_exposed_with_their_labels():
    m = Metrics()
    m.publish(Snapshot(
        pending={"anna@agency.example": 3}, overdue={"anna@agency.example": 1},
        sent={"nudge": 5, "escalation": 2}, mailbox_up={"anna": True, "office": False},
        last_sync={"anna": 1_795_000_000.0},
    ))
    s = scrape(m)
    assert s['ackwatch_items_pending{account="anna@agency.example"}'] == 3
    assert s['ackwatch_items_overdue{account="anna@agency.example"}'] == 1
    assert s['ackwatch_nudges_sent_total{kind="nudge"}'] == 5
    assert s['ackwatch_mailbox_up{mailbox="office"}'] == 0
    assert s['ackwatch_last_sync_timestamp{mailbox="anna"}'] == 1_795_000_000.0


def test_time_to_ack_is_a_histogram_by_clock():
    m = Metrics()
    m.observe_ack("business", 20 * 60)
    m.observe_ack("calendar", 3 * 3600)
    s = scrape(m)
    assert s['ackwatch_time_to_ack_seconds_bucket{clock="business",le="1800.0"}'] == 1
    assert s['ackwatch_time_to_ack_seconds_bucket{clock="calendar",le="1800.0"}'] == 0
    assert s['ackwatch_time_to_ack_seconds_count{clock="calendar"}'] == 1


def test_oldest_waiting_mail_and_earliest_deadline_are_timestamps_per_account():
    m = Metrics()
    m.publish(Snapshot(
        pending={"anna@agency.example": 2},
        oldest_received={"anna@agency.example": 1_795_000_000.0},
        earliest_deadline={"anna@agency.example": 1_795_014_400.0},
        poll_interval=60.0,
    ))
    s = scrape(m)
    assert s['ackwatch_oldest_pending_received_timestamp{account="anna@agency.example"}'] == (
        1_795_000_000.0)
    assert s['ackwatch_earliest_deadline_timestamp{account="anna@agency.example"}'] == (
        1_795_014_400.0)
    assert s["ackwatch_poll_interval_seconds"] == 60.0


def test_send_failures_are_counted_by_outcome_and_exposed_from_zero():
    m = Metrics()
    assert scrape(m)['ackwatch_send_failures_total{outcome="retried"}'] == 0
    assert scrape(m)['ackwatch_send_failures_total{outcome="failed"}'] == 0
    m.count_send_failure("retried")
    m.count_send_failure("retried")
    m.count_send_failure("failed")
    s = scrape(m)
    assert s['ackwatch_send_failures_total{outcome="retried"}'] == 2
    assert s['ackwatch_send_failures_total{outcome="failed"}'] == 1


def test_a_new_snapshot_replaces_the_old_one():
    m = Metrics()
    m.publish(Snapshot(pending={"a@x": 2}))
    m.publish(Snapshot(pending={}))
    assert not any(k.startswith("ackwatch_items_pending") for k in scrape(m))


def test_endpoint_serves_text_format_on_loopback():
    m = Metrics()
    m.publish(Snapshot(pending={"a@x": 1}))
    m.serve("127.0.0.1:0")  # a free port bound by the server itself, never let go first
    try:
        # A hang guard only: a loaded machine may take seconds to answer.
        body = urllib.request.urlopen(f"http://127.0.0.1:{m.port}/metrics", timeout=60).read()
    finally:
        m.close()
    assert b'ackwatch_items_pending{account="a@x"} 1.0' in body


def test_a_node_says_whether_it_leads_and_how_many_mailboxes_it_watches():
    m = Metrics()
    assert b"ackwatch_node_leader" not in m.render()  # no node name: not shown
    m.set_node("n2", leader=True, held=3)
    text = m.render().decode()
    assert 'ackwatch_node_leader{node="n2"} 1.0' in text
    assert 'ackwatch_mailboxes_held{node="n2"} 3.0' in text
    m.set_node("n2", leader=False, held=2)
    assert 'ackwatch_node_leader{node="n2"} 0.0' in m.render().decode()


def test_each_cluster_round_is_observed_with_its_node():
    m = Metrics()
    m.observe_round("n2", 0.03)
    m.observe_round("n2", 3.0)  # over half of the default 5 s renewal
    text = m.render().decode()
    assert 'ackwatch_cluster_round_seconds_count{node="n2"} 2.0' in text
    assert 'ackwatch_cluster_round_seconds_bucket{le="2.5",node="n2"} 1.0' in text
