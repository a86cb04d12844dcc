"""Items whose mailbox the pre-send re-check could not reach wait for it, for a grace
(`dispatch.hold_unchecked`; pure, explicit instants)."""

from __future__ import annotations

import datetime as dt

from ackwatch.core.dispatch import Action, hold_unchecked

T0 = dt.datetime(2026, 11, 23, 13, 30, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)
GRACE = 2 * MIN
ANNA, KASIA = "anna@agency.example", "kasia@agency.example"


def nudge(*keys: str) -> Action:
    return Action("nudge", ANNA, (), ANNA, keys, (), T0)


def escalation(*keys: str) -> Action:
    return Action("escalation", KASIA, (ANNA,), ANNA, (), keys, T0)


def hold(actions, unchecked, *, now=T0, held_since=None, deadlines=None):
    deadline_of = {k: T0 + 30 * MIN for k in unchecked} | (deadlines or {})
    return hold_unchecked(actions, unchecked=frozenset(unchecked), deadline_of=deadline_of,
                          held_since=held_since or {}, now=now, grace=GRACE)


def test_an_item_of_an_unreachable_mailbox_is_held_and_the_others_go():
    h = hold([nudge("a", "b")], {"a"})
    assert h.actions == (nudge("b"),)
    assert h.held == {"a": T0}
    assert h.next_due == T0 + GRACE
    assert h.unchecked_sent == {}


def test_an_action_left_with_no_item_is_dropped():
    h = hold([nudge("a")], {"a"})
    assert h.actions == () and h.next_due == T0 + GRACE


def test_the_grace_runs_from_the_first_hold_not_from_each_step():
    h = hold([nudge("a")], {"a"}, now=T0 + MIN, held_since={"a": T0})
    assert h.held == {"a": T0} and h.next_due == T0 + GRACE


def test_after_the_grace_the_item_goes_out_unchecked():
    h = hold([nudge("a")], {"a"}, now=T0 + GRACE, held_since={"a": T0})
    assert h.actions == (nudge("a"),)
    assert h.unchecked_sent == {"a": "grace over"} and h.held == {} and h.next_due is None


def test_a_nudge_the_grace_would_carry_past_its_deadline_goes_out_at_once():
    h = hold([nudge("a")], {"a"}, deadlines={"a": T0 + MIN})
    assert h.actions == (nudge("a"),)
    assert h.unchecked_sent == {"a": "deadline"}


def test_an_escalation_is_held_the_whole_grace_its_deadline_already_past():
    h = hold([escalation("a")], {"a"}, deadlines={"a": T0 - MIN})
    assert h.actions == () and h.held == {"a": T0}


def test_no_unreachable_mailbox_changes_nothing():
    actions = [nudge("a"), escalation("b")]
    h = hold(actions, set())
    assert h.actions == tuple(actions) and h.held == {} and h.next_due is None


def test_a_zero_grace_sends_as_before():
    h = hold_unchecked([nudge("a")], unchecked=frozenset({"a"}),
                       deadline_of={"a": T0 + 30 * MIN}, held_since={}, now=T0,
                       grace=dt.timedelta(0))
    assert h.actions == (nudge("a"),) and h.unchecked_sent == {"a": "grace over"}
