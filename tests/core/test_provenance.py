"""Who a mail is from, and whether the agency's side of it can be believed (DESIGN.md
"Trust", README "What counts"): spoofed agency senders neither acknowledge client mail
nor send an account away; copies the agency's own servers vouch for still do."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackwatch.config import Agency, Trust
from ackwatch.core.classify import classify, is_vouched
from ackwatch.core.item_rules import away_reason, evaluate, recipient_for
from ackwatch.core.message import Message
from configfactory import ANNA, PIOTR, make_config
from mailfactory import VOUCHED_BY_AGENCY_SERVER, fixture_message, mail, reply

CONFIG = make_config()
CLIENT_AT = "2026-11-23T10:00:00+01:00"
REPLY_AT = "2026-11-23T10:40:00+01:00"

# Received chains as the agency's own Postfix + Dovecot write them (relay 192.0.2.25).
FROM_OUTSIDE = {
    "Received": "from mail.agency.example ([192.0.2.25]) by imap.agency.example with LMTP"
    " id 8Jm4Lx for <anna@agency.example>; Mon, 23 Nov 2026 09:40:02 +0000",
    "Received ": "from mx.evil.example (mx.evil.example [203.0.113.5]) by"
    " mail.agency.example (Postfix) with ESMTPS id 4Xb2; Mon, 23 Nov 2026 09:40:01 +0000",
}


def client_mail() -> Message:
    return mail(received=CLIENT_AT)


def agency_reply(client: Message, from_: str, headers: dict[str, str] | None = None,
                 **where: object) -> Message:
    """A reply to the client, as it lands in a watched inbox (Anna's INBOX by default)."""
    return reply(client, from_=from_, received=REPLY_AT, headers=headers, **where)


def state(*messages: Message, config=CONFIG) -> str:
    (item,) = [i for i in evaluate(messages, config) if i.client_address]
    return item.state


def trust(**kw: object):
    return make_config(agency=dataclasses.replace(CONFIG.agency, trust=Trust(**kw)))


def _trace(*pairs: tuple[str, str]) -> dict[str, str]:
    """Several headers of one name, topmost first (mailfactory appends them verbatim;
    a trailing blank in the name keeps the dict keys apart and is folded away)."""
    return {name + " " * i: value for i, (name, value) in enumerate(pairs)}


# --------------------------------------------------------------------------- acknowledgement


def test_spoofed_reply_with_an_agency_address_as_display_name_does_not_acknowledge():
    client = client_mail()
    spoof = agency_reply(client, "anna@agency.example <attacker@evil.example>", FROM_OUTSIDE)
    assert classify(spoof, CONFIG).client_address == "attacker@evil.example"
    assert state(client, spoof) == "pending"


def test_agency_looking_inbox_mail_nobody_vouches_for_does_not_acknowledge():
    client = client_mail()
    spoof = agency_reply(client, "Anna Nowak <anna@agency.example>", FROM_OUTSIDE)
    c = classify(spoof, CONFIG)
    assert (c.kind, c.reason) == ("other", "unverified-agency-sender")
    assert state(client, spoof) == "pending"


def test_unverified_agency_mail_alone_is_no_client_mail_either():
    spoof = mail(from_="Anna Nowak <anna@agency.example>", to="jan@acme.example",
                 headers=FROM_OUTSIDE)
    assert evaluate([spoof], CONFIG) == ()


def test_reply_from_sent_folder_acknowledges_without_any_trace_headers():
    client = client_mail()
    answer = agency_reply(client, "Anna Nowak <anna@agency.example>", folder="Sent",
                          role="sent")
    assert state(client, answer) == "acknowledged"


def test_reply_cc_to_a_watched_shared_inbox_acknowledges_when_the_agency_server_vouches():
    client = client_mail()
    answer = agency_reply(client, "Kasia <kasia@agency.example>", VOUCHED_BY_AGENCY_SERVER,
                          mailbox="office")
    assert state(client, answer) == "acknowledged"
    assert state(client, answer, config=trust()) == "pending"  # nobody trusted


def test_inbox_agency_mail_trusted_is_the_one_key_that_loosens_the_rule():
    client = client_mail()
    spoof = agency_reply(client, "Anna Nowak <anna@agency.example>", FROM_OUTSIDE)
    assert state(client, spoof, config=trust(inbox_agency_mail="trusted")) == "acknowledged"


def test_copy_stored_before_the_trace_headers_were_fetched_keeps_its_trust():
    client = client_mail()
    old = dataclasses.replace(agency_reply(client, "Kasia <kasia@agency.example>"), legacy_fetch=True)
    assert state(client, old) == "acknowledged"


def test_a_spoof_reusing_a_real_agency_message_id_cannot_lend_it_its_headers():
    """The attacker got a real agency mail (its Message-ID); a spoof with that id, naming
    another client mail, is merged with the real sent copy, whose headers speak."""
    other_client = mail(from_="Marta <marta@globex.example>", subject="Other thing",
                        received="2026-11-23T09:00:00+01:00")
    real = reply(other_client, folder="Sent", role="sent", received="2026-11-23T09:20:00+01:00",
                 message_id="<real.1@agency.example>")
    client = client_mail()
    spoof = agency_reply(client, "Anna Nowak <anna@agency.example>", FROM_OUTSIDE,
                         message_id="<real.1@agency.example>")
    items = {i.client_address: i.state for i in evaluate([other_client, real, client, spoof],
                                                        CONFIG)}
    assert items == {"marta@globex.example": "acknowledged", "jan.kowalski@acme.example": "pending"}


# --------------------------------------------------------------------------- several From


def test_a_from_with_an_external_mailbox_among_several_is_from_the_external_one():
    client = client_mail()
    spoof = agency_reply(client, "anna@agency.example, attacker@evil.example",
                         VOUCHED_BY_AGENCY_SERVER)
    c = classify(spoof, CONFIG)
    assert (c.kind, c.client_address) == ("client", "attacker@evil.example")
    assert state(client, spoof) == "pending"


def test_a_from_with_several_agency_mailboxes_is_never_vouched_for_in_an_inbox():
    m = mail(from_="anna@agency.example, piotr@agency.example", to="jan@acme.example",
             headers=VOUCHED_BY_AGENCY_SERVER)
    assert not is_vouched(m, CONFIG)
    assert classify(m, CONFIG).kind == "other"


def test_mail_whose_from_cannot_be_read_is_tracked_from_its_return_path():
    m = mail(from_="anna@agency.example attacker@evil.example",
             headers={"Return-Path": "<bounce@evil.example>"})
    c = classify(m, CONFIG)
    assert (c.kind, c.reason, c.client_address) == (
        "client", "client-recovered-unknown-sender", "bounce@evil.example")
    (item,) = evaluate([m], CONFIG)
    assert (item.client_address, item.state, item.account) == ("bounce@evil.example",
                                                                "pending", ANNA)


def test_mail_whose_from_cannot_be_read_and_nothing_else_is_still_tracked():
    (item,) = evaluate([mail(from_="Jan Kowalski")], CONFIG)
    assert (item.client_address, item.state, item.account) == ("", "pending", ANNA)


# --------------------------------------------------------------------------- who vouches

AGENCY_FROM = "Anna Nowak <anna@agency.example>"
AR = "Authentication-Results"


@pytest.mark.parametrize(
    ("headers", "vouched"),
    [
        # The agency's Postfix with OpenDKIM/OpenDMARC (authserv-id mail.agency.example).
        ({AR: "mail.agency.example; dkim=pass (2048-bit key; unprotected)"
              " header.d=agency.example header.i=@agency.example header.s=mail;"
              " dmarc=pass (p=quarantine dis=none) header.from=agency.example"}, True),
        ({AR: "mail.agency.example; dmarc=pass header.from=agency.example"}, True),
        ({AR: "mail.agency.example; dkim=pass header.i=@agency.example"}, True),
        ({AR: "mail.agency.example; dmarc=fail (p=quarantine) header.from=agency.example"}, False),
        ({AR: "mail.agency.example; dmarc=pass header.from=evil.example"}, False),
        ({AR: "mail.agency.example; dkim=pass header.d=evil.example"}, False),
        ({AR: "mail.agency.example; spf=pass smtp.mailfrom=agency.example"}, False),
        # Another server's word is not the agency's.
        ({AR: "mx.evil.example; dmarc=pass header.from=agency.example"}, False),
        # A forged header with the trusted id below the server's own: only the topmost
        # header of an authserv-id counts.
        (_trace((AR, "mail.agency.example; dmarc=fail header.from=agency.example"),
                (AR, "mail.agency.example; dmarc=pass header.from=agency.example")), False),
        # Microsoft 365 writes no authserv-id: nothing to trust it by.
        ({AR: "spf=pass (sender IP is 40.107.22.95) smtp.mailfrom=agency.example; dkim=pass"
              " (signature was verified) header.d=agency.example;dmarc=pass action=none"
              " header.from=agency.example;compauth=pass reason=100"}, False),
        ({}, False),
    ],
)
def test_authentication_results_of_a_trusted_authserv_id_vouch(headers, vouched):
    m = mail(from_=AGENCY_FROM, to="jan@acme.example", headers=headers)
    assert is_vouched(m, CONFIG) is vouched


def test_google_workspace_results_vouch_when_mx_google_com_is_trusted():
    gmail = {AR: "mx.google.com;\r\n       dkim=pass header.i=@agency.example header.s=google"
             " header.b=Xy12AbCd;\r\n       spf=pass (google.com: domain of anna@agency.example"
             " designates 209.85.220.41 as permitted sender; ok) smtp.mailfrom=anna@agency.example;"
             "\r\n       dmarc=pass (p=QUARANTINE sp=QUARANTINE dis=NONE) header.from=agency.example"}
    m = mail(from_=AGENCY_FROM, to="jan@acme.example", headers=gmail)
    assert not is_vouched(m, CONFIG)
    assert is_vouched(m, trust(authserv_ids=("mx.google.com",)))


LMTP = ("Received", "from mail.agency.example ([192.0.2.25]) by imap.agency.example"
        " with LMTP id 8Jm4Lx; Mon, 23 Nov 2026 09:40:02 +0000")


@pytest.mark.parametrize(
    ("hops", "vouched"),
    [
        # Written on Kasia's laptop, submitted with her password, delivered by the relay.
        ((LMTP, ("Received", "from [10.10.0.42] (unknown [83.24.115.7]) (Authenticated sender:"
                 " kasia@agency.example) by mail.agency.example (Postfix) with ESMTPSA id 4X;"
                 " Mon, 23 Nov 2026 09:40:01 +0000")), True),
        # Made on the relay itself (a local pickup), then delivered.
        ((LMTP, ("Received", "by mail.agency.example (Postfix, from userid 1000) id 4X;"
                 " Mon, 23 Nov 2026 09:40:01 +0000")), True),
        # From outside through the relay.
        ((LMTP, ("Received", "from mx.evil.example (mx.evil.example [203.0.113.5]) by"
                 " mail.agency.example (Postfix) with ESMTPS id 4X; Mon, 23 Nov 2026 09:40:01"
                 " +0000")), False),
        # The sender's HELO claims to be the relay; the server recorded who it really was.
        ((LMTP, ("Received", "from mail.agency.example (unknown [203.0.113.5]) by"
                 " mail.agency.example (Postfix) with ESMTP id 4X; Mon, 23 Nov 2026 09:40:01"
                 " +0000")), False),
        # Relay hops written below the outside hop are the sender's own.
        ((LMTP, ("Received", "from mx.evil.example (mx.evil.example [203.0.113.5]) by"
                 " mail.agency.example with ESMTPS id 4X; Mon, 23 Nov 2026 09:40:01 +0000"),
          ("Received", "from [10.0.0.1] (mail.agency.example [192.0.2.25]) by"
                 " mail.agency.example with ESMTPSA id 1; Mon, 23 Nov 2026 09:40:00 +0000")),
         False),
        # Received by an outside server first (a mailing list, a forwarder).
        ((("Received", "from mx.evil.example (mx.evil.example [203.0.113.5]) by"
           " imap.agency.example with LMTP id 8J; Mon, 23 Nov 2026 09:40:02 +0000"),), False),
        ((), False),
        ((LMTP,) * 25, False),  # more hops than are read: never all the agency's
    ],
)
def test_received_chain_inside_the_agency_relays_vouches(hops, vouched):
    m = mail(from_=AGENCY_FROM, to="jan@acme.example", headers=_trace(*hops))
    assert is_vouched(m, CONFIG) is vouched


# --------------------------------------------------------------------------- out of office

OOO = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}
OOO_AT = "2026-11-24T13:03:57+00:00"


