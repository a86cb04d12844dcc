"""sla end to end: a week of real-world-shaped mail, and properties over generated threads.

Every instant is a literal (no real clock). 2026-11-23 is a Monday; office hours are
09:00-17:00 Europe/Warsaw (see configfactory).
"""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ackwatch.core.item_rules import away_reason, evaluate, recipient_for
from ackwatch.core.message import Message
from configfactory import ANNA, KASIA, PIOTR, make_config
from mailfactory import fixture_message, mail

CONFIG = make_config()
WAW = ZoneInfo("Europe/Warsaw")


def waw(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=WAW)


def week() -> dict[str, Message]:
    """One week of the agency's mail, as the watchers would have stored it."""
    f = fixture_message
    return {
        # Monday: Jan (Acme) asks Anna for a quote; Anna answers (Cc Piotr) and forwards it
        # to Piotr; Jan's out-of-office answers her; Jan writes again, Anna replies from a
        # CRM that breaks the threading headers.
        "quote": f("outlook_client.eml", uid=101, received="2026-11-23T08:58:12+00:00"),
        "quote_reply": f("outlook_agency_reply.eml", folder="Sent Items", role="sent", uid=51,
                         received="2026-11-23T09:41:35+00:00"),
        "quote_reply_cc": f("outlook_agency_reply.eml", mailbox="piotr", uid=201,
                            received="2026-11-23T09:41:36+00:00"),
        "jan_ooo": f("exchange_out_of_office.eml", uid=102,
                     received="2026-11-23T09:41:42+00:00"),
        "forward": f("outlook_internal_forward.eml", folder="Sent Items", role="sent", uid=52,
                     received="2026-11-23T09:45:04+00:00"),
        "forward_copy": f("outlook_internal_forward.eml", mailbox="piotr", uid=202,
                          received="2026-11-23T09:45:05+00:00"),
        "jan_again": f("apple_mail_reply.eml", uid=103, received="2026-11-23T10:02:47+00:00"),
        "crm_reply": f("broken_references_reply.eml", folder="Sent Items", role="sent", uid=53,
                       received="2026-11-23T12:20:02+00:00"),
        "lead": f("form_lead.eml", mailbox="office", uid=301,
                  received="2026-11-23T12:34:58+01:00"),
        "bounce": f("bounce_mailer_daemon.eml", uid=104, received="2026-11-23T10:00:06+01:00"),
        "nudge": f("ackwatch_nudge.eml", uid=105, received="2026-11-23T10:30:01+01:00"),
        # Tuesday: Marta (Globex) writes to Piotr; Anna's out-of-office fires; Piotr answers,
        # Kasia chimes in.
        "banners": f("gmail_client.eml", mailbox="piotr", uid=203, gm_thrid=1849,
                     received="2026-11-24T14:03:53+01:00"),
        "anna_ooo": f("exchange_out_of_office_agency_pl.eml", folder="Sent Items", role="sent",
                      uid=54, received="2026-11-24T13:03:57+00:00"),
        "banners_reply": f("gmail_agency_reply.eml", mailbox="piotr", folder="[Gmail]/Sent Mail",
                           role="sent", uid=204, gm_thrid=1849,
                           received="2026-11-24T15:10:09+01:00"),
        "kasia": f("thunderbird_reply.eml", mailbox="piotr", uid=205,
                   received="2026-11-24T16:22:12+01:00"),
        # Wednesday: Marta's vacation responder; replies to mail ackwatch never saw.
        "marta_vacation": f("gmail_vacation_responder.eml", mailbox="piotr", uid=206,
                            received="2026-11-25T09:00:14+01:00"),
        "zofia": f("polish_odp_reply.eml", uid=106, received="2026-11-25T10:15:02+01:00"),
        "ua": f("ukrainian_vidp_reply.eml", uid=107, received="2026-11-25T12:30:03+02:00"),
        # Thursday: a forwarded brief, a mail to two mailboxes, a newsletter, a mail
        # without Message-ID.
        "brief": f("forwarded_no_in_reply_to.eml", uid=108, received="2026-11-26T09:12:02+01:00"),
        "budget_anna": f("cc_two_mailboxes.eml", uid=109, received="2026-11-26T10:05:03+01:00"),
        "budget_piotr": f("cc_two_mailboxes.eml", mailbox="piotr", uid=207,
                          received="2026-11-26T10:05:02+01:00"),
        "newsletter": f("newsletter.eml", uid=110, received="2026-11-26T08:00:02+01:00"),
        "proof": f("no_message_id.eml", uid=111, received="2026-11-26T13:00:01+01:00"),
    }


