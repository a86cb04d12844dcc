"""The board's values (`web.board`): countdowns, urgency, grouping, who covers, and the
period figures with the clients below the target named, however small."""

from __future__ import annotations

import datetime as dt

from tests.support.board_state import ANNA, PIOTR, item, write_state

from ackwatch.store.sqlite import SqliteStore
from ackwatch.web import board
from ackwatch.web.access import Viewer
from ackwatch.web.state import read_state

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)  # a Wednesday
MIN = dt.timedelta(minutes=1)


def test_countdown_reads_days_hours_minutes_and_seconds_either_way():
    assert board.countdown(NOW + dt.timedelta(days=2, hours=4, minutes=5), NOW) == "2d 4h"
    assert board.countdown(NOW + 65 * MIN, NOW) == "1h 05m"
    assert board.countdown(NOW + dt.timedelta(minutes=42, seconds=17), NOW) == "42m 17s"
    assert board.countdown(NOW - dt.timedelta(minutes=12, seconds=3), NOW) == "12m 03s"


def test_an_item_is_amber_from_its_nudge_time_and_red_from_its_deadline():
    deadline, nudge = NOW + 30 * MIN, NOW
    assert board.urgency(deadline, nudge, NOW - dt.timedelta(seconds=1)) == "ok"
    assert board.urgency(deadline, nudge, NOW) == "soon"
    assert board.urgency(deadline, nudge, deadline) == "overdue"


def read(tmp_path):
    state = write_state(tmp_path, NOW)
    store = SqliteStore.open(state.config.state_dir, readonly=True)
    try:
        return state.config, read_state(store, state.config, NOW)
    finally:
        store.close()


def test_the_board_groups_by_account_most_urgent_first(tmp_path):
    config, state = read(tmp_path)
    b = board.build(state, config, NOW, Viewer(None))
    assert [g.name for g in b.groups] == ["Piotr Wiśniewski", "Anna Nowak"]
    piotr = b.groups[0]
    assert [(w.subject, w.urgency) for w in piotr.items] == [
        ("Website lead", "overdue"), ("Invoice 11/2026", "soon")]
    assert piotr.overdue == 1 and b.waiting == 3
    assert b.groups[1].covered_by == "Piotr Wiśniewski"  # Anna is away
    assert [(a.name, a.reason, a.covered_by) for a in b.away] == [
        ("Anna Nowak", "absence", "Piotr Wiśniewski")]
    assert [(m.name, m.state) for m in b.down] == [("anna", "auth_failed")]


def test_a_viewer_limited_to_an_account_sees_only_its_mail_and_figures(tmp_path):
    config, state = read(tmp_path)
    b = board.build(state, config, NOW, Viewer("piotr", frozenset({PIOTR})))
    assert [g.account for g in b.groups] == [PIOTR]
    assert b.away == () and b.down == ()
    assert {c.client for p in b.periods for c in p.clients} == {"Globex", "gmail.com"}


def test_clients_below_the_target_are_named_even_with_a_single_mail(tmp_path):
    state = write_state(tmp_path, NOW)
    store = SqliteStore.open(state.config.state_dir)
    try:  # one more Acme mail, answered late: Acme 1 of 2 in time
        store.sync_items([item("acme-late", NOW - 200 * MIN, NOW - 150 * MIN, NOW - 140 * MIN,
                               client="Acme", address="ceo@acme.example", account=ANNA,
                               subject="Late")],
                         now=NOW, initial_keys=set(), scope={"<acme-late@example>"})
        snapshot = read_state(store, state.config, NOW)
    finally:
        store.close()
    today, week = board.build(snapshot, state.config, NOW, Viewer(None)).periods
    assert today.title == "Today" and week.title == "This week"
    demand = {c.client: (c.emails, c.level, c.below) for c in week.clients}
    assert demand["Acme"] == (3, "50.0%", True)
    assert demand["gmail.com"] == (1, "0.0%", True)  # one mail, overdue: named
    assert demand["Globex"] == (1, "-", False)  # still open: not counted yet
    assert set(week.below) == {"Acme", "gmail.com"}
    assert week.emails == 5 and week.overdue == 1