def ooo_mail(headers: dict[str, str], **where: object) -> Message:
    return mail(from_=AGENCY_FROM, to="jan@acme.example", received=OOO_AT,
                subject="Odpowiedź automatyczna: Quote", headers={**OOO, **headers}, **where)


def test_spoofed_out_of_office_does_not_send_anna_away():
    spoof = ooo_mail(FROM_OUTSIDE)
    at = dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)
    assert not classify(spoof, CONFIG).out_of_office
    assert away_reason(ANNA, CONFIG, at, [spoof]) is None
    assert recipient_for(ANNA, CONFIG, at, [spoof]) == ANNA


def test_out_of_office_the_agency_server_vouches_for_sends_anna_away():
    notice = ooo_mail(VOUCHED_BY_AGENCY_SERVER)
    at = dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)
    assert away_reason(ANNA, CONFIG, at, [notice]) == "out-of-office"
    assert recipient_for(ANNA, CONFIG, at, [notice]) == PIOTR


def test_spoofed_mail_from_anna_does_not_end_her_absence():
    notice = fixture_message("exchange_out_of_office_agency_pl.eml", folder="Sent Items",
                             role="sent", received=OOO_AT)
    spoof = mail(from_=AGENCY_FROM, to="jan@acme.example", headers=FROM_OUTSIDE,
                 received="2026-11-24T14:00:00+00:00")
    at = dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)
    assert away_reason(ANNA, CONFIG, at, [notice, spoof]) == "out-of-office"


