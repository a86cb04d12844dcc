"""Broken mail through the core and the store: nothing raises, nothing is lost (issue 6).

For every mail of the corpus (`tests/hostile/corpus`): `parse_message` does not raise and
keeps its limits; the core (classify + assign_threads + sla.evaluate) over that mail plus
a normal client mail right after it does not raise; every mail is classified or carries
a defect; and the normal mail is still an item of its own. The same through the store
(`apply_folder_sync` + `load_copies` + evaluate), the path the daemon takes.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

import pytest
from structlog.testing import capture_logs
from tests.hostile.corpus import (
    STDLIB_DIR,
    STDLIB_SKIP_REASON,
    Case,
    all_cases,
    generated,
    hand_written,
    normal_key,
    normal_mail,
    stdlib_messages,
)
from tests.support.storing import store_step

from ackwatch.core import classify as cls_mod
from ackwatch.core import item_rules as sla
from ackwatch.core.message import (
    MAX_ADDRESSES,
    MAX_NAME_CHARS,
    MAX_SUBJECT_CHARS,
    Message,
    parse_message,
)
from ackwatch.core.message_ids import MAX_REFERENCES, normalize_message_id
from ackwatch.core.threads import assign_threads
from ackwatch.daemon.parsedmail import messages_of
from ackwatch.store import NewMessage
from ackwatch.store.sqlite import SqliteStore as Store
from configfactory import make_config
from mailfactory import mail

CONFIG = make_config()
RECEIVED = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)  # Monday 10:00 in Warsaw
AFTER = RECEIVED + dt.timedelta(minutes=1)
CASES = all_cases()
KINDS = {"client", "agency", "auto", "own", "ignored", "other"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def parse(data: bytes, *, uid: int = 1, received: dt.datetime = RECEIVED,
          folder: str = "INBOX", role: str = "inbox") -> Message:
    return parse_message(data, mailbox="anna", folder=folder, role=role,  # type: ignore[arg-type]
                         uid=uid, received=received)


def _strings(m: Message) -> list[str]:
    addrs = (m.sender, *m.reply_to, *m.to, *m.cc)
    return [m.subject, *(a.address for a in addrs), *(a.name for a in addrs)]


# --------------------------------------------------------------------------- the corpus


def test_corpus_has_every_kind_of_breakage():
    names = {c.name for c in hand_written() + generated()}
    for wanted in (
        "latin1_raw_8bit", "cp1251_raw_8bit", "shift_jis_raw_8bit", "unknown_charset",
        "unterminated_encoded_word", "nul_bytes", "one_mb_single_header", "references_5000",
        "missing_message_id", "duplicate_headers", "far_past_date", "year_1900_date",
        "far_future_date", "far_future_date_no_message_id", "header_without_colon",
        "whitespace_only_folds",
        "from_1000_addresses", "empty", "only_crlf",
    ):
        assert wanted in names


def test_stdlib_email_test_messages_are_in_the_corpus():
    if STDLIB_DIR is None:
        pytest.skip(STDLIB_SKIP_REASON)
    assert len(stdlib_messages()) >= 40


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_broken_mail_parses_within_limits(case: Case):
    m = parse(case.data)
    assert isinstance(m, Message)
    assert m.received == RECEIVED
    assert len(m.subject) <= MAX_SUBJECT_CHARS
    assert len(m.references) <= MAX_REFERENCES
    for field in (m.to, m.cc, m.reply_to):
        assert len(field) <= MAX_ADDRESSES
    for a in (m.sender, *m.reply_to, *m.to, *m.cc):
        assert len(a.name) <= MAX_NAME_CHARS
    # No control characters anywhere a person (or `ackwatch status`) will see them.
    for text in _strings(m):
        assert not _CONTROL.search(text), (case.name, text)
    # Ids are normalized (so they compare), the key is the id or a header hash.
    for mid in (m.message_id, *m.in_reply_to, *m.references):
        if mid is not None:
            assert normalize_message_id(mid) == mid
    assert m.key == m.message_id or (m.message_id is None and m.key.startswith("hash:"))
    assert m.message_id not in m.references and m.message_id not in m.in_reply_to
    # Parsing is a function of the bytes.
    assert parse(case.data) == m


@pytest.mark.parametrize(
    ("name", "defect"),
    [
        ("cp1251_raw_8bit", "bad-encoding:subject"),
        ("latin1_raw_8bit", "bad-encoding:subject"),
        ("shift_jis_raw_8bit", "bad-encoding:subject"),
        ("unknown_charset", "unknown-charset:subject"),
        ("unterminated_encoded_word", "bad-encoding:subject"),
        ("nul_bytes", "bad-address:from"),
        ("header_without_colon", "junk-line"),
        ("missing_message_id", "no-message-id"),
        ("bad_message_id", "bad-message-id"),
        ("duplicate_headers", "duplicate-header:message-id"),
        ("far_future_date_no_message_id", "bad-date"),
        ("one_mb_single_header", "headers-truncated"),
        ("references_5000", "too-many-references"),
        ("from_1000_addresses", "header-too-long:from"),
        ("empty", "no-from"),
        ("only_crlf", "no-from"),
        ("self_reference", "junk-reference"),
    ],
)
def test_breakage_is_named_in_the_defects(name: str, defect: str):
    case = next(c for c in CASES if c.name == name)
    assert defect in parse(case.data).defects


def test_raw_8bit_headers_keep_sender_and_a_readable_subject():
    m = parse(next(c for c in CASES if c.name == "latin1_raw_8bit").data)
    assert m.sender.address == "francois@client-fr.example"
    assert m.subject == "Devis pour la réunion à Zürich"
    m = parse(next(c for c in CASES if c.name == "cp1251_raw_8bit").data)
    assert m.sender.address == "ivan@client-ru.example"
    assert m.message_id == "<cp1251.1@client-ru.example>"


def test_nul_in_an_address_is_dropped_not_kept():
    m = parse(next(c for c in CASES if c.name == "nul_bytes").data)
    assert m.sender.address == "evil@client-z.example"
    assert [a.address for a in m.to] == ["anna@agency.example"]


def test_5000_references_keep_the_most_recent_ids():
    m = parse(next(c for c in CASES if c.name == "references_5000").data)
    assert m.references[-1] == "<ref.4999@thread.example>"
    assert len(m.references) == MAX_REFERENCES
    m = parse(next(c for c in CASES if c.name == "references_5000_folded").data)
    assert m.references[-1] == "<ref.4999@thread.example>"


def test_duplicate_headers_keep_the_first_value():
    m = parse(next(c for c in CASES if c.name == "duplicate_headers").data)
    assert m.sender.address == "jan@client-q.example"
    assert m.message_id == "<dup.1@client-q.example>"
    assert m.subject == "One"


@pytest.mark.parametrize("name", ["far_past_date", "year_1900_date", "far_future_date",
                                  "far_future_date_no_message_id"])
def test_out_of_range_date_header_never_matters(name: str):
    m = parse(next(c for c in CASES if c.name == name).data)
    assert m.received == RECEIVED  # the INTERNALDATE counts, never the Date header
    items = sla.evaluate([m], CONFIG)
    assert [i.key for i in items] == [m.key]
    assert items[0].received == RECEIVED


# --------------------------------------------------------------------------- the core


def _core(messages: list[Message]) -> tuple[sla.Item, ...]:
    for m in messages:
        c = cls_mod.classify(m, CONFIG)
        assert c.kind in KINDS
        # Classified as something definite, or the defect says why not.
        if c.kind == "other":
            assert m.defects or m.role != "inbox", (m.key, c)
    threads = assign_threads(
        messages, subject_window=CONFIG.thread_subject_window,
        agency_addresses=cls_mod.agency_identities(CONFIG),
    )
    assert set(threads) == {m.key for m in messages}
    return sla.evaluate(messages, CONFIG)


@pytest.mark.parametrize("role", ["inbox", "sent"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_core_survives_broken_mail_and_tracks_the_next_one(case: Case, role: str):
    folder = "INBOX" if role == "inbox" else "Sent"
    broken = parse(case.data, folder=folder, role=role)
    normal = parse(normal_mail(1, AFTER), uid=2, received=AFTER)
    items = _core([broken, normal])
    by_key = {i.key: i for i in items}
    assert normal_key(1) in by_key, [i.key for i in items]
    assert by_key[normal_key(1)].state == "pending"
    assert by_key[normal_key(1)].client_address == "grace@normal-client.example"
    # The broken mail, when it is tracked at all, is an item of its own.
    if cls_mod.classify(broken, CONFIG).kind == "client":
        assert broken.key in by_key


def test_whole_corpus_at_once_is_order_independent():
    messages: list[Message] = []
    for n, case in enumerate(CASES):
        t = RECEIVED + dt.timedelta(minutes=2 * n)
        messages.append(parse(case.data, uid=2 * n + 1, received=t))
        messages.append(parse(normal_mail(n, t + dt.timedelta(minutes=1)), uid=2 * n + 2,
                              received=t + dt.timedelta(minutes=1)))
    items = _core(messages)
    keys = {i.key for i in items}
    assert {normal_key(n) for n in range(len(CASES))} <= keys
    assert sla.evaluate(list(reversed(messages)), CONFIG) == items
    # Every tracked client message is in exactly one item.
    tracked = {m.key for m in messages if cls_mod.classify(m, CONFIG).kind == "client"}
    owners = [k for i in items for k in (i.key, *i.follow_ups)]
    assert len(owners) == len(set(owners))
    assert set(owners) == tracked


@pytest.mark.parametrize(
    "received",
    [
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1900, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
    ],
    ids=["year-1", "year-1900", "year-9999"],
)
@pytest.mark.parametrize("sender", ["jan@acme.example", "eve@globex.example", "x@new.example"])
def test_internaldate_at_the_ends_of_time_does_not_crash_the_core(received, sender):
    # Regression: threads._link_by_subject and sla.deadlines_for overflowed the datetime
    # range (OverflowError) for INTERNALDATEs in year 1 / 9999.
    first = mail(from_=sender, subject="Budget plan", received=received)
    again = mail(from_=sender, subject="Re: Budget plan", received=received, message_id=None)
    normal = parse(normal_mail(7, AFTER), uid=99, received=AFTER)
    items = _core([first, again, normal])
    by_key = {i.key: i for i in items}
    assert by_key[first.key].received == received
    assert by_key[first.key].deadlines.deadline.tzinfo is not None
    assert by_key[normal_key(7)].state == "pending"


def test_same_hash_key_from_several_broken_mails_is_one_item():
    # Identical From/Date/Subject/To without Message-ID (stdlib msg_08/09/10 are such):
    # one mail seen several times, not several items.
    data = b"From: jan@dup.example\r\nTo: anna@agency.example\r\nSubject: Same\r\n\r\n"
    copies = [parse(data, uid=u, received=RECEIVED + dt.timedelta(seconds=u)) for u in (1, 2, 3)]
    assert len({m.key for m in copies}) == 1
    items = _core(copies)
    assert [i.key for i in items] == [copies[0].key]
    assert items[0].received == RECEIVED + dt.timedelta(seconds=1)


# --------------------------------------------------------------------------- the store


def test_store_path_survives_the_corpus(tmp_path):
    """parse + apply_folder_sync + load_copies + parse + evaluate + sync_items: the
    daemon's path."""
    store = Store.open(tmp_path / "state")
    try:
        new: list[NewMessage] = []
        for n, case in enumerate(CASES):
            t = RECEIVED + dt.timedelta(minutes=2 * n)
            new.append(NewMessage(uid=2 * n + 1, received=t, flags=frozenset(),
                                  header_bytes=case.data))
            new.append(NewMessage(uid=2 * n + 2, received=t + dt.timedelta(minutes=1),
                                  flags=frozenset({"\\Seen"}),
                                  header_bytes=normal_mail(n, t + dt.timedelta(minutes=1))))
        with capture_logs() as logs:
            added = store_step(store, new, reset=True, now=RECEIVED)
        assert added == len(new)
        loaded = messages_of(store.load_copies())
        assert len(loaded) == len(new)
        # What was stored is what was fetched: parsing after the round trip is the same.
        assert {m.key for m in loaded} == {parse(c.data).key for c in CASES} | {
            normal_key(n) for n in range(len(CASES))
        }
        items = sla.evaluate(loaded, CONFIG)
        keys = {i.key for i in items}
        assert {normal_key(n) for n in range(len(CASES))} <= keys
        store.sync_items(items, now=AFTER, initial_keys=store.initial_keys())
        pending = {r.key for r in store.items(state="pending")}
        assert {normal_key(n) for n in range(len(CASES))} <= pending
        # Defective mail is named in the log once (without its subject), and mail whose
        # sender cannot be read (never a client mail) is a warning.
        defective = [e for e in logs if e["event"] == "mail_defects"]
        assert len(defective) == sum(1 for c in CASES if parse(c.data).defects)
        assert all("subject" not in e for e in defective)
        empty = next(e for e in defective if e["uid"] == 2 * CASES.index(
            next(c for c in CASES if c.name == "empty")) + 1)
        assert empty["log_level"] == "warning" and "no-from" in empty["defects"]
        # Syncing the same step again stores nothing new and logs nothing.
        with capture_logs() as again:
            assert store_step(store, new, now=AFTER) == 0
        assert not [e for e in again if e["event"] == "mail_defects"]
    finally:
        store.close()


def test_store_keeps_extreme_internaldates(tmp_path):
    store = Store.open(tmp_path / "state")
    try:
        times = [dt.datetime(1, 1, 1, tzinfo=dt.UTC),
                 dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.UTC), AFTER]
        new = [NewMessage(uid=i + 1, received=t, flags=frozenset(),
                          header_bytes=normal_mail(100 + i, t)) for i, t in enumerate(times)]
        store_step(store, new, reset=True, now=RECEIVED)
        loaded = messages_of(store.load_copies())
        assert sorted(m.received for m in loaded) == sorted(times)
        items = sla.evaluate(loaded, CONFIG)
        store.sync_items(items, now=AFTER, initial_keys=set())
        assert {r.key for r in store.items(state="pending")} == {
            normal_key(100), normal_key(101), normal_key(102)
        }
    finally:
        store.close()


def test_subjects_with_controls_are_clean_unicode():
    # A sample of what must hold for every subject: printable, NFC-stable enough to show.
    for case in CASES:
        subject = parse(case.data).subject
        assert all(unicodedata.category(ch) not in ("Cc", "Cs") for ch in subject)
