"""What the daemon queues and skips, and what it says about a skip (`daemon/nudges.py`).

Driven through `Daemon.apply_event` with the watchers' own event values (no network) and
a settable clock; mail that would be sent is kept in a list.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from structlog.testing import capture_logs

from ackwatch.core import dispatch as scheduler
from ackwatch.core import item_rules as sla
from ackwatch.core.item_rules import Deadlines, Item
from ackwatch.daemon import nudges
from ackwatch.daemon.service import Daemon
from ackwatch.mail.sync import FolderCursor, FolderSync, FolderSyncEvent
from ackwatch.mail.uidfetch import FetchedMessage
from ackwatch.store.sqlite import SqliteStore as Store
from configfactory import ANNA, KASIA, OFFICE, PIOTR, make_account, make_config, make_mailbox

WARSAW = dt.timezone(dt.timedelta(hours=1))  # November: CET
MONDAY_0900 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=WARSAW)


def client_mails(first_uid: int, count: int, received: dt.datetime) -> FolderSyncEvent:
    """``count`` client mails from different unknown senders to the office mailbox
    (owner Kasia, who has no manager), as an Outlook client writes them."""
    mails = tuple(
        FetchedMessage(uid, received, frozenset(), (
            f"Message-ID: <req{uid}@client{uid}.example>\r\n"
            f"From: \"Client {uid}\" <buyer@client{uid}.example>\r\n"
            f"To: Office <{OFFICE}>\r\nSubject: Order {uid}: delivery date?\r\n"
            "Date: Mon, 23 Nov 2026 09:00:00 +0100\r\n"
            "Thread-Index: AdrBHqV1Yk3oAAAAAA==\r\n\r\n").encode())
        for uid in range(first_uid, first_uid + count)
    )
    return FolderSyncEvent("office", FolderSync(
        "INBOX", "inbox", FolderCursor(1, first_uid + count - 1), new_messages=mails))


def skipped_warnings(logs: list[dict]) -> list[dict]:
    return [e for e in logs if e["event"] == "action_skipped" and e["log_level"] == "warning"]


def test_one_action_skipped_per_account_without_a_manager_however_many_items(tmp_path):
    config = make_config(state_dir=tmp_path)
    store = Store.open(tmp_path)
    clock = [MONDAY_0900]
    sent: list[object] = []
    d = Daemon(config, store, now=lambda: clock[0], reload=lambda: config,
               send=lambda msg, cfg: sent.append(msg))
    try:
        d.apply_event(client_mails(1, 30, MONDAY_0900))
        clock[0] = MONDAY_0900 + dt.timedelta(hours=3)  # past the nudges and escalations
        with capture_logs() as logs:
            d.step()
            d.apply_event(client_mails(31, 20, clock[0]))
            clock[0] += dt.timedelta(hours=3)
            d.step()
        (warning,) = skipped_warnings(logs)
        assert warning["kind"] == "escalation" and warning["account"] == KASIA
        assert warning["reason"] == "no manager configured" and warning["items"] == 30
        skipped = store._conn.execute(
            "SELECT COUNT(*) FROM items WHERE escalation_done = 'skipped'").fetchone()[0]
        assert skipped == 50  # every item is still marked; only the warning is once
        assert sent  # Kasia's own nudges still went out

        # A new config (SIGHUP) tells each cause still there again, once.
        d.config = dataclasses.replace(config)
        d.apply_event(client_mails(51, 5, clock[0]))
        clock[0] += dt.timedelta(hours=3)
        with capture_logs() as logs:
            d.step()
        (warning,) = skipped_warnings(logs)
        assert warning["account"] == KASIA and warning["items"] == 5
    finally:
        store.close()


def test_planning_from_the_items_due_equals_planning_from_every_pending_item(tmp_path):
    """`nudges.plan` reads only the items with an action due within the batch window,
    and the next due time beyond it from the index: the same mails, to the same people,
    and the same next due time as a plan over every pending item (accounts with a
    manager: a skip is planned when it comes due, see the test above). The hourly cap,
    read for the people the plan concerns only, holds back what it would with everyone's
    last hour."""
    config = make_config(state_dir=tmp_path)
    rng = random.Random(10)
    now = MONDAY_0900
    for trial in range(25):
        store = Store.open(tmp_path / str(trial))
        items = []
        for n in range(rng.randrange(0, 60)):
            account = rng.choice([ANNA, PIOTR])
            nudge_at = now + dt.timedelta(minutes=rng.randrange(-180, 180))
            escalate_at = (nudge_at + dt.timedelta(minutes=rng.randrange(0, 120))
                           if rng.random() < 0.8 else None)
            items.append(Item(
                key=f"<k{n}@client.example>", thread=f"t{n}", message_id=f"<k{n}@client.example>",
                client_address="jan@client.example", client=None, subject=f"Order {n}",
                received=nudge_at - dt.timedelta(hours=2), mailboxes=("anna",), account=account,
                deadlines=Deadlines("default", "calendar", nudge_at + dt.timedelta(minutes=30),
                                    nudge_at, escalate_at)))
        store.sync_items(items, now=now, initial_keys=set())
        for kind in ("nudge", "escalation"):
            share = 1.0 if kind == "nudge" and trial % 4 == 0 else 0.3  # escalations alone
            done = [i.key for i in items if rng.random() < share]
            if done:
                store.mark_items_done(kind, done, rng.choice(["sent", "suppressed"]))
        people = [ANNA, PIOTR, KASIA, OFFICE, "Anna@Agency.example", "x@elsewhere.example"]
        for m in range(rng.randrange(1, 8)):  # the last 90 minutes' mail, To and Cc
            store.enqueue(kind="nudge", recipient=rng.choice(people),
                          cc=tuple(rng.sample(people, rng.randrange(0, 3))), account=ANNA,
                          nudge_keys=(), escalation_keys=(), message_id=f"<n{m}@agency.example>",
                          now=now - dt.timedelta(minutes=rng.randrange(0, 90)))
        accounts = tuple(dataclasses.replace(a, mentor=OFFICE) if a.email == PIOTR else a
                         for a in config.accounts)  # copied on Piotr's nudges
        capped = dataclasses.replace(config, accounts=accounts, notify=dataclasses.replace(
            config.notify, max_per_hour=rng.randrange(1, 6)))
        everyone = {p.lower() for p in people}
        try:
            due = nudges.plan(store, capped, now, lambda accounts, at: [])
            everything = scheduler.plan(
                [scheduler.Pending(r.key, r.account, r.nudge_at, r.escalate_at,
                                   r.nudge_done is not None, r.escalation_done is not None)
                 for r in store.pending_items()],
                config=capped, now=now,
                recipient_of=lambda acc, c=capped: sla.recipient_for(acc, c, now, []),
                mentor_of=lambda acc, c=capped: sla.mentor_copy(acc, c, now, []),
                sent_last_hour=store.reached_since(now - dt.timedelta(hours=1), everyone),
            )
            assert due.plan == everything
        finally:
            store.close()


def test_who_is_away_and_the_hourly_cap_are_read_only_once_an_action_is_due(tmp_path):
    config = make_config(state_dir=tmp_path)
    store = Store.open(tmp_path)
    nudge_at = MONDAY_0900 + dt.timedelta(hours=2)
    item = Item(
        key="<k1@client.example>", thread="t1", message_id="<k1@client.example>",
        client_address="jan@client.example", client=None, subject="Order 1",
        received=MONDAY_0900, mailboxes=("anna",), account=ANNA,
        deadlines=Deadlines("default", "calendar", nudge_at + dt.timedelta(hours=1),
                            nudge_at, None))
    asked: list[set[str]] = []

    def messages_of_accounts(accounts, at):  # type: ignore[no-untyped-def]
        asked.append(set(accounts))
        return []

    try:
        store.sync_items([item], now=MONDAY_0900, initial_keys=set())
        within_window = nudge_at - config.notify.batch_window / 2
        early = nudges.plan(store, config, within_window, messages_of_accounts)
        assert (early.plan.actions, early.plan.next_due, asked) == ((), nudge_at, [])
        due = nudges.plan(store, config, nudge_at, messages_of_accounts)
        assert [a.nudge_keys for a in due.plan.actions] == [(item.key,)]
        assert asked == [{ANNA}]
    finally:
        store.close()


def _sent_event(mailbox: str, sender: str, received: dt.datetime, subject: str,
                extra: str = "") -> FolderSyncEvent:
    raw = (f"Message-ID: <ooo-{mailbox}@agency.example>\r\nFrom: {sender}\r\n"
           f"To: jan.kowalski@acme.example\r\nSubject: {subject}\r\n"
           "Date: Mon, 23 Nov 2026 08:30:00 +0100\r\n" + extra + "\r\n").encode()
    return FolderSyncEvent(mailbox, FolderSync(
        "Sent", "sent", FolderCursor(1, 1),
        new_messages=(FetchedMessage(1, received, frozenset(), raw),)))


def _client_mail_to_anna(received: dt.datetime) -> FolderSyncEvent:
    raw = ("Message-ID: <CAJ8x=brief@mail.acme.example>\r\n"
           "From: Jan Kowalski <jan.kowalski@acme.example>\r\nTo: Anna Nowak <"
           f"{ANNA}>\r\nSubject: Brief for the spring campaign\r\n"
           "Date: Mon, 23 Nov 2026 09:00:00 +0100\r\n\r\n").encode()
    return FolderSyncEvent("anna", FolderSync(
        "INBOX", "inbox", FolderCursor(1, 1),
        new_messages=(FetchedMessage(1, received, frozenset(), raw),)))


def _nudges_with_piotr_mentoring_anna(tmp_path, piotr_says: str) -> list:
    """The nudges sent about a client mail to Anna, whose mentor Piotr sent ``piotr_says``
    (an out-of-office auto-reply, or a plain mail) from his watched mailbox that morning."""
    from ackwatch.config import Account

    accounts = (Account(ANNA, "Anna Nowak", manager=KASIA, mentor=PIOTR),
                Account(PIOTR, "Piotr Wiśniewski", manager=KASIA),
                Account(KASIA, "Kasia Lewandowska"))
    config = make_config(state_dir=tmp_path, accounts=accounts)
    store = Store.open(tmp_path)
    clock = [MONDAY_0900]
    sent: list = []
    d = Daemon(config, store, now=lambda: clock[0], reload=lambda: config,
               send=lambda msg, cfg: sent.append(msg))
    try:
        ooo = "Auto-Submitted: auto-replied\r\n" if piotr_says == "out-of-office" else ""
        subject = "Automatic reply: Quote" if ooo else "Re: Quote"
        d.apply_event(_sent_event("piotr", PIOTR, MONDAY_0900 - dt.timedelta(minutes=30),
                                  subject, ooo))
        d.apply_event(_client_mail_to_anna(MONDAY_0900))
        clock[0] = MONDAY_0900 + dt.timedelta(hours=21)  # Acme: 24h window, nudge 4h before
        d.step()
    finally:
        store.close()
    return [m for m in sent if m["X-Ackwatch"] == "nudge"]


def test_a_nudge_copies_the_accounts_mentor(tmp_path):
    (nudge,) = _nudges_with_piotr_mentoring_anna(tmp_path, "a reply")
    assert str(nudge["To"]).endswith(f"<{ANNA}>") and PIOTR in str(nudge["Cc"])


def test_a_mentor_away_by_his_own_out_of_office_reply_gets_no_copy(tmp_path):
    (nudge,) = _nudges_with_piotr_mentoring_anna(tmp_path, "out-of-office")
    assert str(nudge["To"]).endswith(f"<{ANNA}>") and nudge["Cc"] is None


def _one_mail_an_hour(tmp_path):  # type: ignore[no-untyped-def]
    """The test config with ``max_per_hour: 1``, its store, a clock at Monday 9:00 and
    the list the daemon's mail goes to."""
    config = make_config(state_dir=tmp_path)
    config = dataclasses.replace(config, notify=dataclasses.replace(config.notify,
                                                                    max_per_hour=1))
    return config, Store.open(tmp_path), [MONDAY_0900], []


