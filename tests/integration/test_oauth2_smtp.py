"""Nudges sent through an SMTP server that takes the application's token (AUTH XOAUTH2,
aiosmtpd): the token of the test token server, a fresh one after a refusal, and a
refusal that holds the mail with a sentence naming the application."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from typing import TYPE_CHECKING

import pytest
from tests.servers.tokenserver import CLIENT_ID, TENANT

from ackwatch import oauth2
from ackwatch.config import OAuth2App, SecretRef, SmtpConfig
from ackwatch.mail import smtp

if TYPE_CHECKING:  # imported in the fixture, after pytest could rewrite its asserts
    from tests.servers.smtp import SmtpSink

pytestmark = pytest.mark.integration

SENDER = "ackwatch@agency.example"


@pytest.fixture
def token_sink(token_server) -> Iterator[SmtpSink]:
    from tests.servers.smtp import SmtpSink

    def valid(user: str, token: str) -> bool:
        issued = token_server.issued.get(token)
        return user == SENDER and issued is not None and not token_server.refusing

    oauth2.TOKENS.forget()
    token_server.accept()
    with SmtpSink(oauth2_check=valid) as sink:
        yield sink
    oauth2.TOKENS.forget()
    token_server.accept()


def config(sink: SmtpSink, token_server, tmp_path) -> SmtpConfig:
    secret = tmp_path / "m365-secret"
    secret.write_text(token_server.client_secret)
    app = OAuth2App("m365", "microsoft365", tenant=TENANT, client_id=CLIENT_ID,
                    client_secret=SecretRef("file", str(secret)),
                    token_url=token_server.m365_token_url)
    return SmtpConfig(host=sink.host, port=sink.port, security="none",
                      from_address=f"ackwatch <{SENDER}>", username=SENDER, oauth2=app,
                      timeout=10)


def nudge() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = SENDER, "anna@agency.example", "Waiting: Quote"
    msg["X-Ackwatch"] = "nudge"
    msg.set_content("Jan from Acme is waiting.")
    return msg


def test_a_nudge_is_sent_with_the_applications_token_over_xoauth2(token_sink, token_server,
                                                                   tmp_path):
    smtp.send(nudge(), config(token_sink, token_server, tmp_path))
    assert [r.message["Subject"] for r in token_sink.messages] == ["Waiting: Quote"]
    assert token_sink.auth_attempts == [(SENDER, True)]


def test_a_refused_token_is_replaced_once_and_the_nudge_goes_out(token_sink, token_server,
                                                                   tmp_path):
    cfg = config(token_sink, token_server, tmp_path)
    smtp.send(nudge(), cfg)
    token_server.issued.clear()  # the held token is revoked
    smtp.send(nudge(), cfg)
    assert len(token_sink.messages) == 2
    assert token_sink.auth_attempts == [(SENDER, True), (SENDER, False), (SENDER, True)]


def test_a_refused_application_holds_the_mail_and_names_the_app(token_sink, token_server,
                                                                  tmp_path):
    cfg = config(token_sink, token_server, tmp_path)
    smtp.send(nudge(), cfg)
    token_server.refuse()
    with pytest.raises(smtp.TemporarySendError) as info:
        smtp.send(nudge(), cfg)
    assert "oauth2 application m365 (microsoft365)" in str(info.value)
    assert info.value.failure in smtp.AUTH_FAILURES
    for secret in token_server.secrets_issued():
        assert secret not in str(info.value)