def test_a_week_of_mail():
    m = week()
    items = evaluate(m.values(), CONFIG)
    by_key = {i.key: i for i in items}
    assert [i.key for i in items] == [
        m["quote"].key, m["jan_again"].key, m["lead"].key, m["banners"].key, m["zofia"].key,
        m["ua"].key, m["brief"].key, m["budget_piotr"].key, m["proof"].key,
    ]

    quote = by_key[m["quote"].key]
    assert (quote.client, quote.account, quote.deadlines.policy) == ("Acme", ANNA, "retainer")
    assert quote.ack is not None
    assert (quote.ack.kind, quote.ack.key, quote.ack.by) == ("reply", m["quote_reply"].key, ANNA)
    assert quote.ack.at == m["quote_reply"].received
    assert quote.deadlines.deadline == waw("2026-11-24 09:58:12")

    # Jan wrote again after Anna's answer: a new item in the same thread, acknowledged by
    # the CRM reply that only the subject and Jan's address tie to the conversation.
    again = by_key[m["jan_again"].key]
    assert again.thread == quote.thread
    assert again.ack is not None and again.ack.key == m["crm_reply"].key

    lead = by_key[m["lead"].key]
    assert (lead.client_address, lead.client, lead.account, lead.state) == (
        "lead@gmail.example", None, KASIA, "pending")
    assert lead.deadlines.nudge_at == waw("2026-11-23 14:04:58")

    banners = by_key[m["banners"].key]
    assert (banners.client, banners.account) == ("Globex", PIOTR)
    assert banners.ack is not None and banners.ack.key == m["banners_reply"].key

    zofia = by_key[m["zofia"].key]
    assert (zofia.client, zofia.account, zofia.state) == ("Sklep Kwiatowy", ANNA, "pending")
    assert zofia.subject == "Odp: Wycena kampanii świątecznej – poprawki"
    assert zofia.deadlines.deadline == waw("2026-11-25 12:15:02")

    ua = by_key[m["ua"].key]
    assert (ua.client, ua.client_address, ua.account) == (None, "o.shevchenko@tovar-ua.example",
                                                          ANNA)
    assert ua.deadlines.deadline == waw("2026-11-25 13:30:03")

    budget = by_key[m["budget_piotr"].key]
    assert budget.mailboxes == ("anna", "piotr")
    assert budget.received == m["budget_piotr"].received

    assert sum(1 for i in items if i.state == "pending") == 6

    # Anna's out-of-office on Tuesday: her nudges go to Piotr until she writes again.
    assert away_reason(ANNA, CONFIG, waw("2026-11-24 15:00"), m.values()) == "out-of-office"
    assert recipient_for(ANNA, CONFIG, waw("2026-11-24 15:00"), m.values()) == PIOTR
    assert recipient_for(ANNA, CONFIG, waw("2026-11-24 13:00"), m.values()) == ANNA
    assert recipient_for(PIOTR, CONFIG, waw("2026-11-24 15:00"), m.values()) == PIOTR


def test_a_week_of_mail_in_any_order():
    messages = list(week().values())
    expected = evaluate(messages, CONFIG)
    rng = random.Random(20261123)
    for _ in range(10):
        rng.shuffle(messages)
        assert evaluate(messages, CONFIG) == expected


def test_a_week_of_mail_seen_day_by_day():
    """Items of earlier days do not change when later mail arrives (except acks)."""
    m = week()
    monday = [v for v in m.values() if v.received < waw("2026-11-24 00:00")]
    early = {i.key: i for i in evaluate(monday, CONFIG)}
    later = {i.key: i for i in evaluate(m.values(), CONFIG)}
    for key, item in early.items():
        assert later[key] == item


# --------------------------------------------------------------------------- properties

