"""sla: items, acknowledgements, deadlines, responsibility, away/backup (DESIGN.md "Semantics").

Every instant is a literal; 2026-11-23 is a Monday, office hours 09:00-17:00 Europe/Warsaw
(UTC+01:00 in November). Acme (anna) is on the 24h calendar-clock "retainer" policy, Globex
(piotr) on the 2h business-clock "default" policy (see configfactory).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackwatch.config import Absence, Config
from ackwatch.core.classify import agency_identities
from ackwatch.core.explain import explain
from ackwatch.core.item_rules import (
    Item,
    away_reason,
    deadlines_for,
    evaluate,
    mentor_copy,
    recipient_for,
    responsible_account,
)
from ackwatch.core.message import Message
from ackwatch.core.threads import assign_threads
from configfactory import (
    ANNA,
    KASIA,
    PIOTR,
    POLICIES,
    RETAINER_POLICY,
    make_account,
    make_config,
    make_mailbox,
    make_policy,
)
from mailfactory import VOUCHED_BY_AGENCY_SERVER, fixture_message, mail, reply

CONFIG = make_config()
WAW = ZoneInfo("Europe/Warsaw")

JAN = "Jan Kowalski <jan.kowalski@acme.example>"  # Acme: anna, retainer
MARTA = "Marta Zielinska <marta.zielinska@globex.example>"  # Globex: piotr, default
TO_ANNA = "Anna Nowak <anna@agency.example>"
TO_PIOTR = "Piotr Wiśniewski <piotr@agency.example>"


def waw(text: str) -> dt.datetime:
    """A Warsaw wall-clock time, e.g. "2026-11-23 10:00"."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=WAW)


def globex(received: str, **kwargs) -> Message:
    """Marta (Globex, 2h business policy) writes to Piotr's INBOX."""
    kwargs.setdefault("subject", "Banner sizes for the Black Friday campaign")
    return mail(from_=MARTA, to=TO_PIOTR, mailbox="piotr", received=received, **kwargs)


def same_thread(*messages) -> bool:
    """Guard for negative tests: the message that must not acknowledge is in the thread."""
    threads = assign_threads(messages, agency_addresses=agency_identities(CONFIG))
    return len({threads[m.key] for m in messages}) == 1


def only(items: tuple[Item, ...]) -> Item:
    assert len(items) == 1, items
    return items[0]


# --------------------------------------------------------------------------- acknowledgements


@pytest.mark.parametrize(
    "where",
    [
        {"mailbox": "anna", "folder": "Sent", "role": "sent"},
        {"mailbox": "anna", "folder": "Elementy wysłane", "role": "sent"},
        {"mailbox": "anna", "folder": "[Gmail]/Sent Mail", "role": "sent"},
    ],
)
def test_reply_in_sent_acknowledges(where):
    client = mail(received="2026-11-23T10:00:00+01:00")
    answer = reply(client, received="2026-11-23T10:40:00+01:00", **where)
    item = only(evaluate([client, answer], CONFIG))
    assert item.key == client.key
    assert item.state == "acknowledged"
    assert item.ack is not None
    assert (item.ack.kind, item.ack.key, item.ack.by) == ("reply", answer.key, ANNA)
    assert item.ack.at == waw("2026-11-23 10:40")


@pytest.mark.parametrize(
    ("replier", "seen_in"),
    [
        # Piotr answers Anna's client from his own mailbox (his Sent folder).
        ("Piotr Wiśniewski <piotr@agency.example>", {"mailbox": "piotr", "folder": "Sent",
                                                      "role": "sent"}),
        # Kasia has no watched mailbox: her reply is seen as the Cc copy in Piotr's INBOX,
        # which the agency's server vouches for.
        ("Kasia Lewandowska <kasia@agency.example>", {"mailbox": "piotr", "folder": "INBOX",
                                                       "role": "inbox",
                                                       "headers": VOUCHED_BY_AGENCY_SERVER}),
    ],
)
def test_reply_from_colleague_mailbox_acknowledges(replier, seen_in):
    client = mail(received="2026-11-23T10:00:00+01:00")
    answer = reply(client, from_=replier, to=(JAN,), cc=(TO_PIOTR,),
                   received="2026-11-23T11:05:00+01:00", **seen_in)
    item = only(evaluate([client, answer], CONFIG))
    assert item.ack is not None and item.ack.kind == "reply"
    assert item.ack.key == answer.key
    assert item.ack.by == replier.split("<")[1].rstrip(">")


def test_reply_from_colleague_mailbox_acknowledges_real_headers():
    client = fixture_message("gmail_client.eml", mailbox="piotr",
                             received="2026-11-24T14:03:53+01:00")
    kasia = fixture_message("thunderbird_reply.eml", mailbox="piotr", uid=7,
                            received="2026-11-24T16:22:12+01:00")
    item = only(evaluate([kasia, client], CONFIG))
    assert item.ack is not None
    assert (item.ack.kind, item.ack.by) == ("reply", KASIA)


@pytest.mark.parametrize("real_headers", [False, True], ids=["synthetic", "outlook"])
def test_internal_forward_is_not_an_acknowledgement(real_headers):
    if real_headers:
        client = fixture_message("outlook_client.eml", received="2026-11-23T08:58:12+00:00")
        forward = fixture_message("outlook_internal_forward.eml", folder="Sent Items",
                                  role="sent", received="2026-11-23T09:45:04+00:00")
        copy = fixture_message("outlook_internal_forward.eml", mailbox="piotr",
                               received="2026-11-23T09:45:05+00:00")
        messages = [client, forward, copy]
    else:
        client = mail(received="2026-11-23T10:00:00+01:00")
        forward = reply(client, to=(TO_PIOTR,), subject="Fwd: Quote for the spring campaign",
                        folder="Sent", role="sent", received="2026-11-23T10:10:00+01:00")
        messages = [client, forward]
    assert same_thread(*messages)
    item = only(evaluate(messages, CONFIG))
    assert item.key == client.key
    assert item.state == "pending"


