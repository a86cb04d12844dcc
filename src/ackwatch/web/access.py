"""Who is asking, and what they may see (`Access.check`), for every request of the board.

- No authentication configured (config allows that only on loopback): everyone is let in
  and sees every account, but only under a loopback ``Host`` (a web page elsewhere cannot
  read the board through a DNS-rebound name).
- ``web.trusted_proxy``: a request from its address carries the user's name in its header;
  from elsewhere it is refused, unless ``web.users`` can log in directly.
- ``web.users``: HTTP Basic, checked against argon2 hashes. A hash check costs tens of
  milliseconds by design, and the page polls every second, so a successful check is
  remembered for a few minutes under an HMAC of the credentials with a key of this
  process (the password itself is never kept). Failed checks are limited per client
  address (`loginlimit`: 10 in 10 minutes, then 429). The client address is the
  connection's; for a request from the trusted proxy, the last address of its
  ``X-Forwarded-For`` (the one the proxy added), since every proxied request comes from
  the proxy's own address. From anywhere else that header is not believed.

``web.users[].accounts`` limits what the user sees; a proxy user not listed sees all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import structlog

from ackwatch.config import WebConfig, WebUser, is_loopback
from ackwatch.web.loginlimit import LoginLimit

log = structlog.get_logger(__name__)

REMEMBER_SECONDS = 300.0
# At most this many password checks at once (each takes one core for tens of
# milliseconds to half a second): guessing cannot take every worker of the server from
# the people already signed in, whose remembered logins need no check.
CONCURRENT_CHECKS = 1
CHECK_WAIT_SECONDS = 2.0
REMEMBER_MAX = 256  # remembered logins; the table is emptied when full
MAX_AUTHORIZATION = 512  # characters of an Authorization header worth decoding
_NAME_RE = re.compile(r"[^\s:\x00-\x1f\x7f]{1,64}")


@dataclass(frozen=True)
class Viewer:
    """Someone let in: their name (None: loopback without authentication) and the
    accounts whose mail they see (None: every account, and mail with no account)."""

    name: str | None
    accounts: frozenset[str] | None = None

    def sees(self, account: str | None) -> bool:
        return self.accounts is None or (account is not None and account in self.accounts)


@dataclass(frozen=True)
class Refusal:
    status: str  # "401 Unauthorized", "403 Forbidden", "421 Misdirected Request", "429 ..."
    reason: str  # shown to the client: says what to do, names no secret
    challenge: bool = False  # send WWW-Authenticate (HTTP Basic)
    retry_after: int | None = None  # seconds, for a Retry-After header


def _host_name(host_header: str) -> str:
    """``[::1]:8025`` -> ``::1``; ``localhost:8025`` -> ``localhost``."""
    host = host_header.strip()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class Access:
    """``login_limit`` is kept by the caller across config reloads (a reload must not give
    a guesser fresh counts)."""

    def __init__(self, web: WebConfig, login_limit: LoginLimit | None = None) -> None:
        self.web = web
        self.login_limit = login_limit if login_limit is not None else LoginLimit()
        proxy = web.trusted_proxy
        self._proxy_net = ipaddress.ip_network(proxy.address) if proxy else None
        self._proxy_key = (
            "HTTP_" + proxy.user_header.upper().replace("-", "_") if proxy else None
        )
        self._users = {u.name: u for u in web.users}
        self._with_password = {u.name: u for u in web.users if u.password_hash}
        self._key = secrets.token_bytes(32)
        self._remembered: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._hasher: Any = None
        self._checking = threading.BoundedSemaphore(CONCURRENT_CHECKS)

    def check(self, environ: dict[str, Any]) -> Viewer | Refusal:
        if not self.web.authenticated:
            if is_loopback(_host_name(environ.get("HTTP_HOST", ""))):
                return Viewer(None)
            return Refusal("421 Misdirected Request",
                           "This board answers only to a loopback address (127.0.0.1).")
        remote = environ.get("REMOTE_ADDR", "")
        client = remote
        if self._from_proxy(remote):
            client = _forwarded_client(environ.get("HTTP_X_FORWARDED_FOR", "")) or remote
            assert self._proxy_key is not None
            name = environ.get(self._proxy_key, "").strip()
            if _NAME_RE.fullmatch(name):
                return self._viewer(name)
            if not self._with_password:
                return Refusal("403 Forbidden", "The proxy named no user.")
        elif not self._with_password:
            return Refusal("403 Forbidden", "Open the board through the agency's proxy.")
        return self._basic(environ.get("HTTP_AUTHORIZATION", ""), client)

    def _from_proxy(self, remote: str) -> bool:
        if self._proxy_net is None:
            return False
        try:
            return ipaddress.ip_address(remote) in self._proxy_net
        except ValueError:
            return False

    def _viewer(self, name: str) -> Viewer:
        user = self._users.get(name)
        return Viewer(name, user.accounts if user is not None else None)

    def _basic(self, header: str, client: str) -> Viewer | Refusal:
        refused = Refusal("401 Unauthorized", "Sign in to see the board.", challenge=True)
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "basic" or not token or len(token) > MAX_AUTHORIZATION:
            return refused
        digest = hmac.new(self._key, token.strip().encode("ascii", "replace"),
                          hashlib.sha256).digest()
        now = time.monotonic()
        with self._lock:
            known = self._remembered.get(digest)
        if known is not None and known[1] > now:
            return self._viewer(known[0])
        wait = self.login_limit.retry_after(client)
        if wait is not None:
            return _limited(wait)
        try:
            name, sep, password = (
                base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return refused
        user = self._with_password.get(name) if sep else None
        if not self._checking.acquire(timeout=CHECK_WAIT_SECONDS):
            return Refusal("503 Service Unavailable", "Busy checking passwords; retry.")
        try:
            verified = self._verify(user, password)
        finally:
            self._checking.release()
        if not verified:
            log.warning("web_login_refused", user=name if user is not None else None)
            wait = self.login_limit.failed(client)
            return refused if wait is None else _limited(wait)
        assert user is not None
        with self._lock:
            if len(self._remembered) >= REMEMBER_MAX:
                self._remembered.clear()
            self._remembered[digest] = (user.name, now + REMEMBER_SECONDS)
        return self._viewer(user.name)

    def _verify(self, user: WebUser | None, password: str) -> bool:
        from argon2 import PasswordHasher
        from argon2.exceptions import Argon2Error, InvalidHashError

        if self._hasher is None:
            self._hasher = PasswordHasher()
        # An unknown name costs the same as a wrong password: no telling who exists.
        stored = user.password_hash if user is not None else _DUMMY_HASH
        try:
            ok = bool(self._hasher.verify(stored, password))
        except (Argon2Error, InvalidHashError):
            ok = False
        return ok and user is not None


def _limited(seconds: int) -> Refusal:
    minutes = max(1, math.ceil(seconds / 60))
    return Refusal("429 Too Many Requests",
                   f"Too many failed sign-ins from your address: try again in {minutes} "
                   f"minute{'s' if minutes > 1 else ''}.", retry_after=seconds)


def _forwarded_client(header: str) -> str | None:
    """The last address of an ``X-Forwarded-For`` (the one the trusted proxy appended),
    or None when it names no IP address."""
    last = header.rpartition(",")[2].strip()
    if len(last) > 64:
        return None
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return None


# argon2id of a random password nobody knows, with the default parameters.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$W7erH52yooXcqn8NGVi5fg"
    "$xIonmmuqjATGKEizni1D1fplBg59zndSVrXOatNUwq4"
)


def hash_password(password: str) -> str:
    """An argon2id hash for ``web.users[].password_hash`` (argon2-cffi's defaults)."""
    from argon2 import PasswordHasher

    return str(PasswordHasher().hash(password))
