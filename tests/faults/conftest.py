"""Fault injection against real servers: Dovecot, an aiosmtpd sink, and `proxy.FaultProxy`.

Every test is bounded in time (polls with deadlines). Tests marked ``slow`` (the long
kill -9 loop) run only with ``ACKWATCH_SLOW=1`` (set by ``.ci/run``).

The fault tests get a Dovecot of their own (module `dovecot_server` below), since some of
them stop and restart it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.conftest import dovecot_server, tls_dovecot  # noqa: F401 - fixtures
from tests.integration.test_daemon import (  # noqa: F401 - fixtures
    ANNA,
    KASIA,
    PIOTR,
    Ackwatch,
    ackwatch,
    dovecot,
    sink,
)
from tests.servers.imapserver import ImapTestServer
from tests.servers.notifysocket import notify_socket_path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ACKWATCH_SLOW", "") not in ("", "0", "false", "no"):
        return
    skip = pytest.mark.skip(reason="slow fault loop: set ACKWATCH_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


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
    poll_interval: str = "1s",
    batch_window: str = "1s",
    retry_initial: str = "1s",
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
    entries = []
    for mb_name, (user, owner) in mailboxes.items():
        pw = tmp_path / f"{mb_name}.pass"
        pw.write_text(server.password(user) + "\n")
        pw.chmod(0o600)
        entries.append(textwrap.dedent(f"""\
          - name: {mb_name}
            host: {imap_host or server.host}
            port: {imap_port or server.port}
            security: none
            username: {user}
            password_file: {pw}
            owner: {owner}
            folders: {{inbox: {inbox}, sent: [Sent]}}
            timeout: {imap_timeout}
        """) + mailbox_extra)
    cfg = tmp_path / name
    cfg.write_text(textwrap.dedent(f"""\
        timezone: Europe/Warsaw
        state_dir: {tmp_path / "state"}
        agency:
          domains: [agency.example]
        policies:
          default: {{window: {window}, clock: calendar, nudge_before: {nudge_before}}}
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
          max_per_hour: {max_per_hour}
        digest:
          enabled: false
        mailboxes:
        """) + "".join(entries))
    cfg.chmod(0o600)
    return cfg


class NotifySocket:
    """A NOTIFY_SOCKET (AF_UNIX datagram) that records what the daemon says, with times."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = path = notify_socket_path(tmp_path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.got: list[tuple[float, str]] = []

    def env(self, watchdog_usec: int = 2_000_000) -> dict[str, str]:
        return {"NOTIFY_SOCKET": str(self.path), "WATCHDOG_USEC": str(watchdog_usec)}

    def poll(self, seconds: float = 0.0) -> None:
        end = time.monotonic() + seconds
        while True:
            with contextlib.suppress(TimeoutError, BlockingIOError):
                while True:
                    data = self.sock.recv(4096)
                    self.got.extend((time.monotonic(), ln) for ln in data.decode().splitlines())
            if time.monotonic() >= end:
                return

    def pings(self, since: float = 0.0) -> list[float]:
        return [t for t, ln in self.got if ln == "WATCHDOG=1" and t >= since]

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    s = NotifySocket(tmp_path)
    try:
        yield s
    finally:
        s.close()
