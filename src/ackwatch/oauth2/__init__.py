"""OAuth2 access tokens for the applications of ``oauth2_apps`` (Microsoft 365, Google
Workspace), for IMAP and SMTP logins.

`Tokens` keeps one token per (application, subject) in memory and renews it before it
expires; nothing is written to disk, and every token is registered with
`ackwatch.logs.register_secret`. The subject is the mailbox for Google (a token
impersonates one user); for Microsoft 365 the client-credentials token belongs to the
application and serves all its mailboxes, so 200 mailboxes cost one token request an
hour, not 200.

The providers' libraries (`msal`, `google-auth`) are imported by `providers` only when
a token of that provider is first needed. A provider that says no (a wrong secret, a
missing permission) raises `TokenRefused`: the mailbox waits in ``auth_failed`` with a
sentence naming the application. A token endpoint that cannot be reached raises
`TokenUnavailable`: a temporary error, retried with back-off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ackwatch import logs
from ackwatch.oauth2.errors import Grant, TokenError, TokenRefused, TokenUnavailable

if TYPE_CHECKING:
    from ackwatch.config import OAuth2App, SecretRef

__all__ = ["TOKENS", "Grant", "TokenError", "TokenRefused", "TokenUnavailable", "Tokens"]

# A token is renewed when this share of its lifetime is left (at most RENEW_MAX seconds
# before it expires): an hour's token 5 minutes early, a 5-second test token 1 s early.
RENEW_SHARE = 0.2
RENEW_MAX = 300.0


Fetch = Callable[["OAuth2App", str, Callable[["SecretRef"], str]], Grant]


@dataclass(frozen=True)
class _Held:
    token: str
    renew_at: float  # monotonic


class Tokens:
    """The in-memory token cache: `token` gives a valid token, fetching one when none is
    held, when the held one is due for renewal, or when ``fresh`` (a login was refused)."""

    def __init__(self, *, fetch: Fetch | None = None, clock: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self._clock = clock
        self._held: dict[tuple[str, str], _Held] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def token(
        self,
        app: OAuth2App,
        username: str,
        *,
        fresh: bool = False,
        resolve: Callable[[SecretRef], str] | None = None,
    ) -> str:
        key = (app.name, subject(app, username))
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one request per key at a time; the others wait and share it
            held = self._held.get(key)
            if held is not None and not fresh and self._clock() < held.renew_at:
                return held.token
            grant = self._get(app, username, resolve)
            logs.register_secret(grant.token, transient=True)
            lifetime = max(grant.expires_in, 0.0)
            early = min(RENEW_MAX, lifetime * RENEW_SHARE)
            self._held[key] = _Held(grant.token, self._clock() + lifetime - early)
            return grant.token

    def forget(self) -> None:
        """Drop every token (tests, and a reload)."""
        with self._guard:
            self._held.clear()

    def _get(self, app: OAuth2App, username: str, resolve: Callable[[SecretRef], str] | None
             ) -> Grant:
        if resolve is None:
            from ackwatch.credentials import resolve_secret  # lazy: a shell module

            resolve = resolve_secret
        fetch = self._fetch
        if fetch is None:
            from ackwatch.oauth2 import providers  # lazy: imports msal / google-auth

            fetch = providers.fetch
        return fetch(app, username, resolve)


def subject(app: OAuth2App, username: str) -> str:
    """Whose token: the mailbox for Google; the application itself for Microsoft 365."""
    return username.lower() if app.provider == "google" else ""


# The daemon's one cache: every IMAP and SMTP login of the process shares it.
TOKENS = Tokens()
