"""A plan without the actions that can only go to people over the hourly cap is the plan
of every item: the daemon leaves those actions unread while the cap holds
(`daemon.nudges.plan`), and the core tells who they are (`Plan.capped`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.test_dispatch import ANNA, MIN, PIOTR, T0, make_config, pending

from ackwatch.core.dispatch import Pending, Plan, plan

KASIA = "kasia@agency.example"  # manages Anna and Piotr
SOLO = "solo@agency.example"  # no manager: his escalations are skipped
MENTOR = "mentor@agency.example"
CONFIG = make_config(max_per_hour=2)
MANAGER = {ANNA: KASIA, PIOTR: KASIA}


def _plan(items: Sequence[Pending], receivers: Mapping[str, str],
          hour: Mapping[str, list[dt.datetime]], now: dt.datetime = T0) -> Plan:
    return plan(items, config=CONFIG, now=now, recipient_of=lambda a: receivers.get(a, a),
                sent_last_hour=hour, mentor_of=lambda a: MENTOR if a == ANNA else None)


def _unread(items: Sequence[Pending], receivers: Mapping[str, str],
            capped: Mapping[str, dt.datetime]) -> tuple[list[Pending], list[Pending]]:
    """The items `Store.items_due` still returns when the nudges of the accounts whose
    receiver is capped and the escalations of those whose manager is capped are left
    out (an item due through its other action is read whole), and those it leaves out."""
    def nudge_read(p: Pending) -> bool:
        return not p.nudge_done and (p.account is None or receivers.get(
            p.account, p.account) not in capped)

    def escalation_read(p: Pending) -> bool:
        return (not p.escalation_done and p.escalate_at is not None
                and MANAGER.get(p.account or "") not in capped)

    read = [p for p in items if nudge_read(p) or escalation_read(p)]
    return read, [p for p in items if p not in read]


def _skipped_people(left_out: Sequence[Pending], receivers: Mapping[str, str],
                    capped: Mapping[str, dt.datetime]) -> set[str]:
    people = {receivers.get(p.account, p.account) for p in left_out
              if p.account and not p.nudge_done}
    people |= {MANAGER[p.account] for p in left_out if p.account in MANAGER
               and not p.escalation_done and p.escalate_at is not None}
    return people & set(capped)


ACCOUNTS = st.sampled_from([ANNA, PIOTR, SOLO, None])
DUE = st.integers(-180, 0).map(lambda m: T0 + m * MIN)  # the backlog: due by now


@st.composite
def items(draw: st.DrawFn) -> list[Pending]:
    found = []
    for n in range(draw(st.integers(1, 12))):
        escalation = draw(st.none() | DUE)
        found.append(pending(f"k{n}", draw(ACCOUNTS), draw(DUE), escalation,
                             nudge_done=draw(st.booleans()) and escalation is not None))
    return found


@settings(max_examples=300, deadline=None)
@given(items(), st.booleans(),
       st.dictionaries(st.sampled_from([ANNA, PIOTR, KASIA, SOLO, MENTOR]),
                       st.lists(st.integers(1, 59).map(lambda m: T0 - m * MIN), max_size=3)))
def test_a_plan_without_what_goes_only_to_capped_people_is_the_plan_of_every_item(
        every, anna_away, hour):
    receivers = {ANNA: PIOTR} if anna_away else {}
    whole = _plan(every, receivers, hour)
    capped = dict(whole.capped)
    assert all(len(hour.get(person, ())) >= 2 for person in capped)
    read, left_out = _unread(every, receivers, capped)
    part = _plan(read, receivers, hour)
    assert (part.actions, part.skips) == (whole.actions, whole.skips)
    frees = [capped[p] for p in _skipped_people(left_out, receivers, capped)]
    assert min([t for t in (part.next_due, *frees) if t is not None], default=None) == (
        whole.next_due)


def test_the_plan_names_each_person_with_no_room_and_when_a_place_frees():
    hour = {KASIA: [T0 - 50 * MIN, T0 - 20 * MIN], ANNA: [T0 - 40 * MIN]}
    every = [pending("a", ANNA, T0 - 5 * MIN, T0 - MIN, nudge_done=True),
             pending("p", PIOTR, T0 - 5 * MIN)]
    p = _plan(every, {}, hour)
    assert p.capped == ((KASIA, T0 + 10 * MIN),)
    assert [(a.kind, a.to) for a in p.actions] == [("nudge", PIOTR)]
    assert p.next_due == T0 + 10 * MIN


def test_a_capped_escalation_due_within_the_window_waits_for_the_cap_either_way():
    """Read, Kasia's escalation due in a minute wakes the daemon then, to find her still
    without room; left unread, the daemon wakes when her place frees. Either way it goes
    then, and nothing goes to her before."""
    hour = {KASIA: [T0 - 50 * MIN, T0 - 20 * MIN]}
    escalation = pending("a", ANNA, T0 - 30 * MIN, T0 + MIN, nudge_done=True)
    now = _plan([escalation], {}, hour)
    assert now.actions == () and now.next_due == T0 + MIN
    in_a_minute = _plan([escalation], {}, hour, T0 + MIN)
    assert in_a_minute.actions == () and dict(in_a_minute.capped) == {KASIA: T0 + 10 * MIN}
    assert in_a_minute.next_due == T0 + 10 * MIN
    freed = _plan([escalation], {}, hour, T0 + 10 * MIN)
    assert [(a.kind, a.to) for a in freed.actions] == [("escalation", KASIA)]