def _plans_made(store, clock, reads=None):  # type: ignore[no-untyped-def]
    """The clock's time at each plan the daemon makes from now on (each plan reads the
    items due); with ``reads``, each read's time and the items it returned go there."""
    planned: list[dt.datetime] = []
    items_due = store.items_due

    def counting_items_due(until, **skip):  # type: ignore[no-untyped-def]
        planned.append(clock[0])
        found = items_due(until, **skip)
        if reads is not None:
            reads.append((clock[0], found))
        return found

    store.items_due = counting_items_due
    return planned


def test_a_plan_the_hourly_cap_left_empty_is_made_again_only_once_the_cap_frees(tmp_path):
    """Kasia may get one mail an hour. Her second nudge comes due 20 minutes after the
    first went: the plan queues nothing, and the steps that follow (new mail arriving)
    do not plan the capped backlog again until the cap frees a place, when it goes."""
    config, store, clock, sent = _one_mail_an_hour(tmp_path)
    planned = _plans_made(store, clock)
    d = Daemon(config, store, now=lambda: clock[0], reload=lambda: config,
               send=lambda msg, cfg: sent.append(msg))
    nudges_sent = lambda: [m for m in sent if m["X-Ackwatch"] == "nudge"]  # noqa: E731
    try:
        d.apply_event(client_mails(1, 2, MONDAY_0900))  # nudges due at 10:30
        d.apply_event(client_mails(3, 2, MONDAY_0900 + dt.timedelta(minutes=20)))  # 10:50
        clock[0] = MONDAY_0900 + dt.timedelta(minutes=91)
        d.step()
        assert len(nudges_sent()) == 1
        clock[0] = MONDAY_0900 + dt.timedelta(minutes=111)
        d.step()  # the second nudge is due, over the cap
        assert len(nudges_sent()) == 1
        planned.clear()
        clock[0] = MONDAY_0900 + dt.timedelta(minutes=115)
        d.apply_event(client_mails(5, 1, clock[0]))  # new mail, due at 12:25
        d.step()
        assert planned == [] and len(nudges_sent()) == 1  # nothing planned again
        clock[0] = MONDAY_0900 + dt.timedelta(minutes=152)  # an hour after the first
        d.step()
        assert planned and len(nudges_sent()) == 2
    finally:
        store.close()


