"""Microsoft 365 and Google Workspace applications logging in to a real Dovecot whose
oauth2 passdb asks a token server on loopback (tests/servers/tokenserver.py) about each
token: both grants, both SASL mechanisms, a fresh token after a refused one, revocation
and a token endpoint that is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.servers.dovecot import DovecotServer
from tests.servers.fixtures import oauth_dovecot
from tests.servers.tokenserver import CLIENT_ID, TENANT, TokenServer

from ackwatch import oauth2
from ackwatch.config import MailboxConfig, OAuth2App, SecretRef
from ackwatch.mail import connection

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]


@pytest.fixture(autouse=True)
def fresh_tokens(token_server: TokenServer) -> Iterator[None]:
    oauth2.TOKENS.forget()
    token_server.accept()
    token_server.down = False
    yield
    oauth2.TOKENS.forget()


def google_app(token_server: TokenServer, directory: Path) -> OAuth2App:
    key = directory / "google-key.json"
    key.write_text(token_server.service_account_json())
    return OAuth2App("workspace", "google", service_account=SecretRef("file", str(key)))


def m365_app(token_server: TokenServer, directory: Path, *, certificate: bool = True) -> OAuth2App:
    if certificate:
        return OAuth2App("m365", "microsoft365", tenant=TENANT, client_id=CLIENT_ID,
                         certificate_file=token_server.certificate_file,
                         private_key=SecretRef("file", str(token_server.private_key_file)),
                         token_url=token_server.m365_token_url)
    secret = directory / "m365-secret"
    secret.write_text(token_server.client_secret + "\n")
    return OAuth2App("m365", "microsoft365", tenant=TENANT, client_id=CLIENT_ID,
                     client_secret=SecretRef("file", str(secret)),
                     token_url=token_server.m365_token_url)


def mailbox(server: DovecotServer, user: str, app: OAuth2App) -> MailboxConfig:
    return MailboxConfig(name=user, host=server.host, port=server.port, security="none",
                         username=user, password=None, oauth2_token=None, oauth2=app, timeout=10)


def logs_in(mb: MailboxConfig) -> list[str]:
    client = connection.connect(mb)
    try:
        return [name for _, _, name in client.list_folders()]
    finally:
        connection.logout(client)


def log_mark(server: DovecotServer) -> int:
    return len(server.log_text().splitlines())


def login_methods(server: DovecotServer, user: str, since: int) -> list[str]:
    """The mechanisms of `user`'s logins logged after line `since` (the test server logs
    a pooled user in with its password when it creates the user)."""
    return [line.split("method=")[1].split(",")[0]
            for line in server.log_text().splitlines()[since:]
            if f"Login: user=<{user}>" in line]


def test_a_google_service_account_opens_the_mailbox_it_impersonates_with_oauthbearer(
    dovecot_oauth, token_server, tmp_path
):
    user = dovecot_oauth.add_user()
    mark = log_mark(dovecot_oauth)
    assert "INBOX" in logs_in(mailbox(dovecot_oauth, user, google_app(token_server, tmp_path)))
    assert token_server.grants[-1] == ("google", user)
    assert login_methods(dovecot_oauth, user, mark) == ["OAUTHBEARER"]


def test_a_google_token_for_one_mailbox_does_not_open_another(dovecot_oauth, token_server,
                                                              tmp_path):
    anna, piotr = dovecot_oauth.add_user(), dovecot_oauth.add_user()
    app = google_app(token_server, tmp_path)
    logs_in(mailbox(dovecot_oauth, anna, app))
    logs_in(mailbox(dovecot_oauth, piotr, app))
    assert token_server.grants[-2:] == [("google", anna), ("google", piotr)]


@pytest.mark.parametrize("certificate", [True, False], ids=["certificate", "client-secret"])
def test_a_microsoft_app_opens_its_mailboxes_with_one_client_credentials_token(
    dovecot_oauth, token_server, tmp_path, certificate
):
    app = m365_app(token_server, tmp_path, certificate=certificate)
    before = len(token_server.grants)
    users = [dovecot_oauth.add_user(), dovecot_oauth.add_user()]
    for user in users:
        assert "INBOX" in logs_in(mailbox(dovecot_oauth, user, app))
    assert token_server.grants[before:] == [("m365", CLIENT_ID)]


def test_xoauth2_is_used_where_the_server_offers_no_oauthbearer(dovecot_oauth, token_server,
                                                                 tmp_path):
    server = oauth_dovecot(token_server, "xoauth2")
    try:
        user = server.add_user()
        mark = log_mark(server)
        assert "INBOX" in logs_in(mailbox(server, user, google_app(token_server, tmp_path)))
        assert login_methods(server, user, mark) == ["XOAUTH2"]
    finally:
        server.cleanup()


def test_a_refused_token_gets_one_fresh_token_and_one_retry(dovecot_oauth, token_server,
                                                             tmp_path):
    user = dovecot_oauth.add_user()
    mb = mailbox(dovecot_oauth, user, google_app(token_server, tmp_path))
    logs_in(mb)
    token_server.issued.clear()  # the held token is no longer known: revoked
    logs_in(mb)
    assert token_server.grants[-2:] == [("google", user), ("google", user)]


def test_a_refusing_provider_is_a_refused_login_naming_the_application(
    dovecot_oauth, token_server, tmp_path
):
    user = dovecot_oauth.add_user()
    token_server.refuse()
    with pytest.raises(connection.AuthError) as info:
        logs_in(mailbox(dovecot_oauth, user, google_app(token_server, tmp_path)))
    text = str(info.value)
    assert "oauth2 application workspace (google)" in text
    assert "domain-wide delegation is not granted" in text


def test_a_revoked_application_is_refused_after_one_retry_and_recovers(
    dovecot_oauth, token_server, tmp_path
):
    user = dovecot_oauth.add_user()
    mb = mailbox(dovecot_oauth, user, m365_app(token_server, tmp_path, certificate=False))
    logs_in(mb)
    token_server.refuse()
    with pytest.raises(connection.AuthError) as info:
        logs_in(mb)
    assert "oauth2 application m365 (microsoft365)" in str(info.value)
    token_server.accept()
    oauth2.TOKENS.forget()  # the daemon's auth_failed back-off outlives the held token
    assert "INBOX" in logs_in(mb)


def test_a_token_endpoint_that_is_down_is_temporary_not_a_refused_login(
    dovecot_oauth, token_server, tmp_path
):
    user = dovecot_oauth.add_user()
    token_server.down = True
    with pytest.raises(connection.ImapError) as info:
        logs_in(mailbox(dovecot_oauth, user, google_app(token_server, tmp_path)))
    assert not isinstance(info.value, connection.AuthError)
    assert "oauth2 application workspace" in str(info.value)


def test_a_wrong_client_secret_says_so(dovecot_oauth, token_server, tmp_path):
    secret = tmp_path / "wrong"
    secret.write_text("not-the-secret")
    app = OAuth2App("m365", "microsoft365", tenant=TENANT, client_id=CLIENT_ID,
                    client_secret=SecretRef("file", str(secret)),
                    token_url=token_server.m365_token_url)
    with pytest.raises(connection.AuthError) as info:
        logs_in(mailbox(dovecot_oauth, dovecot_oauth.add_user(), app))
    assert "the client secret is wrong or expired" in str(info.value)
    assert "not-the-secret" not in str(info.value)