# --------------------------------------------------------------------------- config


def test_the_safe_rule_is_the_default():
    assert Agency().trust == Trust(inbox_agency_mail="verified", authserv_ids=(), relays=())


# --------------------------------------------------------------------------- parsing


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_trace_headers_of_any_text_parse_without_error(value):
    from ackwatch.core.provenance import (
        Relays,
        parse_auth_results,
        parse_received,
        relayed_from_inside,
    )

    _, results = parse_auth_results(value)
    assert all(r.method in ("dmarc", "dkim") for r in results)
    hop = parse_received(value)
    relayed_from_inside((hop,), Relays.of(["192.0.2.0/24", "*.agency.example"]))


def test_received_hops_are_read_as_the_receiving_server_recorded_them():
    from ackwatch.core.provenance import Hop, parse_received

    assert parse_received(
        "from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41]) by"
        " mx.google.com with SMTPS id a1sor; Mon, 23 Nov 2026 01:02:03 -0800 (PST)"
    ) == Hop(True, "mail-sor-f41.google.com", "209.85.220.41", "smtps")
    assert parse_received(  # Exchange Online between its own servers
        "from AM0PR02MB1234.eurprd02.prod.outlook.com (2603:10a6:208:d4::13) by"
        " AM0PR02MB5678.eurprd02.prod.outlook.com with HTTPS; Mon, 23 Nov 2026 09:00:00 +0000"
    ) == Hop(True, "", "2603:10a6:208:d4::13", "https")
    assert parse_received(  # Exim
        "from [203.0.113.9] (helo=laptop) by mail.agency.example with esmtpsa"
        " (TLS1.3) (Exim 4.96) id 1t; Mon, 23 Nov 2026 09:00:00 +0000"
    ) == Hop(True, "", "203.0.113.9", "esmtpsa")
    assert parse_received("by mail.agency.example (Postfix, from userid 1000) id 4X") == Hop(
        False, "", "", "")
