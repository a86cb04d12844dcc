"""`daemon.parsedmail`: stored mail parsed once, what the store keeps of each parse."""

from __future__ import annotations

import datetime as dt

from tests.support.storing import (
    T0,
    headers,
    loaded,
    new,
    store_step,
)

from ackwatch.daemon import parsedmail
from ackwatch.daemon.parsedmail import (
    MAX_HEADER_VARIANTS,
    ParsedMail,
    copies_to_store,
    messages_of,
)
from ackwatch.store import NewMessage
from ackwatch.store.sqlite import SqliteStore as Store


def test_a_stored_copy_is_parsed_once_and_kept_until_its_first_load(store):
    parsed = ParsedMail()
    store_step(store, [new(1), new(2)], parsed=parsed, now=T0)
    (m1,) = loaded(store, keys=["<m1@client.example>"], parsed=parsed)
    assert parsed.kept() == 1  # m2: still waiting for its first load
    everything = loaded(store, parsed=parsed)
    assert parsed.kept() == 0
    assert [m.uid for m in everything] == [1, 2] and everything[0] == m1


def test_a_copy_loaded_again_soon_is_not_parsed_again(store, monkeypatch):
    """The promise keeper and the next evaluation of a thread read the copies the last
    one just loaded: the last `RECENT_PARSES` loaded are kept for them."""
    monkeypatch.setattr(parsedmail, "RECENT_PARSES", 2)
    parses: list[int] = []
    real = parsedmail.parse_stored
    monkeypatch.setattr(parsedmail, "parse_stored", lambda c: parses.append(c.uid) or real(c))
    parsed = ParsedMail()
    store_step(store, [new(1), new(2), new(3)], parsed=parsed, now=T0)
    first = loaded(store, parsed=parsed)
    assert parses == [] and parsed.kept() == 0
    again = loaded(store, keys=["<m2@client.example>", "<m3@client.example>"], parsed=parsed)
    assert parses == [] and again == first[1:]
    assert loaded(store, keys=["<m1@client.example>"], parsed=parsed) == first[:1]
    assert parses == [1]  # the least recently loaded went first
    assert loaded(store, keys=["<m3@client.example>"], parsed=parsed) == first[2:]
    assert parses == [1]


def test_a_recent_parse_gets_the_flags_stored_since(store):
    parsed = ParsedMail()
    store_step(store, [new(1), new(2)], parsed=parsed, now=T0)
    loaded(store, parsed=parsed)
    store_step(store, [], parsed=parsed, last_uid=2, now=T0 + dt.timedelta(hours=1),
               flag_updates=[(2, frozenset({"$Ackwatch-Done"}))])
    again = loaded(store, parsed=parsed)
    assert again == messages_of(store.load_copies())
    assert again[1].dismissed_at == T0 + dt.timedelta(hours=1)


def test_a_recent_parse_is_not_given_for_a_new_mail_under_the_same_uid(store):
    parsed = ParsedMail()
    store_step(store, [new(1, n=1)], parsed=parsed, now=T0)
    loaded(store, parsed=parsed)
    store_step(store, [new(1, n=2)], uidvalidity=2, reset=True, now=T0)  # stored elsewhere
    assert [m.key for m in loaded(store, parsed=parsed)] == ["<m2@client.example>"]


def test_a_kept_parse_is_not_given_for_a_new_mail_under_the_same_uid(store):
    parsed = ParsedMail()
    store_step(store, [new(1, n=1)], parsed=parsed, now=T0)
    store_step(store, [new(1, n=2)], parsed=parsed, uidvalidity=2, reset=True, now=T0)
    assert [m.key for m in loaded(store, parsed=parsed)] == ["<m2@client.example>"]


def test_a_kept_parse_is_what_parsing_the_stored_copy_gives(store):
    """Flags and flag times included: the kept parse gets the stored ones."""
    parsed = ParsedMail()
    store_step(store, [new(1, n=1), new(2, n=2, flags=["\\Answered"]), new(3, n=3)],
               parsed=parsed, now=T0)
    store_step(store, [], parsed=parsed, last_uid=3, now=T0 + dt.timedelta(hours=1),
               flag_updates=[(3, frozenset({"$Ackwatch-Done"}))])
    kept = loaded(store, parsed=parsed)
    assert [m.uid for m in kept] == [1, 2, 3]
    assert kept == messages_of(store.load_copies())  # parsed from the stored bytes
    assert kept[1].answered_at == T0 and kept[2].dismissed_at == T0 + dt.timedelta(hours=1)