def test_an_action_that_comes_due_during_a_capped_wait_is_planned(tmp_path):
    """While Kasia's capped nudge waits, Piotr's nudge comes due: it is planned and sent
    then, not held until Kasia's cap frees."""
    config, store, clock, sent = _one_mail_an_hour(tmp_path)
    d = Daemon(config, store, now=lambda: clock[0], reload=lambda: config,
               send=lambda msg, cfg: sent.append(msg))
    raw = ("Message-ID: <order-77@mail.globex.example>\r\n"
           "From: Hank Scorpio <hank@globex.example>\r\n"
           f"To: Piotr <{PIOTR}>\r\nSubject: Order 77: delivery date?\r\n"
           "Date: Mon, 23 Nov 2026 09:30:00 +0100\r\n\r\n").encode()
    to_piotr = FolderSyncEvent("piotr", FolderSync("INBOX", "inbox", FolderCursor(1, 1), (
        FetchedMessage(1, MONDAY_0900 + dt.timedelta(minutes=30), frozenset(), raw),)))
    try:
        d.apply_event(client_mails(1, 1, MONDAY_0900))
        d.apply_event(client_mails(2, 1, MONDAY_0900 + dt.timedelta(minutes=20)))
        d.apply_event(to_piotr)  # his nudge is due at 11:00
        clock[0] = MONDAY_0900 + dt.timedelta(minutes=91)
        d.step()
        clock[0] = MONDAY_0900 + dt.timedelta(minutes=111)
        d.step()  # Kasia's second nudge: capped until 11:31
        assert not any(PIOTR in str(m["To"]) for m in sent)
        clock[0] = MONDAY_0900 + dt.timedelta(minutes=121)
        d.step()
        to = [str(m["To"]) for m in sent if m["X-Ackwatch"] == "nudge"]
        assert sum(PIOTR in t for t in to) == 1 and sum(KASIA in t for t in to) == 1, to
    finally:
        store.close()