@pytest.mark.parametrize(
    "recipients",
    [
        {"to": (TO_PIOTR,)},
        {"to": ("office@agency.example",), "cc": ("Designer <designer@freelance.example>",)},
        {"to": ("Kasia <kasia@agency.example>",), "cc": ("someone@pl.agency.example",)},
    ],
)
def test_reply_to_only_agency_addresses_does_not_acknowledge(recipients):
    client = mail(received="2026-11-23T10:00:00+01:00")
    internal = reply(client, folder="Sent", role="sent", received="2026-11-23T10:20:00+01:00",
                     **recipients)
    assert same_thread(client, internal)
    assert only(evaluate([client, internal], CONFIG)).state == "pending"


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"X-Autoreply": "yes"},
        {"Auto-Submitted": "auto-generated", "Precedence": "bulk"},
    ],
)
def test_auto_reply_from_agency_does_not_acknowledge(headers):
    client = mail(received="2026-11-23T10:00:00+01:00")
    auto = reply(client, subject="Out of office: Quote for the spring campaign", headers=headers,
                 folder="Sent", role="sent", received="2026-11-23T10:00:05+01:00")
    assert same_thread(client, auto)
    assert only(evaluate([client, auto], CONFIG)).state == "pending"


def test_auto_reply_from_agency_does_not_acknowledge_real_headers():
    client = fixture_message("gmail_client.eml", mailbox="piotr",
                             received="2026-11-24T14:03:53+01:00")
    anna_ooo = fixture_message("exchange_out_of_office_agency_pl.eml", folder="Sent Items",
                               role="sent", received="2026-11-24T13:03:57+00:00")
    assert same_thread(client, anna_ooo)
    assert only(evaluate([client, anna_ooo], CONFIG)).state == "pending"


@pytest.mark.parametrize(
    ("copies", "expected_at"),
    [
        # The flag on the only copy, seen by the sync at 11:15.
        ([{"mailbox": "anna", "flags": ["\\Answered"], "answered_at": "2026-11-23T11:15:00+01:00"}],
         "2026-11-23 11:15"),
        # Two copies (To + Cc): the flag on either counts, the earliest sighting wins.
        ([{"mailbox": "anna"},
          {"mailbox": "piotr", "flags": ["\\Answered", "\\Seen"],
           "answered_at": "2026-11-23T12:00:00+01:00"}],
         "2026-11-23 12:00"),
        ([{"mailbox": "anna", "flags": ["\\Answered"], "answered_at": "2026-11-23T12:30:00+01:00"},
          {"mailbox": "piotr", "flags": ["\\Answered"],
           "answered_at": "2026-11-23T11:45:00+01:00"}],
         "2026-11-23 11:45"),
        # Flag names are case-insensitive in IMAP.
        ([{"mailbox": "anna", "flags": ["\\ANSWERED"], "answered_at": "2026-11-23T10:05:00+01:00"}],
         "2026-11-23 10:05"),
        # A flag whose time the shell did not record counts from the mail's receipt.
        ([{"mailbox": "anna", "flags": ["\\Answered"]}], "2026-11-23 10:00"),
    ],
)
def test_answered_flag_acknowledges_at_the_time_seen(copies, expected_at):
    messages = [
        mail(message_id="<flagged.1@acme.example>", to=(TO_ANNA, TO_PIOTR),
             received="2026-11-23T10:00:00+01:00", **copy)
        for copy in copies
    ]
    item = only(evaluate(messages, CONFIG))
    assert item.ack is not None
    assert (item.ack.kind, item.ack.key, item.ack.by) == ("answered", item.key, "")
    assert item.ack.at == waw(expected_at)


def test_answered_flag_on_a_follow_up_acknowledges_the_item():
    first = globex("2026-11-23T10:00:00+01:00")
    follow = reply(first, from_=MARTA, to=(TO_PIOTR,), mailbox="piotr",
                   received="2026-11-23T10:20:00+01:00", flags=["\\Answered"],
                   answered_at="2026-11-23T10:50:00+01:00")
    item = only(evaluate([first, follow], CONFIG))
    assert item.follow_ups == (follow.key,)
    assert item.ack is not None
    assert (item.ack.kind, item.ack.at) == ("answered", waw("2026-11-23 10:50"))


@pytest.mark.parametrize(
    ("keyword", "flags", "acknowledged"),
    [
        ("$Ackwatch-Done", ["$Ackwatch-Done"], True),
        ("$Ackwatch-Done", ["$ackwatch-done", "\\Seen"], True),
        ("$NoReplyNeeded", ["$NoReplyNeeded"], True),
        ("$NoReplyNeeded", ["$Ackwatch-Done"], False),  # only the configured keyword counts
        ("$Ackwatch-Done", ["\\Seen", "\\Flagged", "$Label1"], False),
    ],
)
def test_dismissal_keyword_acknowledges(keyword, flags, acknowledged):
    config = make_config(dismiss_keyword=keyword)
    client = mail(received="2026-11-23T10:00:00+01:00", flags=flags,
                  dismissed_at="2026-11-23T10:30:00+01:00")
    item = only(evaluate([client], config))
    if acknowledged:
        assert item.ack is not None
        assert (item.ack.kind, item.ack.key, item.ack.at) == (
            "dismissed", client.key, waw("2026-11-23 10:30"))
    else:
        assert item.state == "pending"


