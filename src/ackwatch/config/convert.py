"""Field converters: one config value (as YAML gave it) into a typed, checked value.

A converter is called as ``conv(ctx, value, key_path)``; it returns the value, or
records a `Problem` at ``key_path`` and returns `INVALID`. Most are written as plain
functions that raise `Bad` and are wrapped by `scalar`. Names start with ``c_``.
Durations, timezones, dates and opening hours are in `times`.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import getaddresses
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ackwatch.config.model import SecretKind, SecretRef
from ackwatch.config.problems import (
    INVALID,
    Bad,
    Conv,
    Ctx,
    join_path,
    scalar,
    show,
    suggest,
    valid,
)


@scalar
def c_str(value: object) -> str:
    if not isinstance(value, str):
        raise Bad(f"expected a string, got {show(value)}")
    if not value.strip():
        raise Bad("must not be empty")
    return value.strip()


def c_int_range(low: int, high: int | None = None) -> Conv:
    @scalar
    def conv(value: object) -> int:
        if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            raise Bad(f"expected an integer, got {show(value)}")
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise Bad(f"must be {span}, got {value}")
        return value

    return conv


@scalar
def c_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise Bad(f"expected true or false, got {show(value)}")
    return value


def c_enum(*choices: str, hints: Mapping[str, str] | None = None) -> Conv:
    @scalar
    def conv(value: object) -> str:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        hint = ""
        if isinstance(value, str):
            alias = (hints or {}).get(value.strip().lower())
            hint = f' (did you mean "{alias}"?)' if alias else suggest(value, choices)
        raise Bad(f"expected one of {', '.join(choices)}, got {show(value)}{hint}")

    return conv


_ADDRESS_RE = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")


@scalar
def c_address(value: object) -> str:
    if not isinstance(value, str):
        raise Bad(f"expected an email address, got {show(value)}")
    address = value.strip().lower()
    if not _ADDRESS_RE.fullmatch(address) or address.endswith(".") or ".." in address:
        raise Bad(f"not an email address: {show(value)}")
    return address


@scalar
def c_domain(value: object) -> str:
    if not isinstance(value, str):
        raise Bad(f"expected a domain name, got {show(value)}")
    domain = value.strip().lower().lstrip("@").rstrip(".")
    if (
        not domain
        or "@" in domain
        or ".." in domain
        or not domain.isprintable()
        or any(c.isspace() or c in "/:<>,;" for c in domain)
    ):
        raise Bad(f"not a domain name: {show(value)}")
    return domain


@scalar
def c_pattern(value: object) -> str:
    """A client match entry / ignore sender: domain, address or shell-style glob."""
    if not isinstance(value, str):
        raise Bad(f"expected a domain, an address or a glob, got {show(value)}")
    pattern = value.strip().lower()
    if not pattern:
        raise Bad("must not be empty")
    if any(c.isspace() for c in pattern) or not pattern.isprintable():
        raise Bad(f"must not contain spaces: {show(value)}")
    if pattern.count("@") > 1:
        raise Bad(f"more than one @ in {show(value)}")
    return pattern


def c_list(item: Conv, *, allow_single: bool = True, non_empty: bool = False) -> Conv:
    """A YAML list of ``item`` (a single scalar counts as a one-item list)."""

    def conv(ctx: Ctx, value: object, path: str) -> Any:
        if allow_single and isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            ctx.error(path, f"expected a list, got {show(value)}")
            return INVALID
        if non_empty and not value:
            ctx.error(path, "must not be empty")
            return INVALID
        out = []
        for i, entry in enumerate(value):
            if entry is None:
                ctx.error(f"{path}[{i}]", "empty entry")
                out.append(INVALID)
            else:
                out.append(item(ctx, entry, f"{path}[{i}]"))
        if not valid(*out):
            return INVALID
        return tuple(out)

    return conv


def c_path(ctx: Ctx, value: object, path: str) -> Any:
    if not isinstance(value, str) or not value.strip():
        ctx.error(path, f"expected a file path, got {show(value)}")
        return INVALID
    p = Path(value.strip()).expanduser()
    return p if p.is_absolute() else ctx.base / p


_LANGUAGE_RE = re.compile(r"[a-z]{2,3}(?:[-_][a-z0-9]{2,8})*", re.IGNORECASE)


@scalar
def c_language(value: object) -> str:
    if not isinstance(value, str) or not _LANGUAGE_RE.fullmatch(value.strip()):
        raise Bad(f"expected a language code such as en, pl or uk, got {show(value)}")
    return value.strip().lower().replace("_", "-")


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1 (also written ``[::1]``)."""
    host = host.strip().lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@scalar
def c_host(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"expected a host name or address, got {show(value)}")
    host = value.strip()
    if "://" in host or "/" in host:
        raise Bad(f"expected a host name, not a URL: {show(value)}")
    if any(c.isspace() for c in host):
        raise Bad(f"a host name cannot contain spaces: {show(value)}")
    if host.count(":") == 1:
        raise Bad(f"give the port separately (port: ...), not in the host: {show(value)}")
    return host


@scalar
def c_env_name(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value.strip()):
        raise Bad(f"expected an environment variable name, got {show(value)}")
    return value.strip()


@scalar
def c_credential_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"expected a systemd credential name, got {show(value)}")
    name = value.strip()
    if "/" in name or name in (".", ".."):
        raise Bad(
            f"a credential is a name, not a path: {show(value)} "
            "(LoadCredential=NAME:/path in the unit, credential: NAME here)"
        )
    return name


