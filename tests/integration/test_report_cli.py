"""`ackwatch report` as a subprocess over a real state database (issue 5).

The state is written with `Store` directly (as the daemon would), for the week of
Mon 11 - Mon 18 Nov 2024 in Europe/Warsaw: Monday 11 Nov is a Polish public holiday.
Every deadline is long past whatever the machine's clock says, so the figures are fixed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import sqlite3
import stat
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tests.support.report_state import ANNA, PIOTR, write_config
from tests.support.run_once import ackwatch

from ackwatch.core.item_rules import Ack, Deadlines, Item
from ackwatch.reporting.figures import FIGURE_FIELDS
from ackwatch.store.database import DB_NAME
from ackwatch.store.sqlite import SqliteStore as Store

pytestmark = pytest.mark.integration

WAW = ZoneInfo("Europe/Warsaw")
WEEK = ("--since", "2024-11-11", "--until", "2024-11-18")


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, 11, day, hour, minute, tzinfo=WAW)


def make_item(key: str, received: dt.datetime, deadline: dt.datetime,
              ack: dt.datetime | None, *, client: str | None, address: str,
              account: str, policy: str = "default", clock: str = "business",
              subject: str = "Quote") -> Item:
    return Item(
        key=f"<{key}@example>", thread=key, message_id=f"<{key}@example>",
        client_address=address, client=client, subject=subject, received=received,
        mailboxes=("anna",), account=account,
        deadlines=Deadlines(policy, clock, deadline, deadline - dt.timedelta(minutes=30),
                            deadline),
        ack=None if ack is None else Ack(f"<re-{key}@agency.example>", ack, "reply", account),
    )


SKLEP = {"client": "Sklep Kwiatowy", "address": "ola@sklep-kwiatowy.example", "account": ANNA}
GLOBEX = {"client": "Globex", "address": "grace@globex.example", "account": PIOTR}

ITEMS = [
    make_item("c1", at(12, 10), at(12, 12), at(12, 10, 45), **GLOBEX),  # 45 min
    # Received on the holiday: the business clock starts Tue 09:00 -> 20 minutes.
    make_item("c2", at(11, 10), at(12, 11), at(12, 9, 20), **SKLEP),
    # Friday 16:00 over the weekend: 60 + 120 = 180 minutes, late.
    make_item("c3", at(15, 16), at(18, 10), at(18, 11), **SKLEP,
              subject="<script>alert('x')</script> Re: banner"),
    # Acme, 24h calendar clock, never answered: overdue.
    make_item("c4", at(13, 12), at(14, 12), None, client="Acme", address="ceo@acme.example",
              account=ANNA, policy="retainer", clock="calendar"),
    # Unknown sender: 10 minutes, grouped as gmail.com.
    make_item("c5", at(14, 10), at(14, 12), at(14, 10, 10), client=None,
              address="lead@gmail.com", account=PIOTR),
    # Outside the week.
    make_item("c7", at(18, 9, 30), at(18, 11, 30), None, **GLOBEX),
]
DROPPED = make_item("c6", at(13, 9), at(13, 11), None, **GLOBEX)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    cfg = write_config(tmp_path)
    store = Store.open(tmp_path / "state")
    try:
        now = at(18, 12)
        store.sync_items([*ITEMS, DROPPED], now=now, initial_keys=set())
        store.sync_items(ITEMS, now=now, initial_keys=set())  # c6 is no longer tracked
    finally:
        store.close()
    return cfg


def report_json(config: Path, *args: str) -> dict:
    result = ackwatch("report", "-c", str(config), "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def unread(n: int) -> dict[str, object]:
    return {"acks_with_date": 0, "acks_without_date": 0, "acks_not_read": n,
            "date_share": None}


def test_report_json_figures_of_the_week(config):
    data = report_json(config, *WEEK)
    assert data["period"] == {"since": "2024-11-11T00:00:00+01:00",
                              "until": "2024-11-18T00:00:00+01:00"}
    # History (no reply text was read): every acknowledgement is "not read".
    assert data["totals"] == {
        "client_emails": 5, "acknowledged": 4, "within_window": 3, "service_level": 0.6,
        "median_minutes": 32.5, "p90_minutes": 139.5, "open": 0, "overdue": 1,
        **unread(4),
    }
    assert data["by_account"] == [
        {"account": ANNA, "client_emails": 3, "acknowledged": 2, "within_window": 1,
         "service_level": 0.3333, "median_minutes": 100.0, "p90_minutes": 164.0,
         "open": 0, "overdue": 1, **unread(2)},
        {"account": PIOTR, "client_emails": 2, "acknowledged": 2, "within_window": 2,
         "service_level": 1.0, "median_minutes": 27.5, "p90_minutes": 41.5,
         "open": 0, "overdue": 0, **unread(2)},
    ]
    assert [(c["client"], c["client_emails"], c["service_level"]) for c in data["by_client"]] == [
        ("Sklep Kwiatowy", 2, 0.5), ("Acme", 1, 0.0), ("Globex", 1, 1.0), ("gmail.com", 1, 1.0),
    ]
    assert [c["median_minutes"] for c in data["by_client"]] == [100.0, None, 45.0, 10.0]
    assert data["breaches"] == [
        {"client": "Acme", "subject": "Quote", "received": "2024-11-13T12:00:00+01:00",
         "deadline": "2024-11-14T12:00:00+01:00", "acknowledged": None, "account": ANNA},
        {"client": "Sklep Kwiatowy", "subject": "<script>alert('x')</script> Re: banner",
         "received": "2024-11-15T16:00:00+01:00", "deadline": "2024-11-18T10:00:00+01:00",
         "acknowledged": "2024-11-18T11:00:00+01:00", "account": ANNA},
    ]
    assert set(data["totals"]) == set(FIGURE_FIELDS) | set(unread(0))


def test_report_iso_instants_bound_the_period(config):
    data = report_json(config, "--since", "2024-11-12T10:00", "--until",
                       "2024-11-14T09:00:00+00:00")
    assert data["period"]["since"] == "2024-11-12T10:00:00+01:00"
    assert data["totals"]["client_emails"] == 2  # c1 (10:00, included) and c4


def test_report_csv_lists_every_counted_email(config):
    result = ackwatch("report", "-c", str(config), "--format", "csv", *WEEK)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["client"], r["minutes_to_ack"], r["status"]) for r in rows] == [
        ("Sklep Kwiatowy", "20.0", "on_time"),
        ("Globex", "45.0", "on_time"),
        ("Acme", "", "overdue"),
        ("gmail.com", "10.0", "on_time"),
        ("Sklep Kwiatowy", "180.0", "late"),
    ]


def test_report_table_is_the_default_format(config):
    result = ackwatch("report", "-c", str(config), *WEEK)
    assert result.returncode == 0, result.stderr
    assert "Service level 60.0%: 3 of 5" in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())


def test_report_output_file_is_private(config, tmp_path):
    out = tmp_path / "week.html"
    out.write_text("old")
    out.chmod(0o644)
    result = ackwatch("report", "-c", str(config), "--format", "html", "--target", "95%",
                      "--output", str(out), *WEEK)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    page = out.read_text(encoding="utf-8")
    assert "target 95%" in page and "&lt;script&gt;" in page and "<script" not in page
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_report_output_refuses_a_fifo_and_writes_nothing_into_it(config, tmp_path):
    fifo = tmp_path / "week.json"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so a writer would not block
    try:
        result = ackwatch("report", "-c", str(config), "--format", "json",
                          "--output", str(fifo), *WEEK)
        try:
            leaked = os.read(reader, 1 << 16)
        except BlockingIOError:
            leaked = b""
    finally:
        os.close(reader)
    assert result.returncode == 73, result.stderr
    assert f"cannot write {fifo}: a FIFO, not a regular file" in result.stderr
    assert leaked == b""
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_report_default_period_is_last_full_week(config):
    data = report_json(config)
    since = dt.datetime.fromisoformat(data["period"]["since"])
    until = dt.datetime.fromisoformat(data["period"]["until"])
    local_since, local_until = since.astimezone(WAW), until.astimezone(WAW)
    assert local_since.weekday() == local_until.weekday() == 0
    assert local_since.time() == local_until.time() == dt.time(0)
    assert (local_until.date() - local_since.date()).days == 7
    now = dt.datetime.now(WAW)
    assert until <= now < until + dt.timedelta(days=7, hours=1)


def test_report_reads_while_the_daemon_writes(config, tmp_path):
    writer = sqlite3.connect(tmp_path / "state" / DB_NAME, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE items SET subject = 'changing' WHERE thread = 'c1'")
        data = report_json(config, *WEEK)  # a read-only snapshot, not blocked
        assert data["totals"]["client_emails"] == 5
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_report_without_state_is_a_clear_error(tmp_path):
    cfg = write_config(tmp_path)
    result = ackwatch("report", "-c", str(cfg), *WEEK)
    assert result.returncode == 73
    assert "no state yet" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "last monday"), "YYYY-MM-DD"),
        (("--since", "2024-11-18", "--until", "2024-11-11"), "period is empty"),
    ],
)
def test_report_bad_period_is_a_usage_error(config, args, message):
    result = ackwatch("report", "-c", str(config), *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_report_bad_target_is_a_usage_error(config):
    result = ackwatch("report", "-c", str(config), "--target", "1.5")
    assert result.returncode == 2
    assert "0.9 or 90%" in result.stderr
