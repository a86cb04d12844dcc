"""`ackwatch report` reads the store's raw rows (`Store.report_rows(..., stored=True)`)
and `figures.compute_stored` tallies them without a Python object per item (issue 7). The
figures must be exactly those of `figures.compute` over the stored items (`ReportItem`s):
checked here over a real state database holding every shape of item.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tests.support.report_state import write_config

from ackwatch.config import load_config
from ackwatch.core.item_rules import Ack, Deadlines, Item
from ackwatch.reporting.ack_time import epoch_us
from ackwatch.reporting.exports import render_json, to_json_data
from ackwatch.reporting.figures import Report, ReportItem, compute, compute_stored
from ackwatch.reporting.html import render_html
from ackwatch.reporting.table import render_table
from ackwatch.store.sqlite import SqliteStore as Store

pytestmark = pytest.mark.integration

WAW = ZoneInfo("Europe/Warsaw")
ANNA, PIOTR = "anna@agency.example", "piotr@agency.example"
SINCE = dt.datetime(2024, 11, 4, tzinfo=WAW)
UNTIL = dt.datetime(2024, 11, 18, tzinfo=WAW)


def items(seed: int, n: int) -> list[Item]:
    """Every shape: named, unnamed and empty clients, no account, business, calendar and
    removed policies, acknowledged in time, late, exactly at the deadline, at receipt,
    never; equal received times; some before and after the period."""
    rng = random.Random(seed)
    out = []
    start = SINCE - dt.timedelta(days=2)
    for k in range(n):
        received = start + dt.timedelta(minutes=rng.randrange(0, 18 * 24 * 60, 7),
                                        microseconds=rng.choice([0, 1, 999_999]))
        policy, clock = rng.choice([("default", "business"), ("retainer", "calendar"),
                                    ("legacy", "business"), ("gone", "calendar")])
        deadline = received + rng.choice([dt.timedelta(hours=2), dt.timedelta(days=1)])
        ack = rng.choice([None, received, deadline, deadline + dt.timedelta(microseconds=1),
                          received + dt.timedelta(minutes=rng.expovariate(1 / 90))])
        client = rng.choice(["Globex", "Acme", None, ""])
        address = rng.choice(["grace@globex.example", "Lead@Gmail.COM", "x@wp.pl", "odd"])
        account = rng.choice([ANNA, PIOTR, None])
        out.append(Item(
            key=f"<k{k}@example>", thread=f"t{k}", message_id=f"<k{k}@example>",
            client_address=address, client=client, subject=f"=Subject {k} \u202e",
            received=received, mailboxes=("anna",), account=account,
            deadlines=Deadlines(policy, clock, deadline, deadline, deadline),
            ack=None if ack is None else Ack(f"<re{k}@agency.example>", ack, "reply", account),
        ))
    return out


@pytest.fixture
def config(tmp_path: Path) -> Path:
    cfg = write_config(tmp_path)
    store = Store.open(tmp_path / "state")
    try:
        tracked = items(7, 600)
        now = dt.datetime(2024, 12, 1, tzinfo=dt.UTC)
        store.sync_items(tracked, now=now, initial_keys=set())
        store.sync_items(tracked[:-40], now=now, initial_keys=set())  # 40 become dropped
    finally:
        store.close()
    return cfg


def figures_both_ways(cfg: Path, now: dt.datetime) -> tuple[Report, Report]:
    config = load_config(cfg)
    store = Store.open(config.state_dir, readonly=True)
    try:
        lean = compute_stored(store.report_rows(SINCE, UNTIL, stored=True), config,
                                     since=SINCE, until=UNTIL, now=now)
        full = compute(store.report_rows(SINCE, UNTIL, ReportItem), config,
                              since=SINCE, until=UNTIL, now=now)
    finally:
        store.close()
    return lean, full


@pytest.mark.parametrize("now", [
    dt.datetime(2024, 11, 10, 12, tzinfo=WAW),  # mid-period: open items, acks not known yet
    dt.datetime(2024, 11, 18, tzinfo=WAW),
    dt.datetime(2025, 6, 1, tzinfo=WAW),  # long after: the business index spans up to now
])
def test_stored_rows_give_exactly_the_report_of_the_stored_items(config, now):
    lean, full = figures_both_ways(config, now)
    assert full.totals.client_emails > 400 and full.breaches and full.totals.overdue
    assert lean == dataclasses.replace(full, items=())
    for render in (render_json, render_table, render_html):
        assert render(lean) == render(full)


def test_stored_rows_are_the_stored_items_whatever_the_breach_rule(config):
    """The store hands over every item as stored (subjects included): which items are
    breaches is the report's rule (`figures`), not the store's."""
    store = Store.open(load_config(config).state_dir, readonly=True)
    try:
        rows = list(store.report_rows(SINCE, UNTIL, stored=True))
        full = store.report_rows(SINCE, UNTIL, ReportItem)
    finally:
        store.close()
    counted = [i for i in full if not i.dropped]
    assert len(rows) == len(counted) and len(full) > len(counted)
    for row, i in zip(rows, counted, strict=True):
        assert json.loads(row[0]) == [i.account, i.client, i.client_address, i.policy, i.clock]
        assert row[1:] == (epoch_us(i.received), epoch_us(i.deadline),
                           None if i.ack_at is None else epoch_us(i.ack_at), i.subject)


def test_cli_json_matches_the_stored_items(config):
    """Every deadline and acknowledgement is long past: the figures do not depend on now."""
    result = subprocess.run(
        [sys.executable, "-m", "ackwatch", "report", "-c", str(config), "--format", "json",
         "--since", "2024-11-04", "--until", "2024-11-18"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    _, full = figures_both_ways(config, dt.datetime.now(dt.UTC))
    data = json.loads(result.stdout)
    data.pop("promises")
    dated = ("acks_with_date", "acks_without_date", "acks_not_read", "date_share")
    t = data["totals"]
    assert t["acks_with_date"] + t["acks_without_date"] + t["acks_not_read"] == t["acknowledged"]
    for group in [data["totals"], *data["by_account"], *data["by_client"]]:
        for key in dated:
            del group[key]
    assert data == to_json_data(full)
