"""The daemon config of the fault tests: every knob short, every fault reachable."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.servers.imapserver import ImapTestServer
from tests.support.config_yaml import mailbox_yaml, password_file
from tests.support.daemon import ANNA, KASIA, PIOTR


def write_config(
    tmp_path: Path,
    server: ImapTestServer,
    mailboxes: dict[str, tuple[str, str]],
    *,
    smtp_host: str = "127.0.0.1",
    smtp_port: int,
    smtp_security: str = "none",
    imap_port: int | None = None,
    imap_host: str | None = None,
    window: str = "12s",
    nudge_before: str = "6s",
    escalate_after: str | None = None,
    poll_interval: str = "1s",
    batch_window: str = "1s",
    retry_initial: str = "1s",
    recheck_grace: str = "2m",
    smtp_timeout: float = 5,
    imap_timeout: float = 5,
    inbox: str = "[INBOX]",
    smtp_extra: str = "",
    mailbox_extra: str = "",
    max_per_hour: int = 6,
    from_address: str = "ackwatch <ackwatch@agency.example>",
    name: str = "config.yaml",
) -> Path:
    """A daemon config for the fault tests ({name: (imap user, owner)}); every knob short."""
    escalate = f", escalate_after: {escalate_after}" if escalate_after else ""
    entries = []
    for mb_name, (user, owner) in mailboxes.items():
        pw = password_file(tmp_path, mb_name, server.password(user))
        entries.append(mailbox_yaml(mb_name, imap_host or server.host, imap_port or server.port,
                                    user, pw, owner, inbox=inbox, timeout=imap_timeout)
                       + mailbox_extra)
    cfg = tmp_path / name
    cfg.write_text(textwrap.dedent(f"""\
        timezone: Europe/Warsaw
        state_dir: {tmp_path / "state"}
        agency:
          domains: [agency.example]
        policies:
          default: {{window: {window}, clock: calendar, nudge_before: {nudge_before}{escalate}}}
        accounts:
          - {{email: {ANNA}, name: Anna Nowak, manager: {KASIA}, language: en}}
          - {{email: {PIOTR}, name: Piotr, manager: {KASIA}, language: en}}
        clients:
          - {{name: Acme, match: [acme.example], account: {ANNA}}}
          - {{name: Globex, match: [globex.example], account: {PIOTR}}}
        unknown_senders: track
        smtp:
          host: {smtp_host}
          port: {smtp_port}
          security: {smtp_security}
          from: "{from_address}"
          timeout: {smtp_timeout}
        """) + smtp_extra + textwrap.dedent(f"""\
        sync:
          poll_interval: {poll_interval}
        notify:
          batch_window: {batch_window}
          retry_initial: {retry_initial}
          recheck_grace: {recheck_grace}
          max_per_hour: {max_per_hour}
        digest:
          enabled: false
        mailboxes:
        """) + "".join(entries))
    cfg.chmod(0o600)
    return cfg