def test_earliest_acknowledgement_wins():
    client = globex("2026-11-23T10:00:00+01:00", flags=["\\Answered", "$Ackwatch-Done"],
                    answered_at="2026-11-23T11:30:00+01:00",
                    dismissed_at="2026-11-23T11:10:00+01:00")
    answer = reply(client, from_=TO_PIOTR, mailbox="piotr", folder="Sent", role="sent",
                   received="2026-11-23T11:20:00+01:00")
    item = only(evaluate([client, answer], CONFIG))
    assert item.ack is not None
    assert (item.ack.kind, item.ack.at) == ("dismissed", waw("2026-11-23 11:10"))


# --------------------------------------------------------------------------- items


def test_follow_up_before_ack_does_not_restart_the_clock():
    first = globex("2026-11-23T10:00:00+01:00")
    again = reply(first, from_=MARTA, to=(TO_PIOTR,), mailbox="piotr",
                  received="2026-11-23T11:00:00+01:00")
    third = reply(again, from_=MARTA, to=(TO_PIOTR,), mailbox="piotr",
                  received="2026-11-23T11:30:00+01:00")
    item = only(evaluate([third, again, first], CONFIG))
    assert item.key == first.key
    assert item.follow_ups == (again.key, third.key)
    assert item.received == waw("2026-11-23 10:00")
    assert item.deadlines.deadline == waw("2026-11-23 12:00")
    assert item.state == "pending"

    answer = reply(third, from_=TO_PIOTR, mailbox="piotr", folder="Sent", role="sent",
                   received="2026-11-23T11:50:00+01:00")
    item = only(evaluate([first, again, third, answer], CONFIG))
    assert item.ack is not None and item.ack.key == answer.key
    assert item.follow_ups == (again.key, third.key)


def test_client_mail_after_ack_opens_a_new_item():
    first = globex("2026-11-23T10:00:00+01:00")
    answer = reply(first, from_=TO_PIOTR, mailbox="piotr", folder="Sent", role="sent",
                   received="2026-11-23T10:40:00+01:00")
    second = reply(answer, from_=MARTA, to=(TO_PIOTR,), mailbox="piotr",
                   received="2026-11-23T14:00:00+01:00")
    items = evaluate([second, answer, first], CONFIG)
    assert [i.key for i in items] == [first.key, second.key]
    assert items[0].ack is not None and items[0].ack.key == answer.key
    assert items[1].state == "pending"
    assert items[1].thread == items[0].thread
    assert items[1].deadlines.deadline == waw("2026-11-23 16:00")


def test_earlier_agency_mail_does_not_acknowledge_a_later_client_mail():
    pitch = mail(from_=TO_PIOTR, to=(MARTA,), subject="Proposal for 2027", mailbox="piotr",
                 folder="Sent", role="sent", received="2026-11-23T09:00:00+01:00")
    answer = reply(pitch, from_=MARTA, to=(TO_PIOTR,), mailbox="piotr",
                   received="2026-11-23T10:00:00+01:00")
    assert same_thread(pitch, answer)
    item = only(evaluate([pitch, answer], CONFIG))
    assert item.key == answer.key
    assert item.state == "pending"


@pytest.mark.parametrize(
    ("client_at", "reply_at", "acknowledged"),
    [
        ("2026-11-23T10:00:00+01:00", "2026-11-23T10:00:01+01:00", True),
        # INTERNALDATE has one-second resolution and a Sent copy's comes from the replying
        # computer's clock: a reply that *names* the mail (In-Reply-To / References) is an
        # answer to it even when its timestamp is the same second or earlier (clock skew).
        ("2026-11-23T10:00:00+01:00", "2026-11-23T10:00:00+01:00", True),
        ("2026-11-23T10:00:00+01:00", "2026-11-23T09:59:59+01:00", True),
    ],
)
def test_a_reply_naming_the_mail_acknowledges_whatever_its_timestamp(
    client_at, reply_at, acknowledged
):
    client = globex(client_at)
    answer = reply(client, from_=TO_PIOTR, mailbox="piotr", folder="Sent", role="sent",
                   received=reply_at)
    item = only(evaluate([client, answer], CONFIG))
    assert (item.ack is not None) is acknowledged
    assert item.ack.at >= item.received


@pytest.mark.parametrize(
    ("reply_at", "acknowledged"),
    [
        ("2026-11-23T10:00:01+01:00", True),
        # Linked only by subject (a mailer that broke the headers): strictly later only.
        ("2026-11-23T10:00:00+01:00", False),
        ("2026-11-23T09:59:59+01:00", False),
    ],
)
def test_a_reply_naming_nothing_must_be_strictly_later(reply_at, acknowledged):
    client = globex("2026-11-23T10:00:00+01:00")
    answer = reply(client, from_=TO_PIOTR, mailbox="piotr", folder="Sent", role="sent",
                   received=reply_at)
    answer = dataclasses.replace(answer, in_reply_to=(), references=())
    items = evaluate([client, answer], CONFIG)
    assert any(i.key == client.key and (i.ack is not None) is acknowledged for i in items)


def test_client_mail_in_the_same_second_as_the_ack_opens_a_new_item():
    first = globex("2026-11-23T10:00:00+01:00")
    answer = reply(first, from_=TO_PIOTR, mailbox="piotr", folder="Sent", role="sent",
                   received="2026-11-23T10:30:00+01:00")
    crossing = reply(first, from_=MARTA, to=(TO_PIOTR,), mailbox="piotr",
                     received="2026-11-23T10:30:00+01:00")
    items = evaluate([first, answer, crossing], CONFIG)
    assert [(i.key, i.state) for i in items] == [
        (first.key, "acknowledged"), (crossing.key, "pending")]


