"""What a plan reads while someone is over the hourly cap: the items due without the
actions that can only go to that person (`Store.items_due`'s skip arguments), and how
many mails of their hour still count (`Store.reach_counts`). On both backends."""

from __future__ import annotations

import dataclasses
import datetime as dt

from tests.support.storing import T0

from ackwatch.core.item_rules import Deadlines, Item

H = dt.timedelta(hours=1)
ANNA, PIOTR = "anna@agency.example", "piotr@agency.example"


def item(key: str, account: str | None, *, nudge_at: dt.datetime,
         escalate_at: dt.datetime | None) -> Item:
    return Item(
        key=key, thread=key, message_id=f"<{key}@client.example>",
        client_address="ceo@client.example", client="Acme", subject=f"Re: Quote {key}",
        received=T0, mailboxes=("anna",), account=account,
        deadlines=Deadlines("default", "business", T0 + H, nudge_at, escalate_at),
    )


def _due_keys(store, **skip) -> set[str]:
    return {r.key for r in store.items_due(T0, **skip)}


def test_items_due_leaves_out_the_skipped_accounts_nudges_and_escalations_only(store):
    store.sync_items([
        item("anna-nudge", ANNA, nudge_at=T0 - H, escalate_at=T0 + H),
        item("anna-escalation", ANNA, nudge_at=T0 - 2 * H, escalate_at=T0 - H),
        item("piotr-nudge", PIOTR, nudge_at=T0 - H, escalate_at=None),
        item("piotr-both", PIOTR, nudge_at=T0 - H, escalate_at=T0 - H),
        item("nobody", None, nudge_at=T0 - H, escalate_at=T0 - H),
    ], now=T0, initial_keys=set())
    store.mark_items_done("nudge", ["anna-escalation"], "sent")
    everything = {"anna-nudge", "anna-escalation", "piotr-nudge", "piotr-both", "nobody"}
    assert _due_keys(store) == everything

    assert _due_keys(store, skip_escalations_of=[ANNA]) == everything - {"anna-escalation"}
    assert _due_keys(store, skip_nudges_of=[ANNA]) == everything - {"anna-nudge"}
    # Due through the other action as well: read whole, with both actions.
    assert _due_keys(store, skip_nudges_of=[PIOTR]) == everything - {"piotr-nudge"}
    assert _due_keys(store, skip_nudges_of=[PIOTR], skip_escalations_of=[PIOTR]) == (
        everything - {"piotr-nudge", "piotr-both"})
    both = next(r for r in store.items_due(T0, skip_escalations_of=[PIOTR])
                if r.key == "piotr-both")
    assert both.escalate_at == T0 - H
    # An item without an account is never skipped; an unknown account skips nothing.
    assert _due_keys(store, skip_nudges_of=[ANNA, PIOTR], skip_escalations_of=[ANNA, PIOTR]
                     ) == {"nobody"}
    assert _due_keys(store, skip_nudges_of=["ola@agency.example"]) == everything


def test_items_due_with_skips_keeps_its_received_order(store):
    store.sync_items([
        dataclasses.replace(item(f"k{i}", ANNA if i % 2 else PIOTR, nudge_at=T0 - H,
                                 escalate_at=T0 - H), received=T0 - i * H)
        for i in range(6)
    ], now=T0, initial_keys=set())
    found = store.items_due(T0, skip_escalations_of=[ANNA])
    assert [r.key for r in found] == ["k5", "k4", "k3", "k2", "k1", "k0"]


def test_reach_counts_count_the_mail_after_an_instant_that_still_reaches_each_person(store):
    for n, at in enumerate((T0, T0 + H / 4, T0 + H / 2)):
        store.enqueue(kind="escalation", recipient="Kasia@agency.example", cc=(ANNA,),
                      account=ANNA, nudge_keys=[], escalation_keys=[],
                      message_id=f"<{n}@ackwatch.agency.example>", now=at)
    cancelled = store.enqueue(kind="nudge", recipient="kasia@agency.example", cc=(),
                              account=None, nudge_keys=[], escalation_keys=[],
                              message_id="<c@ackwatch.agency.example>", now=T0 + H / 2)
    store.outbox_close(cancelled, "cancelled")  # no longer counts: its place is free again
    people = ["KASIA@agency.example", ANNA, PIOTR]
    assert store.reach_counts(T0 - H, people) == {"kasia@agency.example": 3, ANNA: 3}
    assert store.reach_counts(T0, people) == {"kasia@agency.example": 2, ANNA: 2}  # strictly
    assert store.reach_counts(T0 + H / 2, people) == {}
    assert store.reach_counts(T0, []) == {}
