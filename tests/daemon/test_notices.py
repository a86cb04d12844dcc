"""Promise notices as the account's manager reads them."""

from __future__ import annotations

import datetime as dt

from ackwatch.daemon.notices import render_notice
from ackwatch.store.records import OutboxRecord, PromiseRecord
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
