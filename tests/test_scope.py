"""Re-evaluating only the threads new mail can touch gives what evaluating everything gives.

The daemon (evaluation.Evaluator.reevaluate / _scope, with the store's links, threads and dirty
tables) evaluates, after each change, the whole threads (as last evaluated) of the changed
mail and of every stored mail sharing a `threads.link_values` value with it. These tests
replay random arrivals batch by batch twice, once that way and once evaluating everything
each time, applying the store's item rules (pending items no longer found are dropped,
acknowledged ones are kept), and expect the same items.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.random_mail import ANNA, JAN, MAIL_SPEC, MARTA, PIOTR, T0

from ackwatch.core.classify import agency_identities
from ackwatch.core.item_rules import Item, evaluate_threads
from ackwatch.core.message import Message
from ackwatch.core.threads import link_values
from configfactory import make_config
from mailfactory import mail

CONFIG = make_config()
NOISE = agency_identities(CONFIG)


def _apply(stored: dict[str, Item], found: tuple[Item, ...], scope: set[str] | None) -> None:
    """The store's `sync_items` rules on a dict key -> item."""
    seen = {i.key for i in found}
    for key in [k for k in stored if (scope is None or k in scope) and k not in seen]:
        if stored[key].ack is None:
            del stored[key]  # "dropped"
    for item in found:
        stored[item.key] = item


class _ScopedDaemon:
    """The daemon's bookkeeping, in memory: links (no noise), threads, items."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.links: dict[str, set[str]] = defaultdict(set)
        self.thread_of: dict[str, str] = {}
        self.items: dict[str, Item] = {}

    def arrive(self, batch: list[Message]) -> None:
        for m in batch:
            self.messages.append(m)
            for v in link_values(self._copies(m.key)):
                self.links[v].add(m.key)
        dirty = {m.key for m in batch}
        wanted: set[str] = set()
        for key in dirty:
            wanted |= link_values(self._copies(key), NOISE)
        related = dirty.union(*(self.links[v] for v in wanted))
        threads = {self.thread_of[k] for k in related if k in self.thread_of}
        scope = related | {k for k, t in self.thread_of.items() if t in threads}
        found, thread_of = evaluate_threads(
            [m for m in self.messages if m.key in scope], CONFIG
        )
        _apply(self.items, found, scope)
        self.thread_of.update(thread_of)


    def _copies(self, key: str) -> list[Message]:
        return [m for m in self.messages if m.key == key]


class _FullDaemon:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.items: dict[str, Item] = {}

    def arrive(self, batch: list[Message]) -> None:
        self.messages.extend(batch)
        found, _ = evaluate_threads(self.messages, CONFIG)
        _apply(self.items, found, None)


def _message(spec: tuple, uid: int) -> Message:
    mid, refs, subject, sender, hours, thrid, flags, mailbox = spec
    agency = sender in (ANNA, PIOTR)
    received = T0 + dt.timedelta(hours=hours)
    return mail(
        message_id=mid,
        references=refs,
        subject=subject,
        from_=sender,
        to=JAN if agency else (ANNA if mailbox == "anna" else PIOTR),
        cc=MARTA if hours % 3 == 0 else None,
        received=received,
        gm_thrid=thrid,
        flags=flags,
        answered_at=received if "\\Answered" in flags else None,
        dismissed_at=received if "$Ackwatch-Done" in flags else None,
        mailbox=mailbox,
        folder="Sent" if agency else "INBOX",
        role="sent" if agency else "inbox",
        uid=uid,
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(MAIL_SPEC, min_size=1, max_size=4), min_size=1, max_size=6))
def test_scoped_reevaluation_finds_the_same_items_as_a_full_one(batches):
    scoped, full = _ScopedDaemon(), _FullDaemon()
    uid = 0
    for batch in batches:
        messages = []
        for spec in batch:
            uid += 1
            messages.append(_message(spec, uid))
        scoped.arrive(messages)
        full.arrive(messages)
        assert scoped.items == full.items


def test_a_reply_only_loads_its_own_thread():
    daemon = _ScopedDaemon()
    first = mail(message_id="<q1@acme.example>", subject="Quote", received=T0)
    other = mail(message_id="<o1@globex.example>", from_=MARTA, subject="Invoice",
                 received=T0 + dt.timedelta(minutes=5))
    daemon.arrive([first, other])
    answer = mail(message_id="<r1@agency.example>", from_=ANNA, to=JAN, subject="Re: Quote",
                  in_reply_to="<q1@acme.example>", references=["<q1@acme.example>"],
                  received=T0 + dt.timedelta(minutes=30), folder="Sent", role="sent")
    wanted = link_values([answer], NOISE)
    related = {answer.key}.union(*(daemon.links[v] for v in wanted))
    assert related == {answer.key, first.key}
    daemon.arrive([answer])
    assert daemon.items[first.key].ack is not None
    assert daemon.items[other.key].ack is None
