"""The ``web`` section: where the board listens and who may open it.

The rule that matters: a board listening beyond loopback must authenticate, through a
trusted reverse proxy or ``users`` with password hashes; otherwise anyone who can reach
the port would read client subjects. That is a config error at ``web.listen``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from ackwatch.config.convert import c_address, c_list, c_listen, is_loopback
from ackwatch.config.model import TrustedProxy, WebConfig, WebUser, default_of
from ackwatch.config.problems import (
    INVALID,
    REQUIRED,
    Bad,
    Ctx,
    check_keys,
    get_key,
    mapping,
    scalar,
    show,
    valid,
)

WEB_KEYS = ("listen", "trusted_proxy", "users", "target")
PROXY_KEYS = ("address", "user_header")
USER_KEYS = ("name", "password_hash", "accounts")

# argon2-cffi's encoded form: $argon2id$v=19$m=65536,t=3,p=4$salt$hash
_ARGON2_RE = re.compile(r"\$argon2(id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+")
_HEADER_RE = re.compile(r"[A-Za-z0-9-]{1,64}")
# A user name travels in HTTP Basic credentials (no colon) and is shown on the page.
_USER_RE = re.compile(r"[^\s:\x00-\x1f\x7f]{1,64}")


@scalar
def c_password_hash(value: object) -> str:
    if not isinstance(value, str) or not _ARGON2_RE.fullmatch(value.strip()):
        shown = "a value" if isinstance(value, str) else show(value)  # never echo a secret
        raise Bad(
            f"expected an argon2 hash as `ackwatch hash-password` prints it "
            f"($argon2id$...), got {shown}"
        )
    return value.strip()


@scalar
def c_header_name(value: object) -> str:
    if not isinstance(value, str) or not _HEADER_RE.fullmatch(value.strip()):
        raise Bad(f"expected an HTTP header name such as X-Forwarded-User, got {show(value)}")
    return value.strip()


@scalar
def c_user_name(value: object) -> str:
    if not isinstance(value, str) or not _USER_RE.fullmatch(value.strip()):
        raise Bad(f"expected a user name (no spaces or colons, 1-64 characters), got {show(value)}")
    return value.strip()


@scalar
def c_network(value: object) -> str:
    if not isinstance(value, str):
        raise Bad(f"expected an IP address or network, got {show(value)}")
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise Bad(f"expected an IP address or network such as 127.0.0.1, got {show(value)}") from None


@scalar
def c_share(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise Bad(f"expected a share between 0 and 1 such as 0.9, got {show(value)}")
    return float(value)


def _proxy(ctx: Ctx, value: object, path: str) -> Any:
    m = mapping(ctx, value, path)
    if m is None:
        return INVALID
    check_keys(ctx, m, path, PROXY_KEYS)
    address = get_key(ctx, m, path, "address", c_network, REQUIRED)
    header = get_key(ctx, m, path, "user_header", c_header_name,
                     default_of(TrustedProxy, "user_header"))
    if not valid(address, header):
        return INVALID
    return TrustedProxy(address=address, user_header=header)


def _users(
    ctx: Ctx, value: object, path: str, accounts: set[str] | None, proxied: bool
) -> Any:
    if not isinstance(value, list):
        ctx.error(path, f"expected a list of users, got {show(value)}")
        return INVALID
    users: list[WebUser] = []
    seen: set[str] = set()
    ok = True
    for i, entry in enumerate(value):
        at = f"{path}[{i}]"
        m = mapping(ctx, entry, at)
        if m is None:
            ok = False
            continue
        check_keys(ctx, m, at, USER_KEYS)
        name = get_key(ctx, m, at, "name", c_user_name, REQUIRED)
        # A user the proxy names needs no password; one who logs in here does.
        password = get_key(ctx, m, at, "password_hash", c_password_hash,
                           None if proxied else REQUIRED)
        allowed = get_key(ctx, m, at, "accounts", c_list(c_address), None)
        if valid(allowed) and allowed is not None and accounts is not None:
            for j, address in enumerate(allowed):
                if address not in accounts:
                    ctx.error(f"{at}.accounts[{j}]", f"{address} is not a configured account")
                    allowed = INVALID
        if valid(name) and name in seen:
            ctx.error(f"{at}.name", f"{name} is listed twice")
            name = INVALID
        elif valid(name):
            seen.add(name)
        if not valid(name, password, allowed):
            ok = False
            continue
        users.append(WebUser(name=name, password_hash=password,
                             accounts=None if allowed is None else frozenset(allowed)))
    return tuple(users) if ok else INVALID


def web(ctx: Ctx, raw: Mapping, accounts: set[str] | None) -> Any:
    """The ``web`` section (``accounts``: the configured account addresses; None when
    the accounts section is invalid, so references are not checked)."""
    value = raw.get("web")
    if value is None:
        return WebConfig()
    m = mapping(ctx, value, "web")
    if m is None:
        return INVALID
    check_keys(ctx, m, "web", WEB_KEYS)
    listen = get_key(ctx, m, "web", "listen", c_listen, None)
    proxy = get_key(ctx, m, "web", "trusted_proxy", _proxy, None)
    users = get_key(ctx, m, "web", "users",
                    lambda c, v, p: _users(c, v, p, accounts, proxy is not None), ())
    target = get_key(ctx, m, "web", "target", c_share, default_of(WebConfig, "target"))
    if not valid(listen, proxy, users, target):
        return INVALID
    config = WebConfig(listen=listen, trusted_proxy=proxy, users=users, target=target)
    if listen and not config.authenticated:
        host = listen.rpartition(":")[0].strip("[]")
        if not is_loopback(host):
            ctx.error(
                "web.listen",
                f"{listen} is not a loopback address and no authentication is configured: "
                "add web.trusted_proxy or web.users, or listen on 127.0.0.1",
            )
            return INVALID
    return config
