"""What the daemon reads of the outbox at every plan and every send, kept by its writers
rather than computed from the whole history: whom each mail reaches (schema 14's
`outbox_reach`, for the hourly cap) and the mails sent by kind (schema 15's
`sent_counts`, for the metrics). A state made before them gets them from the outbox it
already has, on each backend."""

from __future__ import annotations

import datetime as dt

from ackwatch.store import Store

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def _back_to_schema(version: int, store: Store, backend: str) -> None:
    with store._write() as c:
        c.execute("DROP TABLE sent_counts")  # 15's
        if version < 14:  # 14's
            c.execute("DROP TABLE outbox_reach")
        if backend == "sqlite":
            c.execute(f"PRAGMA user_version = {version}")
        else:
            c.execute("UPDATE schema_version SET version = ?", (version,))


def test_the_migration_fills_whom_the_mail_already_queued_reached(open_state, backend):
    store = open_state()
    store.enqueue(kind="escalation", recipient="Kasia@agency.example",
                  cc=("anna@agency.example", "MENTOR@agency.example"),
                  account="anna@agency.example", nudge_keys=[], escalation_keys=[],
                  message_id="<1@y>", now=T0)
    store.enqueue(kind="nudge", recipient="anna@agency.example", cc=("Anna@agency.example",),
                  account="anna@agency.example", nudge_keys=[], escalation_keys=[],
                  message_id="<2@y>", now=T0 + H / 2)
    cancelled = store.enqueue(kind="nudge", recipient="anna@agency.example", cc=(),
                              account=None, nudge_keys=[], escalation_keys=[],
                              message_id="<3@y>", now=T0 + H / 4)
    store.outbox_close(cancelled, "cancelled")
    people = ["kasia@agency.example", "anna@agency.example", "mentor@agency.example"]
    before = store.reached_since(T0, people)
    _back_to_schema(13, store, backend)
    store.close()

    store = open_state()
    assert store.reached_since(T0, people) == before == {
        "kasia@agency.example": [T0],
        "anna@agency.example": [T0, T0 + H / 2],
        "mentor@agency.example": [T0],
    }


def _mail(store: Store, kind: str, n: int) -> int:
    return store.enqueue(kind=kind, recipient="anna@agency.example", cc=(), account=None,
                         nudge_keys=[], escalation_keys=[], message_id=f"<{n}@y>", now=T0)


def test_the_sent_counts_are_the_mails_the_smtp_server_accepted_by_kind(store):
    ids = [_mail(store, kind, n) for n, kind in enumerate(
        ["nudge", "nudge", "escalation", "nudge", "escalation", "nudge"])]
    for oid in ids[:3]:
        store.outbox_sent(oid, T0)
    store.outbox_retry(ids[3], error="421 busy", next_attempt_at=T0 + H)
    store.outbox_sent(ids[3], T0 + H)  # sent at the second attempt: counted once
    store.outbox_close(ids[4], "failed", "550 no such user")
    store.outbox_close(ids[5], "cancelled")
    store.enqueue_once(once_key="digest:1", kind="digest", recipient="kasia@agency.example",
                       message_id="<d@y>", now=T0)  # queued, not sent yet
    assert store.sent_counts() == {"nudge": 3, "escalation": 1}


def test_the_migration_counts_the_mails_already_sent(open_state, backend):
    store = open_state()
    for n, kind in enumerate(["nudge", "escalation", "nudge", "promise"]):
        oid = _mail(store, kind, n)
        if n < 3:
            store.outbox_sent(oid, T0)
    _back_to_schema(14, store, backend)
    store.close()

    store = open_state()
    assert store.sent_counts() == {"nudge": 2, "escalation": 1}
    store.outbox_sent(4, T0)
    assert store.sent_counts() == {"nudge": 2, "escalation": 1, "promise": 1}