def test_same_mail_in_two_mailboxes_is_one_item():
    anna_copy = fixture_message("cc_two_mailboxes.eml", mailbox="anna", uid=41,
                                received="2026-11-26T10:05:03+01:00")
    piotr_copy = fixture_message("cc_two_mailboxes.eml", mailbox="piotr", uid=9,
                                 received="2026-11-26T10:05:02+01:00")
    item = only(evaluate([anna_copy, piotr_copy, anna_copy], CONFIG))
    assert item.key == "<CAJ5wq+Ab3cD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3wX4yZ5=A@mail.gmail.com>"
    assert item.mailboxes == ("anna", "piotr")
    assert item.received == waw("2026-11-26 10:05:02")
    assert item.client == "Globex"
    assert item.account == PIOTR

    # Anna answers from her mailbox: the one item is acknowledged for both copies.
    answer = reply(anna_copy, to=("marta.zielinska@globex.example",), folder="Sent",
                   role="sent", received="2026-11-26T10:50:00+01:00")
    assert only(evaluate([piotr_copy, answer, anna_copy], CONFIG)).state == "acknowledged"


@pytest.mark.parametrize("unknown_senders", ["track", "ignore"])
def test_form_lead_item_is_for_the_reply_to_address(unknown_senders):
    config = make_config(unknown_senders=unknown_senders)
    lead = fixture_message("form_lead.eml", mailbox="office",
                           received="2026-11-23T12:34:58+01:00")
    item = only(evaluate([lead], config))
    assert item.client_address == "lead@gmail.example"
    assert item.client is None
    assert item.deadlines.policy == "default"
    assert item.account == KASIA  # owner of the office mailbox, an account
    assert item.deadlines.deadline == waw("2026-11-23 14:34:58")

    answer = reply(lead, to=("Ola Nowicka <lead@gmail.example>",), folder="Sent",
                   role="sent", received="2026-11-23T13:05:00+01:00")
    item = only(evaluate([lead, answer], config))
    assert item.ack is not None and item.ack.key == answer.key


def test_unknown_sender_uses_default_policy():
    proof = fixture_message("no_message_id.eml", received="2026-11-26T13:00:01+01:00")
    item = only(evaluate([proof], CONFIG))
    assert item.key.startswith("hash:")
    assert item.message_id is None
    assert (item.client, item.client_address) == (None, "biuro@stara-drukarnia.example")
    assert (item.deadlines.policy, item.deadlines.clock) == ("default", "business")
    assert item.deadlines.deadline == waw("2026-11-26 15:00:01")
    assert item.account == ANNA  # the To recipient, an account


def test_unknown_sender_ignored_when_configured():
    config = make_config(unknown_senders="ignore")
    proof = fixture_message("no_message_id.eml", received="2026-11-26T13:00:01+01:00")
    client = globex("2026-11-26T13:30:00+01:00")
    assert [i.key for i in evaluate([proof, client], config)] == [client.key]
    assert [i.key for i in evaluate([proof, client], CONFIG)] == [proof.key, client.key]


@pytest.mark.parametrize(
    "fixture",
    ["newsletter.eml", "bounce_mailer_daemon.eml", "ackwatch_nudge.eml",
     "exchange_out_of_office.eml"],
)
def test_machine_mail_opens_no_item(fixture):
    assert evaluate([fixture_message(fixture, received="2026-11-23T10:00:00+01:00")],
                    CONFIG) == ()


def test_items_sorted_by_received_then_key_whatever_the_input_order():
    a = globex("2026-11-23T10:00:00+01:00", subject="Logo files", message_id="<b@globex.example>")
    b = globex("2026-11-23T10:00:00+01:00", subject="Invoice 11/2026", message_id="<a@globex.example>")
    c = mail(received="2026-11-23T09:30:00+01:00")
    assert [i.key for i in evaluate([a, b, c], CONFIG)] == [c.key, b.key, a.key]
    assert evaluate([a, b, c], CONFIG) == evaluate([c, a, b], CONFIG)


# --------------------------------------------------------------------------- deadlines


@pytest.mark.parametrize(
    ("received", "deadline", "nudge_at"),
    [
        # Friday 16:00: one hour left on Friday, the second on Monday morning.
        ("2026-11-27 16:00", "2026-11-30 10:00", "2026-11-30 09:30"),
        ("2026-11-27 16:45", "2026-11-30 10:45", "2026-11-30 10:15"),
        # Received after closing or on the weekend: counted from Monday's opening.
        ("2026-11-27 18:00", "2026-11-30 11:00", "2026-11-30 10:30"),
        ("2026-11-28 10:00", "2026-11-30 11:00", "2026-11-30 10:30"),
        # Exactly at closing: closed (open hours are [09:00, 17:00)).
        ("2026-11-27 17:00", "2026-11-30 11:00", "2026-11-30 10:30"),
        # Christmas: 24th closed (config), 25th/26th holidays, then the weekend.
        ("2026-12-23 16:00", "2026-12-28 10:00", "2026-12-28 09:30"),
        # Wednesday 11 November is a public holiday in Poland.
        ("2026-11-10 16:30", "2026-11-12 10:30", "2026-11-12 10:00"),
    ],
)
def test_deadline_friday_afternoon_moves_to_monday(received, deadline, nudge_at):
    d = deadlines_for(waw(received), "default", CONFIG)
    assert (d.policy, d.clock) == ("default", "business")
    assert d.deadline == waw(deadline)
    assert d.nudge_at == waw(nudge_at)
    assert d.escalate_at == d.deadline  # escalate_after 0m: at the deadline
    assert d.deadline.tzinfo == WAW


