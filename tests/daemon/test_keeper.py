"""The promise keeper's work per step (`daemon/keeper.py`).

Driven through `Daemon.apply_event` with the watchers' own event values (no network);
the promises are recorded as a body read records them.
"""

from __future__ import annotations

import datetime as dt

from ackwatch.daemon import keeper
from ackwatch.daemon.service import Daemon
from ackwatch.mail.sync import FolderCursor, FolderSync, FolderSyncEvent
from ackwatch.mail.uidfetch import FetchedMessage
from ackwatch.store import NewPromise
from ackwatch.store.sqlite import SqliteStore as Store
from configfactory import ANNA, make_config

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)  # a Monday


def mail(uid: int, mid: str, *, sender: str, to: str, subject: str,
         in_reply_to: str | None = None) -> FetchedMessage:
    lines = [f"Message-ID: {mid}", f"From: {sender}", f"To: {to}", f"Subject: {subject}",
             "Date: Mon, 23 Nov 2026 08:00:00 +0000", "X-Mailer: Microsoft Outlook 16.0"]
    if in_reply_to:
        lines += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    return FetchedMessage(uid, NOW - dt.timedelta(minutes=90 - uid), frozenset(),
                          ("\r\n".join(lines) + "\r\n\r\n").encode())


def event(folder: str, role: str, *messages: FetchedMessage) -> FolderSyncEvent:
    return FolderSyncEvent("anna", FolderSync(
        folder, role, FolderCursor(1, max(m.uid for m in messages)),  # type: ignore[arg-type]
        new_messages=messages))


def test_a_new_mail_finds_the_follow_ups_of_its_own_threads_promises_only(tmp_path,
                                                                          monkeypatch):
    """Every tracked promise's follow-ups were found again (its thread's mail loaded and
    threaded) after each new mail; now only those of the promises made in the threads
    the mail touched."""
    d, store, ids = _two_promises(tmp_path, [NOW], read_state="done")
    try:
        client = "jan.kowalski@acme.example"
        asked: list[set[int]] = []
        real = keeper._later_messages
        monkeypatch.setattr(keeper, "_later_messages", lambda store, config, tracked, **kw: (
            asked.append({p.id for p in tracked}) or real(store, config, tracked, **kw)))
        d.apply_event(event("INBOX", "inbox",
                            mail(5, "<q3@acme.example>", sender=client, to=ANNA,
                                 subject="RE: Quote for the spring campaign",
                                 in_reply_to="<r1@agency.example>")))
        d.step()
        assert asked == [{ids["<r1@agency.example>"]}]
        asked.clear()
        d.apply_event(event("INBOX", "inbox",
                            mail(6, "<n1@globex.example>", sender="eva@globex.example",
                                 to=ANNA, subject="Logo files")))
        d.step()
        assert asked == []
    finally:
        store.close()


def _two_promises(tmp_path, clock: list[dt.datetime], *, read_state: str = "promise"
                  ) -> tuple[Daemon, Store, dict[str, int]]:
    """A daemon whose state holds two items answered with a promise each (four days
    away, reminder a day before; the reads recorded in ``read_state``), after its first
    step, which finds every promise's follow-ups."""
    config = make_config(state_dir=tmp_path)
    store = Store.open(tmp_path)
    d = Daemon(config, store, now=lambda: clock[0], reload=lambda: config)
    client = "jan.kowalski@acme.example"
    d.apply_event(event("INBOX", "inbox",
                        mail(1, "<q1@acme.example>", sender=client, to=ANNA,
                             subject="Quote for the spring campaign"),
                        mail(2, "<q2@acme.example>", sender=client, to=ANNA,
                             subject="Banner sizes for the launch")))
    d.apply_event(event("Sent", "sent",
                        mail(3, "<r1@agency.example>", sender=ANNA, to=client,
                             subject="RE: Quote for the spring campaign",
                             in_reply_to="<q1@acme.example>"),
                        mail(4, "<r2@agency.example>", sender=ANNA, to=client,
                             subject="RE: Banner sizes for the launch",
                             in_reply_to="<q2@acme.example>")))
    d.reevaluate()
    threads = dict(store._conn.execute("SELECT key, thread FROM threads").fetchall())
    ids = {}
    for reply, item in (("<r1@agency.example>", "<q1@acme.example>"),
                        ("<r2@agency.example>", "<q2@acme.example>")):
        pid = store.record_promise_read(reply, state=read_state, now=NOW, promise=NewPromise(
            source_key=reply, thread=threads[reply], item_key=item, account=ANNA,
            client="Acme", client_address=client, subject="Quote", made_at=NOW,
            promised=NOW + dt.timedelta(days=4), remind_at=NOW + dt.timedelta(days=3),
            sentence="I will send it by Friday."))
        assert pid is not None
        ids[reply] = pid
    d.step()  # the first update assesses every tracked promise
    return d, store, ids


def test_an_update_reassesses_the_promises_its_new_mail_touched_never_all_tracked(
        tmp_path, monkeypatch):
    """Work per update follows what changed: after the first, an update never reads
    every tracked promise; a new mail in one promise's thread re-assesses that promise
    only, other mail none; the notices come from the index of what is due by the batch
    window (none here: the reminders are three days away)."""
    d, store, ids = _two_promises(tmp_path, [NOW])
    try:
        all_read: list[object] = []
        assessed: list[set[int]] = []
        notices: list[object] = []
        real_notices = store.promise_notices
        monkeypatch.setattr(store, "promises_to_track", lambda since: all_read.append(since))
        real = keeper._later_messages
        monkeypatch.setattr(keeper, "_later_messages", lambda store, config, tracked, **kw: (
            assessed.append({p.id for p in tracked}) or real(store, config, tracked, **kw)))
        monkeypatch.setattr(store, "promise_notices", lambda by, since: (
            notices.extend(real_notices(by, since)) or real_notices(by, since)))
        d.apply_event(event("INBOX", "inbox",
                            mail(5, "<q3@acme.example>", sender="jan.kowalski@acme.example",
                                 to=ANNA, subject="RE: Quote for the spring campaign",
                                 in_reply_to="<r1@agency.example>")))
        d.step()
        assert assessed == [{ids["<r1@agency.example>"]}]
        d.apply_event(event("INBOX", "inbox",
                            mail(6, "<n1@globex.example>", sender="eva@globex.example",
                                 to=ANNA, subject="Logo files")))
        d.step()
        d.step()
        assert assessed == [{ids["<r1@agency.example>"]}]
        assert all_read == [] and notices == []
    finally:
        store.close()


def test_an_open_promise_breaks_when_its_instant_passes_with_no_new_mail(tmp_path):
    """An update with nothing new still finds the open promises whose instant has come
    (from the index of open promises by instant): broken, the overdue notice queued."""
    clock = [NOW]
    d, store, ids = _two_promises(tmp_path, clock)
    try:
        assert {p.state for p in store.promises()} == {"open"}
        clock[0] = NOW + dt.timedelta(days=4, minutes=1)
        d.step()
        states = {p.id: (p.state, p.reminder_done) for p in store.promises()}
        assert states == {i: ("broken", "skipped") for i in ids.values()}
        queued = store._conn.execute("SELECT kind FROM outbox").fetchall()
        assert [k for (k,) in queued] == ["promise-overdue"]
    finally:
        store.close()
