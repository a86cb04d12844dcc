"""What the board reads (`web.state.read_state`), on both backends: it asks the store only
through its read-only reader, and gets the same board from SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from tests.support.board_state import ANNA, PIOTR, item, write_config

from ackwatch.config import load_config
from ackwatch.web import board
from ackwatch.web.access import Viewer
from ackwatch.web.state import read_state

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def test_the_board_reads_the_pending_items_health_and_week_through_a_reader(store, tmp_path):
    config = load_config(write_config(tmp_path))
    store.sync_items([
        item("w1", NOW - 30 * MIN, NOW + 90 * MIN, None, client="Acme",
             address="ceo@acme.example", account=ANNA, subject="Waiting"),
        item("w2", NOW - 200 * MIN, NOW - 80 * MIN, None, client="Globex",
             address="grace@globex.example", account=PIOTR, subject="Overdue"),
        item("a1", NOW - 100 * MIN, NOW + 20 * MIN, NOW - 60 * MIN, client="Acme",
             address="ceo@acme.example", account=ANNA, subject="Answered"),
    ], now=NOW, initial_keys=set())
    store.set_health("anna", "backoff", since=NOW - 5 * MIN, last_error="timeout")
    reader = store.open_reader()
    try:
        state = read_state(reader, config, NOW)
    finally:
        reader.close()
    assert [r.subject for r in state.pending] == ["Overdue", "Waiting"]
    assert [(h.mailbox, h.state) for h in state.health] == [("anna", "backoff")]
    assert len(state.week) == 3 and state.promises == ()
    shown = board.build(state, config, NOW, Viewer(None))
    assert [(g.name, [w.urgency for w in g.items]) for g in shown.groups] == [
        ("Piotr Wiśniewski", ["overdue"]), ("Anna Nowak", ["ok"])]
    assert shown.periods[1].emails == 3 and shown.periods[1].level == "50.0%"