@pytest.mark.parametrize(
    ("received", "window", "nudge_before", "nudge_at"),
    [
        ("2026-11-23 10:00", "2h", "30m", "2026-11-23 11:30"),
        # The nudge counts back over the night on open hours, not wall time.
        ("2026-11-23 16:45", "2h", "30m", "2026-11-24 10:15"),
        ("2026-11-23 16:30", "2h", "1h", "2026-11-24 09:30"),
        ("2026-11-23 16:30", "2h", "1h30m", "2026-11-24 09:00"),
        ("2026-11-23 16:30", "2h", "1h45m", "2026-11-23 16:45"),
        # Never before the clock starts: the receipt, or the next opening after it.
        ("2026-11-23 10:00", "2h", "3h", "2026-11-23 10:00"),
        ("2026-11-28 10:00", "2h", "3h", "2026-11-30 09:00"),
        ("2026-11-23 07:30", "2h", "2h", "2026-11-23 09:00"),
        # nudge_before 0: at the deadline.
        ("2026-11-23 15:00", "2h", "0m", "2026-11-23 17:00"),
    ],
)
def test_nudge_is_nudge_before_the_deadline_on_the_business_clock(
    received, window, nudge_before, nudge_at
):
    policy = make_policy("default", window=window, nudge_before=nudge_before)
    config = make_config(policies={**POLICIES, "default": policy})
    assert deadlines_for(waw(received), "default", config).nudge_at == waw(nudge_at)


def test_calendar_clock_policy_counts_wall_time():
    # Acme's retainer: 24h on the wall clock, nudge 4h before, in config.timezone.
    d = deadlines_for(waw("2026-11-27 16:00"), "retainer", CONFIG)
    assert (d.policy, d.clock) == ("retainer", "calendar")
    assert d.deadline == waw("2026-11-28 16:00")
    assert d.nudge_at == waw("2026-11-28 12:00")
    assert d.deadline.tzinfo == WAW
    # Across the end of DST (25 October 2026): 24h of real time.
    d = deadlines_for(waw("2026-10-24 12:00"), "retainer", CONFIG)
    assert d.deadline == waw("2026-10-25 11:00")


@pytest.mark.parametrize(
    ("escalate_after", "escalate_at"),
    [
        (None, None),
        ("0m", "2026-11-23 17:00"),  # the deadline itself, not Tuesday's opening
        ("30m", "2026-11-24 09:30"),
        ("4h", "2026-11-24 13:00"),
    ],
)
def test_escalation_none_when_policy_has_no_escalate_after(escalate_after, escalate_at):
    policy = make_policy("default", escalate_after=escalate_after)
    config = make_config(policies={**POLICIES, "default": policy})
    d = deadlines_for(waw("2026-11-23 15:00"), "default", config)
    assert d.deadline == waw("2026-11-23 17:00")
    assert d.escalate_at == (None if escalate_at is None else waw(escalate_at))


def test_item_deadlines_follow_the_client_policy():
    items = evaluate([mail(received="2026-11-23T10:00:00+01:00"),
                      globex("2026-11-23T10:00:00+01:00")], CONFIG)
    policies = sorted((i.client, i.deadlines.policy, i.deadlines.deadline) for i in items)
    assert policies == [("Acme", "retainer", waw("2026-11-24 10:00")),
                        ("Globex", "default", waw("2026-11-23 12:00"))]


# --------------------------------------------------------------------------- responsibility


@pytest.mark.parametrize(
    ("sender", "to", "mailbox", "client_account"),
    [
        (JAN, [TO_PIOTR], "piotr", ANNA),  # Acme's account is anna, whoever it was sent to
        ("Peter <peter@globex.example>", ["office@agency.example"], "office", PIOTR),
        ("CEO <ceo@mail.example>", [TO_PIOTR, "kasia@agency.example"], "piotr", ANNA),
    ],
)
def test_responsible_account_client_account_first(sender, to, mailbox, client_account):
    m = mail(from_=sender, to=to, mailbox=mailbox)
    assert responsible_account(m, client_account, CONFIG) == client_account
    assert only(evaluate([m], CONFIG)).account == client_account


@pytest.mark.parametrize(
    ("to", "cc", "expected"),
    [
        # Initech has no account: the first recipient that is an account, To before Cc.
        (["office@agency.example", TO_PIOTR], [TO_ANNA], PIOTR),
        (["office@agency.example"], [TO_ANNA, TO_PIOTR], ANNA),
        (["designer@freelance.example", "Kasia <KASIA@agency.example>"], [], KASIA),
    ],
)
def test_responsible_account_agency_recipient_who_is_an_account(to, cc, expected):
    m = mail(from_="Bill <bill@initech.de>", to=to, cc=cc, mailbox="office")
    assert responsible_account(m, None, CONFIG) == expected
    assert only(evaluate([m], CONFIG)).account == expected


def test_responsible_account_mailbox_owner_last():
    m = mail(from_="Bill <bill@initech.de>", to=["office@agency.example"], mailbox="office")
    assert responsible_account(m, None, CONFIG) == KASIA
    # An owner who is not a configured account still gets the nudge (no escalation then).
    config = make_config(mailboxes=(*CONFIG.mailboxes,
                                    make_mailbox("info", owner="info@agency.example")))
    m = mail(from_="Bill <bill@initech.de>", to=["info@agency.example"], mailbox="info")
    assert responsible_account(m, None, config) == "info@agency.example"
    # A mailbox the config does not know: nobody.
    m = mail(from_="Bill <bill@initech.de>", to=["info@agency.example"], mailbox="gone")
    assert responsible_account(m, None, config) is None


