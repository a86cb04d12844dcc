"""The daemon evaluates only what changed; everything once after a config change.

Driven through `Daemon.apply_event` with the watchers' own event values (no network): what
is asserted is which mail each evaluation loaded (the "evaluated" event) and the items.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from structlog.testing import capture_logs

from ackwatch.daemon.evaluation import evaluation_fingerprint
from ackwatch.daemon.service import Daemon
from ackwatch.daemon.watchers import Recheck
from ackwatch.mail.sync import FolderCursor, FolderSync, FolderSyncEvent
from ackwatch.mail.uidfetch import FetchedMessage
from ackwatch.store.sqlite import SqliteStore as Store
from configfactory import make_config

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)  # a Monday


def mail(uid: int, n: int, *, subject: str, sender: str = "jan.kowalski@acme.example",
         to: str = "anna@agency.example", in_reply_to: str | None = None) -> FetchedMessage:
    lines = [f"Message-ID: <m{n}@x.example>", f"From: {sender}", f"To: {to}",
             f"Subject: {subject}", "Date: Mon, 23 Nov 2026 08:00:00 +0000"]
    if in_reply_to:
        lines += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    return FetchedMessage(
        uid, NOW - dt.timedelta(minutes=60 - uid), frozenset(),
        ("\r\n".join(lines) + "\r\n\r\n").encode(),
    )


def event(folder: str, role: str, *messages: FetchedMessage) -> FolderSyncEvent:
    return FolderSyncEvent("anna", FolderSync(
        folder, role, FolderCursor(1, max(m.uid for m in messages)),  # type: ignore[arg-type]
        new_messages=messages,
    ))


@pytest.fixture
def daemon(tmp_path):
    config = make_config(state_dir=tmp_path)
    store = Store.open(tmp_path)
    d = Daemon(config, store, now=lambda: NOW, reload=lambda: config)
    yield d
    store.close()


def evaluations(logs: list[dict]) -> list[dict]:
    return [e for e in logs if e["event"] == "evaluated"]


def test_first_evaluation_is_full_then_only_the_touched_thread(daemon):
    daemon.apply_event(event("INBOX", "inbox",
                             mail(1, 1, subject="Quote for the spring campaign"),
                             mail(2, 2, subject="Brief for the autumn fair"),
                             mail(3, 3, subject="Invoice 12/2026 question")))
    with capture_logs() as logs:
        daemon.reevaluate()
    assert [e["full"] for e in evaluations(logs)] == [True]
    assert {r.key for r in daemon.store.pending_items()} == {
        "<m1@x.example>", "<m2@x.example>", "<m3@x.example>"}

    daemon.apply_event(event("Sent", "sent", mail(4, 4, subject="Re: Quote for the spring campaign",
                                                  sender="anna@agency.example",
                                                  to="jan.kowalski@acme.example",
                                                  in_reply_to="<m1@x.example>")))
    with capture_logs() as logs:
        daemon.reevaluate()
    (e,) = evaluations(logs)
    assert (e["full"], e["keys"]) == (False, 2)  # the reply and the mail it answers
    assert {r.key for r in daemon.store.pending_items()} == {"<m2@x.example>", "<m3@x.example>"}


def test_mail_stored_before_the_first_evaluation_gets_no_dirty_marks_and_is_all_evaluated(tmp_path):
    """A first sync skips the dirty marks: its evaluation is a full one, also after a kill
    between the store and the evaluation (a new process, the same state)."""
    config = make_config(state_dir=tmp_path)
    first = Store.open(tmp_path)
    Daemon(config, first, now=lambda: NOW, reload=lambda: config).apply_event(
        event("INBOX", "inbox", mail(1, 1, subject="Quote for the spring campaign"),
              mail(2, 2, subject="Brief for the autumn fair")))
    assert first.dirty_keys() == set()
    first.close()  # killed before evaluating

    store = Store.open(tmp_path)
    try:
        restarted = Daemon(config, store, now=lambda: NOW, reload=lambda: config)
        with capture_logs() as logs:
            restarted.reevaluate()
        assert [e["full"] for e in evaluations(logs)] == [True]
        assert {r.key for r in store.pending_items()} == {"<m1@x.example>", "<m2@x.example>"}
        restarted.apply_event(event("INBOX", "inbox", mail(3, 3, subject="Invoice question")))
        assert store.dirty_keys() == {"<m3@x.example>"}  # evaluated once: marks again
    finally:
        store.close()


def test_nothing_changed_means_nothing_is_loaded(daemon):
    daemon.apply_event(event("INBOX", "inbox", mail(1, 1, subject="Quote")))
    daemon.reevaluate()
    with capture_logs() as logs:
        daemon.reevaluate()
    assert evaluations(logs) == []


def test_a_config_change_evaluates_everything_once(daemon):
    daemon.apply_event(event("INBOX", "inbox", mail(1, 1, subject="Quote for the spring")))
    daemon.reevaluate()
    daemon.config = dataclasses.replace(daemon.config, thread_subject_window=dt.timedelta(days=9))
    with capture_logs() as logs:
        daemon.reevaluate()
        daemon.apply_event(event("INBOX", "inbox", mail(2, 2, subject="Brief")))
        daemon.reevaluate()
    assert [e["full"] for e in evaluations(logs)] == [True, False]


def test_the_fingerprint_is_the_same_in_every_process():
    # Sets in the config are sorted, not hashed: PYTHONHASHSEED differs between runs.
    import subprocess
    import sys

    code = ("from configfactory import make_config; from ackwatch.daemon.evaluation import "
            "evaluation_fingerprint as f; print(f(make_config()))")
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": seed, "PYTHONPATH": "tests:src"}).stdout
        for seed in ("1", "2", "3")
    }
    assert outputs == {evaluation_fingerprint(make_config()) + "\n"}


def test_a_state_from_an_older_ackwatch_is_linked_then_evaluated_in_full(daemon):
    daemon.apply_event(event("INBOX", "inbox", mail(1, 1, subject="Quote for the spring")))
    daemon.reevaluate()
    with daemon.store._write() as c:  # what schema 4's migration leaves on an old state
        c.execute("DELETE FROM links")
        c.execute("DELETE FROM meta WHERE name IN ('evaluated_with', 'threaded_with')")
        c.execute("INSERT INTO meta (name, value) VALUES ('links_after_rowid', '0')")
    with capture_logs() as logs:
        daemon.reevaluate()
    assert [e["event"] for e in logs if e["event"].startswith("links_")] == [
        "links_building", "links_built"]
    assert [e["full"] for e in evaluations(logs)] == [True]
    assert daemon.store.keys_linked(["id:<m1@x.example>"]) == {"<m1@x.example>"}


def test_a_policy_change_evaluates_everything_again_thread_by_thread(daemon):
    daemon.apply_event(event("INBOX", "inbox",
                             mail(1, 1, subject="Quote for the spring campaign"),
                             mail(2, 2, subject="Brief for the autumn fair")))
    daemon.reevaluate()
    before = {r.key: r.deadline for r in daemon.store.pending_items()}
    policies = dict(daemon.config.policies)
    policies["default"] = dataclasses.replace(policies["default"],
                                              window=dt.timedelta(hours=4))
    policies["retainer"] = dataclasses.replace(policies["retainer"],
                                               window=dt.timedelta(hours=4))
    daemon.config = dataclasses.replace(daemon.config, policies=policies)
    daemon.apply_event(event("INBOX", "inbox", mail(3, 3, subject="Invoice question")))
    with capture_logs() as logs:
        daemon.reevaluate()
    (by_threads,) = [e for e in logs if e["event"] == "evaluated_by_threads"]
    assert by_threads["threads"] == 3
    assert all(not e["full"] for e in evaluations(logs))
    after = {r.key: r.deadline for r in daemon.store.pending_items()}
    assert set(after) == {"<m1@x.example>", "<m2@x.example>", "<m3@x.example>"}
    assert all(after[k] != before[k] for k in before)  # the new window applies to all
    # ... exactly as a fresh evaluation of everything would have it
    with daemon.store._write() as c:
        c.execute("DELETE FROM meta")
    daemon.reevaluate()
    assert {r.key: r.deadline for r in daemon.store.pending_items()} == after
    with capture_logs() as logs:
        daemon.reevaluate()
    assert evaluations(logs) == []


# ----------------------------------------------------------------- one step


def test_a_step_reads_the_items_of_the_new_mail_only_never_all_that_wait(daemon, monkeypatch):
    """Work per step follows what changed: after one new mail the step reads the pending
    items of that mail's thread (for the metrics' counts), none of those waiting; a quiet
    step reads none. Planning reads no item before an action is due (none here)."""
    daemon.apply_event(event("INBOX", "inbox", mail(1, 1, subject="Quote for the spring"),
                             mail(2, 2, subject="Brief for the autumn fair")))
    daemon.step()
    reads: list[set[str] | None] = []
    due: list[object] = []
    real, real_due = daemon.store.pending_items, daemon.store.items_due
    monkeypatch.setattr(daemon.store, "pending_items", lambda keys=None: reads.append(
        None if keys is None else set(keys)) or real(keys))
    monkeypatch.setattr(daemon.store, "items_due",
                        lambda until: due.append(until) or real_due(until))
    daemon.apply_event(event("INBOX", "inbox", mail(3, 3, subject="New logo files")))
    daemon.step()
    assert reads == [{"<m3@x.example>"}]
    assert due == []
    reads.clear()
    daemon.step()
    assert reads == []


def test_a_step_that_does_not_report_reads_no_waiting_item_for_the_metrics(daemon, monkeypatch):
    """`run --once` ends after its one step: the first step's read of every waiting item,
    for the metrics and the status line, is left out (its items are evaluated and stored
    all the same)."""
    reads: list[object] = []
    real = daemon.store.pending_items
    monkeypatch.setattr(daemon.store, "pending_items",
                        lambda keys=None: reads.append(keys) or real(keys))
    daemon.apply_event(event("INBOX", "inbox", mail(1, 1, subject="Quote for the spring"),
                             mail(2, 2, subject="Brief for the autumn fair")))
    daemon.step(report=False)
    assert reads == []
    assert len(real()) == 2
    daemon.step()
    assert reads == [None]  # the first step that reports reads them all once


def test_a_queued_nudge_whose_item_the_recheck_finds_answered_is_cancelled(tmp_path, monkeypatch):
    """The re-check before queueing one nudge brings the reply to the item of another,
    queued earlier and due again: the step reads the pending items again after that
    evaluation, so the earlier nudge is cancelled rather than sent."""
    config = make_config(state_dir=tmp_path)
    store = Store.open(tmp_path)
    clock = [NOW]
    sent: list[object] = []
    d = Daemon(config, store, now=lambda: clock[0], reload=lambda: config,
               send=lambda msg, cfg: sent.append(msg))
    try:
        d.apply_event(event("INBOX", "inbox", mail(1, 1, subject="Quote for the spring"),
                            mail(2, 2, subject="Brief for the autumn fair")))
        d.reevaluate()
        nudge_at = {r.key: r.nudge_at for r in store.pending_items()}
        # The nudge about m1, queued two hours ago (outside the hourly cap), due again.
        earlier = store.enqueue(kind="nudge", recipient="anna@agency.example", cc=(),
                                account="anna@agency.example", nudge_keys=["<m1@x.example>"],
                                escalation_keys=(), message_id="<n1@agency.example>",
                                now=nudge_at["<m2@x.example>"] - dt.timedelta(hours=2))
        clock[0] = nudge_at["<m2@x.example>"] + dt.timedelta(minutes=1)  # m2's nudge is due

        def recheck(mailboxes: object) -> Recheck:  # Anna answered m1 a minute ago
            d.post(event("Sent", "sent", mail(3, 3, subject="Re: Quote for the spring",
                                              sender="anna@agency.example",
                                              to="jan.kowalski@acme.example",
                                              in_reply_to="<m1@x.example>")))
            return Recheck(frozenset({"anna"}), frozenset())

        monkeypatch.setattr(d, "recheck", recheck)
        d.step()
        states = dict(store._conn.execute("SELECT id, state FROM outbox").fetchall())
        assert states.pop(earlier) == "cancelled"
        assert list(states.values()) == ["sent"]  # m2's nudge
        assert len(sent) == 1 and "Brief for the autumn fair" in str(sent[0])
    finally:
        store.close()
