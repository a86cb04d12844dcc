"""The promise keeper's decisions (issue 8, daemon half): pure, explicit instants."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ackwatch.config import CalendarConfig, OpenRange
from ackwatch.core.promise_rules import (
    Due,
    Later,
    Recorded,
    assess,
    figures,
    figures_json,
    notices_due,
    plan,
    reminder_at,
    still_owed,
)

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
PROMISED = T0 + dt.timedelta(hours=6)
OFFICE = CalendarConfig("office", "UTC", ((OpenRange(9 * 60, 17 * 60),),) * 5 + ((),) * 2)


def promise(**kw) -> Recorded:
    values = dict(
        id=1, source_key="<ack@agency>", account="anna@agency.example", made_at=T0,
        promised=PROMISED, remind_at=PROMISED - dt.timedelta(hours=2),
    )  # fmt: skip
    values.update(kw)
    return Recorded(**values)


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def test_no_follow_up_before_the_instant_is_open():
    a = assess(promise(), [], at(5))
    assert (a.state, a.follow_key, a.settled_at) == ("open", None, None)


def test_no_follow_up_when_the_instant_passes_breaks_it():
    a = assess(promise(), [], PROMISED)
    assert (a.state, a.follow_key, a.settled_at) == ("broken", None, PROMISED)


def test_delivery_before_the_instant_keeps_it():
    a = assess(promise(), [Later("<d@agency>", at(3), promised=False)], at(7))
    assert (a.state, a.follow_key, a.settled_at, a.read_needed) == (
        "kept", "<d@agency>", at(3), False,
    )  # fmt: skip


def test_unread_follow_up_counts_as_kept_and_asks_for_a_read():
    a = assess(promise(), [Later("<d@agency>", at(3))], at(4))
    assert (a.state, a.read_needed) == ("kept", True)


def test_new_date_before_the_instant_moves_it():
    a = assess(promise(), [Later("<d@agency>", at(3), promised=True)], at(4))
    assert a.state == "moved"


def test_follow_up_after_the_instant_does_not_mend_a_broken_promise():
    a = assess(promise(), [Later("<late@agency>", PROMISED, promised=False)], at(9))
    assert (a.state, a.follow_key) == ("broken", "<late@agency>")


def test_the_promising_message_and_earlier_ones_are_not_follow_ups():
    later = [Later("<ack@agency>", at(1)), Later("<old@agency>", T0), Later("<x>", at(-1))]
    assert assess(promise(), later, at(1)).state == "open"


def test_first_follow_up_decides():
    later = [Later("<b>", at(4), promised=True), Later("<a>", at(2), promised=False)]
    a = assess(promise(), later, at(5))
    assert (a.state, a.follow_key) == ("kept", "<a>")


def test_reminder_due_at_remind_at_then_overdue_after_the_instant():
    p = promise()
    due, skips, nxt = notices_due([(p, assess(p, [], at(3)))], at(3))
    assert [(d.kind, d.at) for d in due] == [("promise", at(4))]
    assert nxt == PROMISED and not skips
    p = promise(reminder_done=True)
    due, _, nxt = notices_due([(p, assess(p, [], PROMISED))], PROMISED)
    assert [(d.kind, d.at) for d in due] == [("promise-overdue", PROMISED)]
    assert nxt is None


def test_kept_promise_gets_no_notice():
    p = promise()
    a = assess(p, [Later("<d>", at(1), promised=False)], at(9))
    assert notices_due([(p, a)], at(9)) == ([], [], None)


def test_late_follow_up_cancels_the_overdue_notice():
    p = promise(reminder_done=True)
    a = assess(p, [Later("<d>", at(7), promised=False)], at(8))
    assert notices_due([(p, a)], at(8))[0] == []


def test_reminder_missed_during_downtime_is_skipped():
    p = promise()
    due, skips, _ = notices_due([(p, assess(p, [], at(7)))], at(7))
    assert [d.kind for d in due] == ["promise-overdue"]
    assert [(s.kind, s.promise_id) for s in skips] == [("promise", 1)]


def test_reminder_instant_is_on_the_business_clock():
    # Promised Tuesday 10:00, 2 business hours before = Monday 16:00 (closed 17-09).
    promised = dt.datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    assert reminder_at(T0, promised, dt.timedelta(hours=2), OFFICE) == dt.datetime(
        2026, 3, 2, 16, 0, tzinfo=UTC
    )


def test_no_reminder_for_a_promise_made_inside_its_lead_time():
    assert reminder_at(T0, T0 + dt.timedelta(hours=1), dt.timedelta(hours=2), OFFICE) is None


def plan_at(due, now, **kw):
    options = dict(
        now=now, recipient_of=lambda a: a, manager_of=lambda a: "kasia@agency.example",
        batch_window=dt.timedelta(minutes=2), max_per_hour=6, sent_last_hour={},
    )  # fmt: skip
    options.update(kw)
    return plan(due, **options)


def test_reminders_due_close_together_go_in_one_mail():
    anna = "anna@agency.example"
    due = [
        Due("promise", 1, anna, at(4)),
        Due("promise", 2, anna, at(4) + dt.timedelta(minutes=1)),
        Due("promise", 3, anna, at(5)),
    ]
    p = plan_at(due, at(4))
    assert [(a.kind, a.to, a.promise_ids) for a in p.actions] == [("promise", anna, (1, 2))]
    assert p.next_due == at(5)


def test_overdue_notice_goes_to_the_manager_with_the_account_in_cc():
    p = plan_at([Due("promise-overdue", 7, "anna@agency.example", PROMISED)], PROMISED)
    (a,) = p.actions
    assert (a.to, a.cc, a.promise_ids) == ("kasia@agency.example", ("anna@agency.example",), (7,))


def test_overdue_without_manager_is_skipped():
    p = plan_at([Due("promise-overdue", 7, "x@agency.example", PROMISED)], PROMISED,
                manager_of=lambda a: None)  # fmt: skip
    assert not p.actions and [s.reason for s in p.skips] == ["no manager configured"]


def test_reminder_goes_to_the_backup_when_the_account_is_away():
    p = plan_at([Due("promise", 1, "anna@agency.example", at(4))], at(4),
                recipient_of=lambda a: "piotr@agency.example")  # fmt: skip
    assert p.actions[0].to == "piotr@agency.example"


def test_a_reminder_copies_the_accounts_mentor_and_an_overdue_notice_does_not():
    anna, mentor = "anna@agency.example", "mentor@agency.example"
    due = [Due("promise", 1, anna, at(4)), Due("promise-overdue", 2, anna, at(4))]
    p = plan_at(due, at(4), mentor_of=lambda a: mentor)
    assert sorted((a.kind, a.to, a.cc) for a in p.actions) == [
        ("promise", anna, (mentor,)), ("promise-overdue", "kasia@agency.example", (anna,)),
    ]


def test_a_mentor_over_the_hourly_cap_is_left_out_of_the_reminder():
    anna, mentor = "anna@agency.example", "mentor@agency.example"
    sent = {mentor: [at(4) - dt.timedelta(minutes=10)]}
    p = plan_at([Due("promise", 1, anna, at(4))], at(4), mentor_of=lambda a: mentor,
                max_per_hour=1, sent_last_hour=sent)
    assert [(a.to, a.cc, a.cc_left_out) for a in p.actions] == [(anna, (), (mentor,))]


def test_hourly_cap_makes_reminders_wait():
    anna = "anna@agency.example"
    sent = {anna: [at(4) - dt.timedelta(minutes=m) for m in (10, 20)]}
    p = plan_at([Due("promise", 1, anna, at(4))], at(4), max_per_hour=2, sent_last_hour=sent)
    assert not p.actions and p.next_due == at(4) - dt.timedelta(minutes=20) + dt.timedelta(hours=1)


def test_a_copy_counts_toward_the_hourly_cap_of_the_person_copied():
    anna, kasia = "anna@agency.example", "kasia@agency.example"
    sent = {anna: [at(4) - dt.timedelta(minutes=10)]}  # e.g. an escalation copying her
    due = [Due("promise", 1, anna, at(4)), Due("promise-overdue", 2, anna, at(4))]
    p = plan_at(due, at(4), max_per_hour=2, sent_last_hour=sent)
    # Her reminder takes her last room; the overdue notice goes to Kasia without her.
    assert sorted((a.kind, a.to, a.cc) for a in p.actions) == [
        ("promise", anna, ()), ("promise-overdue", kasia, ()),
    ]


def test_over_the_hourly_cap_reminders_merge_into_one_mail_at_once():
    # Piotr stands in for three away accounts and has room for two more mails: the three
    # reminders go now, in one mail, as nudges would (none waits an hour).
    piotr = "piotr@agency.example"
    sent = {piotr: [at(4) - dt.timedelta(minutes=m) for m in (10, 20, 30, 40)]}
    due = [Due("promise", i, account, at(4))
           for i, account in enumerate(("anna@agency.example", "ola@agency.example",
                                        "tomek@agency.example"), 1)]
    p = plan_at(due, at(4), recipient_of=lambda a: piotr, sent_last_hour=sent)
    assert [(a.kind, a.to, a.account, a.promise_ids) for a in p.actions] == [
        ("promise", piotr, None, (1, 2, 3)),
    ]
    assert p.next_due is None


def test_over_the_hourly_cap_overdue_notices_merge_with_every_account_in_cc():
    kasia, anna, ola = "kasia@agency.example", "anna@agency.example", "ola@agency.example"
    sent = {kasia: [PROMISED - dt.timedelta(minutes=5)]}
    due = [Due("promise-overdue", 1, anna, PROMISED), Due("promise-overdue", 2, ola, PROMISED)]
    p = plan_at(due, PROMISED, max_per_hour=2, sent_last_hour=sent)
    assert [(a.kind, a.to, a.cc, a.account, a.promise_ids) for a in p.actions] == [
        ("promise-overdue", kasia, (anna, ola), None, (1, 2)),
    ]


def test_reminders_and_overdue_notices_over_the_cap_are_one_mail_each_earliest_first():
    # A mail carries one kind of notice: with room for one, the earlier kind goes now
    # and the other waits for the hour to roll.
    kasia = "kasia@agency.example"
    sent = {kasia: [at(4) - dt.timedelta(minutes=m) for m in (10, 20, 30, 40, 50)]}
    due = [Due("promise-overdue", 1, "anna@agency.example", at(4) - dt.timedelta(minutes=1)),
           Due("promise-overdue", 2, "ola@agency.example", at(4)),
           Due("promise", 3, kasia, at(4))]
    p = plan_at(due, at(4), sent_last_hour=sent)
    assert [(a.kind, a.promise_ids) for a in p.actions] == [("promise-overdue", (1, 2))]
    assert p.next_due == at(4) - dt.timedelta(minutes=50) + dt.timedelta(hours=1)


def test_report_figures_by_account_and_client():
    f = figures([
        ("anna@a", "Acme", "kept"), ("anna@a", "Acme", "broken"),
        ("piotr@a", "Beta", "moved"), ("piotr@a", "Acme", "open"),
    ])  # fmt: skip
    data = figures_json(f)
    assert data["totals"] == {"made": 4, "kept": 1, "moved": 1, "broken": 1, "open": 1}
    assert data["by_account"][0] == {"account": "anna@a", "made": 2, "kept": 1, "moved": 0,
                                     "broken": 1, "open": 0}  # fmt: skip
    assert {c["client"]: c["made"] for c in data["by_client"]} == {"Acme": 3, "Beta": 1}


# --------------------------------------------------------------------------- listed


@dataclass(frozen=True)
class Listed:
    name: str
    state: str
    promised: dt.datetime
    follow_key: str | None = None


def test_still_owed_lists_open_and_recently_broken_promises_nothing_followed():
    now = PROMISED + dt.timedelta(days=40)
    promises = [
        Listed("open, long overdue", "open", PROMISED),
        Listed("broken 30 days ago", "broken", now - dt.timedelta(days=30)),
        Listed("broken 31 days ago", "broken", now - dt.timedelta(days=31)),
        Listed("broken, followed late", "broken", now - dt.timedelta(days=1), "<late@agency>"),
        Listed("open, followed", "open", now + dt.timedelta(days=1), "<late@agency>"),
        Listed("kept", "kept", now - dt.timedelta(days=1)),
    ]
    assert [p.name for p in still_owed(promises, now)] == [
        "open, long overdue", "broken 30 days ago",
    ]