def test_copies_prefer_a_mailbox_owned_by_an_account():
    config = make_config(mailboxes=(make_mailbox("info", owner="info@agency.example"),
                                    *CONFIG.mailboxes))
    info = mail(message_id="<x1@initech.de>", from_="Bill <bill@initech.de>",
                to=["info@agency.example"], cc=["office@agency.example"], mailbox="info")
    office = mail(message_id="<x1@initech.de>", from_="Bill <bill@initech.de>",
                  to=["info@agency.example"], cc=["office@agency.example"], mailbox="office")
    item = only(evaluate([info, office], config))
    assert item.mailboxes == ("info", "office")
    assert item.account == KASIA


# --------------------------------------------------------------------------- away / backup


def _with_away(*accounts) -> Config:
    return make_config(accounts=accounts)


ANNA_AWAY = make_account(ANNA, "Anna Nowak", manager=KASIA, backup=PIOTR,
                         away=(Absence(dt.date(2026, 11, 23), dt.date(2026, 11, 27)),))
PIOTR_HERE = make_account(PIOTR, "Piotr Wiśniewski", manager=KASIA, backup=ANNA)
PIOTR_AWAY = make_account(PIOTR, "Piotr Wiśniewski", manager=KASIA, backup=ANNA,
                          away=(Absence(dt.date(2026, 11, 27), dt.date(2026, 11, 27)),))
KASIA_ACC = make_account(KASIA, "Kasia Lewandowska")


@pytest.mark.parametrize(
    ("accounts", "at", "expected", "reason"),
    [
        ((ANNA_AWAY, PIOTR_HERE, KASIA_ACC), "2026-11-23T10:00:00+01:00", PIOTR, "absence"),
        # Inclusive end date, in the account's calendar timezone (Europe/Warsaw).
        ((ANNA_AWAY, PIOTR_HERE, KASIA_ACC), "2026-11-27T23:59:00+01:00", PIOTR, "absence"),
        ((ANNA_AWAY, PIOTR_HERE, KASIA_ACC), "2026-11-27T23:30:00+00:00", ANNA, None),
        ((ANNA_AWAY, PIOTR_HERE, KASIA_ACC), "2026-11-22T23:30:00+00:00", PIOTR, "absence"),
        ((ANNA_AWAY, PIOTR_HERE, KASIA_ACC), "2026-11-22T22:59:00+00:00", ANNA, None),
        # Backup away too: no chain to the backup's backup; the manager takes it.
        ((ANNA_AWAY, PIOTR_AWAY, KASIA_ACC), "2026-11-27T10:00:00+01:00", KASIA, "absence"),
        ((ANNA_AWAY, PIOTR_AWAY, KASIA_ACC), "2026-11-26T10:00:00+01:00", PIOTR, "absence"),
    ],
)
def test_away_account_is_replaced_by_backup(accounts, at, expected, reason):
    config = _with_away(*accounts)
    instant = dt.datetime.fromisoformat(at)
    assert recipient_for(ANNA, config, instant, []) == expected
    assert away_reason(ANNA, config, instant, []) == reason


def test_away_account_without_backup_goes_to_manager_else_stays():
    solo = make_account("solo@agency.example", "Solo", manager=KASIA,
                        away=(Absence(dt.date(2026, 11, 23), dt.date(2026, 11, 23)),))
    lone = make_account("lone@agency.example", "Lone",
                        away=(Absence(dt.date(2026, 11, 23), dt.date(2026, 11, 23)),))
    config = make_config(accounts=(solo, lone, KASIA_ACC))
    at = waw("2026-11-23 12:00")
    assert recipient_for("solo@agency.example", config, at, []) == KASIA
    assert recipient_for("lone@agency.example", config, at, []) == "lone@agency.example"


ANNA_OOO = "2026-11-24T13:03:57+00:00"  # Tuesday 14:03:57 in Warsaw


def anna_ooo():
    return fixture_message("exchange_out_of_office_agency_pl.eml", folder="Sent Items",
                           role="sent", received=ANNA_OOO)


@pytest.mark.parametrize(
    ("at", "expected", "reason"),
    [
        ("2026-11-24T13:00:00+00:00", ANNA, None),  # before the auto-reply
        ("2026-11-24T13:03:57+00:00", PIOTR, "out-of-office"),
        ("2026-11-24T15:00:00+00:00", PIOTR, "out-of-office"),
        ("2026-11-27T13:03:57+00:00", PIOTR, "out-of-office"),  # lookback 3 days, inclusive
        ("2026-11-27T13:04:00+00:00", ANNA, None),  # too old to count
    ],
)
def test_out_of_office_reply_marks_account_away(at, expected, reason):
    instant = dt.datetime.fromisoformat(at)
    messages = [anna_ooo(), fixture_message("gmail_client.eml", mailbox="piotr",
                                            received="2026-11-24T14:03:53+01:00")]
    assert away_reason(ANNA, CONFIG, instant, messages) == reason
    assert recipient_for(ANNA, CONFIG, instant, messages) == expected
    # Someone else's out-of-office says nothing about Anna; Piotr is not away.
    assert recipient_for(PIOTR, CONFIG, instant, messages) == PIOTR


def test_out_of_office_lookback_is_configurable():
    from ackwatch.config import NotifyConfig

    config = make_config(notify=NotifyConfig(out_of_office_lookback=dt.timedelta(hours=2)))
    assert recipient_for(ANNA, config, waw("2026-11-24 16:00"), [anna_ooo()]) == PIOTR
    assert recipient_for(ANNA, config, waw("2026-11-24 16:05"), [anna_ooo()]) == ANNA


