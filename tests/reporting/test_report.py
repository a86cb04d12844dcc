"""The service-level report: figures of a known week, and the four renderers.

The week is Mon 9 - Mon 16 Nov 2026 in Europe/Warsaw (UTC+1): office hours Mon-Fri
09:00-17:00, and Wednesday 11 Nov is a Polish public holiday (Independence Day). Every
instant is a literal; `now` is Mon 16 Nov 10:50.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import datetime as dt
import io
import json
import re
import sqlite3
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.known_week import CONFIG, NOW, SINCE, UNTIL, WAW, WEEK, at, item

from ackwatch.core.business_clock import clock_for
from ackwatch.reporting import ack_time, exports, formatting, html, period, table
from ackwatch.reporting import figures as figures_module
from ackwatch.reporting.ack_time import BusinessIndex, epoch_us, from_epoch_us
from ackwatch.reporting.exports import CSV_COLUMNS, render_csv, render_json
from ackwatch.reporting.figures import (
    FIGURE_FIELDS,
    Figures,
    ReportItem,
    compute,
    compute_stored,
    quantile,
)
from ackwatch.reporting.formatting import format_minutes
from ackwatch.reporting.html import render_html
from ackwatch.reporting.period import default_period, parse_bound
from ackwatch.reporting.table import render_table
from configfactory import ANNA, PIOTR, make_config


@pytest.fixture(scope="module")
def week():
    return compute(WEEK, CONFIG, since=SINCE, until=UNTIL, now=NOW)


def figures(**values: object) -> Figures:
    return Figures(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- figures


def test_totals_of_the_known_week(week):
    # acknowledged minutes: 5, 30, 75, 90, 160, 180, 720; a5 overdue; a8 open
    assert week.totals == figures(
        client_emails=9, acknowledged=7, within_window=5, service_level=5 / 8,
        median_minutes=90.0, p90_minutes=396.0, open=1, overdue=1,
    )


def test_business_minutes_skip_evenings_weekends_and_the_holiday(week):
    minutes = {r.item.key: r.minutes_to_ack for r in week.items}
    assert minutes == {
        "a1": 30, "a2": 75, "a3": 90, "a4": 160, "a5": None, "a6": 720, "a7": 5,
        "a8": None, "a11": 180,
    }


def test_calendar_clock_policy_counts_wall_minutes_across_the_holiday(week):
    (a6,) = [r for r in week.items if r.item.key == "a6"]
    assert a6.minutes_to_ack == 12 * 60 and a6.status == "on_time"


def test_statuses(week):
    assert {r.item.key: r.status for r in week.items} == {
        "a1": "on_time", "a2": "on_time", "a3": "on_time", "a4": "late", "a5": "overdue",
        "a6": "on_time", "a7": "on_time", "a8": "open", "a11": "late",
    }


def test_per_account_figures_busiest_first(week):
    assert [(g.name, g.figures) for g in week.by_account] == [
        (ANNA, figures(client_emails=5, acknowledged=3, within_window=2, service_level=0.5,
                       median_minutes=160.0, p90_minutes=608.0, open=1, overdue=1)),
        (PIOTR, figures(client_emails=4, acknowledged=4, within_window=3, service_level=0.75,
                        median_minutes=52.5, p90_minutes=148.5, open=0, overdue=0)),
    ]


def test_per_client_figures_unknown_senders_by_domain(week):
    assert [(g.name, g.figures) for g in week.by_client] == [
        ("Sklep Kwiatowy", figures(client_emails=4, acknowledged=2, within_window=1,
                                   service_level=1 / 3, median_minutes=125.0,
                                   p90_minutes=153.0, open=1, overdue=1)),
        ("Globex", figures(client_emails=3, acknowledged=3, within_window=2,
                           service_level=2 / 3, median_minutes=75.0, p90_minutes=159.0,
                           open=0, overdue=0)),
        ("Acme", figures(client_emails=1, acknowledged=1, within_window=1, service_level=1.0,
                         median_minutes=720.0, p90_minutes=720.0, open=0, overdue=0)),
        ("gmail.com", figures(client_emails=1, acknowledged=1, within_window=1,
                              service_level=1.0, median_minutes=5.0, p90_minutes=5.0,
                              open=0, overdue=0)),
    ]


def test_breaches_are_late_or_overdue_by_received_time(week):
    assert [(b.client, b.subject, b.received, b.deadline, b.acknowledged, b.account)
            for b in week.breaches] == [
        ("Sklep Kwiatowy", "Subject a5", at(12, 11), at(12, 13), None, ANNA),
        ("Globex", "Subject a11", at(13, 9), at(13, 11), at(13, 12), PIOTR),
        ("Sklep Kwiatowy", "Subject a4", at(13, 16), at(16, 10), at(16, 10, 40), ANNA),
    ]


def test_histogram_splits_in_time_and_late(week):
    bins = {b.label: (b.on_time, b.late) for b in week.histogram}
    assert bins == {
        "<15m": (1, 0), "15–30m": (0, 0), "30m–1h": (1, 0), "1–2h": (2, 0),
        "2–4h": (0, 2), "4–8h": (0, 0), "8h–1d": (1, 0), "≥1d": (0, 0),
    }


def test_open_item_not_yet_due_is_left_out_until_its_deadline_passes():
    a8 = [i for i in WEEK if i.key == "a8"]
    before = compute(a8, CONFIG, since=SINCE, until=UNTIL, now=at(16, 11))  # at the deadline
    assert (before.totals.open, before.totals.overdue, before.totals.service_level) == (
        1, 0, None)
    assert before.breaches == ()
    after = compute(a8, CONFIG, since=SINCE, until=UNTIL, now=at(16, 11, 1))
    assert (after.totals.open, after.totals.overdue, after.totals.service_level) == (0, 1, 0.0)
    assert len(after.breaches) == 1


def test_acknowledged_exactly_at_the_deadline_is_within_the_window():
    r = compute([item("e", at(9, 10), at(9, 12), at(9, 12))], CONFIG,
                since=SINCE, until=UNTIL, now=NOW)
    assert r.totals.within_window == 1 and r.breaches == ()


def test_an_acknowledgement_after_now_is_not_known_yet():
    r = compute([item("f", at(9, 10), at(9, 12), at(9, 11))], CONFIG,
                since=SINCE, until=UNTIL, now=at(9, 10, 30))
    assert (r.totals.acknowledged, r.totals.open) == (0, 1)


def test_dropped_and_out_of_period_items_are_not_counted(week):
    keys = {r.item.key for r in week.items}
    assert not keys & {"d1", "x1", "x2"}


def test_removed_calendar_policy_counts_wall_minutes():
    r = compute([item("g", at(13, 16), at(14, 16), at(14, 16), policy="gone", clock="calendar")],
                CONFIG, since=SINCE, until=UNTIL, now=NOW)
    assert r.items[0].minutes_to_ack == 24 * 60


# A policy since removed from the config, stored with each clock; a config whose default
# policy names no calendar (the first calendar is used); a config without calendars.
_NO_DEFAULT_CALENDAR = make_config(policies={**CONFIG.policies, "default": dataclasses.replace(
    CONFIG.policies["default"], clock="calendar", calendar=None)})
_NO_CALENDARS = make_config(calendars={}, policies={"retainer": CONFIG.policies["retainer"]})


@pytest.mark.parametrize("config", [CONFIG, _NO_DEFAULT_CALENDAR, _NO_CALENDARS])
@pytest.mark.parametrize("clock", ["business", "calendar"])
def test_removed_policy_is_measured_alike_by_the_report_and_the_metrics(config, clock):
    """The daemon's time-to-acknowledge histogram (`ack_time.time_to_acknowledge`) and the
    report measure an item whose policy is gone on the same clock."""
    received, acked = at(13, 16), at(16, 10, 40)  # Friday evening to Monday morning
    gone = item("g", received, at(16, 10), acked, policy="gone", clock=clock)
    full = compute([gone], config, since=SINCE, until=UNTIL, now=NOW)
    lean = compute_stored(stored_rows([gone], SINCE, UNTIL), config, since=SINCE,
                          until=UNTIL, now=NOW)
    histogram = ack_time.time_to_acknowledge(received, acked, "gone", clock, config)
    minutes = histogram.total_seconds() / 60
    assert full.items[0].minutes_to_ack == pytest.approx(minutes, abs=1e-6)
    assert lean.totals.median_minutes == pytest.approx(minutes, abs=1e-6)
    wall = (acked - received).total_seconds() / 60
    on_business_hours = clock == "business" and config is not _NO_CALENDARS
    assert (minutes == 160) if on_business_hours else (minutes == wall)


def test_empty_period_has_no_service_level():
    r = compute([], CONFIG, since=SINCE, until=UNTIL, now=NOW)
    assert r.totals == figures(client_emails=0, acknowledged=0, within_window=0,
                               service_level=None, median_minutes=None, p90_minutes=None,
                               open=0, overdue=0)
    assert r.by_account == r.by_client == r.breaches == ()


def test_rows_can_be_left_out_for_speed(week):
    lean = compute(WEEK, CONFIG, since=SINCE, until=UNTIL, now=NOW, rows=False)
    assert lean.items == ()
    assert (lean.totals, lean.by_account, lean.by_client, lean.breaches) == (
        week.totals, week.by_account, week.by_client, week.breaches)


def test_naive_bounds_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        compute([], CONFIG, since=SINCE.replace(tzinfo=None), until=UNTIL, now=NOW)


def test_quantile_is_linear_between_closest_ranks():
    assert quantile([], 0.5) is None
    assert quantile([7.0], 0.9) == 7.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([10.0, 20.0], 0.9) == 19.0
    assert quantile([float(v) for v in range(1, 11)], 0.9) == 9.1


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 31)),
    length=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=20)),
)
def test_business_minutes_match_the_calendar_including_dst(start, length):
    """The prefix-sum index gives what `working_time_between` gives (DST days included)."""
    a = start.replace(tzinfo=dt.UTC)
    b = a + length
    calendar = clock_for(CONFIG.policies["default"], CONFIG)
    r = compute([item("h", a, b, b)], CONFIG, since=a, until=a + dt.timedelta(seconds=1), now=b)
    expected = calendar.working_time_between(a, b).total_seconds() / 60
    assert r.items[0].minutes_to_ack == pytest.approx(expected, abs=1e-6)


def test_business_minutes_outside_the_index_fall_back_to_the_calendar():
    calendar = clock_for(CONFIG.policies["default"], CONFIG)
    index = BusinessIndex(calendar, dt.date(2026, 11, 9), dt.date(2026, 11, 10))
    a, b = at(9, 10), at(20, 12)
    assert index.seconds(a, b) == calendar.working_time_between(a, b).total_seconds()


# --------------------------------------------------------------------------- stored rows


def stored_rows(items, since, until):
    """``items`` as `Store.report_rows(..., stored=True)` yields them."""
    kept = sorted((i for i in items if since <= i.received < until and not i.dropped),
                  key=lambda i: i.received)
    us = epoch_us
    return [
        (json.dumps([i.account, i.client, i.client_address, i.policy, i.clock]),
         us(i.received), us(i.deadline), None if i.ack_at is None else us(i.ack_at),
         i.subject)
        for i in kept
    ]


def test_stored_rows_give_the_report_of_the_items(week):
    lean = compute_stored(stored_rows(WEEK, SINCE, UNTIL), CONFIG, since=SINCE, until=UNTIL,
                          now=NOW)
    assert lean == dataclasses.replace(week, items=())
    assert render_json(lean) == render_json(week)
    assert render_table(lean) == render_table(week)
    assert render_html(lean) == render_html(week)


_INSTANTS = st.datetimes(
    min_value=dt.datetime(2026, 10, 20), max_value=dt.datetime(2026, 11, 30),
    timezones=st.sampled_from([dt.UTC, WAW]),
)


@st.composite
def report_items(draw):
    received = draw(_INSTANTS)
    window = draw(st.sampled_from([dt.timedelta(0), dt.timedelta(hours=2), dt.timedelta(days=1)]))
    deadline = received + window
    ack = draw(st.one_of(st.none(), st.just(received), st.just(deadline),
                         st.builds(lambda d: received + d, st.timedeltas(
                             min_value=dt.timedelta(0), max_value=dt.timedelta(days=3)))))
    policy, clock = draw(st.sampled_from([("default", "business"), ("retainer", "calendar"),
                                          ("legacy", "business"), ("gone", "calendar")]))
    client = draw(st.sampled_from(["Globex", "Acme", None, ""]))
    return ReportItem(
        key=str(draw(st.integers())), client=client,
        client_address=draw(st.sampled_from(["a@Gmail.com", "b@gmail.COM", "x@wp.pl", "nobody"])),
        account=draw(st.sampled_from([ANNA, PIOTR, None])), subject=draw(st.text(max_size=5)),
        received=received, deadline=deadline, ack_at=ack, policy=policy, clock=clock,
        dropped=draw(st.booleans()) and draw(st.booleans()),
    )


@settings(max_examples=200, deadline=None)
@given(items=st.lists(report_items(), max_size=40), now=_INSTANTS)
def test_stored_rows_give_the_report_of_the_items_whatever_the_data(items, now):
    """The CLI's path (times as stored strings) and the items' path agree exactly: counts,
    minutes, percentiles, histogram, breaches and their order (ties kept)."""
    since, until = at(1, 0), at(23, 0)
    expected = compute(items, CONFIG, since=since, until=until, now=now, rows=False)
    lean = compute_stored(stored_rows(items, since, until), CONFIG, since=since, until=until,
                          now=now)
    assert lean == expected
    assert render_json(lean) == render_json(expected)


@settings(max_examples=500, deadline=None)
@given(
    received=st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    elapsed=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=400)),
)
def test_wall_minutes_are_exact_to_the_microsecond(received, elapsed):
    """Wall-clock minutes come from the exact difference: what the rounded difference of
    float timestamps gave before (the unit tests' figures do not move)."""
    r = received.replace(tzinfo=dt.UTC)
    a = r + elapsed
    seconds = a.timestamp() - r.timestamp()
    old = round(seconds, 6) / 60 if seconds > 0 else 0.0
    item_ = item("w", r, a, a, policy="retainer", clock="calendar")
    result = compute([item_], CONFIG, since=r, until=r + dt.timedelta(seconds=1), now=a)
    assert result.items[0].minutes_to_ack == old


@settings(max_examples=300, deadline=None)
@given(runs=st.lists(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 7.25, 60.0, 1e9]),
                              min_size=1, max_size=30), min_size=1, max_size=6),
       q=st.floats(min_value=0, max_value=1))
