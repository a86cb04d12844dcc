"""The "say by when" note: when it is due, skipped or waits (core/date_asks.py)."""

from __future__ import annotations

import datetime as dt

from ackwatch.core.date_asks import STALE, Due, Later, decide, plan

T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
M = dt.timedelta(minutes=1)
GRACE = 30 * M
ANNA, PIOTR = "anna@agency.example", "piotr@agency.example"


def test_note_waits_for_the_grace_after_a_dateless_acknowledgement():
    d = decide("ack", T0, [Later("ack", T0, False)], grace=GRACE, now=T0 + 10 * M)
    assert (d.verdict, d.at) == ("wait", T0 + GRACE)


def test_note_is_due_when_the_grace_passed_without_a_date():
    later = [Later("ack", T0, False), Later("more", T0 + 5 * M, False)]
    assert decide("ack", T0, later, grace=GRACE, now=T0 + GRACE).verdict == "due"


def test_no_note_when_a_date_follows_within_the_grace():
    later = [Later("ack", T0, False), Later("dated", T0 + 20 * M, True)]
    assert decide("ack", T0, later, grace=GRACE, now=T0 + 21 * M).verdict == "skip"


def test_a_date_after_the_grace_comes_too_late_to_stop_the_note():
    later = [Later("dated", T0 + GRACE + M, True)]
    assert decide("ack", T0, later, grace=GRACE, now=T0 + GRACE + 2 * M).verdict == "due"


def test_a_mail_within_the_grace_is_read_before_the_note_goes():
    d = decide("ack", T0, [Later("unread", T0 + 5 * M, None)], grace=GRACE, now=T0 + GRACE)
    assert (d.verdict, d.to_read) == ("read", ("unread",))


def test_a_note_long_past_its_time_is_not_sent():
    assert decide("ack", T0, [], grace=GRACE, now=T0 + GRACE + STALE + M).verdict == "stale"


def test_notes_due_close_together_go_as_one_mail_per_recipient():
    due = [Due("a", ANNA, T0), Due("b", ANNA, T0 + 10 * dt.timedelta(seconds=1)),
           Due("c", PIOTR, T0)]  # fmt: skip
    actions, _ = plan(due, now=T0, recipient_of=lambda a: a, batch_window=M, max_per_hour=5,
                      sent_last_hour={})  # fmt: skip
    assert sorted((a.to, a.item_keys, a.cc) for a in actions) == [
        (ANNA, ("a", "b"), ()), (PIOTR, ("c",), ())]


def test_notes_respect_the_hourly_cap_shared_with_nudges():
    full = {ANNA: [T0 - 10 * M] * 3}
    actions, next_due = plan([Due("a", ANNA, T0)], now=T0, recipient_of=lambda a: a,
                             batch_window=M, max_per_hour=3, sent_last_hour=full)  # fmt: skip
    assert actions == [] and next_due == T0 + 50 * M


def test_an_away_account_s_note_goes_to_its_backup():
    actions, _ = plan([Due("a", ANNA, T0)], now=T0, recipient_of=lambda a: PIOTR,
                      batch_window=M, max_per_hour=5, sent_last_hour={})  # fmt: skip
    assert [(a.to, a.account) for a in actions] == [(PIOTR, ANNA)]
