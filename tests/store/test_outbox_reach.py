"""Whom each outbox mail reaches (schema 13's `outbox_reach`): what the hourly cap reads
by person. A state made before it gets it from the outbox it already has, on each backend."""

from __future__ import annotations

import datetime as dt

from ackwatch.store import Store

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def _back_to_schema_12(store: Store, backend: str) -> None:
    with store._write() as c:
        c.execute("DROP TABLE outbox_reach")
        if backend == "sqlite":
            c.execute("PRAGMA user_version = 12")
        else:
            c.execute("UPDATE schema_version SET version = 12")


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
    _back_to_schema_12(store, backend)
    store.close()

    store = open_state()
    assert store.reached_since(T0, people) == before == {
        "kasia@agency.example": [T0],
        "anna@agency.example": [T0, T0 + H / 2],
        "mentor@agency.example": [T0],
    }