def test_prepared_parses_are_what_storing_would_parse(tmp_path):
    """`ParsedMail.prepare` (a first sync parses each batch while the server sends the
    next) changes nothing: same stored mail, same loaded messages, flag times included;
    a prepared parse of other bytes, another role or another folder is not used."""
    msgs = [new(1), new(2, flags={"\\Answered", "\\Seen"}), new(3, flags={"$ackwatch-done"}),
            new(4)]
    plain = Store.open(tmp_path / "plain")
    store_step(plain, msgs, now=T0)
    expected = loaded(plain)
    plain.close()

    s = Store.open(tmp_path / "prepared")
    parsed = ParsedMail()
    parsed.prepare("anna", "INBOX", "inbox", msgs[:3])
    parsed.prepare("anna", "INBOX", "inbox", [NewMessage(4, msgs[3].received, frozenset(),
                                                         headers(99, "Other bytes"))])
    parsed.prepare("anna", "Archive", "inbox", msgs)  # another folder: not this sync's
    ready = {uid: entry[2] for uid, entry in parsed._prepared[("anna", "INBOX")].items()}
    assert store_step(s, msgs, parsed=parsed, now=T0) == 4
    got = loaded(s, parsed=parsed)
    assert got == expected
    assert got[0] is ready[1] and got[3] is not ready[4]  # used; other bytes: parsed anew
    assert got[1].answered_at == T0 and got[2].dismissed_at == T0
    assert ("anna", "INBOX") not in parsed._prepared  # used up by the sync
    s.close()


def test_two_variants_fetched_in_one_step_pair_their_subjects_and_people(store):
    other = (b"Message-ID: <m1@client.example>\r\nFrom: Other <o@other.example>\r\n"
             b"Subject: Spring campaign brief\r\n\r\n")
    store_step(store, [new(1), NewMessage(5, T0, frozenset(), other)], now=T0)
    assert store.keys_linked(["sp:spring campaign brief c@client.example"]) == {
        "<m1@client.example>"
    }


def test_a_message_id_reused_by_many_mails_links_a_new_copy_with_a_few_of_them(store):
    """Storing stays linear when a mailer gives one Message-ID to everything: a new copy
    is linked with `MAX_HEADER_VARIANTS` of the key's other variants at most."""
    variants = [NewMessage(i, T0, frozenset(), headers(1, f"Topic {i}")) for i in range(1, 31)]
    store_step(store, variants[:29], now=T0)
    (last,) = copies_to_store(store, ParsedMail().parse("anna", "INBOX", "inbox", variants[29:]))
    subjects = {v.rsplit(" ", 1)[0] for v in last.links if v.startswith("sp:")}
    assert "sp:topic 30" in subjects
    assert len(subjects) == 1 + MAX_HEADER_VARIANTS


class _Reads:
    """A store whose reads of header bytes are counted."""

    def __init__(self, store) -> None:  # type: ignore[no-untyped-def]
        self.store = store
        self.with_bytes: list[object] = []  # "all" (a load with them) or a copy's UID

    def load_copies(self, since=None, *, keys=None, headers=True):  # type: ignore[no-untyped-def]
        if headers:
            self.with_bytes.append("all")
        return self.store.load_copies(since, keys=keys, headers=headers)

    def with_headers(self, copies):  # type: ignore[no-untyped-def]
        found = self.store.with_headers(copies)
        self.with_bytes += [c.uid for c in found]
        return found


def test_the_load_after_a_first_sync_reads_no_header_bytes(store):
    """Every copy's parse is kept: the load reads the copies without their bytes, and
    gives what parsing the stored bytes gives."""
    parsed = ParsedMail()
    store_step(store, [new(1), new(2, flags=["\\Answered"]), new(3)], parsed=parsed, now=T0)
    reads = _Reads(store)
    got = parsed.load(reads, T0 - dt.timedelta(days=1))
    assert reads.with_bytes == []
    assert got == messages_of(store.load_copies())


def test_the_load_reads_the_bytes_of_the_copies_whose_parse_is_not_held(store):
    """Stored by another process (mail 4), or stored anew under a new UIDVALIDITY since
    a parse of that UID was kept (mail 5 under UID 1 of the Sent folder's second life)."""
    parsed = ParsedMail()
    store_step(store, [new(1), new(2)], parsed=parsed, now=T0)
    store_step(store, [new(1)], parsed=parsed, folder="Sent", role="sent", now=T0)
    store_step(store, [new(3, n=4)], now=T0)  # another process
    store_step(store, [new(1, n=5)], folder="Sent", role="sent", uidvalidity=2, reset=True,
               now=T0)
    reads = _Reads(store)
    got = parsed.load(reads, T0 - dt.timedelta(days=1))
    assert sorted(reads.with_bytes) == [1, 3]  # Sent's new UID 1, INBOX's UID 3
    assert got == messages_of(store.load_copies())


def test_a_copy_deleted_between_the_two_reads_is_left_out(store):
    parsed = ParsedMail()
    store_step(store, [new(1), new(2)], parsed=parsed, now=T0)
    store_step(store, [new(1, n=3)], folder="Sent", role="sent", now=T0)

    class Deleting(_Reads):
        def with_headers(self, copies):  # type: ignore[no-untyped-def]
            store_step(store, [], folder="Sent", role="sent", uidvalidity=2, reset=True,
                       now=T0)
            return super().with_headers(copies)

    got = parsed.load(Deleting(store), T0 - dt.timedelta(days=1))
    assert [(m.folder, m.uid) for m in got] == [("INBOX", 1), ("INBOX", 2)]