def _to_anna(uid: int, received: dt.datetime) -> FolderSyncEvent:
    raw = (f"Message-ID: <order-{uid}@mail.client{uid}.example>\r\n"
           f"From: Buyer <buyer@client{uid}.example>\r\nTo: Anna Nowak <{ANNA}>\r\n"
           f"Subject: Order {uid}: delivery date?\r\n"
           "Date: Mon, 23 Nov 2026 09:00:00 +0100\r\n\r\n").encode()
    return FolderSyncEvent("anna", FolderSync("INBOX", "inbox", FolderCursor(1, uid), (
        FetchedMessage(uid, received, frozenset(), raw),)))


def _from_anna(uid: int, received: dt.datetime, *, out_of_office: bool) -> FolderSyncEvent:
    extra = ("Subject: Automatic reply: Order\r\nAuto-Submitted: auto-replied\r\n"
             if out_of_office else "Subject: Re: Spring fair stand\r\n")
    raw = (f"Message-ID: <sent-{uid}@agency.example>\r\nFrom: Anna Nowak <{ANNA}>\r\n"
           "To: jan.kowalski@acme.example\r\n" + extra
           + "Date: Mon, 23 Nov 2026 10:55:00 +0100\r\n\r\n").encode()
    return FolderSyncEvent("anna", FolderSync("Sent", "sent", FolderCursor(1, uid), (
        FetchedMessage(uid, received, frozenset(), raw),)))