def test_back_from_out_of_office_when_account_sends_again():
    client = fixture_message("gmail_client.eml", mailbox="piotr",
                             received="2026-11-24T14:03:53+01:00")
    back = reply(client, to=("marta.zielinska@globex.example",), folder="Sent", role="sent",
                 received="2026-11-25T09:10:00+01:00")
    internal = mail(from_=TO_ANNA, to=(TO_PIOTR,), subject="Lunch?", folder="Sent",
                    role="sent", received="2026-11-25T09:10:00+01:00")
    again = mail(from_=TO_ANNA, to=("marta.zielinska@globex.example",),
                 subject="Automatic reply: Banner sizes", headers={"Auto-Submitted": "auto-replied"},
                 folder="Sent", role="sent", received="2026-11-25T15:00:00+01:00")

    table = [
        ([anna_ooo(), back], "2026-11-25 09:00", PIOTR),  # not back yet
        ([anna_ooo(), back], "2026-11-25 09:10", ANNA),  # her reply is out
        ([anna_ooo(), internal], "2026-11-25 09:30", ANNA),  # any human mail of hers counts
        ([anna_ooo(), back, again], "2026-11-25 15:30", PIOTR),  # away again
    ]
    for messages, at, expected in table:
        assert recipient_for(ANNA, CONFIG, waw(at), messages) == expected, (at, messages)


def test_backup_out_of_office_sends_the_nudge_to_the_manager():
    piotr_ooo = mail(from_=TO_PIOTR, to=(MARTA,), subject="Automatic reply: Budget",
                     headers={"X-Autoreply": "yes"}, mailbox="piotr", folder="Sent",
                     role="sent", received="2026-11-24T14:30:00+01:00")
    assert recipient_for(ANNA, CONFIG, waw("2026-11-24 15:00"), [anna_ooo(), piotr_ooo]) == KASIA


# --------------------------------------------------------------------------- mentor


OLA = "ola@agency.example"


def _ola_mentored_by(mentor: str, *accounts) -> Config:
    ola = make_account(OLA, "Ola Junior", manager=KASIA, mentor=mentor)
    return make_config(accounts=(ola, *accounts))


def test_a_juniors_mentor_is_copied_while_the_mentor_is_here():
    config = _ola_mentored_by(ANNA, PIOTR_HERE, KASIA_ACC,
                              make_account(ANNA, "Anna Nowak", manager=KASIA))
    assert mentor_copy(OLA, config, waw("2026-11-23 10:00"), []) == ANNA


def test_an_away_mentor_gets_no_copy_and_nobody_gets_it_instead():
    config = _ola_mentored_by(ANNA, ANNA_AWAY, PIOTR_HERE, KASIA_ACC)
    assert mentor_copy(OLA, config, waw("2026-11-23 10:00"), []) is None
    assert mentor_copy(OLA, config, waw("2026-11-30 10:00"), []) == ANNA  # back


def test_a_mentor_with_an_out_of_office_reply_gets_no_copy():
    assert mentor_copy(OLA, _ola_mentored_by(ANNA), waw("2026-11-24 15:00"), [anna_ooo()]) is None


def test_a_mentor_need_not_be_an_account():
    senior = "senior@agency.example"
    assert mentor_copy(OLA, _ola_mentored_by(senior), waw("2026-11-23 10:00"), []) == senior


def test_an_account_without_a_mentor_copies_nobody():
    assert mentor_copy(ANNA, CONFIG, waw("2026-11-23 10:00"), []) is None


# --------------------------------------------------------------------------- explain


@pytest.mark.parametrize(
    ("sender", "to", "tracked", "reason", "client", "account", "policy"),
    [
        ("jan.kowalski@acme.example", (), True, "client", "Acme", ANNA, "retainer"),
        ("Marta.Zielinska@globex.example", (), True, "client", "Globex", PIOTR, "default"),
        ("bill@initech.de", ("office@agency.example",), True, "client", "Initech", KASIA,
         "default"),
        ("someone@new.example", ("piotr@agency.example",), True, "unknown-sender-tracked",
         None, PIOTR, "default"),
        ("anna@agency.example", (), False, "agency-sender", None, None, None),
        ("designer@freelance.example", (), False, "agency-sender", None, None, None),
        ("noreply@shop.example", (), False, "ignored:ignore-sender", None, None, None),
    ],
)
def test_explain_says_whether_and_why_a_mail_is_tracked(
    sender, to, tracked, reason, client, account, policy
):
    e = explain(CONFIG, sender, waw("2026-11-27 16:00"), to)
    assert (e.tracked, e.reason, e.client, e.account, e.policy) == (
        tracked, reason, client, account, policy)
    assert e.received == waw("2026-11-27 16:00")
    if tracked:
        expected = deadlines_for(waw("2026-11-27 16:00"), policy, CONFIG)
        assert (e.deadline, e.nudge_at, e.escalate_at) == (
            expected.deadline, expected.nudge_at, expected.escalate_at)
        assert e.clock == expected.clock
    else:
        assert (e.deadline, e.nudge_at, e.escalate_at, e.clock) == (None, None, None, None)


def test_explain_unknown_sender_ignored_when_configured():
    e = explain(make_config(unknown_senders="ignore"), "someone@new.example",
                waw("2026-11-27 16:00"))
    assert (e.tracked, e.reason, e.deadline) == (False, "unknown-sender-ignored", None)