T0 = dt.datetime(2026, 11, 23, 8, 30, tzinfo=dt.UTC)
MARTA = "Marta Zielinska <marta.zielinska@globex.example>"
PIOTR_HDR = "Piotr Wiśniewski <piotr@agency.example>"
ANNA_HDR = "Anna Nowak <anna@agency.example>"

step = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["client", "client", "reply", "forward", "auto", "internal"]),
        "new_thread": st.booleans(),
        "gap": st.sampled_from([0, 0, 1, 59, 600, 3600, 7 * 3600, 3 * 86400]),
        "copies": st.integers(1, 2),
        "flag": st.sampled_from([None, None, "answered", "dismissed"]),
        "flag_delay": st.sampled_from([0, 1, 600, 5400]),
        "flag_recorded": st.booleans(),
    }
)


def build(steps: list[dict]) -> list[Message]:
    """A plausible mail history between Marta (Globex) and the agency."""
    out: list[Message] = []
    t = T0
    thread = 0
    refs: list[str] = []
    for n, s in enumerate(steps):
        t += dt.timedelta(seconds=s["gap"])
        if s["new_thread"] or not refs:
            thread += 1
            refs = []
        subject = f"Campaign {thread} assets"
        common = {
            "message_id": f"<h{n}.{thread}@{'globex' if s['kind'] == 'client' else 'agency'}"
                          ".example>",
            "in_reply_to": refs[-1] if refs else None,
            "references": tuple(refs),
            "subject": f"Re: {subject}" if refs else subject,
            "received": t,
        }
        if s["kind"] == "client":
            flags: dict = {}
            if s["flag"] is not None:
                at = t + dt.timedelta(seconds=s["flag_delay"])
                flags = {"flags": ["\\Answered" if s["flag"] == "answered" else "$Ackwatch-Done"],
                         f"{s['flag']}_at": at if s["flag_recorded"] else None}
            to = (PIOTR_HDR, ANNA_HDR) if s["copies"] == 2 else (PIOTR_HDR,)
            for i, box in enumerate(["piotr", "anna"][: s["copies"]]):
                copy_flags = flags if i == s["copies"] - 1 else {}
                out.append(mail(from_=MARTA, to=to, mailbox=box,
                                **{**common, "received": t + dt.timedelta(seconds=i)},
                                **copy_flags))
        else:
            sender, to, headers = PIOTR_HDR, (MARTA,), None
            if s["kind"] == "forward":
                to = (ANNA_HDR,)
                common["subject"] = f"Fwd: {subject}"
            elif s["kind"] == "internal":
                sender, to = ANNA_HDR, (PIOTR_HDR, "office@agency.example")
            elif s["kind"] == "auto":
                headers = {"Auto-Submitted": "auto-replied"}
            out.append(mail(from_=sender, to=to, headers=headers, mailbox="piotr",
                            folder="Sent", role="sent", **common))
        refs.append(common["message_id"])
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=10), st.randoms(use_true_random=False))
def test_items_never_acknowledge_themselves_and_ignore_input_order(steps, rnd):
    messages = build(steps)
    items = evaluate(messages, CONFIG)

    shuffled = list(messages)
    rnd.shuffle(shuffled)
    assert evaluate(shuffled, CONFIG) == items
    assert evaluate(shuffled + shuffled[: len(shuffled) // 2], CONFIG) == items  # duplicates

    client_keys = {m.key for m in messages if m.sender.address.endswith("@globex.example")}
    seen: list[str] = []
    for item in items:
        seen += [item.key, *item.follow_ups]
        if item.ack is None:
            continue
        assert item.ack.at >= item.received  # a reply naming it may share its instant
        if item.ack.kind == "reply":
            assert item.ack.key not in client_keys
            assert item.ack.key != item.key and item.ack.key not in item.follow_ups
            assert item.ack.by == PIOTR  # never the forward, the internal mail, the auto-reply
        else:
            assert item.ack.key == item.key
    # Every client mail belongs to exactly one item, as its key or as a follow-up.
    assert sorted(seen) == sorted(client_keys)
    assert list(items) == sorted(items, key=lambda i: (i.received, i.key))
