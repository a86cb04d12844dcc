"""The scheduler's decisions: who gets which mail when (pure; explicit instants)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ackwatch.config import Account, Agency, CalendarConfig, Config, NotifyConfig, OpenRange, Policy
from ackwatch.core.dispatch import Pending, plan

T0 = dt.datetime(2026, 11, 23, 13, 32, 10, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def make_config(**notify: object) -> Config:
    day = (OpenRange(9 * 60, 17 * 60),)
    office = CalendarConfig("office", "Europe/Warsaw", (day,) * 5 + ((), ()))
    return Config(
        path=Path("test.yaml"),
        timezone="Europe/Warsaw",
        state_dir=Path("state"),
        agency=Agency(domains=("agency.example",)),
        calendars={"office": office},
        policies={
            "default": Policy(
                "default", dt.timedelta(hours=2), "business", "office", 30 * MIN, dt.timedelta(0)
            )
        },
        accounts=(
            Account("anna@agency.example", "Anna", manager="kasia@agency.example",
                    backup="piotr@agency.example"),
            Account("piotr@agency.example", "Piotr", manager="kasia@agency.example"),
            Account("solo@agency.example", "Solo"),
        ),
        clients=(),
        unknown_senders="track",
        mailboxes=(),
        smtp=None,
        notify=NotifyConfig(**notify),  # type: ignore[arg-type]
    )


def pending(key: str, account: str | None, nudge_at: dt.datetime, escalate_at=None,
            nudge_done=False, escalation_done=False) -> Pending:
    return Pending(key, account, nudge_at, escalate_at, nudge_done, escalation_done)


def same(account: str) -> str:
    return account


ANNA = "anna@agency.example"
PIOTR = "piotr@agency.example"


def test_nudge_is_due_at_its_second_not_the_next_minute():
    items = [pending("a", ANNA, T0)]
    before = plan(items, config=make_config(), now=T0 - dt.timedelta(seconds=1),
                  recipient_of=same, sent_last_hour={})
    assert before.actions == ()
    assert before.next_due == T0
    at = plan(items, config=make_config(), now=T0, recipient_of=same, sent_last_hour={})
    assert [a.nudge_keys for a in at.actions] == [("a",)]


def test_nudges_due_within_the_batch_window_go_out_as_one_mail():
    items = [
        pending("a", ANNA, T0),
        pending("b", ANNA, T0 + 90 * dt.timedelta(seconds=1)),
        pending("c", ANNA, T0 + 5 * MIN),
    ]
    p = plan(items, config=make_config(), now=T0, recipient_of=same, sent_last_hour={})
    assert len(p.actions) == 1
    assert p.actions[0].nudge_keys == ("a", "b")
    assert p.next_due == T0 + 5 * MIN


def test_each_recipient_gets_their_own_mail():
    items = [pending("a", ANNA, T0), pending("b", PIOTR, T0)]
    p = plan(items, config=make_config(), now=T0, recipient_of=same, sent_last_hour={})
    assert sorted((a.to, a.nudge_keys) for a in p.actions) == [(ANNA, ("a",)), (PIOTR, ("b",))]


def test_away_account_nudge_goes_to_the_backup():
    items = [pending("a", ANNA, T0)]
    p = plan(items, config=make_config(), now=T0,
             recipient_of=lambda acc: PIOTR if acc == ANNA else acc, sent_last_hour={})
    assert p.actions[0].to == PIOTR
    assert p.actions[0].account == ANNA


def test_escalation_goes_to_the_manager_with_the_account_in_cc():
    items = [pending("a", ANNA, T0 - 30 * MIN, escalate_at=T0, nudge_done=True)]
    p = plan(items, config=make_config(), now=T0, recipient_of=same, sent_last_hour={})
    (action,) = p.actions
    assert (action.kind, action.to, action.cc) == ("escalation", "kasia@agency.example", (ANNA,))
    assert action.escalation_keys == ("a",)


def test_done_actions_are_never_planned_again():
    items = [pending("a", ANNA, T0 - MIN, escalate_at=T0 - MIN, nudge_done=True,
                     escalation_done=True)]
    p = plan(items, config=make_config(), now=T0, recipient_of=same, sent_last_hour={})
    assert p.actions == () and p.next_due is None


def test_escalation_without_a_manager_is_skipped_not_retried():
    items = [pending("a", "solo@agency.example", T0 - MIN, escalate_at=T0 - MIN, nudge_done=True)]
    p = plan(items, config=make_config(), now=T0, recipient_of=same, sent_last_hour={})
    assert p.actions == ()
    assert [(s.kind, s.key) for s in p.skips] == [("escalation", "a")]


def test_after_downtime_everything_due_goes_out_once_batched():
    items = [pending(k, ANNA, T0 - dt.timedelta(hours=h)) for k, h in (("a", 5), ("b", 3), ("c", 1))]
    p = plan(items, config=make_config(), now=T0, recipient_of=same, sent_last_hour={})
    assert len(p.actions) == 1
    assert set(p.actions[0].nudge_keys) == {"a", "b", "c"}


def test_hourly_cap_holds_mail_until_the_oldest_is_an_hour_old():
    sent = {ANNA: [T0 - dt.timedelta(minutes=m) for m in (50, 40, 30, 20, 10, 5)]}
    items = [pending("a", ANNA, T0)]
    p = plan(items, config=make_config(), now=T0, recipient_of=same, sent_last_hour=sent)
    assert p.actions == ()
    assert p.next_due == T0 + 10 * MIN


def test_mails_beyond_the_room_left_are_merged_into_one_summary():
    sent = {"kasia@agency.example": [T0 - dt.timedelta(minutes=m) for m in (50, 40, 30, 20, 10)]}
    items = [
        pending("a", ANNA, T0 - MIN, escalate_at=T0, nudge_done=True),
        pending("b", PIOTR, T0 - MIN, escalate_at=T0, nudge_done=True),
    ]
    p = plan(items, config=make_config(), now=T0, recipient_of=same, sent_last_hour=sent)
    (action,) = p.actions
    assert action.kind == "summary"
    assert set(action.escalation_keys) == {"a", "b"}
    assert set(action.cc) == {ANNA, PIOTR}


def test_sent_mail_older_than_an_hour_does_not_count_toward_the_cap():
    sent = {ANNA: [T0 - dt.timedelta(minutes=m) for m in (120, 90, 70, 65, 61, 61)]}
    p = plan([pending("a", ANNA, T0)], config=make_config(), now=T0, recipient_of=same,
             sent_last_hour=sent)
    assert [a.kind for a in p.actions] == ["nudge"]


def test_a_cap_of_one_still_sends_one_mail():
    p = plan([pending("a", ANNA, T0), pending("b", ANNA, T0 - 10 * MIN, escalate_at=T0,
                                               nudge_done=True)],
             config=make_config(max_per_hour=1), now=T0, recipient_of=same, sent_last_hour={})
    assert len([a for a in p.actions if a.to == ANNA]) == 1


KASIA = "kasia@agency.example"


def test_mail_that_copied_a_person_counts_toward_their_hourly_cap():
    # Two mails To Anna and one escalation copying her this hour: with a cap of 3, a
    # nudge due now waits until the oldest of them is an hour old.
    sent = {ANNA: [T0 - 50 * MIN, T0 - 40 * MIN, T0 - 30 * MIN], KASIA: [T0 - 30 * MIN]}
    p = plan([pending("a", ANNA, T0)], config=make_config(max_per_hour=3), now=T0,
             recipient_of=same, sent_last_hour=sent)
    assert p.actions == ()
    assert p.next_due == T0 + 10 * MIN


def test_an_escalation_copies_the_account_only_while_the_account_has_room():
    # Anna has room for one more mail: her own nudge takes it; the escalation about her
    # other item still goes to Kasia at once, without Anna in Cc.
    items = [pending("a", ANNA, T0),
             pending("b", ANNA, T0 - 30 * MIN, escalate_at=T0, nudge_done=True)]
    sent = {ANNA: [T0 - 10 * MIN]}
    p = plan(items, config=make_config(max_per_hour=2), now=T0, recipient_of=same,
             sent_last_hour=sent)
    assert sorted((a.kind, a.to, a.cc) for a in p.actions) == [
        ("escalation", KASIA, ()), ("nudge", ANNA, ()),
    ]


def test_an_escalation_copies_the_account_when_the_account_has_room():
    items = [pending("b", ANNA, T0 - 30 * MIN, escalate_at=T0, nudge_done=True)]
    p = plan(items, config=make_config(max_per_hour=2), now=T0, recipient_of=same,
             sent_last_hour={ANNA: [T0 - 10 * MIN]})
    assert [(a.to, a.cc) for a in p.actions] == [(KASIA, (ANNA,))]


def test_the_cap_compares_addresses_case_insensitively():
    sent = {"Anna@Agency.example": [T0 - 10 * MIN]}
    p = plan([pending("a", ANNA, T0)], config=make_config(max_per_hour=1), now=T0,
             recipient_of=same, sent_last_hour=sent)
    assert p.actions == () and p.next_due == T0 + 50 * MIN


# --------------------------------------------------------------------------- mentor

OLGA_MENTOR = "mentor@agency.example"
KASIA = "kasia@agency.example"


def mentor_of(account: str) -> str | None:
    return OLGA_MENTOR if account == ANNA else None


def test_a_nudge_copies_the_accounts_mentor():
    p = plan([pending("a", ANNA, T0), pending("b", PIOTR, T0)], config=make_config(), now=T0,
             recipient_of=same, sent_last_hour={}, mentor_of=mentor_of)
    assert sorted((a.to, a.cc) for a in p.actions) == [(ANNA, (OLGA_MENTOR,)), (PIOTR, ())]


def test_an_escalation_copies_the_account_but_never_the_mentor():
    items = [pending("a", ANNA, T0 - 30 * MIN, escalate_at=T0, nudge_done=True)]
    p = plan(items, config=make_config(), now=T0, recipient_of=same, sent_last_hour={},
             mentor_of=mentor_of)
    assert [(a.kind, a.to, a.cc) for a in p.actions] == [("escalation", KASIA, (ANNA,))]


def test_the_mentor_copy_follows_the_account_whose_items_they_are_when_a_backup_covers():
    p = plan([pending("a", ANNA, T0)], config=make_config(), now=T0,
             recipient_of=lambda acc: PIOTR, sent_last_hour={}, mentor_of=mentor_of)
    assert [(a.to, a.cc, a.account) for a in p.actions] == [(PIOTR, (OLGA_MENTOR,), ANNA)]


def test_a_mentor_who_receives_the_nudge_gets_no_copy_of_it_too():
    # Anna is away and her mentor is her backup: one mail, To them, no Cc to themself.
    p = plan([pending("a", ANNA, T0)], config=make_config(), now=T0,
             recipient_of=lambda acc: OLGA_MENTOR, sent_last_hour={}, mentor_of=mentor_of)
    assert [(a.to, a.cc) for a in p.actions] == [(OLGA_MENTOR, ())]


def test_a_mentor_over_the_hourly_cap_is_left_out_and_the_nudge_still_goes():
    full = {OLGA_MENTOR: [T0 - m * MIN for m in (5, 10)]}
    p = plan([pending("a", ANNA, T0)], config=make_config(max_per_hour=2), now=T0,
             recipient_of=same, sent_last_hour=full, mentor_of=mentor_of)
    assert [(a.to, a.cc, a.cc_left_out) for a in p.actions] == [(ANNA, (), (OLGA_MENTOR,))]
    assert p.next_due is None  # the nudge does not wait for the mentor's hour


def test_the_mentor_copy_takes_the_mentors_room_after_their_own_mail():
    # The mentor is an account with a nudge of their own and room for one mail: their own
    # nudge goes, the copy of Anna's is left out.
    config = make_config(max_per_hour=1)
    items = [pending("a", ANNA, T0), pending("p", PIOTR, T0)]
    p = plan(items, config=config, now=T0, recipient_of=same, sent_last_hour={},
             mentor_of=lambda acc: PIOTR if acc == ANNA else None)
    assert sorted((a.to, a.cc, a.cc_left_out) for a in p.actions) == [
        (ANNA, (), (PIOTR,)), (PIOTR, (), ()),
    ]
