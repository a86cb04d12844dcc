"""Fault injection against real servers: Dovecot, an aiosmtpd sink, and `proxy.FaultProxy`.

Every test is bounded in time (polls with deadlines). Tests marked ``slow`` (the long
kill -9 loop) run only with ``ACKWATCH_SLOW=1`` (set by ``.ci/run``).

The fault tests get a Dovecot of their own (`dovecot_server` and `tls_dovecot`, declared
here by importing them), since some of them stop and restart it. A fault test's config
comes from `daemon_config.write_config`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.servers.fixtures import (  # noqa: F401 - fixtures
    dovecot_server,
    postgres_server,
    restartable_postgres,
    tls_dovecot,
)
from tests.servers.notifysocket import notify_socket_path
from tests.support.daemon import ackwatch, dovecot, sink  # noqa: F401 - fixtures


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ACKWATCH_SLOW", "") not in ("", "0", "false", "no"):
        return
    skip = pytest.mark.skip(reason="slow fault loop: set ACKWATCH_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


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