def test_quantile_across_sorted_lists_is_the_quantile_of_their_merge(runs, q):
    runs = [sorted(r) for r in runs]
    merged = sorted(v for r in runs for v in r)
    n = len(merged)
    assert figures_module._quantile_of_runs(runs, n, q) == quantile(merged, q)
    assert [figures_module._kth(runs, k) for k in range(n)] == merged


# --------------------------------------------------------------------------- period


@pytest.mark.parametrize(
    ("now", "since", "until"),
    [
        (at(18, 15), at(9, 0), at(16, 0)),
        (at(16, 0), at(9, 0), at(16, 0)),  # Monday 00:00 itself: the week just ended
        (at(15, 23, 59), at(2, 0), at(9, 0)),
        # The week in which summer time starts (Sun 29 Mar 2026) is 167 hours long.
        (dt.datetime(2026, 4, 1, 12, tzinfo=WAW), dt.datetime(2026, 3, 23, tzinfo=WAW),
         dt.datetime(2026, 3, 30, tzinfo=WAW)),
    ],
)
def test_default_period_is_the_last_full_week(now, since, until):
    assert default_period(now, "Europe/Warsaw") == (since, until)


def test_default_period_of_the_dst_week_is_167_hours():
    since, until = default_period(dt.datetime(2026, 4, 1, tzinfo=WAW), "Europe/Warsaw")
    assert until - since == dt.timedelta(hours=167)


