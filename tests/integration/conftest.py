"""Fixtures: real IMAP servers (Dovecot, pymap) and `MailboxConfig`s pointing at them.

`imap_server` is parametrized over both servers; each server process lives for the whole
session, and every test gets a fresh user (`imap_user`), so tests need no cleanup.
Without Dovecot installed its tests skip with a reason, unless ACKWATCH_REQUIRE_DOVECOT=1
(CI), where they fail. `sink`, `ackwatch` and `dovecot` are the daemon tests' fixtures
(`tests.support.daemon`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.servers.fixtures import (  # noqa: F401 - fixtures
    dovecot_oauth,
    dovecot_server,
    postgres_server,
    tls_dovecot,
    token_server,
)
from tests.servers.imapserver import ImapTestServer
from tests.servers.pymapserver import PymapServer
from tests.support.browser import browser  # noqa: F401 - fixture
from tests.support.daemon import ackwatch, dovecot, sink  # noqa: F401 - fixtures

from ackwatch.config import Folders, MailboxConfig, SecretRef, SyncConfig

IMAP_SERVERS = ("dovecot", "pymap")


def _fallback_resolve(ref: SecretRef) -> str:
    """Used only while ackwatch.credentials does not exist yet (env and file refs)."""
    if ref.kind == "env":
        return os.environ[ref.value]
    if ref.kind == "file":
        return Path(ref.value).read_text().strip()
    raise NotImplementedError(ref.kind)


try:
    from ackwatch.credentials import resolve_secret as _resolve_secret
except ImportError:  # pragma: no cover - until the secrets module lands
    _resolve_secret = _fallback_resolve


@pytest.fixture(scope="session")
def resolve() -> Callable[[SecretRef], str]:
    return _resolve_secret


@pytest.fixture(scope="session")
def pymap_server() -> Iterator[PymapServer]:
    server = PymapServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(params=IMAP_SERVERS)
def imap_server(request: pytest.FixtureRequest) -> ImapTestServer:
    server: ImapTestServer = request.getfixturevalue(f"{request.param}_server")
    if not server.is_running():  # a test that stopped it and failed before restarting
        server.start()
    return server


@pytest.fixture
def imap_user(imap_server: ImapTestServer) -> str:
    """A fresh user with an empty INBOX and a "Sent" folder."""
    return imap_server.add_user()


@pytest.fixture
def make_mailbox_config(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., MailboxConfig]:
    """Build a MailboxConfig for a user of a test server; the password comes from env."""

    def make(
        server: ImapTestServer,
        user: str,
        *,
        password: str | None = None,
        folders: Folders | None = None,
        name: str | None = None,
        timeout: float = 10.0,
    ) -> MailboxConfig:
        var = f"ACKWATCH_TEST_IMAP_PASSWORD_{user.upper().replace('-', '_')}"
        monkeypatch.setenv(var, password if password is not None else server.password(user))
        return MailboxConfig(
            name=name or user,
            host=server.host,
            port=server.port,
            security="none",
            username=user,
            password=SecretRef("env", var),
            oauth2_token=None,
            folders=folders or Folders(),
            owner=f"{user}@agency.example",
            timeout=timeout,
        )

    return make


@pytest.fixture
def mailbox_config(
    imap_server: ImapTestServer, imap_user: str, make_mailbox_config: Callable[..., MailboxConfig]
) -> MailboxConfig:
    return make_mailbox_config(imap_server, imap_user)


@pytest.fixture
def fast_sync() -> SyncConfig:
    """Short intervals so that watcher tests stay within seconds."""
    import datetime as dt

    return SyncConfig(
        backfill=dt.timedelta(days=7), poll_interval=dt.timedelta(seconds=1), idle=True
    )
