"""The token cache: one token per (application, subject), renewed before it expires,
a fresh one on demand, never shown in a log line."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from ackwatch import logs
from ackwatch.config import OAuth2App, SecretRef
from ackwatch.oauth2 import Grant, Tokens

M365 = OAuth2App(name="m365", provider="microsoft365", tenant="agency.example",
                 client_id="c", client_secret=SecretRef("env", "S"))
GOOGLE = OAuth2App(name="workspace", provider="google",
                   service_account=SecretRef("file", "/etc/ackwatch/key.json"))


class FakeProvider:
    def __init__(self, lifetime: float = 3600.0):
        self.lifetime = lifetime
        self.calls: list[tuple[str, str]] = []

    def __call__(self, app, username, resolve):
        self.calls.append((app.name, username))
        return Grant(f"tok-{app.name}-{username}-{len(self.calls)}", self.lifetime)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(lifetime: float = 3600.0):
    provider, clock = FakeProvider(lifetime), Clock()
    return Tokens(fetch=provider, clock=clock), provider, clock


def test_a_held_token_is_reused_until_it_is_due_for_renewal():
    tokens, provider, clock = make()
    first = tokens.token(M365, "office@agency.example")
    clock.now += 3000  # 55 of 60 minutes left... 10 minutes before the renewal point
    assert tokens.token(M365, "office@agency.example") == first
    assert len(provider.calls) == 1


def test_a_token_is_renewed_before_it_expires_not_after():
    tokens, provider, clock = make()
    first = tokens.token(M365, "office@agency.example")
    clock.now += 3600 - 299  # less than five minutes left
    second = tokens.token(M365, "office@agency.example")
    assert second != first and len(provider.calls) == 2


def test_a_short_token_is_renewed_at_four_fifths_of_its_life():
    tokens, provider, clock = make(lifetime=5)
    tokens.token(GOOGLE, "anna@agency.example")
    clock.now += 3.9
    tokens.token(GOOGLE, "anna@agency.example")
    assert len(provider.calls) == 1
    clock.now += 0.2
    tokens.token(GOOGLE, "anna@agency.example")
    assert len(provider.calls) == 2


def test_a_fresh_token_is_fetched_when_asked_after_a_refused_login():
    tokens, _, _ = make()
    first = tokens.token(GOOGLE, "anna@agency.example")
    assert tokens.token(GOOGLE, "anna@agency.example", fresh=True) != first


def test_google_tokens_are_per_mailbox_microsoft_tokens_per_application():
    tokens, provider, _ = make()
    tokens.token(GOOGLE, "anna@agency.example")
    tokens.token(GOOGLE, "piotr@agency.example")
    tokens.token(M365, "office@agency.example")
    tokens.token(M365, "sales@agency.example")
    assert provider.calls == [("workspace", "anna@agency.example"),
                              ("workspace", "piotr@agency.example"),
                              ("m365", "office@agency.example")]


def test_a_token_never_reaches_a_log_line():
    tokens, _, _ = make()
    token = tokens.token(M365, "office@agency.example")
    with capture_logs(processors=logs.redaction_processors()) as captured:
        structlog.get_logger("t").info("oops", detail=f"Bearer-less {token}")
    assert token not in repr(captured)
