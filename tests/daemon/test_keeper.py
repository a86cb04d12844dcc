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
    config = make_config(state_dir=tmp_path)
    store = Store.open(tmp_path)
    d = Daemon(config, store, now=lambda: NOW, reload=lambda: config)
    try:
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
            ids[reply] = store.record_promise_read(reply, state="done", now=NOW, promise=NewPromise(
                source_key=reply, thread=threads[reply], item_key=item, account=ANNA,
                client="Acme", client_address=client, subject="Quote", made_at=NOW,
                promised=NOW + dt.timedelta(days=4), remind_at=NOW + dt.timedelta(days=3),
                sentence="I will send it by Friday."))
        d.step()  # the first update finds every promise's follow-ups

        asked: list[set[int]] = []
        real = keeper._later_messages
        monkeypatch.setattr(keeper, "_later_messages", lambda store, config, tracked: (
            asked.append({p.id for p in tracked}) or real(store, config, tracked)))
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
