"""Who gets a weekly digest, with which accounts (`reporting/digest_recipients.py`)."""

from __future__ import annotations

from ackwatch.reporting.digest_recipients import mentors_only, recipients
from configfactory import ANNA, KASIA, PIOTR, make_account, make_config

OLA = "ola@agency.example"
MENTOR = "mentor@agency.example"


def test_each_manager_gets_their_team():
    assert recipients(make_config()) == {KASIA: (ANNA, PIOTR)}


def test_a_mentor_gets_the_accounts_they_mentor():
    config = make_config(accounts=(
        make_account(ANNA, "Anna Nowak", manager=KASIA, mentor=MENTOR),
        make_account(OLA, "Ola Junior", manager=KASIA, mentor=MENTOR),
        make_account(PIOTR, "Piotr Wiśniewski", manager=KASIA),
    ))
    assert recipients(config) == {KASIA: (ANNA, OLA, PIOTR), MENTOR: (ANNA, OLA)}


def test_a_manager_who_also_mentors_gets_one_digest_with_every_account_once():
    config = make_config(accounts=(
        make_account(ANNA, "Anna Nowak", manager=KASIA),
        make_account(OLA, "Ola Junior", manager=PIOTR, mentor=KASIA),
        make_account(PIOTR, "Piotr Wiśniewski", manager=KASIA, mentor=KASIA),
        make_account(KASIA, "Kasia Lewandowska"),
    ))
    assert recipients(config) == {KASIA: (ANNA, OLA, PIOTR), PIOTR: (OLA,)}


def test_a_mentor_is_who_manages_none_of_the_accounts_of_the_digest():
    config = make_config(accounts=(
        make_account(ANNA, "Anna Nowak", manager=KASIA, mentor=MENTOR),
        make_account(OLA, "Ola Junior", manager=PIOTR, mentor=KASIA),
        make_account(PIOTR, "Piotr Wiśniewski", manager=KASIA),
    ))
    assert mentors_only(config, MENTOR, (ANNA,))
    assert not mentors_only(config, KASIA, (ANNA, OLA, PIOTR))  # manages some, mentors Ola
    assert mentors_only(config, KASIA, (OLA,))
    assert not mentors_only(config, MENTOR, ())
