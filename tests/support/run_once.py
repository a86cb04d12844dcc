"""The `ackwatch` command as a subprocess (for every test that runs it to its end), and the config of the `run --once` and
`backfill` tests (a 24 h calendar-clock window, one mailbox per user given)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.servers.imapserver import ImapTestServer
from tests.support.config_yaml import mailbox_yaml, password_file


def write_config(tmp_path: Path, server: ImapTestServer, users: dict[str, str],
                 extra: str = "") -> Path:
    mailboxes = []
    for name, user in users.items():
        pw = password_file(tmp_path, name, server.password(user))
        mailboxes.append(mailbox_yaml(name, server.host, server.port, user, pw,
                                      f"{name}@agency.example"))
    cfg = tmp_path / "config.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        timezone: Europe/Warsaw
        state_dir: {tmp_path / "state"}
        agency:
          domains: [agency.example]
          form_senders: [forms@agency.example]
        policies:
          default: {{window: 24h, clock: calendar, nudge_before: 1h}}
        accounts:
          - {{email: anna@agency.example, name: Anna, manager: kasia@agency.example}}
          - {{email: piotr@agency.example, name: Piotr, manager: kasia@agency.example}}
        clients:
          - {{name: Acme, match: [acme.example], account: anna@agency.example}}
        unknown_senders: track
        ignore:
          senders: ["noreply@*"]
        digest:
          enabled: false
        mailboxes:
        """) + textwrap.indent("".join(mailboxes), "") + extra)
    return cfg


def ackwatch(*args: str, cwd: Path | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The ``ackwatch`` command, run to its end (``env``: added to this environment)."""
    return subprocess.run([sys.executable, "-m", "ackwatch", *args], capture_output=True,
                          text=True, timeout=120, check=False, cwd=cwd,
                          env={**os.environ, **env} if env else None)
