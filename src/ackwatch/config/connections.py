"""The connections: the IMAP mailboxes to watch, the SMTP server to send through and the
PostgreSQL server that may hold the state, with the one secret reference each may name
(never a literal password).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ackwatch.config.convert import (
    DatabaseUrl,
    c_address,
    c_command,
    c_credential_name,
    c_database_url,
    c_enum,
    c_env_name,
    c_folder,
    c_from,
    c_host,
    c_int_range,
    c_list,
    c_path,
    c_str,
    is_loopback,
    one_secret,
)
from ackwatch.config.model import (
    IMAP_PORTS,
    IMAP_SECURITY,
    SECRET_KEYS,
    SMTP_PORTS,
    SMTP_SECURITY,
    DatabaseConfig,
    Folders,
    MailboxConfig,
    SmtpConfig,
    default_of,
)
from ackwatch.config.oauth2apps import app_named
from ackwatch.config.problems import (
    INVALID,
    REQUIRED,
    Conv,
    Ctx,
    check_keys,
    get_key,
    join_path,
    mapping,
    show,
    valid,
)
from ackwatch.config.schema import (
    CONNECTION_KEYS,
    DATABASE_KEYS,
    MAILBOX_KEYS,
    SMTP_SECRET_KEYS,
)
from ackwatch.config.times import c_duration, c_seconds

_LITERAL_PASSWORD = "a literal password is not allowed in the config file; use one of {}"
_SECRET_CONVS: dict[str, Conv] = {
    "password_file": c_path,
    "password_env": c_env_name,
    "credential": c_credential_name,
    "oauth2_token_command": c_command,
}


def _secret(ctx: Ctx, m: Mapping, path: str, kinds: tuple[str, ...], required: bool) -> Any:
    """The one secret reference of a connection: None when none is given (and allowed)."""
    return one_secret(ctx, m, path, {k: (SECRET_KEYS[k], _SECRET_CONVS[k]) for k in kinds},
                      required=required, missing="no password")


def _connection(
    ctx: Ctx, m: Mapping, path: str, ports: Mapping[str, int], default_security: str
) -> dict[str, Any]:
    host = get_key(ctx, m, path, "host", c_host, REQUIRED)
    security = get_key(
        ctx,
        m,
        path,
        "security",
        c_enum("tls", "starttls", "none", hints={"ssl": "tls"}),
        default_security,
    )
    port = get_key(ctx, m, path, "port", c_int_range(1, 65535))
    if port is None:
        port = ports.get(security, INVALID) if valid(security) else INVALID
    if security == "none" and isinstance(host, str) and not is_loopback(host):
        ctx.error(
            join_path(path, "security"),
            f"none (no encryption) is only allowed for a loopback host (localhost, 127.0.0.1, "
            f"::1), not {host}; use tls or starttls",
        )
        security = INVALID
    return {
        "host": host,
        "port": port,
        "security": security,
        "ca_file": get_key(ctx, m, path, "ca_file", c_path),
    }


def _folders(ctx: Ctx, value: object, path: str) -> Any:
    m = mapping(ctx, value, path)
    if m is None:
        return INVALID
    check_keys(ctx, m, path, ("inbox", "sent"))
    inbox = get_key(
        ctx, m, path, "inbox", c_list(c_folder, non_empty=True), default_of(Folders, "inbox")
    )
    sent_raw = m.get("sent")
    if sent_raw is None or (isinstance(sent_raw, str) and sent_raw.strip().lower() == "auto"):
        sent: Any = "auto"
    else:
        sent = c_list(c_folder, non_empty=True)(ctx, sent_raw, join_path(path, "sent"))
    if not valid(inbox, sent):
        return INVALID
    return Folders(inbox=inbox, sent=sent)


def _oauth2(ctx: Ctx, m: Mapping, path: str, apps: Mapping[str, Any] | None) -> Any:
    """The application ``oauth2: NAME`` names, or None when the key is absent."""
    if m.get("oauth2") is None:
        return None
    return app_named(ctx, m["oauth2"], join_path(path, "oauth2"), apps)


def mailboxes(ctx: Ctx, value: object, apps: Mapping[str, Any] | None = None) -> Any:
    if value is None:
        ctx.error("mailboxes", "missing (required): at least one mailbox to watch")
        return INVALID
    if not isinstance(value, list):
        ctx.error("mailboxes", f"expected a list of mailboxes, got {show(value)}")
        return INVALID
    if not value:
        ctx.error("mailboxes", "must not be empty: at least one mailbox to watch")
        return INVALID
    refused = {"password": _LITERAL_PASSWORD.format(", ".join(SECRET_KEYS))}
    names: dict[str, str] = {}
    out: list[Any] = []
    for i, entry in enumerate(value):
        path = f"mailboxes[{i}]"
        m = mapping(ctx, entry, path)
        if m is None:
            out.append(INVALID)
            continue
        check_keys(ctx, m, path, MAILBOX_KEYS, refused)
        name = get_key(ctx, m, path, "name", c_str, REQUIRED)
        if isinstance(name, str):
            if name in names:
                ctx.error(
                    join_path(path, "name"),
                    f"duplicate mailbox name {show(name)} (also {names[name]})",
                )
                name = INVALID
            else:
                names[name] = path
        conn = _connection(ctx, m, path, IMAP_PORTS, IMAP_SECURITY)
        username = get_key(ctx, m, path, "username", c_str, REQUIRED)
        app = _oauth2(ctx, m, path, apps)
        given = [k for k in SECRET_KEYS if m.get(k) is not None]
        if app is not None and given:
            ctx.error(path, f"give oauth2 or {given[0]}, not both")
            app = INVALID
        secret = _secret(ctx, m, path, tuple(SECRET_KEYS),
                         required="password" not in m and "oauth2" not in m)
        folders = get_key(ctx, m, path, "folders", _folders, Folders())
        owner = get_key(ctx, m, path, "owner", c_address)
        timeout = get_key(ctx, m, path, "timeout", c_seconds, default_of(MailboxConfig, "timeout"))
        if not valid(name, username, secret, app, folders, owner, timeout, *conn.values()):
            out.append(INVALID)
            continue
        oauth = secret if secret is not None and secret.kind == "command" else None
        out.append(
            MailboxConfig(
                name=name,
                username=username,
                password=None if oauth is not None else secret,
                oauth2_token=oauth,
                folders=folders,
                owner=owner,
                timeout=timeout,
                oauth2=app,
                **conn,
            )
        )
    return tuple(out) if valid(*out) else INVALID


def smtp(ctx: Ctx, value: object, apps: Mapping[str, Any] | None = None) -> Any:
    if value is None:
        return None
    path = "smtp"
    m = mapping(ctx, value, path)
    if m is None:
        return INVALID
    refused = {
        "password": _LITERAL_PASSWORD.format(", ".join(SMTP_SECRET_KEYS)),
        "oauth2_token_command": "not supported for smtp; use password_file, password_env or credential",
    }
    check_keys(ctx, m, path, (*CONNECTION_KEYS, *SMTP_SECRET_KEYS, "oauth2", "from"), refused)
    conn = _connection(ctx, m, path, SMTP_PORTS, SMTP_SECURITY)
    from_address = get_key(ctx, m, path, "from", c_from, REQUIRED)
    username = get_key(ctx, m, path, "username", c_str)
    secret = _secret(ctx, m, path, SMTP_SECRET_KEYS, required=False)
    app = _oauth2(ctx, m, path, apps)
    if app is not None and valid(app) and secret is not None:
        ctx.error(path, "give oauth2 or a password, not both")
        app = INVALID
    if app is not None and valid(app) and username is None:
        ctx.error(join_path(path, "username"), "missing (required with oauth2: the mailbox "
                  "the application sends as)")
        username = INVALID
    timeout = get_key(ctx, m, path, "timeout", c_seconds, default_of(SmtpConfig, "timeout"))
    if secret is not None and valid(secret) and username is None:
        ctx.error(join_path(path, "username"), "missing (required when a password is given)")
        username = INVALID
    refused_given = "password" in m or "oauth2_token_command" in m
    if isinstance(username, str) and secret is None and app is None and not refused_given:
        ctx.error(
            path,
            f"username given but no password: give one of {', '.join(SMTP_SECRET_KEYS)} "
            "(or remove username to send without AUTH)",
        )
        username = INVALID
    if not valid(from_address, username, secret, app, timeout, *conn.values()):
        return INVALID
    return SmtpConfig(
        from_address=from_address, username=username, password=secret, timeout=timeout,
        oauth2=app, **conn
    )



SSLMODES = ("verify-full", "verify-ca", "disable")
_SSLMODE_HINTS = {
    "require": "verify-ca",  # libpq's require encrypts but checks no certificate
    "prefer": "verify-full",
    "allow": "verify-full",
}


def database(ctx: Ctx, value: object) -> Any:
    """The PostgreSQL server holding the state; None (SQLite under state_dir) when absent."""
    if value is None:
        return None
    path = "database"
    m = mapping(ctx, value, path)
    if m is None:
        return INVALID
    refused = {"password": _LITERAL_PASSWORD.format(", ".join(SMTP_SECRET_KEYS))}
    check_keys(ctx, m, path, DATABASE_KEYS, refused)
    url = get_key(ctx, m, path, "url", c_database_url, REQUIRED)
    secret = _secret(ctx, m, path, SMTP_SECRET_KEYS, required=False)
    sslmode = get_key(
        ctx, m, path, "sslmode", c_enum(*SSLMODES, hints=_SSLMODE_HINTS),
        default_of(DatabaseConfig, "sslmode"),
    )
    sslrootcert = get_key(ctx, m, path, "sslrootcert", c_path)
    give_up_after = get_key(ctx, m, path, "give_up_after", c_duration,
                            default_of(DatabaseConfig, "give_up_after"))
    if sslmode == "disable" and isinstance(url, DatabaseUrl) and not is_loopback(url.host):
        ctx.error(
            join_path(path, "sslmode"),
            f"disable (no encryption) is only allowed for a loopback host (localhost, "
            f"127.0.0.1, ::1), not {url.host}; use verify-full or verify-ca",
        )
        sslmode = INVALID
    if not valid(url, secret, sslmode, sslrootcert, give_up_after) or "password" in m:
        return INVALID
    return DatabaseConfig(
        url=url.url, host=url.host, port=url.port, user=url.user, dbname=url.dbname,
        password=secret, sslmode=sslmode, sslrootcert=sslrootcert, give_up_after=give_up_after,
    )