@scalar
def c_command(value: object) -> str:
    if isinstance(value, list) and value and all(isinstance(a, str) for a in value):
        return shlex.join(value)
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"expected a command line (a string or a list of arguments), got {show(value)}")
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        raise Bad(f"cannot split the command line: {exc}") from None
    if not argv:
        raise Bad("empty command")
    return value.strip()


@scalar
def c_folder(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"expected a folder name, got {show(value)}")
    return value.strip()


@scalar
def c_from(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Bad(
            f'expected a From address such as "ackwatch <ackwatch@agency.example>", got {show(value)}'
        )
    if "\n" in value or "\r" in value:
        raise Bad("must be on one line")
    pairs = [(n, a) for n, a in getaddresses([value]) if a]
    if len(pairs) != 1 or not _ADDRESS_RE.fullmatch(pairs[0][1]):
        raise Bad(
            f'expected one address such as "ackwatch <ackwatch@agency.example>", got {show(value)}'
        )
    return value.strip()


@scalar
def c_authserv_id(value: object) -> str:
    """An RFC 8601 authserv-id: one token, usually the receiving server's host name."""
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"expected an authserv-id such as \"mx.agency.example\", got {show(value)}")
    token = value.strip().lower()
    if not token.isprintable() or any(c.isspace() or c in ';()"=' for c in token):
        raise Bad(f"an authserv-id is one word (no blanks, ; ( ) \" =): {show(value)}")
    return token


@scalar
def c_relay(value: object) -> str:
    """A relay: a host name, "*.domain", an IP address or a CIDR network."""
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"expected a host name, IP address or network, got {show(value)}")
    entry = value.strip().lower().rstrip(".")
    try:
        ipaddress.ip_network(entry, strict=False)
        return entry
    except ValueError:
        pass
    name = entry[2:] if entry.startswith("*.") else entry
    if "/" in entry or not re.fullmatch(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*", name):
        raise Bad(
            "expected a host name (mail.agency.example, *.agency.example), an IP address "
            f"or a network (192.0.2.0/24), got {show(value)}"
        )
    return entry


def c_regex(ctx: Ctx, value: object, path: str) -> Any:
    if not isinstance(value, str) or not value:
        ctx.error(path, f"expected a regular expression, got {show(value)}")
        return INVALID
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as exc:
        ctx.error(path, f"invalid regular expression {show(value)}: {exc}")
        return INVALID


@scalar
def c_listen(value: object) -> str:
    if not isinstance(value, str) or ":" not in value:
        raise Bad(f'expected host:port such as "127.0.0.1:9464", got {show(value)}')
    host, _, port = value.strip().rpartition(":")
    if not host or (":" in host and not (host.startswith("[") and host.endswith("]"))):
        raise Bad(
            f'expected host:port such as "127.0.0.1:9464" or "[::1]:9464", got {show(value)}'
        )
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535:
        raise Bad(f"port must be between 1 and 65535 in {show(value)}")
    return value.strip()


@scalar
def c_keyword(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[^\s(){%*\"\\\]\x00-\x1f\x7f]+", value):
        raise Bad(
            f'expected an IMAP keyword (no spaces, no ( ) {{ % * " \\ ]), got {show(value)}'
        )
    return value


@dataclass(frozen=True)
class DatabaseUrl:
    """A checked ``postgresql://user@host:port/dbname`` (no password, no parameters)."""

    url: str
    host: str
    port: int
    user: str
    dbname: str


@scalar
def c_database_url(value: object) -> DatabaseUrl:
    """A PostgreSQL URL without a password: the error for one that holds a password
    names where it is, never the URL itself (it would print the password)."""
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"expected a URL like postgresql://ackwatch@db.example:5432/ackwatch, got {show(value)}")
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port or 5432
    except ValueError:
        raise Bad("not a valid URL (expected postgresql://user@host:port/dbname)") from None
    if parts.password is not None:
        raise Bad("the URL must not hold a password; give password_file, password_env or credential")
    if parts.query and "password" in parse_qs(parts.query):
        raise Bad("the URL must not hold a password; give password_file, password_env or credential")
    if parts.scheme not in ("postgresql", "postgres"):
        raise Bad(f"expected a postgresql:// URL, got {show(parts.scheme + '://...')}")
    if parts.query or parts.fragment:
        raise Bad("give no parameters in the URL (sslmode and sslrootcert are keys of their own)")
    dbname = unquote(parts.path.lstrip("/"))
    missing = [name for name, v in (("user", parts.username), ("host", parts.hostname),
                                    ("database name", dbname)) if not v]
    if missing:
        raise Bad(f"the URL names no {' and no '.join(missing)} "
                  "(expected postgresql://user@host:port/dbname)")
    return DatabaseUrl(text, parts.hostname or "", port, unquote(parts.username or ""), dbname)


def one_secret(
    ctx: Ctx,
    m: Mapping,
    path: str,
    kinds: Mapping[str, tuple[SecretKind, Conv]],
    *,
    required: bool,
    missing: str = "missing",
) -> Any:
    """The one secret reference among the keys ``kinds`` names (each with its kind and
    converter): None when none is given and none is required; two given are an error."""
    given = [k for k in kinds if m.get(k) is not None]
    if len(given) > 1:
        ctx.error(path, f"give only one of {', '.join(kinds)}; found {' and '.join(given)}")
        return INVALID
    if not given:
        if required:
            ctx.error(path, f"{missing}: give one of {', '.join(kinds)}")
            return INVALID
        return None
    key = given[0]
    kind, conv = kinds[key]
    value = conv(ctx, m[key], join_path(path, key))
    return INVALID if value is INVALID else SecretRef(kind, str(value))
