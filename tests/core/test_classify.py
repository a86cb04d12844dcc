"""classify: client / agency / auto / own / ignored / other (DESIGN.md "Semantics")."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from ackwatch.config import Agency, IgnoreRules
from ackwatch.core.classify import (
    agency_identities,
    auto_generated_reason,
    classify,
    is_acknowledgement_candidate,
    is_agency_address,
    match_client,
)
from configfactory import make_client, make_config
from mailfactory import fixture_message, mail, make_message

CONFIG = make_config()


# --------------------------------------------------------------------------- agency side


@pytest.mark.parametrize(
    "address",
    [
        "anna@agency.example",
        "ANNA@Agency.Example",
        "someone@pl.agency.example",  # subdomain of an agency domain
        "designer@freelance.example",  # agency.addresses
        "office@agency.example",  # a watched mailbox
    ],
)
def test_agency_side_addresses(address: str):
    assert is_agency_address(address, CONFIG)


@pytest.mark.parametrize(
    "address",
    ["jan.kowalski@acme.example", "x@notagency.example", "x@agency.example.evil", "", "anna"],
)
def test_everyone_else_is_external(address: str):
    assert not is_agency_address(address, CONFIG)


def test_watched_mailbox_username_and_owner_are_agency_side_outside_the_domain():
    from configfactory import make_mailbox

    config = make_config(
        mailboxes=(make_mailbox("ext", "studio@gmail.example", owner="owner@other.example"),)
    )
    assert is_agency_address("studio@gmail.example", config)
    assert is_agency_address("owner@other.example", config)


# --------------------------------------------------------------------------- client match


def test_client_matches_domain_and_subdomains():
    assert match_client("jan@acme.example", CONFIG).name == "Acme"
    assert match_client("jan@eu.mail.acme.example", CONFIG).name == "Acme"
    assert match_client("jan@notacme.example", CONFIG) is None


def test_client_matches_full_address_and_glob():
    assert match_client("CEO@mail.example", CONFIG).name == "Acme"
    assert match_client("other@mail.example", CONFIG) is None
    assert match_client("bob@initech.de", CONFIG).name == "Initech"


def test_most_specific_client_entry_wins():
    config = make_config(
        clients=(
            make_client("Holding", "group.example"),
            make_client("Brand", "brand.group.example"),
            make_client("Globbed", "*@*.group.example"),
            make_client("CEO", "ceo@brand.group.example"),
        )
    )
    assert match_client("x@group.example", config).name == "Holding"
    assert match_client("x@other.group.example", config).name == "Globbed"  # glob > domain
    assert match_client("x@brand.group.example", config).name == "Globbed"
    assert match_client("ceo@brand.group.example", config).name == "CEO"  # exact > glob
    longest = make_config(
        clients=(
            make_client("Holding", "group.example"),
            make_client("Brand", "brand.group.example"),
        )
    )
    assert match_client("x@brand.group.example", longest).name == "Brand"  # longest domain


# --------------------------------------------------------------------------- client mail


def test_outlook_client_mail_in_inbox_is_client_mail():
    c = classify(fixture_message("outlook_client.eml"), CONFIG)
    assert c.kind == "client"
    assert c.client_address == "jan.kowalski@acme.example"
    assert c.client is not None and c.client.name == "Acme"


@pytest.mark.parametrize(
    "name",
    [
        "gmail_client.eml",
        "apple_mail_reply.eml",
        "polish_odp_reply.eml",
        "forwarded_no_in_reply_to.eml",
        "cc_two_mailboxes.eml",
        "no_message_id.eml",
        "ukrainian_vidp_reply.eml",
    ],
)
def test_human_external_mail_in_inbox_is_client_mail(name: str):
    assert classify(fixture_message(name), CONFIG).kind == "client"


def test_unknown_sender_tracked_is_client_mail_without_client():
    c = classify(fixture_message("no_message_id.eml"), CONFIG)
    assert (c.kind, c.client, c.client_address) == (
        "client",
        None,
        "biuro@stara-drukarnia.example",
    )


def test_unknown_sender_ignored_when_configured():
    c = classify(fixture_message("no_message_id.eml"), make_config(unknown_senders="ignore"))
    assert c.kind == "ignored"


def test_known_client_still_tracked_when_unknown_senders_ignored():
    c = classify(fixture_message("outlook_client.eml"), make_config(unknown_senders="ignore"))
    assert c.kind == "client"


def test_external_mail_in_a_sent_folder_is_other():
    m = fixture_message("outlook_client.eml", folder="Sent Items", role="sent")
    assert classify(m, CONFIG).kind == "other"


def test_mail_without_a_readable_sender_is_still_client_mail():
    c = classify(make_message("To: anna@agency.example\nSubject: x"), CONFIG)
    assert (c.kind, c.reason, c.client_address) == ("client", "client-no-sender", "")


def test_agency_mail_is_agency():
    sent = fixture_message("outlook_agency_reply.eml", folder="Sent Items", role="sent")
    assert classify(sent, CONFIG).kind == "agency"
    # also when it shows up in an inbox (a colleague's reply with anna in Cc), vouched
    # for by the agency's server (its Authentication-Results and Received chain)
    assert classify(fixture_message("thunderbird_reply.eml"), CONFIG).kind == "agency"


# --------------------------------------------------------------------------- forms


def test_form_lead_client_is_the_reply_to():
    c = classify(fixture_message("form_lead.eml", mailbox="office"), CONFIG)
    assert c.kind == "client"
    assert c.client_address == "lead@gmail.example"
    assert c.client is None


def test_form_lead_matching_a_client_gets_that_client():
    m = mail(from_="forms@agency.example", reply_to="ceo@mail.example", to="office@agency.example")
    assert classify(m, CONFIG).client.name == "Acme"


def test_form_lead_tracked_even_when_unknown_senders_are_ignored():
    c = classify(fixture_message("form_lead.eml"), make_config(unknown_senders="ignore"))
    assert c.kind == "client"


def test_form_lead_with_auto_submitted_header_is_still_a_lead():
    m = mail(
        from_="forms@agency.example",
        reply_to="lead@gmail.example",
        headers={"Auto-Submitted": "auto-generated", "Precedence": "bulk"},
    )
    assert classify(m, CONFIG).kind == "client"


def test_form_mail_without_external_reply_to_is_not_client_mail():
    internal = mail(from_="forms@agency.example", reply_to="office@agency.example")
    none = mail(from_="forms@agency.example")
    assert classify(internal, CONFIG).kind == "auto"
    assert classify(none, CONFIG).kind == "auto"


def test_form_confirmation_to_the_lead_is_not_an_acknowledgement():
    m = mail(from_="forms@agency.example", to="lead@gmail.example", folder="Sent", role="sent")
    assert not is_acknowledgement_candidate(m, CONFIG)


def test_form_lead_from_an_ignored_address_is_ignored():
    config = make_config(ignore=IgnoreRules(senders=("*@spam.example",)))
    m = mail(from_="forms@agency.example", reply_to="bot@spam.example")
    assert classify(m, config).kind == "ignored"


# --------------------------------------------------------------------------- auto mail


def test_out_of_office_from_exchange_is_auto_generated():
    c = classify(fixture_message("exchange_out_of_office.eml"), CONFIG)
    assert c.kind == "auto" and c.out_of_office
    assert c.reason == "auto-submitted"


def test_agency_out_of_office_is_auto_and_marks_the_account_away():
    m = fixture_message("exchange_out_of_office_agency_pl.eml", folder="Sent Items", role="sent")
    c = classify(m, CONFIG)
    assert c.kind == "auto" and c.out_of_office
    assert not is_acknowledgement_candidate(m, CONFIG)


def test_gmail_vacation_responder_is_auto_generated_out_of_office():
    c = classify(fixture_message("gmail_vacation_responder.eml"), CONFIG)
    assert c.kind == "auto" and c.out_of_office


def test_newsletter_from_a_client_domain_is_auto_generated():
    c = classify(fixture_message("newsletter.eml"), CONFIG)
    assert c.kind == "auto" and not c.out_of_office


def test_bounce_from_mailer_daemon_is_auto_generated():
    c = classify(fixture_message("bounce_mailer_daemon.eml"), CONFIG)
    assert c.kind == "auto" and not c.out_of_office


def test_auto_submitted_no_is_human():
    m = mail(subject="Out of Office: not really", headers={"Auto-Submitted": "no"})
    assert auto_generated_reason(m) is None
    assert classify(m, CONFIG).kind == "client"


def test_x_auto_response_suppress_alone_is_not_auto():
    m = fixture_message("outlook_client.eml")  # carries X-Auto-Response-Suppress
    assert auto_generated_reason(m) is None
    m2 = mail(headers={"X-Auto-Response-Suppress": "All"})
    assert classify(m2, CONFIG).kind == "client"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto-Submitted": "auto-generated"}, "auto-submitted"),
        ({"Auto-Submitted": "auto-replied; owner-email=jan@acme.example"}, "auto-submitted"),
        ({"X-Autoreply": "yes"}, "x-autoreply"),
        ({"X-Autorespond": "Out of office"}, "x-autorespond"),
        ({"Precedence": "bulk"}, "precedence"),
        ({"Precedence": "JUNK"}, "precedence"),
        ({"Precedence": "list"}, "precedence"),
        ({"List-Id": "<acme-team.lists.acme.example>"}, "list-id"),
        ({"List-Unsubscribe": "<mailto:leave@acme.example>"}, "list-unsubscribe"),
        ({"Return-Path": "<>"}, "null-return-path"),
    ],
)
def test_auto_generated_headers(headers: dict[str, str], reason: str):
    m = mail(headers=headers)
    assert auto_generated_reason(m) == reason
    assert classify(m, CONFIG).kind == "auto"


def test_precedence_first_class_is_human():
    assert auto_generated_reason(mail(headers={"Precedence": "first-class"})) is None


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.acme.example", "postmaster@acme.example"])
def test_mailer_daemon_and_postmaster_are_auto(sender: str):
    assert classify(mail(from_=sender), CONFIG).kind == "auto"


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Quote",
        "Out of Office: Quote",
        "Out of office reply",
        "Odpowiedź automatyczna: Wycena",
        "Автоматична відповідь: Запит",
        "Автоматичен отговор: Оферта",
        "Автоматический ответ: Запрос",
        "Autoreply: Quote",
        "Auto-Reply: Quote",
        "Abwesenheitsnotiz: Angebot",
        "Automatische Antwort: Angebot",
        "Réponse automatique : Devis",
        "Respuesta automática: Oferta",
        "Risposta automatica: Preventivo",
        "Automatisch antwoord: Offerte",
        "[EXTERNAL] Automatic reply: Quote",
    ],
)
def test_auto_reply_subjects_are_out_of_office(subject: str):
    c = classify(mail(subject=subject), CONFIG)
    assert c.kind == "auto" and c.out_of_office


def test_human_reply_to_an_auto_reply_is_not_auto():
    assert classify(mail(subject="Re: Automatic reply: Quote"), CONFIG).kind == "client"


# --------------------------------------------------------------------------- ignore rules


def test_ignore_sender_glob_is_case_insensitive():
    c = classify(mail(from_="NoReply@acme.example"), CONFIG)
    assert (c.kind, c.reason) == ("ignored", "ignore-sender")


def test_ignore_subject_regex():
    config = make_config(ignore=IgnoreRules(subjects=(re.compile(r"(?i)\bunsubscribe\b"),)))
    c = classify(mail(subject="Please unsubscribe me"), config)
    assert (c.kind, c.reason) == ("ignored", "ignore-subject")


def test_agency_noreply_system_is_not_an_acknowledgement():
    m = mail(from_="noreply@agency.example", to="jan@acme.example", folder="Sent", role="sent")
    assert classify(m, CONFIG).kind == "ignored"
    assert not is_acknowledgement_candidate(m, CONFIG)


# --------------------------------------------------------------------------- own mail


def test_ackwatch_nudge_is_own_mail():
    assert classify(fixture_message("ackwatch_nudge.eml"), CONFIG).kind == "own"


def test_forged_x_ackwatch_from_outside_is_client_mail():
    m = mail(headers={"X-Ackwatch": "nudge"})
    c = classify(m, CONFIG)
    assert c.kind == "client" and c.client.name == "Acme"


# --------------------------------------------------------------------------- acknowledgement


def test_agency_reply_to_the_client_is_an_acknowledgement_candidate():
    m = fixture_message("outlook_agency_reply.eml", folder="Sent Items", role="sent")
    assert is_acknowledgement_candidate(m, CONFIG)


def test_agency_reply_with_client_only_in_cc_is_a_candidate():
    m = mail(from_="anna@agency.example", to="piotr@agency.example", cc="jan@acme.example",
             folder="Sent", role="sent")
    assert is_acknowledgement_candidate(m, CONFIG)


def test_internal_forward_is_not_an_acknowledgement_candidate():
    m = fixture_message("outlook_internal_forward.eml", folder="Sent Items", role="sent")
    assert classify(m, CONFIG).kind == "agency"
    assert not is_acknowledgement_candidate(m, CONFIG)


def test_agency_out_of_office_is_not_an_acknowledgement_candidate():
    assert not is_acknowledgement_candidate(
        fixture_message("exchange_out_of_office_agency_pl.eml"), CONFIG
    )


def test_own_nudge_is_not_an_acknowledgement_candidate():
    m = mail(
        from_="ackwatch@agency.example", to="jan@acme.example", headers={"X-Ackwatch": "nudge"}
    )
    assert not is_acknowledgement_candidate(m, CONFIG)


def test_client_mail_is_not_an_acknowledgement_candidate():
    assert not is_acknowledgement_candidate(fixture_message("outlook_client.eml"), CONFIG)


def test_agency_identities_lists_domains_and_addresses():
    ids = agency_identities(CONFIG)
    assert {"agency.example", "designer@freelance.example", "office@agency.example"} <= ids
    empty = make_config(agency=Agency(), mailboxes=(), accounts=())
    assert agency_identities(empty) == frozenset()


def test_own_mail_from_an_address_outside_the_agency_domains_is_still_own():
    config = make_config()
    config = config.replace(smtp=replace(
        config.smtp, from_address="ackwatch <alerts@ackwatch-mailer.example>"))
    nudge = make_message("""\
        From: ackwatch <alerts@ackwatch-mailer.example>
        To: anna@agency.example
        Subject: Acknowledge now: 1 client email
        Message-ID: <ackwatch.1@ackwatch-mailer.example>
        Auto-Submitted: auto-generated
        X-Ackwatch: nudge
    """)
    assert classify(nudge, config).kind == "own"
