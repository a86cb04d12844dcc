"""The one choice of renderer by format, shared by ``ackwatch report`` and the board."""

from __future__ import annotations

import json

import pytest
from tests.support.known_week import CONFIG, NOW, SINCE, UNTIL, WEEK

from ackwatch.core import promise_rules
from ackwatch.reporting import exports, html, table
from ackwatch.reporting.figures import compute
from ackwatch.reporting.render import render_report

KEPT = promise_rules.figures([("anna", "acme.example", "kept"),
                              ("anna", "acme.example", "broken")])


@pytest.fixture(scope="module")
def week():
    return compute(WEEK, CONFIG, since=SINCE, until=UNTIL, now=NOW)


def test_each_format_is_its_renderer(week):
    assert render_report(week, "csv") == exports.render_csv(week)
    assert render_report(week, "html", target=0.8) == html.render_html(week, target=0.8)
    assert render_report(week, "table", target=0.8) == table.render_table(week, target=0.8)
    assert json.loads(render_report(week, "json")) == exports.to_json_data(week)


def test_promise_figures_are_a_json_key_and_a_table_section(week):
    data = json.loads(render_report(week, "json", promises=KEPT))
    assert data["promises"] == promise_rules.figures_json(KEPT)
    text = render_report(week, "table", promises=KEPT)
    assert text.endswith("\n" + promise_rules.figures_table(KEPT))


def test_an_unknown_format_is_refused(week):
    with pytest.raises(ValueError, match="pdf"):
        render_report(week, "pdf")