def test_a_capped_wait_ends_when_someone_else_receives_not_when_the_account_writes(tmp_path):
    """Anna may get one mail an hour and her second nudge waits for the cap. She goes on
    answering other mail: the wait holds (nobody else receives for her). Her
    out-of-office notice goes out: her backup Piotr receives for her now, and he has
    room: the nudge goes to him at once."""
    config, store, clock, sent = _one_mail_an_hour(tmp_path)
    planned = _plans_made(store, clock)
    d = Daemon(config, store, now=lambda: clock[0], reload=lambda: config,
               send=lambda msg, cfg: sent.append(msg))
    nudged = lambda: [str(m["To"]) for m in sent if m["X-Ackwatch"] == "nudge"]  # noqa: E731
    try:
        d.apply_event(_to_anna(1, MONDAY_0900))  # nudge due at 10:30
        d.apply_event(_to_anna(2, MONDAY_0900 + dt.timedelta(minutes=20)))  # 10:50
        clock[0] = MONDAY_0900 + dt.timedelta(minutes=91)
        d.step()
        clock[0] = MONDAY_0900 + dt.timedelta(minutes=111)
        d.step()  # the second nudge is due, over Anna's cap
        assert len(nudged()) == 1 and ANNA in nudged()[0]
        planned.clear()
        clock[0] = MONDAY_0900 + dt.timedelta(minutes=115)
        d.apply_event(_from_anna(10, clock[0], out_of_office=False))
        d.step()
        assert planned == [] and len(nudged()) == 1  # she writes: nothing planned again
        clock[0] = MONDAY_0900 + dt.timedelta(minutes=118)
        d.apply_event(_from_anna(11, clock[0], out_of_office=True))
        d.step()
        assert planned and len(nudged()) == 2 and PIOTR in nudged()[1]
    finally:
        store.close()


def _client_mail(mailbox: str, to: str, uid: int, received: dt.datetime) -> FolderSyncEvent:
    raw = (f"Message-ID: <rfq-{uid}@mail.client{uid}.example>\r\n"
           f"From: Buyer <buyer@client{uid}.example>\r\nTo: <{to}>\r\n"
           f"Subject: RFQ {uid}: 500 units\r\n"
           "Date: Mon, 23 Nov 2026 09:00:00 +0100\r\n\r\n").encode()
    return FolderSyncEvent(mailbox, FolderSync("INBOX", "inbox", FolderCursor(1, uid), (
        FetchedMessage(uid, received, frozenset(), raw),)))


