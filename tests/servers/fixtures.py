"""Session fixtures for the Dovecot and PostgreSQL servers, declared by each conftest.py that imports them.

A directory whose conftest.py imports these gets server processes of its own: the fault
tests stop and restart their Dovecot without disturbing the integration tests'.
Without Dovecot installed its tests skip with a reason, unless ACKWATCH_REQUIRE_DOVECOT=1
(CI), where they fail; likewise PostgreSQL's with ACKWATCH_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.servers.dovecot import DovecotServer, dovecot_binary, dovecot_required
from tests.servers.postgres import PostgresServer, postgres_bindir, postgres_required
from tests.servers.tokenserver import TokenServer


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    if dovecot_binary() is None:
        msg = "dovecot is not installed (apt-get install dovecot-imapd)"
        if dovecot_required():
            pytest.fail(f"ACKWATCH_REQUIRE_DOVECOT is set but {msg}")
        pytest.skip(msg)
    server = DovecotServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def tls_dovecot(dovecot_server: DovecotServer) -> Iterator[DovecotServer]:
    """A Dovecot with TLS on (self-signed; its `cert_file` is the CA to trust). Asks for
    `dovecot_server` so that it is skipped, or fails in CI, the same way."""
    server = DovecotServer(tls=True, pool=2)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (`tests.servers.postgres`)."""
    if postgres_bindir() is None:
        msg = "PostgreSQL is not installed (apt-get install postgresql)"
        if postgres_required():
            pytest.fail(f"ACKWATCH_REQUIRE_POSTGRES is set but {msg}")
        pytest.skip(msg)
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def restartable_postgres(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test module's own, for tests that restart or stop it
    (the session's keeps serving the others; each test leaves it running). Asks for `postgres_server` so that it is
    skipped, or fails in CI, the same way. Crash-safe: ``-m immediate`` loses no commit."""
    server = PostgresServer(crash_safe=True)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    """Microsoft's and Google's token endpoints on loopback (tests/servers/tokenserver.py);
    ``REQUESTS_CA_BUNDLE`` (read by requests, under msal and google-auth, in this process
    and in the ackwatch processes the tests start) trusts its certificate."""
    server = TokenServer(tmp_path_factory.mktemp("tokens"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REQUESTS_CA_BUNDLE", str(server.ca_file))
        yield server
    server.stop()


def oauth_dovecot(token_server: TokenServer, mechanisms: str) -> DovecotServer:
    """A started Dovecot that also takes tokens of `token_server` with `mechanisms`."""
    server = DovecotServer(auth_mechanisms=f"plain login {mechanisms}", pool=4,
                           oauth2_introspection=token_server.http_base)
    server.start()
    return server


@pytest.fixture(scope="session")
def dovecot_oauth(dovecot_server: DovecotServer, token_server: TokenServer
                  ) -> Iterator[DovecotServer]:
    """A Dovecot taking XOAUTH2 and OAUTHBEARER tokens. Asks for `dovecot_server` so that
    it is skipped, or fails in CI, the same way."""
    server = oauth_dovecot(token_server, "xoauth2 oauthbearer")
    try:
        yield server
    finally:
        server.cleanup()