def test_parse_bound():
    assert parse_bound("2026-11-09", "Europe/Warsaw") == at(9, 0)
    assert parse_bound("2026-11-09T10:30", "Europe/Warsaw") == at(9, 10, 30)
    assert parse_bound("2026-11-09T10:30+00:00", "Europe/Warsaw") == at(9, 11, 30)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_bound("last week", "Europe/Warsaw")


def test_format_minutes():
    assert [format_minutes(m) for m in (None, 0, 0.4, 42, 83, 600, 7000)] == [
        "-", "0m", "<1m", "42m", "1h23m", "10h00m", "116h"]


# --------------------------------------------------------------------------- renderers


def test_json_shape_and_values(week):
    data = json.loads(render_json(week))
    assert list(data) == ["period", "totals", "by_account", "by_client", "target",
                          "clients_below_target", "breaches"]
    assert data["period"] == {"since": "2026-11-09T00:00:00+01:00",
                              "until": "2026-11-16T00:00:00+01:00"}
    assert list(data["totals"]) == list(FIGURE_FIELDS)
    assert data["totals"] == {
        "client_emails": 9, "acknowledged": 7, "within_window": 5, "service_level": 0.625,
        "median_minutes": 90.0, "p90_minutes": 396.0, "open": 1, "overdue": 1,
    }
    assert [list(a) for a in data["by_account"]] == [["account", *FIGURE_FIELDS]] * 2
    assert [list(c) for c in data["by_client"]] == [
        ["client", *FIGURE_FIELDS, "below_target"]] * 4
    assert [a["account"] for a in data["by_account"]] == [ANNA, PIOTR]
    assert [c["client"] for c in data["by_client"]] == [
        "Sklep Kwiatowy", "Globex", "Acme", "gmail.com"]
    assert data["by_client"][0]["service_level"] == 0.3333
    assert data["breaches"][0] == {
        "client": "Sklep Kwiatowy", "subject": "Subject a5",
        "received": "2026-11-12T11:00:00+01:00", "deadline": "2026-11-12T13:00:00+01:00",
        "acknowledged": None, "account": ANNA,
    }
    assert data["breaches"][2]["acknowledged"] == "2026-11-16T10:40:00+01:00"