def test_a_manager_over_the_cap_has_the_escalations_to_him_left_unread_until_it_frees(tmp_path):
    """Kasia may get one mail an hour and manages Anna and Piotr. Anna's escalation
    reaches her at 11:00; Piotr's, due at 11:20, waits until 12:00. Meanwhile Ola, Ewa
    and Jan (no manager) have a nudge coming due every five minutes, so every step has
    mail to send: those steps' reads of the items due leave out Piotr's capped
    escalation, and it goes to Kasia once her hour frees a place."""
    config, store, clock, sent = _one_mail_an_hour(tmp_path)
    extras = ("ola", "ewa", "jan")
    config = config.replace(
        accounts=config.accounts + tuple(make_account(f"{n}@agency.example", n.title())
                                         for n in extras),
        mailboxes=config.mailboxes + tuple(make_mailbox(n) for n in extras))
    reads: list[tuple[dt.datetime, list]] = []
    _plans_made(store, clock, reads)
    d = Daemon(config, store, now=lambda: clock[0], reload=lambda: config,
               send=lambda msg, cfg: sent.append(msg))
    at = lambda minutes: MONDAY_0900 + dt.timedelta(minutes=minutes)  # noqa: E731
    escalations = lambda: [m for m in sent if m["X-Ackwatch"] == "escalation"]  # noqa: E731
    try:
        d.apply_event(_client_mail("anna", ANNA, 1, at(0)))  # nudge 10:30, escalation 11:00
        d.apply_event(_client_mail("piotr", PIOTR, 2, at(20)))  # 10:50, 11:20
        for n, name in enumerate(extras):  # nudges at 11:25, 11:30, 11:35
            d.apply_event(_client_mail(name, f"{name}@agency.example", 3 + n, at(55 + 5 * n)))
        for minutes in (91, 111, 121, 141):
            clock[0] = at(minutes)
            d.step()
        assert [KASIA in str(m["To"]) for m in escalations()] == [True]
        reads.clear()
        for minutes in (146, 151, 156):  # Ola's, Ewa's, Jan's nudge
            clock[0] = at(minutes)
            d.step()
        nudged = [str(m["To"]) for m in sent if m["X-Ackwatch"] == "nudge"]
        assert [any(n in to for to in nudged) for n in extras] == [True, True, True]
        assert [t for t, _ in reads] == [at(146), at(151), at(156)]
        assert not [r for _, found in reads for r in found if r.account == PIOTR]
        clock[0] = at(182)  # an hour after Anna's escalation reached Kasia
        d.step()
        assert len(escalations()) == 2
        assert KASIA in str(escalations()[1]["To"]) and PIOTR in str(escalations()[1]["Cc"])
    finally:
        store.close()


def test_a_person_stays_known_as_capped_only_while_their_hour_is_full(tmp_path):
    """Kasia's hour holds one mail (the cap) that rolls out at 11:00. She is known as
    capped until then, not after; and no longer once that mail is cancelled (answered
    before it went): her place is free again at once."""
    config, store, _, _ = _one_mail_an_hour(tmp_path)
    known = {KASIA: MONDAY_0900 + dt.timedelta(hours=1)}
    try:
        mail = store.enqueue(kind="escalation", recipient=KASIA, cc=(ANNA,), account=ANNA,
                             nudge_keys=[], escalation_keys=[],
                             message_id="<e1@ackwatch.agency.example>", now=MONDAY_0900)
        at = lambda minutes: MONDAY_0900 + dt.timedelta(minutes=minutes)  # noqa: E731
        assert nudges.still_capped(store, config, at(30), known) == known
        assert nudges.still_capped(store, config, at(60), known) == {}
        store.outbox_close(mail, "cancelled")
        assert nudges.still_capped(store, config, at(30), known) == {}
    finally:
        store.close()


def test_a_reload_that_raises_the_cap_sends_the_capped_escalation_at_once(tmp_path):
    """Piotr's escalation waits for Kasia's hour (one mail an hour); the config is
    reloaded with two an hour: it goes at the next step, not when her hour frees."""
    config, store, clock, sent = _one_mail_an_hour(tmp_path)
    configs = [config]
    d = Daemon(config, store, now=lambda: clock[0], reload=lambda: configs[-1],
               send=lambda msg, cfg: sent.append(msg))
    at = lambda minutes: MONDAY_0900 + dt.timedelta(minutes=minutes)  # noqa: E731
    escalations = lambda: [m for m in sent if m["X-Ackwatch"] == "escalation"]  # noqa: E731
    try:
        d.apply_event(_client_mail("anna", ANNA, 1, at(0)))  # escalation due 11:00
        d.apply_event(_client_mail("piotr", PIOTR, 2, at(20)))  # 11:20
        for minutes in (91, 111, 121, 141, 146):
            clock[0] = at(minutes)
            d.step()
        assert len(escalations()) == 1
        configs.append(dataclasses.replace(config, notify=dataclasses.replace(
            config.notify, max_per_hour=2)))
        d.request_reload()
        clock[0] = at(147)
        d.step()
        assert len(escalations()) == 2 and PIOTR in str(escalations()[1]["Cc"])
    finally:
        store.close()