def test_explain_deadline_on_monday_for_friday_afternoon():
    e = explain(CONFIG, "marta.zielinska@globex.example", waw("2026-11-27 16:00"))
    assert (e.deadline, e.nudge_at) == (waw("2026-11-30 10:00"), waw("2026-11-30 09:30"))
    assert e.deadline.tzinfo == WAW
    with pytest.raises(ValueError):
        explain(CONFIG, "marta.zielinska@globex.example", dt.datetime(2026, 11, 27, 16))


# --------------------------------------------------------------------------- clock skew


def test_reply_naming_the_client_mail_acknowledges_even_when_its_clock_ran_slow():
    """A Sent copy's INTERNALDATE comes from the replying computer: it may be earlier."""
    config = make_config()
    client = mail(from_="Jan <jan@acme.example>", to="anna@agency.example",
                   subject="Quote", message_id="<skew-1@acme.example>",
                   received="2026-11-23T10:00:00+01:00")
    reply = mail(from_="anna@agency.example", to="jan@acme.example", subject="Re: Quote",
                  in_reply_to="<skew-1@acme.example>", references="<skew-1@acme.example>",
                  folder="Sent", role="sent", uid=2, received="2026-11-23T09:59:10+01:00")
    (item,) = evaluate([client, reply], config)
    assert item.ack is not None and item.ack.kind == "reply"
    assert item.ack.at == client.received  # never a negative time to acknowledge
    assert item.ack.at - item.received == dt.timedelta(0)


def test_earlier_agency_mail_that_names_nothing_still_does_not_acknowledge():
    config = make_config()
    earlier = mail(from_="anna@agency.example", to="jan@acme.example", subject="Quote",
                    folder="Sent", role="sent", uid=2, received="2026-11-23T09:00:00+01:00")
    client = mail(from_="Jan <jan@acme.example>", to="anna@agency.example",
                   subject="Re: Quote", in_reply_to=earlier.message_id,
                   received="2026-11-23T10:00:00+01:00")
    items = evaluate([earlier, client], config)
    assert [i.state for i in items] == ["pending"]


@settings(max_examples=300, deadline=None)
@given(
    received=st.datetimes(min_value=dt.datetime(1890, 1, 1), max_value=dt.datetime(9100, 1, 1),
                          timezones=st.sampled_from([dt.UTC, WAW, ZoneInfo("America/New_York")])),
    window=st.timedeltas(min_value=dt.timedelta(minutes=1), max_value=dt.timedelta(days=10)),
    nudge_before=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=11)),
    escalate_after=st.one_of(st.none(), st.timedeltas(min_value=dt.timedelta(0),
                                                      max_value=dt.timedelta(days=5))),
    zone=st.sampled_from([None, "office"]),
)
def test_calendar_clock_deadlines_are_the_wall_clocks_own_arithmetic(
    received, window, nudge_before, escalate_after, zone
):
    from ackwatch.core.business_clock import clock_for

    policy = dataclasses.replace(RETAINER_POLICY, window=window, nudge_before=nudge_before,
                                 escalate_after=escalate_after, calendar=zone)
    config = make_config(policies={**POLICIES, "retainer": policy})
    got = deadlines_for(received, "retainer", config)
    # What the clock's add/subtract make of it (the general path of `deadlines_for`).
    clock, tz = clock_for(policy, config), WAW
    at = min(max(received, dt.datetime(1900, 1, 1, tzinfo=dt.UTC)),
             dt.datetime(9000, 1, 1, tzinfo=dt.UTC))
    start, deadline = clock.add(at, dt.timedelta(0)), clock.add(at, window)
    nudge = deadline if nudge_before <= dt.timedelta(0) else max(
        clock.subtract(deadline, nudge_before), start)
    escalate = (None if escalate_after is None else deadline
                if escalate_after <= dt.timedelta(0) else clock.add(deadline, escalate_after))
    assert got.deadline == deadline and got.deadline.utcoffset() == deadline.astimezone(tz).utcoffset()
    assert got.nudge_at == nudge and got.escalate_at == escalate
    assert got.deadline.tzinfo == tz and got.nudge_at.tzinfo == tz


def _anna_mail(kind: str, at: dt.datetime) -> Message:
    """Anna's own mail in her Sent folder: an out-of-office notice or a human message."""
    headers = {"Auto-Submitted": "auto-replied"} if kind == "ooo" else {}
    subject = "Automatic reply: Banner sizes" if kind == "ooo" else "Banner sizes"
    return mail(from_=TO_ANNA, to=("marta.zielinska@globex.example",), subject=subject,
                headers=headers, folder="Sent", role="sent", received=at.isoformat())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ooo", "human"]), st.integers(0, 8)),
                max_size=6), st.randoms())
def test_away_is_the_newest_out_of_office_with_no_human_mail_after_it(sent, rnd):
    """Whatever the order the mail comes in: away when the newest out-of-office within
    the look-back has no human message of the account after it (one at the same instant
    does not end it)."""
    at = waw("2026-11-25 12:00")
    start = at - dt.timedelta(days=4)  # every 12 hours from here: some beyond the look-back
    dated = [(kind, start + dt.timedelta(hours=12 * n)) for kind, n in sent]
    since = at - CONFIG.notify.out_of_office_lookback
    ooo = [t for kind, t in dated if kind == "ooo" and since <= t <= at]
    last = max(ooo, default=None)
    away = last is not None and not any(
        kind == "human" and last < t <= at for kind, t in dated)
    messages = [_anna_mail(kind, t) for kind, t in dated]
    rnd.shuffle(messages)
    assert away_reason(ANNA, CONFIG, at, messages) == ("out-of-office" if away else None)