def test_csv_has_one_row_per_item(week):
    rows = list(csv.DictReader(io.StringIO(render_csv(week))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["status"] for r in rows] == [r.status for r in week.items]
    by_key = {r["subject"]: r for r in rows}
    assert by_key["Subject a3"] == {
        "received": "2026-11-10T16:00:00+01:00", "client": "Sklep Kwiatowy",
        "client_address": "ola@sklep-kwiatowy.example", "account": ANNA,
        "subject": "Subject a3", "policy": "default", "clock": "business",
        "deadline": "2026-11-12T10:00:00+01:00", "acknowledged": "2026-11-12T09:30:00+01:00",
        "minutes_to_ack": "90.0", "within_window": "yes", "status": "on_time",
        "ack_date": "",
    }
    assert (by_key["Subject a5"]["acknowledged"], by_key["Subject a5"]["within_window"]) == (
        "", "no")
    assert by_key["Subject a8"]["within_window"] == ""


def test_csv_neutralises_spreadsheet_formulas_and_keeps_newlines():
    r = compute([item("i", at(9, 10), at(9, 12), None,
                      subject='=HYPERLINK("http://evil.example","x")\nline 2')],
                CONFIG, since=SINCE, until=UNTIL, now=NOW)
    (row,) = csv.DictReader(io.StringIO(render_csv(r)))
    assert row["subject"] == '\'=HYPERLINK("http://evil.example","x")\nline 2'


def _display_width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def test_table_fits_80_columns(week):
    text = render_table(week)
    assert all(_display_width(line) <= 80 for line in text.splitlines())
    assert "Service level 62.5%: 5 of 8 acknowledged within the window" in text
    assert "median 1h30m, 90th percentile 6h36m" in text
    assert "Sklep Kwiatowy" in text and "gmail.com" in text
    assert "Breaches (3)" in text and "never" in text


def test_table_fits_80_columns_with_millions(week):
    big = Figures(client_emails=9_999_999, acknowledged=9_999_999, within_window=9_999_999,
                  service_level=1.0, median_minutes=5999.0, p90_minutes=99999.0,
                  open=99_999, overdue=9_999_999)
    huge = dataclasses.replace(
        week, totals=big, by_account=tuple(dataclasses.replace(g, figures=big)
                                           for g in week.by_account))
    lines = render_table(huge).splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert ("  anna               9999999 9999999 9999999 100.0%  99h59m  1666h 99999 9999999"
            in lines)


def test_table_with_hostile_and_wide_text_stays_aligned():
    nasty = item("j", at(9, 10), at(9, 12), None, client="株式会社サンプル広告代理店グループ本社",
                 subject="\x1b[2J\x1b[31mred\u202eevil 発注書の確認をお願いします 発注書の確認",
                 account="a-very-long-account-name@agency.example")
    r = compute([nasty], CONFIG, since=SINCE, until=UNTIL, now=NOW)
    text = render_table(r, max_breaches=1)
    assert "\x1b" not in text and "\u202e" not in text
    assert all(_display_width(line) <= 80 for line in text.splitlines())


def test_table_of_an_empty_period():
    r = compute([], CONFIG, since=SINCE, until=UNTIL, now=NOW)
    assert "No client email was received" in render_table(r)


def test_table_caps_the_breaches():
    many = [item(f"k{n}", at(9, 10) + dt.timedelta(minutes=n), at(9, 12), None)
            for n in range(30)]
    text = render_table(compute(many, CONFIG, since=SINCE, until=UNTIL, now=NOW),
                        max_breaches=5)
    assert "… and 25 more" in text


def test_html_is_self_contained_with_svg_and_escapes_client_text():
    hostile = item("l", at(9, 10), at(9, 12), None,
                   client="Smith & <b>Sons</b>", subject="<script>alert(1)</script> offer")
    r = compute([*WEEK, hostile], CONFIG, since=SINCE, until=UNTIL, now=NOW)
    page = render_html(r, target=0.8)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 3  # by account, by client, the histogram
    assert "&lt;script&gt;alert(1)&lt;/script&gt; offer" in page
    assert "<script" not in page.lower()
    assert "Smith &amp; &lt;b&gt;Sons&lt;/b&gt;" in page and "<b>Sons" not in page
    assert "target 80%" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no network
    assert "default-src 'none'" in page


def test_html_of_an_empty_period_renders():
    page = render_html(compute([], CONFIG, since=SINCE, until=UNTIL, now=NOW))
    assert "<svg" in page and "No client email in this period." in page


@pytest.mark.parametrize("module", [ack_time, period, figures_module, formatting,
                                    exports, table, html])
def test_report_is_pure_core(module):
    """No shell module, no clock, no file: `now` and the items come in as parameters."""
    source = Path(module.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported.isdisjoint({"store", "service", "cli", "imap", "notify", "secrets",
                                "sqlite3", "os", "time", "pathlib", "subprocess"})
    assert not re.search(r"\.now\(|\.today\(|\bopen\(|time\.time", source)


_SQL = sqlite3.connect(":memory:")


@settings(max_examples=500, deadline=None)
@given(t=st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2300, 1, 1),
                      timezones=st.sampled_from([dt.UTC, WAW])))
def test_store_microseconds_are_the_exact_instant(t):
    """The store's generated ``*_us`` columns (schema 5) give `epoch_us` of the stored
    text, to the microsecond, before 1970 too; `from_epoch_us` gives the instant back."""
    from ackwatch.store.forms import iso as _iso
    from ackwatch.store.schema import EPOCH_US_SQL as _US

    (us,) = _SQL.execute("SELECT " + _US.format("?1"), (_iso(t),)).fetchone()
    assert us == epoch_us(t)
    assert from_epoch_us(us) == t.astimezone(dt.UTC)  # (a gap time: ==)
    assert from_epoch_us(us).tzinfo is dt.UTC
    assert us / 1_000_000 == t.timestamp()
