"""Promises made in the period (made, kept, moved, broken, open) in every format of the
report: the table and the JSON had them; the HTML page has a section, the CSV summary
has a column per outcome beside each account's and client's service level."""

from __future__ import annotations

import csv
import io
import json

import pytest
from tests.support.known_week import CONFIG, NOW, SINCE, UNTIL, WEEK

from ackwatch.core import promise_rules
from ackwatch.reporting import exports
from ackwatch.reporting.figures import compute
from ackwatch.reporting.render import render_report
from configfactory import ANNA, PIOTR

PROMISES = promise_rules.figures([
    (ANNA, "Sklep Kwiatowy", "kept"),
    (ANNA, "Sklep Kwiatowy", "moved"),
    (ANNA, "Sklep Kwiatowy", "open"),
    (PIOTR, "Globex", "broken"),
    (PIOTR, "jan@gmail.com", "kept"),  # an unknown sender: stored by its address
    (PIOTR, "Initech", "open"),  # its mail came the week before
])


@pytest.fixture(scope="module")
def week():
    return compute(WEEK, CONFIG, since=SINCE, until=UNTIL, now=NOW)


def test_the_html_page_has_a_promise_section_by_outcome(week):
    page = render_report(week, "html", promises=PROMISES)
    section = page.split('<section id="promises">')[1].split("</section>")[0]
    assert "6 made: 2 kept, 1 moved, 1 broken, 2 open." in section
    assert "<th class=\"num\">Made</th><th class=\"num\">Kept</th><th class=\"num\">Moved" \
           "</th><th class=\"num\">Broken</th><th class=\"num\">Open</th>" in section
    anna = section.split(ANNA)[1].split("</tr>")[0]
    assert anna == "".join(f'</td><td class="num">{n}' for n in (3, 1, 1, 0, 1)) + "</td>"


def test_the_html_page_says_when_no_promise_was_made(week):
    page = render_report(week, "html", promises=promise_rules.figures([]))
    assert "No promise made in this period." in page


def test_the_html_page_without_promise_figures_has_no_section(week):
    assert '<section id="promises">' not in render_report(week, "html")


def test_the_csv_summary_has_the_promises_of_each_account_and_client(week):
    rows = list(csv.DictReader(io.StringIO(
        render_report(week, "csv-summary", promises=PROMISES))))

    def promises(group: str, name: str) -> list[str]:
        (row,) = [r for r in rows if (r["group"], r["name"]) == (group, name)]
        return [row[f"promises_{k}"] for k in promise_rules.COUNT_FIELDS]

    assert promises("total", "") == ["6", "2", "1", "1", "2"]
    assert promises("account", ANNA) == ["3", "1", "1", "0", "1"]
    assert promises("client", "Sklep Kwiatowy") == ["3", "1", "1", "0", "1"]
    assert promises("client", "Acme") == ["0", "0", "0", "0", "0"]
    # An unknown sender's promises land on the report's row for its domain.
    assert promises("client", "gmail.com") == ["1", "1", "0", "0", "0"]
    # A client with promises but no mail in the period: a row with empty figures.
    (initech,) = [r for r in rows if r["name"] == "Initech"]
    assert initech["client_emails"] == "" and initech["promises_open"] == "1"


def test_the_csv_summary_without_promise_figures_leaves_their_columns_empty(week):
    rows = list(csv.DictReader(io.StringIO(exports.render_csv_summary(week))))
    assert {r["promises_made"] for r in rows} == {""}


def test_the_csv_summary_guards_names_against_spreadsheet_formulas(week):
    hostile = promise_rules.figures([(ANNA, "=HYPERLINK(\"x\")", "open")])
    text = render_report(week, "csv-summary", promises=hostile)
    assert "'=HYPERLINK" in text


def test_the_json_keeps_its_promises_key(week):
    data = json.loads(render_report(week, "json", promises=PROMISES))
    assert data["promises"]["totals"] == {"made": 6, "kept": 2, "moved": 1, "broken": 1,
                                          "open": 2}
