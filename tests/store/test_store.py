"""The state database: schema versions, crash-safe sync steps, items, outbox."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import sqlite3
import stat
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from tests.support.storing import (
    T0,
    headers,
    loaded,
    new,
    store_step,
)

from ackwatch.core.item_rules import Ack, Deadlines, Item
from ackwatch.daemon.parsedmail import link_stored
from ackwatch.store import NewMessage, StoreError
from ackwatch.store.database import DB_NAME
from ackwatch.store.schema import SCHEMA_VERSION
from ackwatch.store.sqlite import SqliteStore as Store

H = dt.timedelta(hours=1)


def sync(store: Store, msgs, *, uidvalidity=1, last_uid=None, reset=False, initial=False,
         flag_updates=(), folder="INBOX", now=T0) -> int:
    return store_step(store, msgs, uidvalidity=uidvalidity, last_uid=last_uid, reset=reset,
                      initial=initial, flag_updates=flag_updates, folder=folder, now=now)


def item(key: str, *, nudge_at=T0 + H, escalate_at=T0 + 2 * H, ack=None) -> Item:
    return Item(
        key=key, thread=key, message_id=key, client_address="c@client.example", client="Acme",
        subject="Quote", received=T0, mailboxes=("anna",), account="anna@agency.example",
        deadlines=Deadlines("default", "business", T0 + 90 * dt.timedelta(minutes=1), nudge_at,
                            escalate_at),
        ack=ack,
    )


def test_new_database_is_private_and_versioned(tmp_path):
    s = Store.open(tmp_path / "state")
    s.close()
    assert stat.S_IMODE(os.stat(tmp_path / "state").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "state" / DB_NAME).st_mode) == 0o600
    conn = sqlite3.connect(tmp_path / "state" / DB_NAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_an_existing_loose_state_dir_and_database_are_tightened_at_a_writable_open(tmp_path):
    state = tmp_path / "state"
    Store.open(state).close()
    db = state / DB_NAME
    wal, shm = state / f"{DB_NAME}-wal", state / f"{DB_NAME}-shm"
    for side in (wal, shm):
        side.touch()
    state.chmod(0o755)
    for path in (db, wal, shm):
        path.chmod(0o644)
    with capture_logs() as logs:
        Store.open(state).close()
    assert _mode(state) == 0o700
    assert all(_mode(p) == 0o600 for p in (db, wal, shm) if p.exists())
    tightened = [e for e in logs if e["event"] == "state_permissions_tightened"]
    assert {(e["path"], e["old_mode"], e["new_mode"]) for e in tightened} == {
        (str(state), "0755", "0700"), (str(db), "0644", "0600"),
        (str(wal), "0644", "0600"), (str(shm), "0644", "0600"),
    }
    assert all(e["log_level"] == "warning" for e in tightened)


def test_tightening_never_adds_a_permission_and_is_silent_when_private(tmp_path):
    state = tmp_path / "state"
    Store.open(state).close()
    (state / DB_NAME).chmod(0o640)
    Store.open(state).close()
    assert _mode(state / DB_NAME) == 0o600
    with capture_logs() as logs:
        Store.open(state).close()
    assert not [e for e in logs if e["event"].startswith("state_permissions")]


def test_a_readonly_open_leaves_the_modes_alone(tmp_path):
    state = tmp_path / "state"
    Store.open(state).close()
    state.chmod(0o750)
    Store.open(state, readonly=True).close()  # status and report: maybe another user
    assert _mode(state) == 0o750


def test_reopening_is_a_no_op_migration(tmp_path):
    Store.open(tmp_path).close()
    s = Store.open(tmp_path)
    assert s.integrity_check() == "ok"


def test_a_newer_schema_is_refused(tmp_path):
    Store.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store.open(tmp_path)


@pytest.mark.parametrize("name", ["state#1", "state?mode=rw", "state%23"])
def test_a_state_dir_named_with_uri_characters_opens_for_writing_and_reading(tmp_path, name):
    writer = Store.open(tmp_path / name)
    sync(writer, [new(1)])
    reader = Store.open(tmp_path / name, readonly=True)  # as `status` and the daemon's readers
    try:
        assert [m.uid for m in loaded(reader)] == [1]
        assert reader.readonly
    finally:
        reader.close()
        writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no stray file beside it


def test_readonly_open_without_state_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no state yet"):
        Store.open(tmp_path, readonly=True)


def test_sync_step_stores_messages_and_cursor_together(store):
    assert sync(store, [new(1), new(2)]) == 2
    assert store.cursors("anna")["INBOX"].last_uid == 2
    assert sorted(m.uid for m in loaded(store)) == [1, 2]


def test_refetching_the_same_uid_is_idempotent(store):
    sync(store, [new(1)])
    assert sync(store, [new(1)]) == 0
    assert store.message_count() == 1


def test_uidvalidity_reset_forgets_old_copies_but_not_keys(store):
    sync(store, [new(1), new(2)])
    sync(store, [new(7, n=1)], uidvalidity=2, reset=True)
    msgs = loaded(store)
    assert [(m.uid, m.key) for m in msgs] == [(7, "<m1@client.example>")]


def test_copies_read_without_their_header_bytes_get_them_by_primary_key(store):
    """`load_copies(headers=False)` then `with_headers`: the copies as one read gives them;
    a copy stored anew under another UIDVALIDITY since, or deleted, is left out."""
    sync(store, [new(1), new(2), new(3, flags={"\\Answered"})])
    sync(store, [new(1, n=9)], folder="Sent")
    whole = store.load_copies()
    bare = store.load_copies(headers=False)
    assert {c.header_bytes for c in bare} == {b""}
    assert [dataclasses.replace(c, header_bytes=b"") for c in whole] == bare
    assert sorted(store.with_headers(bare), key=lambda c: (c.folder, c.uid)) == sorted(
        whole, key=lambda c: (c.folder, c.uid))
    sync(store, [new(1, n=5)], uidvalidity=2, reset=True)  # INBOX anew: 2 and 3 deleted
    assert [(c.folder, c.uid) for c in store.with_headers(bare)] == [("Sent", 1)]


def test_answered_flag_time_is_when_first_seen(store):
    sync(store, [new(1)])
    later = T0 + H
    sync(store, [], last_uid=1, flag_updates=[(1, frozenset({"\\Answered"}))], now=later)
    sync(store, [], last_uid=1, flag_updates=[(1, frozenset({"\\Answered", "\\Seen"}))],
         now=later + H)
    (m,) = loaded(store)
    assert m.answered_at == later


def test_dismissal_keyword_is_recorded_case_insensitively(store):
    sync(store, [new(1, flags={"$ackwatch-done"})])
    (m,) = loaded(store)
    assert m.dismissed_at == T0


def test_history_import_past_due_is_suppressed_not_nudged(store):
    sync(store, [new(1)], initial=True)
    store.sync_items([item("<m1@client.example>", nudge_at=T0 - H, escalate_at=T0 - H)],
                     now=T0, initial_keys=store.initial_keys())
    (rec,) = store.items()
    assert (rec.nudge_done, rec.escalation_done) == ("suppressed", "suppressed")


def test_history_import_not_yet_due_is_still_nudged(store):
    sync(store, [new(1)], initial=True)
    store.sync_items([item("<m1@client.example>")], now=T0, initial_keys=store.initial_keys())
    (rec,) = store.items()
    assert rec.nudge_done is None


def test_live_mail_past_due_after_downtime_is_not_suppressed(store):
    sync(store, [new(1)])
    store.sync_items([item("<m1@client.example>", nudge_at=T0 - H)], now=T0,
                     initial_keys=store.initial_keys())
    assert store.items()[0].nudge_done is None


def test_acknowledgement_is_reported_once(store):
    store.sync_items([item("k")], now=T0, initial_keys=set())
    _, acked = store.sync_items(
        [item("k", ack=Ack("r", T0 + H, "reply", "anna@agency.example"))], now=T0,
        initial_keys=set())
    assert acked == ["k"]
    _, acked = store.sync_items(
        [item("k", ack=Ack("r", T0 + H, "reply", "anna@agency.example"))], now=T0,
        initial_keys=set())
    assert acked == []


def test_pending_items_of_some_keys_leaves_out_the_answered_and_the_unknown(store):
    """`pending_items(keys)`: the pending items among ``keys``, however many others
    wait (it looks the keys up; it does not walk the pending items)."""
    answered = Ack("r", T0 + H, "reply", "anna@agency.example")
    waiting = [item(f"w{n}") for n in range(30)]
    store.sync_items([*waiting, item("k1"), item("k2", ack=answered)], now=T0,
                     initial_keys=set())
    got = store.pending_items(["k1", "k2", "nobody", "w7"])
    assert [r.key for r in got] == ["k1", "w7"]  # in received order, then key
    assert all(r.state == "pending" for r in got)
    assert store.pending_items(["k2"]) == []


def test_item_no_longer_evaluated_is_dropped(store):
    store.sync_items([item("k")], now=T0, initial_keys=set())
    store.sync_items([], now=T0, initial_keys=set())
    assert store.items()[0].state == "dropped"


def test_pending_accounts_are_those_of_the_pending_items(store):
    answered = Ack("r", T0 + H, "reply", "anna@agency.example")
    store.sync_items([
        item("a"), dataclasses.replace(item("b"), account="piotr@agency.example"),
        dataclasses.replace(item("c"), account=None), dataclasses.replace(item("d"), account=""),
        dataclasses.replace(item("e", ack=answered), account="kasia@agency.example"),
        dataclasses.replace(item("f"), account="marek@agency.example"),
    ], now=T0, initial_keys=set())
    store.sync_items([item("a"), dataclasses.replace(item("b"), account="piotr@agency.example")],
                     now=T0, initial_keys=set())  # c-f dropped
    store.sync_items([dataclasses.replace(item("g"), account="ola@agency.example")], now=T0,
                     initial_keys=set(), scope={"g"})
    expected = {r.account for r in store.pending_items() if r.account}
    assert expected == {"anna@agency.example", "piotr@agency.example", "ola@agency.example"}
    assert store.pending_accounts() == expected


def test_the_next_action_is_the_earliest_nudge_or_escalation_not_done_of_a_pending_item(store):
    answered = Ack("r", T0, "reply", "anna@agency.example")
    store.sync_items([
        item("a", nudge_at=T0 - H, escalate_at=T0 + 3 * H), item("b", nudge_at=T0 + 2 * H),
        item("c", nudge_at=T0 - 2 * H, escalate_at=T0 - 2 * H, ack=answered),
    ], now=T0, initial_keys=set())
    assert store.next_action_after(None) == T0 - H  # overdue: due at once
    assert store.next_action_after(T0) == T0 + 2 * H
    store.mark_items_done("nudge", ["a"], "sent")
    assert store.next_action_after(None) == T0 + 2 * H
    store.mark_items_done("nudge", ["b"], "sent")
    store.mark_items_done("escalation", ["b"], "sent")
    assert store.next_action_after(None) == T0 + 3 * H
    store.mark_items_done("escalation", ["a"], "sent")
    assert store.next_action_after(None) is None


def test_outbox_marks_items_queued_then_sent(store):
    store.sync_items([item("a"), item("b")], now=T0, initial_keys=set())
    oid = store.enqueue(kind="nudge", recipient="anna@agency.example", cc=(), account=None,
                        nudge_keys=["a", "b"], escalation_keys=[], message_id="<x@y>", now=T0)
    assert {r.nudge_done for r in store.items()} == {"queued"}
    assert [o.id for o in store.outbox_due(T0)] == [oid]
    store.outbox_sent(oid, T0)
    assert {r.nudge_done for r in store.items()} == {"sent"}
    assert store.outbox_due(T0) == []


@pytest.mark.parametrize("end", ["failed", "cancelled"])
def test_an_item_and_its_outbox_row_end_in_the_same_state(store, end):
    store.sync_items([item("a"), item("b")], now=T0, initial_keys=set())
    oid = store.enqueue(kind="escalation", recipient="kasia@agency.example",
                        cc=("anna@agency.example",), account="anna@agency.example",
                        nudge_keys=[], escalation_keys=["a", "b"], message_id="<x@y>", now=T0)
    store.outbox_retry(oid, error="451", next_attempt_at=T0)  # still queued while retried
    assert {r.escalation_done for r in store.items()} == {"queued"}
    store.outbox_close(oid, end, error="550 5.1.1 No such user")
    assert [r[0] for r in store._conn.execute("SELECT state FROM outbox")] == [end]
    assert {r.escalation_done for r in store.items()} == {end}


def test_items_dropped_from_a_queued_mail_are_cancelled_and_the_rest_stay_queued(store):
    store.sync_items([item("a"), item("b")], now=T0, initial_keys=set())
    oid = store.enqueue(kind="nudge", recipient="anna@agency.example", cc=(), account=None,
                        nudge_keys=["a", "b"], escalation_keys=[], message_id="<x@y>", now=T0)
    store.outbox_update_items(oid, ["b"], [])
    assert {r.key: r.nudge_done for r in store.items()} == {"a": "cancelled", "b": "queued"}


def test_the_hourly_cap_counts_mail_that_reaches_a_person_to_or_cc(store):
    store.enqueue(kind="nudge", recipient="anna@agency.example", cc=(), account=None,
                  nudge_keys=[], escalation_keys=[], message_id="<1@y>", now=T0)
    store.enqueue(kind="escalation", recipient="kasia@agency.example",
                  cc=("Anna@Agency.example",), account="anna@agency.example",
                  nudge_keys=[], escalation_keys=[], message_id="<2@y>", now=T0 + H / 2)
    failed = store.enqueue(kind="nudge", recipient="anna@agency.example", cc=(), account=None,
                           nudge_keys=[], escalation_keys=[], message_id="<3@y>", now=T0)
    store.outbox_close(failed, "failed")  # never reached her
    people = ("anna@agency.example", "KASIA@agency.example")
    reached = store.reached_since(T0, people)
    assert reached["anna@agency.example"] == [T0, T0 + H / 2]
    assert reached["kasia@agency.example"] == [T0 + H / 2]
    assert store.reached_since(T0 + H / 4, people) == {
        "kasia@agency.example": [T0 + H / 2], "anna@agency.example": [T0 + H / 2]
    }


def test_the_hourly_cap_reads_only_the_people_asked_about(store):
    store.enqueue(kind="escalation", recipient="kasia@agency.example",
                  cc=("anna@agency.example",), account="anna@agency.example",
                  nudge_keys=[], escalation_keys=[], message_id="<1@y>", now=T0)
    store.enqueue_once(once_key="digest:1", kind="digest", recipient="Piotr@agency.example",
                       message_id="<2@y>", now=T0)
    store.enqueue_promises(kind="promise", recipient="piotr@agency.example",
                           cc=("mentor@agency.example",), account="piotr@agency.example",
                           promise_ids=[], message_id="<3@y>", now=T0 + H / 4)
    store.enqueue_date_asks(recipient="anna@agency.example", account="anna@agency.example",
                            item_keys=[], message_id="<4@y>", now=T0 + H / 2)
    assert store.reached_since(T0, ["piotr@agency.example", "mentor@agency.example"]) == {
        "piotr@agency.example": [T0, T0 + H / 4], "mentor@agency.example": [T0 + H / 4]
    }
    assert store.reached_since(T0, ["anna@agency.example"]) == {
        "anna@agency.example": [T0, T0 + H / 2]
    }
    assert store.reached_since(T0, []) == {}


def test_a_mail_to_and_cc_the_same_person_counts_once_for_them(store):
    store.enqueue(kind="nudge", recipient="anna@agency.example", cc=("ANNA@agency.example",),
                  account=None, nudge_keys=[], escalation_keys=[], message_id="<1@y>", now=T0)
    assert store.reached_since(T0, ["anna@agency.example"]) == {"anna@agency.example": [T0]}


def test_outbox_retry_waits_for_its_time(store):
    oid = store.enqueue(kind="nudge", recipient="a@x", cc=(), account=None, nudge_keys=[],
                        escalation_keys=[], message_id="<x@y>", now=T0)
    store.outbox_retry(oid, error="421", next_attempt_at=T0 + H)
    assert store.outbox_due(T0) == []
    assert store.outbox_due(T0 + H)[0].attempts == 1


def test_readonly_reader_sees_the_writers_commits(tmp_path):
    writer = Store.open(tmp_path)
    sync(writer, [new(1)])
    reader = Store.open(tmp_path, readonly=True)
    assert reader.message_count() == 1
    with pytest.raises(StoreError):
        reader.set_meta("x", "y")


def test_flags_of_follow_ups_are_watched_while_the_item_is_pending(store):
    import dataclasses

    sync(store, [new(1), new(2)])
    first = dataclasses.replace(item("<m1@client.example>"), follow_ups=("<m2@client.example>",))
    store.sync_items([first], now=T0, initial_keys=set())
    assert store.pending_uids("anna", "INBOX") == {1, 2}
    # Acknowledged: no flag matters any more.
    done = dataclasses.replace(first, ack=Ack("r", T0 + H, "reply", "anna@agency.example"))
    store.sync_items([done], now=T0, initial_keys=set())
    assert store.pending_uids("anna", "INBOX") == set()
    # A follow-up that the evaluation no longer folds in is forgotten.
    store.sync_items([dataclasses.replace(first, follow_ups=())], now=T0, initial_keys=set())
    assert store.pending_uids("anna", "INBOX") == {1}


def _state_of_schema(tmp_path, version: int) -> None:
    """A state database made by migrations 1..``version`` only."""
    from ackwatch.store import schema as store_mod

    conn = sqlite3.connect(tmp_path / DB_NAME)
    for statement in ";".join(store_mod.MIGRATIONS[:version]).split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()


def test_stored_times_compare_as_the_instants():
    """The store's one time format (`_iso`): the report and the status queries compare
    stored times as strings."""
    from ackwatch.store.forms import iso as _iso

    waw = ZoneInfo("Europe/Warsaw")
    earlier = dt.datetime(2026, 11, 16, 10, tzinfo=waw)  # 09:00 UTC: its local text sorts later
    later = dt.datetime(2026, 11, 16, 9, 30, tzinfo=dt.UTC)
    assert earlier.isoformat() > later.isoformat()
    assert _iso(earlier) == "2026-11-16T09:00:00.000000+00:00"
    assert _iso(earlier) < _iso(later) and _iso(later) == _iso(later.astimezone(waw))


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                    timezones=st.sampled_from([dt.UTC, ZoneInfo("Europe/Warsaw"),
                                               dt.timezone(dt.timedelta(hours=-3))])))
def test_a_stored_time_is_utc_with_six_digits_of_microseconds(t):
    from ackwatch.store.forms import iso as _iso

    assert _iso(t) == t.astimezone(dt.UTC).isoformat(timespec="microseconds")


def test_an_older_schema_is_migrated_step_by_step(tmp_path):
    _state_of_schema(tmp_path, 1)
    s = Store.open(tmp_path)
    assert s.integrity_check() == "ok"
    assert s._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    s.close()


# --------------------------------------------------------------------------- evaluation scope


def test_new_mail_is_marked_dirty_with_its_links(store):
    sync(store, [new(1)])
    assert store.dirty_keys() == {"<m1@client.example>"}
    assert store.keys_linked(["id:<m1@client.example>"]) == {"<m1@client.example>"}
    assert store.keys_linked(["sp:quote c@client.example"]) == {"<m1@client.example>"}
    assert store.keys_from(["C@client.example"], T0) == {"<m1@client.example>"}
    assert store.keys_from(["c@client.example"], T0 + H) == set()


def test_a_senders_newest_mail_is_read_a_page_at_a_time_newest_first(store):
    """`newest_from`: the rows of one sender within [since, until], newest first, ties by
    key descending, a page after the last row of the one before."""
    # Mail 1-5 one minute apart; 6 and 7 in the same minute as 5 (a tie); 8 after `until`.
    sync(store, [new(1), new(2), new(3), new(4), new(5),
                 NewMessage(6, T0 + dt.timedelta(minutes=5), frozenset(), headers(6)),
                 NewMessage(7, T0 + dt.timedelta(minutes=5), frozenset(), headers(7)),
                 new(8)])
    minute = dt.timedelta(minutes=1)
    since, until = T0 + 2 * minute, T0 + 5 * minute

    def page(limit, before=None, sender="C@client.example"):
        return [(t - T0, k) for t, k in store.newest_from(sender, since, until, limit, before)]

    first = page(2)
    assert first == [(5 * minute, "<m7@client.example>"), (5 * minute, "<m6@client.example>")]
    last = (T0 + 5 * minute, "<m6@client.example>")
    assert page(2, last) == [(5 * minute, "<m5@client.example>"), (4 * minute, "<m4@client.example>")]
    assert page(5, (T0 + 4 * minute, "<m4@client.example>")) == [(3 * minute, "<m3@client.example>"),
                                                                   (2 * minute, "<m2@client.example>")]
    assert page(5, sender="nobody@client.example") == []


def test_a_flag_change_and_a_uidvalidity_reset_mark_their_mail_dirty(store):
    sync(store, [new(1), new(2)])
    store.sync_items([], now=T0, initial_keys=set(), scope={"<m1@client.example>",
                                                          "<m2@client.example>"})
    assert store.dirty_keys() == set()
    sync(store, [], last_uid=2, flag_updates=[(2, frozenset({"\\Answered"}))])
    assert store.dirty_keys() == {"<m2@client.example>"}
    sync(store, [new(1, n=3)], uidvalidity=2, reset=True)
    assert store.dirty_keys() == {f"<m{n}@client.example>" for n in (1, 2, 3)}


def test_a_scoped_sync_leaves_items_outside_the_scope_alone(store):
    store.sync_items([item("a"), item("b")], now=T0, initial_keys=set())
    store.sync_items([], now=T0, initial_keys=set(), scope={"a"}, threads={"a": "a"})
    states = {r.key: r.state for r in store.items()}
    assert states == {"a": "dropped", "b": "pending"}
    assert store.thread_keys({"a"}) == {"a"}


def test_a_full_sync_records_threads_and_the_config_fingerprint(store):
    sync(store, [new(1), new(2)])
    store.sync_items([item("<m1@client.example>")], now=T0, initial_keys=set(),
                     threads={"<m1@client.example>": "t", "<m2@client.example>": "t"},
                     meta={"evaluated_with": "fp1"})
    assert store.dirty_keys() == set()
    assert store.get_meta("evaluated_with") == "fp1"
    assert store.thread_keys({"<m2@client.example>"}) == {"<m1@client.example>",
                                                          "<m2@client.example>"}


def test_a_copy_with_other_headers_pairs_its_subject_with_the_first_copys_people(store):
    sync(store, [new(1)])
    other = (b"Message-ID: <m1@client.example>\r\nFrom: Other <o@other.example>\r\n"
             b"Subject: Spring campaign brief\r\n\r\n")
    sync(store, [NewMessage(5, T0, frozenset(), other)], folder="Archive")
    assert store.keys_linked(["sp:spring campaign brief c@client.example"]) == {"<m1@client.example>"}


def test_upgrade_from_schema_3_builds_the_links_of_stored_mail(tmp_path):
    _state_of_schema(tmp_path, 3)
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute(
        "INSERT INTO messages (mailbox, folder, uid, uidvalidity, role, key, received, flags,"
        " headers, first_seen) VALUES ('anna', 'INBOX', 1, 1, 'inbox', '<m7@client.example>',"
        " ?, '[]', ?, ?)", (T0.isoformat(), headers(7), T0.isoformat()))
    conn.commit()
    conn.close()
    s = Store.open(tmp_path)
    assert s.links_pending()
    assert s.keys_linked(["sp:quote c@client.example"]) == set()
    assert s.build_links(functools.partial(link_stored, s)) == 1
    assert not s.links_pending()
    assert s.keys_linked(["sp:quote c@client.example"]) == {"<m7@client.example>"}
    assert s.get_meta("evaluated_with") is None  # so the daemon evaluates everything once
    s.close()


def test_a_new_state_has_no_links_to_build(store):
    assert not store.links_pending()
    assert store.build_links(functools.partial(link_stored, store)) == 0


def test_item_records_are_what_their_init_builds(store):
    """`Store.items` builds records without the frozen ``__init__``: equal, equally
    hashable and as frozen as the ones ``ItemRecord(...)`` makes from the same row."""
    import dataclasses

    from ackwatch.store import ItemRecord

    store.sync_items([
        item("<a@client.example>"),
        item("<b@client.example>", ack=Ack("<r@agency.example>", T0 + H, "reply",
                                          "anna@agency.example")),
    ], now=T0, initial_keys=set())
    got = store.items()
    rows = store._conn.execute("SELECT * FROM items ORDER BY received, key").fetchall()
    names = [f.name for f in dataclasses.fields(ItemRecord)]
    times = {"received", "deadline", "nudge_at", "escalate_at", "ack_at", "first_seen"}
    want = [
        ItemRecord(**{
            n: (tuple(__import__("json").loads(r[n])) if n == "mailboxes"
                else dt.datetime.fromisoformat(r[n]) if n in times and r[n] else r[n])
            for n in names
        })
        for r in rows
    ]
    assert got == want and [hash(r) for r in got] == [hash(r) for r in want]
    assert got[1].ack_at == T0 + H and got[1].escalate_at is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        got[0].state = "dropped"  # type: ignore[misc]


# --------------------------------------------------------------------------- schema 5: times as microseconds


_V4_ITEM = (
    "INSERT INTO items (key, thread, client_address, client, subject, received, mailboxes,"
    " account, policy, clock, deadline, nudge_at, state, ack_at, first_seen)"
    " VALUES (?, 't', 'c@client.example', ?, 's', ?, '[\"anna\"]', ?, 'default', 'business',"
    " ?, ?, ?, ?, ?)"
)


def test_upgrade_to_schema_5_keeps_every_item_in_order_with_exact_microseconds(tmp_path):
    """Migration 5 rebuilds `items` with generated microsecond columns: every row and
    rowid kept (ties of received time keep their order), the new columns exactly the
    instants of the text; a state of schema 4 opened read-only (not migrated) reads the
    same report rows, converted as they are read."""
    from ackwatch.reporting import ack_time as report
    from ackwatch.store.forms import iso as _iso

    _state_of_schema(tmp_path, 4)
    conn = sqlite3.connect(tmp_path / DB_NAME)
    times = [T0, T0 - dt.timedelta(microseconds=1), T0 + dt.timedelta(microseconds=999_999),
             dt.datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=dt.UTC), T0, T0]
    for n, t in enumerate(times):
        ack = [None, "", _iso(t + H), _iso(t + 3 * H)][n % 4]
        state = "pending" if ack is None else "acknowledged"
        conn.execute(_V4_ITEM, (f"<k{5 - n}@x>", [None, "Acme"][n % 2], _iso(t),
                                [None, "anna@agency.example"][n % 2], _iso(t + 2 * H),
                                _iso(t + H), state, ack, _iso(T0)))
    conn.commit()
    before = conn.execute("SELECT rowid, * FROM items ORDER BY rowid").fetchall()
    conn.close()
    since, until = T0 - 400 * 24 * H * 365, T0 + 24 * H
    old = Store.open(tmp_path, readonly=True)
    rows_of_v4 = list(old.report_rows(since, until, stored=True))
    old.close()

    s = Store.open(tmp_path)
    columns = [r[1] for r in s._conn.execute("PRAGMA table_xinfo(items)")]
    raw = s._conn.cursor()
    raw.row_factory = None
    after = raw.execute(
        "SELECT rowid, " + ", ".join(columns[:-3]) + " FROM items ORDER BY rowid").fetchall()
    assert after == before
    for received, deadline, ack_at, received_us, deadline_us, ack_us in raw.execute(
        "SELECT received, deadline, ack_at, received_us, deadline_us, ack_us FROM items"
    ):
        assert received_us == report.epoch_us(dt.datetime.fromisoformat(received))
        assert deadline_us == report.epoch_us(dt.datetime.fromisoformat(deadline))
        assert ack_us == (report.epoch_us(dt.datetime.fromisoformat(ack_at)) if ack_at else None)
    rows_of_v5 = list(s.report_rows(since, until, stored=True))
    assert rows_of_v5 == rows_of_v4 and len(rows_of_v5) == len(times)
    assert [r[1] for r in rows_of_v5] == sorted(report.epoch_us(t) for t in times)
    assert s.integrity_check() == "ok"
    s.close()


def test_items_written_get_their_microseconds(store):
    from ackwatch.reporting import ack_time as report

    acked = item("<m2@client.example>", ack=Ack("r", T0 + H, "reply", "anna@agency.example"))
    store.sync_items([item("<m1@client.example>"), acked], now=T0, initial_keys=set())
    rows = {r[0]: r[1:] for r in store._conn.execute(
        "SELECT key, received_us, deadline_us, ack_us FROM items")}
    us = report.epoch_us
    assert rows == {"<m1@client.example>": (us(T0), us(T0 + 90 * dt.timedelta(minutes=1)), None),
                    "<m2@client.example>": (us(T0), us(T0 + 90 * dt.timedelta(minutes=1)),
                                            us(T0 + H))}


# ---------------------------------------------------------------------------- atomicity


def _fail_on_insert(store, backend: str, table: str) -> None:
    """Make the database refuse any new row of ``table``: a failure in the middle of a
    store."""
    if backend == "sqlite":
        store._conn.execute(
            f"CREATE TEMP TRIGGER refuse_{table} BEFORE INSERT ON main.{table}"
            " BEGIN SELECT RAISE(ABORT, 'disk full, say'); END"
        )
        return
    with store._db.write() as c:
        c.execute("CREATE OR REPLACE FUNCTION refuse_rows() RETURNS trigger LANGUAGE plpgsql"
                  " AS $$ BEGIN RAISE EXCEPTION 'disk full, say'; END $$")
        c.execute(f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table}"
                  " FOR EACH ROW EXECUTE FUNCTION refuse_rows()")


def _allow_insert(store, backend: str, table: str) -> None:
    if backend == "sqlite":
        store._conn.execute(f"DROP TRIGGER temp.refuse_{table}")
        return
    with store._db.write() as c:
        c.execute(f"DROP TRIGGER refuse_{table} ON {table}")


def test_a_sync_step_that_fails_midway_stores_nothing_of_it(store, backend):
    """A first sync's copies, links, senders and dirty marks are written before the
    folder's cursor: when the cursor cannot be written, none of them stays."""
    msgs = [NewMessage(i, T0 + i * dt.timedelta(seconds=1), frozenset(), headers(i))
            for i in range(1, 3001)]
    _fail_on_insert(store, backend, "folders")
    with pytest.raises(StoreError):
        sync(store, msgs, reset=True, initial=True)
    for table in ("messages", "links", "senders", "dirty", "folders"):
        assert store._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    _allow_insert(store, backend, "folders")
    assert sync(store, msgs, reset=True, initial=True) == 3000  # the store is usable again


