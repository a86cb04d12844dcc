"""Whether acknowledgements said by when: the figures beside the service level, in every
format of the report (reporting/dates.py and its renderers)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

from ackwatch.reporting.dates import DateFigures, date_figures
from ackwatch.reporting.exports import render_csv, render_json
from ackwatch.reporting.figures import ReportItem, compute
from ackwatch.reporting.html import render_html
from ackwatch.reporting.table import render_table
from configfactory import ANNA, PIOTR, make_config

WAW = ZoneInfo("Europe/Warsaw")
CONFIG = make_config()
SINCE = dt.datetime(2026, 11, 9, tzinfo=WAW)
UNTIL = dt.datetime(2026, 11, 16, tzinfo=WAW)
NOW = dt.datetime(2026, 11, 16, 10, 50, tzinfo=WAW)

# (key, account, client, client address, what the keeper found)
ROWS = [
    ("a1", ANNA, "Acme", "jan@acme.example", "date"),
    ("a2", ANNA, "Acme", "jan@acme.example", "no_date"),
    ("a3", ANNA, "Acme", "jan@acme.example", "date"),
    ("a4", ANNA, None, "ola@Gmail.com", None),
    ("a5", PIOTR, "Globex", "grace@globex.example", "no_date"),
    ("a6", PIOTR, "Globex", "grace@globex.example", None),
]


def report_items() -> list[ReportItem]:
    def item(key, account, client, address, _found):
        received = dt.datetime(2026, 11, 10, 9, tzinfo=WAW) + dt.timedelta(hours=int(key[1]))
        return ReportItem(key, client, address, account, "Quote " + key, received,
                          received + dt.timedelta(hours=2), received + dt.timedelta(minutes=20),
                          "default", "calendar")  # fmt: skip

    items = [item(*r) for r in ROWS] + [
        ReportItem("p1", "Acme", "jan@acme.example", ANNA, "Open one",
                   dt.datetime(2026, 11, 15, 22, tzinfo=WAW), NOW + dt.timedelta(hours=1), None,
                   "default", "calendar"),
    ]
    return items


def report():
    return compute(report_items(), CONFIG, since=SINCE, until=UNTIL, now=NOW)


READ = [(*r, 1) for r in ROWS if r[4]]  # what the store gives (per item): the reads


def test_share_counts_only_acknowledgements_that_were_read():
    f = date_figures(READ, report())
    assert f.totals == DateFigures(with_date=2, without_date=2, not_read=2)
    assert f.totals.date_share == 0.5
    assert f.account(ANNA) == DateFigures(2, 1, 1)
    assert f.account(PIOTR).date_share == 0.0
    assert f.client("gmail.com") == DateFigures(0, 0, 1)
    assert f.client("gmail.com").date_share is None, "nothing read: no share, not 0%"


def test_a_team_counts_only_its_accounts():
    team = compute([i for i in report_items() if i.account == PIOTR], CONFIG, since=SINCE,
                   until=UNTIL, now=NOW)  # fmt: skip
    assert date_figures(READ, team, accounts=[PIOTR]).totals == DateFigures(0, 1, 1)


def test_json_has_the_date_counts_per_account_and_client():
    data = json.loads(render_json(report(), date_figures(READ, report())))
    assert data["totals"]["acks_with_date"] == 2
    assert (data["totals"]["acks_without_date"], data["totals"]["acks_not_read"]) == (2, 2)
    anna = next(a for a in data["by_account"] if a["account"] == ANNA)
    assert (anna["acks_with_date"], anna["acks_without_date"], anna["acks_not_read"],
            anna["date_share"]) == (2, 1, 1, 0.6667)  # fmt: skip
    clients = {c["client"]: c for c in data["by_client"]}
    assert clients["Globex"]["acks_without_date"] == 1 and clients["Globex"]["date_share"] == 0
    assert clients["gmail.com"]["date_share"] is None
    # The service level stays beside it, unchanged.
    assert anna["service_level"] == 1.0


def test_table_shows_the_share_beside_each_group():
    text = render_table(report(), dates=date_figures(READ, report()))
    assert "Said by when: 50% (2 of 4 acknowledgements read named a date; 2 not read)" in text
    lines = text.splitlines()
    anna = [line for line in lines if line.split()[:1] == ["anna"]]
    assert anna[-1].split() == ["anna", "2", "1", "1", "67%"]
    globex = [line for line in lines if line.split()[:1] == ["Globex"]]
    assert globex[-1].split() == ["Globex", "0", "1", "1", "0%"]
    assert all(len(line) <= 80 for line in lines)


def test_csv_says_per_email_whether_its_acknowledgement_named_a_date():
    rows = {r["subject"]: r for r in csv.DictReader(io.StringIO(
        render_csv(report(), date_figures(READ, report()))))}  # fmt: skip
    assert rows["Quote a1"]["ack_date"] == "date"
    assert rows["Quote a2"]["ack_date"] == "no date"
    assert rows["Quote a4"]["ack_date"] == "not read"
    assert rows["Open one"]["ack_date"] == "", "not acknowledged: nothing to say"


def test_html_shows_the_share_as_a_figure_and_a_column():
    page = render_html(report(), dates=date_figures(READ, report()))
    assert "Said by when" in page and "2 of 4 read named a date" in page
    assert page.count("<th class=\"num\">By when</th>") == 2
    assert "67% <span class=\"note\">(2/3)</span>" in page
