"""Small clients are not pushed aside: every format of the report shows, per client, demand
(client emails received) beside the service level, and names each client below the
target however few mails it sent. One function (`figures.client_demand`) feeds the
report, the digest and the board."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from tests.support.known_week import CONFIG, SINCE, UNTIL, at, item

from ackwatch.reporting import exports, figures, html, table
from ackwatch.reporting.figures import ReportItem, compute
from ackwatch.reporting.render import render_report
from configfactory import ANNA, PIOTR

NOW = UNTIL + dt.timedelta(days=1)
BIG = {"client": "Globex", "address": "grace@globex.example", "account": PIOTR,
       "policy": "retainer", "clock": "calendar"}
SMALL = {"client": "Sklep Kwiatowy", "address": "ola@sklep-kwiatowy.example",
         "account": ANNA, "policy": "retainer", "clock": "calendar"}


def mail(key: str, received: dt.datetime, minutes_to_ack: int, **who: str) -> ReportItem:
    """A client mail with a one-hour window, acknowledged after ``minutes_to_ack``."""
    return item(key, received, received + dt.timedelta(hours=1),
                received + dt.timedelta(minutes=minutes_to_ack), **who)  # type: ignore[arg-type]


def week_with_a_small_client() -> list[ReportItem]:
    """Globex: 40 mails, 38 in time (95%). Sklep Kwiatowy: 2 mails, 1 late (50%)."""
    big = [mail(f"g{n}", at(9 + n % 5, 9) + dt.timedelta(minutes=7 * n),
                90 if n in (3, 17) else 20, **BIG) for n in range(40)]
    return [*big, mail("s1", at(10, 11), 15, **SMALL), mail("s2", at(12, 14), 240, **SMALL)]


@pytest.fixture(scope="module")
def week() -> figures.Report:
    return compute(week_with_a_small_client(), CONFIG, since=SINCE, until=UNTIL, now=NOW)


def test_a_client_with_two_mails_and_one_late_is_below_the_target(week):
    demand = {c.client: c for c in figures.client_demand(week, 0.9)}
    assert (demand["Globex"].emails, demand["Globex"].service_level) == (40, 0.95)
    assert not demand["Globex"].below_target
    small = demand["Sklep Kwiatowy"]
    assert (small.emails, small.within_window, small.counted) == (2, 1, 2)
    assert small.service_level == 0.5 and small.below_target
    assert [c.client for c in figures.below_target(demand.values())] == ["Sklep Kwiatowy"]


def test_a_client_whose_mails_are_all_still_open_is_not_below_the_target():
    waiting = [item("o1", at(15, 22), UNTIL + dt.timedelta(days=2), None, **SMALL)]
    report = compute(waiting, CONFIG, since=SINCE, until=UNTIL, now=NOW)
    (only,) = figures.client_demand(report, 0.9)
    assert only.service_level is None and not only.below_target


def test_clients_below_the_target_are_listed_worst_first():
    late_big = [mail(f"g{n}", at(9, 9, n), 90 if n < 3 else 20, **BIG) for n in range(10)]
    small = [mail("s1", at(10, 11), 90, **SMALL)]
    report = compute(late_big + small, CONFIG, since=SINCE, until=UNTIL, now=NOW)
    below = figures.below_target(figures.client_demand(report, 0.9))
    assert [(c.client, c.service_level) for c in below] == [
        ("Sklep Kwiatowy", 0.0), ("Globex", 0.7)]


def test_the_table_lists_the_small_client_below_the_target(week):
    text = table.render_table(week, target=0.9)
    below = text.split("Clients below the target (90%), however few their emails:\n")[1]
    first = below.splitlines()[0]
    assert first.split() == ["Sklep", "Kwiatowy", "2", "emails", "50.0%", "(1", "of", "2",
                             "in", "time)"]
    assert "Globex" not in below.split("\n\n")[0]


def test_the_table_says_when_no_client_is_below_the_target(week):
    assert "No client below the target (40%)." in table.render_table(week, target=0.4)


def test_the_json_marks_each_client_and_names_those_below_the_target(week):
    data = json.loads(render_report(week, "json", target=0.9))
    assert data["target"] == 0.9
    assert data["clients_below_target"] == ["Sklep Kwiatowy"]
    by_client = {c["client"]: c for c in data["by_client"]}
    assert by_client["Sklep Kwiatowy"]["client_emails"] == 2
    assert by_client["Sklep Kwiatowy"]["service_level"] == 0.5
    assert by_client["Sklep Kwiatowy"]["below_target"] is True
    assert by_client["Globex"]["below_target"] is False


def test_the_html_page_names_the_small_client_below_the_target(week):
    page = html.render_html(week, target=0.9)
    below = page.split('id="below-target"')[1].split("</p>")[0]
    assert "Sklep Kwiatowy</strong> 50.0% (1 of 2 in time, 2 emails)" in below
    assert "Globex" not in below


def test_the_html_page_names_a_small_client_even_past_the_table_limit(week):
    page = html.render_html(week, target=0.9, max_groups=1)  # the table shows Globex only
    assert "Sklep Kwiatowy</strong>" in page.split('id="below-target"')[1]


def test_the_csv_summary_puts_demand_beside_the_service_level(week):
    rows = list(csv.DictReader(io.StringIO(render_report(week, "csv-summary", target=0.9))))
    assert tuple(rows[0]) == exports.SUMMARY_COLUMNS
    clients = {r["name"]: r for r in rows if r["group"] == "client"}
    assert (clients["Sklep Kwiatowy"]["client_emails"],
            clients["Sklep Kwiatowy"]["service_level"],
            clients["Sklep Kwiatowy"]["below_target"]) == ("2", "0.5", "yes")
    assert (clients["Globex"]["client_emails"], clients["Globex"]["below_target"]) == (
        "40", "no")
    assert rows[0]["group"] == "total" and rows[0]["client_emails"] == "42"
    assert [r["name"] for r in rows if r["group"] == "account"] == [PIOTR, ANNA]


def test_the_board_names_the_same_clients_below_the_target_as_the_report(week):
    from ackwatch.web import board

    period = board._period("This week", week_with_a_small_client(), CONFIG, SINCE, NOW, 0.9)
    report = compute(week_with_a_small_client(), CONFIG, since=SINCE,
                     until=NOW + dt.timedelta(seconds=1), now=NOW)
    assert period.below == tuple(
        c.client for c in figures.below_target(figures.client_demand(report, 0.9)))
    assert period.below == ("Sklep Kwiatowy",)