def test_an_evaluation_that_fails_midway_stores_none_of_its_threads(store, backend):
    """The threads of an evaluation are written before its items: when an item cannot be
    written, the threads, the dirty marks' end and the meta stay as they were."""
    sync(store, [NewMessage(1, T0, frozenset(), headers(1))])
    _fail_on_insert(store, backend, "items")
    threads = {f"<k{i}@x>": "<t@x>" for i in range(3000)}
    with pytest.raises(StoreError):
        store.sync_items([item("<m1@client.example>")], now=T0 + H, initial_keys=set(),
                         threads=threads, meta={"evaluated_with": "x"})
    assert store._conn.execute("SELECT COUNT(*) FROM threads").fetchone()[0] == 0
    assert store.dirty_keys() == {"<m1@client.example>"}
    assert store.get_meta("evaluated_with") is None


# --------------------------------------------------------------------------- trust (issue 18)

KASIA_CC_REPLY = (b"Message-ID: <r1@agency.example>\r\nFrom: Kasia <kasia@agency.example>\r\n"
                  b"To: c@client.example\r\nCc: office@agency.example\r\n"
                  b"In-Reply-To: <m1@client.example>\r\nSubject: Re: Quote\r\n\r\n")


def test_copies_stored_before_the_trace_headers_were_fetched_keep_their_trust(tmp_path):
    """An upgrade never turns answered history into nudges: a colleague's reply seen
    only in a watched inbox, stored by an ackwatch that did not fetch
    Authentication-Results and Received, still acknowledges; a copy stored now, without
    anyone vouching for it, does not."""
    from ackwatch.core.item_rules import evaluate
    from configfactory import make_config

    _state_of_schema(tmp_path, 5)
    conn = sqlite3.connect(tmp_path / DB_NAME)
    for uid, key, raw, at in ((1, "<m1@client.example>", headers(1), T0),
                              (2, "<r1@agency.example>", KASIA_CC_REPLY, T0 + H)):
        conn.execute(
            "INSERT INTO messages (mailbox, folder, uid, uidvalidity, role, key, received,"
            " flags, headers, first_seen) VALUES ('anna', 'INBOX', ?, 1, 'inbox', ?, ?, '[]',"
            " ?, ?)", (uid, key, at.isoformat(), raw, at.isoformat()))
    conn.commit()
    conn.close()
    s = Store.open(tmp_path)
    try:
        old = {m.uid: m for m in loaded(s)}
        assert old[2].legacy_fetch and old[1].legacy_fetch
        (answered,) = evaluate(old.values(), make_config())
        assert answered.state == "acknowledged"

        fresh = KASIA_CC_REPLY.replace(b"r1@", b"r2@").replace(b"m1@", b"m2@")
        sync(s, [NewMessage(3, T0, frozenset(), headers(2)),
                 NewMessage(4, T0 + H, frozenset(), fresh)], last_uid=4)
        s.close()
        s = Store.open(tmp_path)  # parsed from the stored bytes, not the kept parse
        now = {m.uid: m for m in loaded(s)}
        assert not now[4].legacy_fetch
        states = {i.key: i.state for i in evaluate(now.values(), make_config())}
        assert states == {"<m1@client.example>": "acknowledged",
                          "<m2@client.example>": "pending"}
    finally:
        s.close()


def test_each_store_has_every_operation_of_the_interface_as_declared(store, backend):
    """`SqliteStore` and `PostgresStore` are `Store`s: each operation the interface
    declares is there, with the same parameters (names, kinds, which have defaults)."""
    import inspect

    from ackwatch.store import Store as Interface

    def shape(fn) -> list[tuple[str, object, bool]]:
        params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
        return [(p.name, p.kind, p.default is not p.empty) for p in params]

    declared = {  # `Store` and the protocol of each table group it is made of
        n for part in Interface.__mro__ if part.__module__ == Interface.__module__
        for n, v in vars(part).items() if callable(v) and not n.startswith("_")
    }
    assert len(declared) > 50
    for name in declared:
        assert shape(getattr(store, name)) == shape(getattr(Interface, name)), name
    if backend == "sqlite":
        assert store.path.name == DB_NAME
    else:
        assert str(store.path).startswith("postgresql://")
