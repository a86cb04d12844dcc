"""Promise notices as the account's manager reads them."""

from __future__ import annotations

import datetime as dt

from ackwatch.daemon.notices import render_ask, render_notice
from ackwatch.store.records import ItemRecord, OutboxRecord, PromiseRecord
from configfactory import ANNA, KASIA, PIOTR, make_config

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def promise(number: int, account: str) -> PromiseRecord:
    return PromiseRecord(
        source_key=f"<ack{number}@agency.example>", thread=f"t{number}",
        item_key=f"<c{number}@acme.example>", account=account, client="Acme",
        client_address="jan@acme.example", subject=f"Banner {number}",
        made_at=NOW - dt.timedelta(days=2), promised=NOW - dt.timedelta(hours=1),
        remind_at=None, sentence="I will send it by Monday noon.", id=number, state="open",
        follow_key=None, settled_at=None, reminder_done=None, reminder_outbox=None,
        overdue_done=None, overdue_outbox=None, first_seen=NOW - dt.timedelta(days=2),
    )


def overdue_notice(account: str | None, cc: tuple[str, ...]) -> OutboxRecord:
    return OutboxRecord(
        id=1, kind="promise-overdue", recipient=KASIA, cc=cc, account=account, nudge_keys=(),
        escalation_keys=(), message_id="<ackwatch.1@agency.example>", created_at=NOW,
        state="pending", attempts=0, next_attempt_at=NOW, last_error=None, sent_at=None,
    )


def test_a_merged_overdue_notice_names_every_account_it_is_about():
    mail = render_notice(make_config(), overdue_notice(None, (ANNA, PIOTR)),
                         [promise(1, ANNA), promise(2, PIOTR)], NOW)
    assert "Anna Nowak, Piotr Wiśniewski" in mail["Subject"]
    assert "Anna Nowak, Piotr Wiśniewski" in mail.get_body(("plain",)).get_content()


def test_an_overdue_notice_about_one_account_names_that_account():
    mail = render_notice(make_config(), overdue_notice(ANNA, (ANNA,)), [promise(1, ANNA)], NOW)
    assert "Anna Nowak" in mail["Subject"] and "Piotr" not in mail["Subject"]


def ask_record(recipient: str) -> OutboxRecord:
    return OutboxRecord(
        id=2, kind="ask-date", recipient=recipient, cc=(), account=recipient, nudge_keys=(),
        escalation_keys=(), message_id="<ackwatch.2@agency.example>", created_at=NOW,
        state="pending", attempts=0, next_attempt_at=NOW, last_error=None, sent_at=None,
    )


def acked_item(client: str | None, subject: str) -> ItemRecord:
    received = NOW - dt.timedelta(hours=1)
    return ItemRecord(
        key="<c1@acme.example>", thread="t1", message_id="<c1@acme.example>",
        client_address="jan@acme.example", client=client, subject=subject, received=received,
        mailboxes=("anna",), account=ANNA, policy="default", clock="business",
        deadline=NOW, nudge_at=NOW, escalate_at=None, state="acknowledged",
        ack_key="<r1@agency.example>", ack_at=NOW - dt.timedelta(minutes=40), ack_kind="reply",
        ack_by=ANNA, first_seen=received, nudge_done=None, escalation_done=None,
    )


def test_a_say_by_when_note_is_in_polish_for_a_polish_account():
    mail = render_ask(make_config(), ask_record(ANNA), [acked_item("Acme", "Rozmiary banerów")],
                      NOW)  # fmt: skip
    assert mail["To"].addresses[0].addr_spec == ANNA
    assert mail["Subject"] == "Twoja odpowiedź do Acme nie mówi, na kiedy"
    assert mail["Content-Language"] == "pl" and mail["X-Ackwatch"] == "ask-date"
    text = mail.get_body(("plain",)).get_content()
    assert "Jedno zdanie do klienta z terminem go uspokoi." in text
    assert "Rozmiary banerów" in text and "twoja odpowiedź" in text


def test_a_say_by_when_note_in_english_says_what_the_issue_asks():
    config = make_config()
    mail = render_ask(config, ask_record(KASIA), [acked_item("Acme", "Banner sizes")], NOW)
    assert mail["Subject"] == "Your reply to Acme did not say by when"
    text = mail.get_body(("plain",)).get_content()
    assert "One more line to the client with a date keeps them calm." in text
    assert '"Banner sizes"' in text
