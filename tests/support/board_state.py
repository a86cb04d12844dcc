"""A state for the board's tests, written with `Store` as the daemon would: Anna (Acme)
and Piotr (Globex, a gmail.com lead) each with mail waiting, one item overdue, one due
soon, one with time left, one answered; a mailbox down. Times are relative to ``now``.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass
from pathlib import Path

from ackwatch.config import Config, load_config
from ackwatch.core.item_rules import Ack, Deadlines, Item
from ackwatch.store.sqlite import SqliteStore

ANNA, PIOTR, KASIA = "anna@agency.example", "piotr@agency.example", "kasia@agency.example"
HOSTILE_SUBJECT = "Banner sizes <script>document.title='pwned'</script> & <b>bold</b>"


def write_config(tmp_path: Path, web: str = "{listen: '127.0.0.1:8025'}") -> Path:
    password = tmp_path / "anna.pass"
    password.write_text("secret\n")
    password.chmod(0o600)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        timezone: Europe/Warsaw
        state_dir: {tmp_path / "state"}
        agency:
          domains: [agency.example]
        policies:
          default: {{window: 2h, clock: calendar, nudge_before: 30m}}
        accounts:
          - {{email: {ANNA}, name: Anna Nowak, manager: {KASIA}, backup: {PIOTR},
              away: [{{from: "2000-01-01", until: "2099-12-31"}}]}}
          - {{email: {PIOTR}, name: Piotr Wiśniewski, manager: {KASIA}}}
        clients:
          - {{name: Acme, match: [acme.example], account: {ANNA}}}
          - {{name: Globex, match: [globex.example], account: {PIOTR}}}
        mailboxes:
          - name: anna
            host: 127.0.0.1
            security: none
            username: {ANNA}
            password_file: {password}
        web: {web}
        """))
    cfg.chmod(0o600)
    return cfg


def item(key: str, received: dt.datetime, deadline: dt.datetime, ack: dt.datetime | None, *,
         client: str | None, address: str, account: str, subject: str) -> Item:
    return Item(
        key=f"<{key}@example>", thread=key, message_id=f"<{key}@example>",
        client_address=address, client=client, subject=subject, received=received,
        mailboxes=("anna",), account=account,
        deadlines=Deadlines("default", "calendar", deadline, deadline - dt.timedelta(minutes=30),
                            deadline),
        ack=None if ack is None else Ack(f"<re-{key}@agency.example>", ack, "reply", account),
    )


@dataclass(frozen=True)
class BoardState:
    config: Config
    config_path: Path
    now: dt.datetime


def write_state(tmp_path: Path, now: dt.datetime, web: str = "{listen: '127.0.0.1:8025'}"
                ) -> BoardState:
    path = write_config(tmp_path, web)
    config = load_config(path)
    minutes = dt.timedelta(minutes=1)
    items = [
        item("acme-1", now - 30 * minutes, now + 90 * minutes, None, client="Acme",
             address="ceo@acme.example", account=ANNA, subject=HOSTILE_SUBJECT),
        item("globex-1", now - 100 * minutes, now + 10 * minutes, None, client="Globex",
             address="grace@globex.example", account=PIOTR, subject="Invoice 11/2026"),
        item("lead-1", now - 130 * minutes, now - 10 * minutes, None, client=None,
             address="lead@gmail.com", account=PIOTR, subject="Website lead"),
        item("acme-0", now - 120 * minutes, now, now - 90 * minutes, client="Acme",
             address="ceo@acme.example", account=ANNA, subject="Done already"),
    ]
    store = SqliteStore.open(config.state_dir)
    try:
        store.sync_items(items, now=now, initial_keys=set())
        store.set_health("anna", "auth_failed", since=now - 5 * minutes,
                         last_error="login refused")
    finally:
        store.close()
    return BoardState(config, path, now)
