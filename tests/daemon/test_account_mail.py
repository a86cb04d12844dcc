"""Who is away is told from each address's newest mail, read from the store a page at a
time (`AccountMail`): never everything the accounts sent within the look-back.

Mail is stored through the daemon's own path (`Daemon.apply_event`, no network) and read
back with `Daemon.messages_of_accounts`; what was loaded is asserted by wrapping the
store's `load_copies` and `newest_from`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ackwatch.core import item_rules
from ackwatch.daemon.accountmail import PAGE
from ackwatch.daemon.parsedmail import messages_of
from ackwatch.daemon.service import Daemon
from ackwatch.mail.sync import FolderCursor, FolderSync, FolderSyncEvent
from ackwatch.mail.uidfetch import FetchedMessage
from ackwatch.store.sqlite import SqliteStore as Store
from configfactory import ANNA, KASIA, PIOTR, make_config

NOW = dt.datetime(2026, 11, 25, 11, 0, tzinfo=dt.UTC)  # a Wednesday

# Anna's own mail as Outlook leaves it in her Sent Items: a reply to a client, Exchange's
# out-of-office notice, and a calendar notice her mail program sent for her.
KINDS = {
    "human": ["Subject: RE: Banner sizes", "Thread-Topic: Banner sizes",
              "X-MS-Has-Attach: yes", "Content-Language: pl-PL"],
    "ooo": ["Subject: Automatyczna odpowiedź: Banner sizes", "Auto-Submitted: auto-replied",
            "X-Auto-Response-Suppress: All", "X-MS-Exchange-Inbox-Rules-Loop: anna@agency.example"],
    "notice": ["Subject: Accepted: Banner review", "Auto-Submitted: auto-generated",
               "X-MS-Exchange-Calendar-Originating-Item: yes"],
}


def sent(uid: int, kind: str, received: dt.datetime) -> FetchedMessage:
    lines = [f"Message-ID: <anna.{uid}@agency.example>", "From: Anna Nowak <anna@agency.example>",
             "To: Marta Zielinska <marta.zielinska@globex.example>",
             f"Date: {received.strftime('%a, %d %b %Y %H:%M:%S +0000')}", *KINDS[kind]]
    return FetchedMessage(uid, received, frozenset(), ("\r\n".join(lines) + "\r\n\r\n").encode())


def store_sent(daemon: Daemon, *messages: FetchedMessage) -> None:
    for m in messages:  # one step each, as the sent watch brings them
        daemon.apply_event(FolderSyncEvent("anna", FolderSync(
            "Sent Items", "sent", FolderCursor(1, m.uid), new_messages=(m,),  # type: ignore[arg-type]
        )))


def make_daemon(state_dir: Path) -> tuple[Daemon, Store]:
    config = make_config(state_dir=state_dir)
    store = Store.open(state_dir)
    return Daemon(config, store, now=lambda: NOW, reload=lambda: config), store


@pytest.fixture
def daemon(tmp_path):
    d, store = make_daemon(tmp_path)
    yield d
    store.close()


@pytest.fixture
def reads(daemon, monkeypatch):
    """The keys each `load_copies` of the store loaded, in order."""
    loads: list[set[str]] = []
    real_load = daemon.store.load_copies
    monkeypatch.setattr(daemon.store, "load_copies",
                        lambda *a, **kw: loads.append(set(kw["keys"])) or real_load(*a, **kw))
    return loads


def anna_mail(daemon: Daemon) -> list[str]:
    got = daemon.messages_of_accounts({ANNA}, NOW)
    return [m.key for m in got if m.sender.address == ANNA]


def test_an_account_that_wrote_lately_is_read_from_its_newest_mail_only(daemon, reads):
    store_sent(daemon, *(sent(n, "human", NOW - dt.timedelta(minutes=5 * n))
                         for n in range(1, 41)))
    assert anna_mail(daemon) == ["<anna.1@agency.example>"]
    assert reads == [{"<anna.1@agency.example>"}]  # one parse, not her 40 mails
    assert item_rules.recipient_for(ANNA, daemon.config, NOW,
                                    daemon.messages_of_accounts({ANNA}, NOW)) == ANNA


def test_an_out_of_office_behind_a_run_of_automated_mail_is_found_page_by_page(daemon):
    notices = [sent(n, "notice", NOW - dt.timedelta(minutes=n)) for n in range(1, 2 * PAGE + 3)]
    ooo = sent(100, "ooo", NOW - dt.timedelta(hours=3))
    older = sent(101, "human", NOW - dt.timedelta(days=1))
    store_sent(daemon, older, ooo, *notices)
    keys = anna_mail(daemon)
    assert keys[-1] == "<anna.100@agency.example>"  # stops at the notice, above her reply
    assert "<anna.101@agency.example>" not in keys
    messages = daemon.messages_of_accounts({ANNA}, NOW)
    assert item_rules.away_reason(ANNA, daemon.config, NOW, messages) == "out-of-office"
    assert item_rules.recipient_for(ANNA, daemon.config, NOW, messages) == PIOTR


def test_an_account_back_from_leave_is_seen_by_its_next_mail(daemon, reads):
    store_sent(daemon, sent(1, "ooo", NOW - dt.timedelta(hours=20)))
    assert item_rules.recipient_for(
        ANNA, daemon.config, NOW, daemon.messages_of_accounts({ANNA}, NOW)) == PIOTR
    store_sent(daemon, sent(2, "human", NOW - dt.timedelta(minutes=1)))
    assert anna_mail(daemon) == ["<anna.2@agency.example>"]
    assert item_rules.recipient_for(
        ANNA, daemon.config, NOW, daemon.messages_of_accounts({ANNA}, NOW)) == ANNA
    assert reads == [{"<anna.1@agency.example>"}, {"<anna.2@agency.example>"}]


def test_what_is_kept_parsed_follows_the_addresses_not_what_they_sent(daemon, reads):
    """Asked again and again while she writes, the cache keeps her newest mail only; asked
    for one account and then another, neither is parsed again."""
    for n in range(1, 31):
        store_sent(daemon, sent(n, "human", NOW - dt.timedelta(minutes=100 - n)))
        daemon.messages_of_accounts({ANNA}, NOW)
        daemon.messages_of_accounts({KASIA}, NOW)
    assert list(daemon.evaluation.account_mail.cache) == ["<anna.30@agency.example>"]
    assert len(reads) == 30  # each of her mails parsed once, as it became her newest
    # Her mail older than the out-of-office look-back leaves the cache.
    later = NOW + daemon.config.notify.out_of_office_lookback + dt.timedelta(hours=2)
    assert daemon.messages_of_accounts({ANNA}, later) == []
    assert daemon.evaluation.account_mail.cache == {}


def test_a_copy_stored_later_in_another_mailbox_is_read_with_its_key(daemon, reads):
    """Her reply seen again in Piotr's inbox (he was in Cc) a second later: that copy is
    read too, as `away_reason` would see it among all her mail."""
    reply = sent(1, "human", NOW - dt.timedelta(minutes=10))
    store_sent(daemon, reply)
    assert len(daemon.messages_of_accounts({ANNA}, NOW)) == 1
    daemon.apply_event(FolderSyncEvent("piotr", FolderSync(
        "INBOX", "inbox", FolderCursor(1, 7),  # type: ignore[arg-type]
        new_messages=(FetchedMessage(7, reply.received + dt.timedelta(seconds=1), frozenset(),
                                     reply.header_bytes),),
    )))
    copies = [m for m in daemon.messages_of_accounts({ANNA}, NOW) if m.sender.address == ANNA]
    assert sorted(m.mailbox for m in copies) == ["anna", "piotr"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(sorted(KINDS)), st.integers(0, 100)),
                min_size=1, max_size=25))
def test_newest_mail_tells_who_is_away_as_all_her_mail_would(mail):
    """Whatever Anna sent (out-of-office notices, human mail, automated notices, some in
    the same second, some beyond the look-back): her newest mail gives the answer that
    `away_reason` gives over everything she sent."""
    with tempfile.TemporaryDirectory() as state_dir:
        daemon, store = make_daemon(Path(state_dir))
        try:
            fetched = [sent(uid, kind, NOW - dt.timedelta(hours=hours))
                       for uid, (kind, hours) in enumerate(mail, start=1)]
            store_sent(daemon, *fetched)
            everything = messages_of(store.load_copies(NOW - dt.timedelta(days=30)))
            newest = daemon.messages_of_accounts({ANNA}, NOW)
            config = daemon.config
            assert (item_rules.away_reason(ANNA, config, NOW, newest)
                    == item_rules.away_reason(ANNA, config, NOW, everything))
            assert {m.key for m in newest} <= {m.key for m in everything}
        finally:
            store.close()
