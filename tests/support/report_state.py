"""The config of the `ackwatch report` tests, whose state is written with `Store`
directly: Europe/Warsaw, a business calendar with Polish holidays, three clients of
Anna and Piotr."""

from __future__ import annotations

import textwrap
from pathlib import Path

ANNA, PIOTR = "anna@agency.example", "piotr@agency.example"


def write_config(tmp_path: Path) -> Path:
    password = tmp_path / "anna.pass"
    password.write_text("secret\n")
    password.chmod(0o600)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        timezone: Europe/Warsaw
        state_dir: {tmp_path / "state"}
        agency:
          domains: [agency.example]
        calendars:
          office:
            hours: {{mon-fri: "09:00-17:00"}}
            holidays: PL
        policies:
          default: {{window: 2h, clock: business, calendar: office, nudge_before: 30m}}
          retainer: {{window: 24h, clock: calendar, nudge_before: 4h}}
        accounts:
          - {{email: {ANNA}, name: Anna Nowak}}
          - {{email: {PIOTR}, name: Piotr Wiśniewski}}
        clients:
          - {{name: Acme, match: [acme.example], account: {ANNA}, policy: retainer}}
          - {{name: Globex, match: [globex.example], account: {PIOTR}}}
          - {{name: Sklep Kwiatowy, match: [sklep-kwiatowy.example], account: {ANNA}}}
        mailboxes:
          - name: anna
            host: 127.0.0.1
            security: none
            username: {ANNA}
            password_file: {password}
        """))
    return cfg
