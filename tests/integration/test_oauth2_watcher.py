"""A mailbox watcher on an application's tokens, in-process against Dovecot's oauth2 passdb
and the test token server: IDLE renewed again and again while tokens expire, without a
refused login or a missed mail; a revoked application puts the mailbox in ``auth_failed``
and the watcher recovers by itself once the provider accepts again (a back-off of a
second here; the daemon's is a minute, too long for a test)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.servers.dovecot import DovecotServer
from tests.servers.tokenserver import TokenServer
from tests.support.watcher_events import StartWatcher, append_mail, health_is, new_mail, watchers

from ackwatch import oauth2
from ackwatch.config import MailboxConfig, OAuth2App, SecretRef, SyncConfig
from ackwatch.mail.watcher import HealthEvent

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]


@pytest.fixture(autouse=True)
def fresh_tokens(token_server: TokenServer) -> Iterator[None]:
    oauth2.TOKENS.forget()
    token_server.accept()
    yield
    token_server.accept()
    token_server.lifetime = 3600
    oauth2.TOKENS.forget()


@pytest.fixture
def watch() -> Iterator[StartWatcher]:
    """``watch(mailbox, **kw)``: a watcher with IDLE, polling every 30 s."""
    sync = SyncConfig(poll_interval=dt.timedelta(seconds=30), idle=True)
    with watchers() as start:
        yield lambda mb, **kw: start(mb, sync, **kw)


def google_mailbox(server: DovecotServer, user: str, token_server: TokenServer,
                   directory: Path) -> MailboxConfig:  # fmt: skip
    key = directory / "google-key.json"
    key.write_text(token_server.service_account_json())
    app = OAuth2App("workspace", "google", service_account=SecretRef("file", str(key)))
    return MailboxConfig(name=user, host=server.host, port=server.port, security="none",
                         username=user, password=None, oauth2_token=None, oauth2=app,
                         timeout=10)  # fmt: skip


def test_idle_renewed_across_token_expiries_sees_new_mail_without_a_refused_login(
    dovecot_oauth, token_server, tmp_path, watch
):
    token_server.lifetime = 2  # several tokens expire while the session lives on
    user = dovecot_oauth.add_user()
    _, events = watch(google_mailbox(dovecot_oauth, user, token_server, tmp_path),
                      idle_renew=1.0)
    events.wait(health_is("up"))
    time.sleep(5)  # IDLE renewed about five times, the token expired twice
    uid = append_mail(dovecot_oauth, user, subject="after the expiries")
    events.wait(new_mail("INBOX", uid), timeout=15)
    states = [e.health.state for e in events.drain() if isinstance(e, HealthEvent)]
    assert states == ["up"], "no reconnect, no refused login"


def test_a_revoked_application_fails_the_login_then_recovers_when_accepted_again(
    dovecot_oauth, token_server, tmp_path, watch
):
    user = dovecot_oauth.add_user()
    token_server.refuse()
    _, events = watch(google_mailbox(dovecot_oauth, user, token_server, tmp_path),
                      auth_backoff_initial=1.0, auth_backoff_max=2.0)
    failed = events.wait(health_is("auth_failed"), timeout=20)
    assert "oauth2 application workspace (google)" in (failed.health.last_error or "")
    token_server.accept()
    events.wait(health_is("up"), timeout=20)
    uid = append_mail(dovecot_oauth, user, subject="after the recovery")
    events.wait(new_mail("INBOX", uid), timeout=15)
