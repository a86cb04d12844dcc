"""The ``oauth2_apps:`` section: the applications (Microsoft 365, Google Workspace) that
log in to mailboxes with a token, defined once and named by ``oauth2: NAME`` on each
mailbox and on ``smtp``. Secrets are references, as a password's are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ackwatch.config.convert import (
    c_credential_name,
    c_enum,
    c_env_name,
    c_path,
    c_str,
    is_loopback,
    one_secret,
)
from ackwatch.config.model import OAUTH2_PROVIDERS, OAuth2App, SecretKind
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
    unknown_name,
    valid,
)
from ackwatch.config.schema import OAUTH2_APP_KEYS, OAUTH2_PROVIDER_KEYS

# Where each secret of an app may come from: config key -> (SecretRef kind, conv).
_CLIENT_SECRET: Mapping[str, tuple[SecretKind, Conv]] = {
    "client_secret_file": ("file", c_path),
    "client_secret_env": ("env", c_env_name),
    "credential": ("credential", c_credential_name),
}
_PRIVATE_KEY: Mapping[str, tuple[SecretKind, Conv]] = {
    "private_key_file": ("file", c_path),
    "private_key_credential": ("credential", c_credential_name),
}
_SERVICE_ACCOUNT: Mapping[str, tuple[SecretKind, Conv]] = {
    "service_account_file": ("file", c_path),
    "credential": ("credential", c_credential_name),
}


def apps(ctx: Ctx, value: object) -> Any:
    """``oauth2_apps``: name -> `OAuth2App`; ``{}`` when absent, INVALID after a problem."""
    if value is None:
        return {}
    m = mapping(ctx, value, "oauth2_apps")
    if m is None:
        return INVALID
    out: dict[str, Any] = {}
    for name, entry in m.items():
        path = join_path("oauth2_apps", name)
        if not isinstance(name, str) or not name.strip():
            ctx.error(path, f"expected a name, got {show(name)}")
            continue
        out[name] = _app(ctx, name, entry, path)
    return out if valid(*out.values()) else INVALID


def _app(ctx: Ctx, name: str, value: object, path: str) -> Any:
    m = mapping(ctx, value, path)
    if m is None:
        return INVALID
    check_keys(ctx, m, path, OAUTH2_APP_KEYS)
    provider = get_key(ctx, m, path, "provider", c_enum(*OAUTH2_PROVIDERS, hints={
        "microsoft": "microsoft365", "office365": "microsoft365", "m365": "microsoft365",
        "gmail": "google", "google_workspace": "google", "workspace": "google",
    }), REQUIRED)
    token_url = get_key(ctx, m, path, "token_url", _c_token_url)
    if not valid(provider):
        return INVALID
    for key in m:
        if key in OAUTH2_APP_KEYS and key not in OAUTH2_PROVIDER_KEYS[provider]:
            ctx.error(join_path(path, key), f"not used by provider {provider}")
    if provider == "microsoft365":
        return _microsoft365(ctx, name, m, path, token_url)
    return _google(ctx, name, m, path, token_url)


def _microsoft365(ctx: Ctx, name: str, m: Mapping, path: str, token_url: Any) -> Any:
    tenant = get_key(ctx, m, path, "tenant", c_str, REQUIRED)
    client_id = get_key(ctx, m, path, "client_id", c_str, REQUIRED)
    certificate = get_key(ctx, m, path, "certificate_file", c_path)
    secret = one_secret(ctx, m, path, _CLIENT_SECRET, required=False)
    key = one_secret(ctx, m, path, _PRIVATE_KEY, required=False)
    if certificate is not None and secret is not None and valid(secret):
        ctx.error(path, "give a client secret or a certificate, not both")
        secret = INVALID
    elif certificate is None and key is not None and valid(key):
        ctx.error(join_path(path, "certificate_file"),
                  "missing (required with private_key_file / private_key_credential)")
        certificate = INVALID
    elif certificate is not None and key is None:
        ctx.error(path, "certificate_file needs the private key: give private_key_file or "
                        "private_key_credential")
        key = INVALID
    elif certificate is None and secret is None:
        ctx.error(path, "no client credential: give client_secret_file, client_secret_env or "
                        "credential (a client secret), or certificate_file with "
                        "private_key_file (a certificate, which Microsoft recommends)")
        secret = INVALID
    if not valid(tenant, client_id, certificate, secret, key, token_url):
        return INVALID
    return OAuth2App(name=name, provider="microsoft365", tenant=tenant, client_id=client_id,
                     client_secret=secret, certificate_file=certificate, private_key=key,
                     token_url=token_url)


def _google(ctx: Ctx, name: str, m: Mapping, path: str, token_url: Any) -> Any:
    account = one_secret(ctx, m, path, _SERVICE_ACCOUNT, required=True)
    if not valid(account, token_url):
        return INVALID
    return OAuth2App(name=name, provider="google", service_account=account, token_url=token_url)


def _c_token_url(ctx: Ctx, value: object, path: str) -> Any:
    """https, or http to a loopback host (a test token server)."""
    if not isinstance(value, str) or not value.strip():
        ctx.error(path, f"expected a URL, got {show(value)}")
        return INVALID
    url = value.strip()
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and host and is_loopback(host):
        return url
    ctx.error(path, f"expected an https:// URL (http:// only to a loopback host), got {show(url)}")
    return INVALID


def app_named(ctx: Ctx, value: object, path: str, known: Mapping[str, Any] | None) -> Any:
    """The `OAuth2App` an ``oauth2: NAME`` key names (INVALID, with a problem, if none)."""
    if not isinstance(value, str) or not value.strip():
        ctx.error(path, f"expected the name of an application in oauth2_apps, got {show(value)}")
        return INVALID
    if known is None:  # oauth2_apps itself is broken: reported there
        return INVALID
    name = value.strip()
    if name not in known:
        ctx.error(path, unknown_name("application", name, known) + " in oauth2_apps")
        return INVALID
    return known[name]
