"""Fetching a token from Microsoft 365 (`msal`, client-credentials grant with a client
secret or a certificate) or Google (`google-auth`, a service account's JWT-bearer grant
with domain-wide delegation). Each library is imported on first use.

Errors are raised outside the ``except`` blocks, with neither ``__cause__`` nor
``__context__``: a library's exception may hold the request, and so the secret.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ackwatch import logs
from ackwatch.oauth2.errors import Grant, TokenError, TokenRefused, TokenUnavailable

if TYPE_CHECKING:
    from ackwatch.config import OAuth2App, SecretRef

Resolve = Callable[["SecretRef"], str]

MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"
HTTP_TIMEOUT = 30.0  # seconds, each request to a token endpoint
_MS_TOKEN_PATH = "/oauth2/v2.0/token"

# The error codes of RFC 6749 5.2 that mean "these credentials will not do"; any other
# answer (server_error, temporarily_unavailable, no answer) is tried again later.
REFUSALS = frozenset({"invalid_client", "unauthorized_client", "invalid_grant",
                      "invalid_request", "invalid_scope", "access_denied"})


def fetch(app: OAuth2App, username: str, resolve: Resolve) -> Grant:
    if app.provider == "microsoft365":
        return _microsoft365(app, resolve)
    if app.provider == "google":
        return _google(app, username, resolve)
    raise TokenRefused(app, f"unknown provider {app.provider!r}")


def _secret(app: OAuth2App, ref: SecretRef, resolve: Resolve, what: str) -> str:
    problem = None
    value = ""
    try:
        value = resolve(ref)
    except Exception as exc:
        problem = f"cannot read {what} ({ref.describe()}): {_safe(exc)}"
    if problem is not None:
        raise TokenRefused(app, problem)
    return value


def _safe(exc: BaseException) -> str:
    """A resolver's `SecretError` text (made to be shown), else the exception's type."""
    from ackwatch.credentials import SecretError  # lazy: a shell module

    return exc.problem if isinstance(exc, SecretError) else type(exc).__name__


# --------------------------------------------------------------------------- Microsoft


_MSAL_CLIENTS: dict[OAuth2App, Any] = {}  # one per application (its discovery)
_MSAL_LOCK = threading.Lock()


def microsoft_authority(app: OAuth2App) -> str:
    """The authority msal is given: ``token_url`` less ``/oauth2/v2.0/token``, else
    ``https://login.microsoftonline.com/TENANT``."""
    if app.token_url:
        url = app.token_url.rstrip("/")
        return url[: -len(_MS_TOKEN_PATH)] if url.endswith(_MS_TOKEN_PATH) else url
    return f"{MICROSOFT_AUTHORITY}/{app.tenant}"


def _msal_client(app: OAuth2App, resolve: Resolve) -> Any:
    with _MSAL_LOCK:
        client = _MSAL_CLIENTS.get(app)
    if client is not None:
        return client
    if app.client_secret is not None:
        credential: Any = _secret(app, app.client_secret, resolve, "the client secret")
    else:
        assert app.private_key is not None and app.certificate_file is not None
        key = _secret(app, app.private_key, resolve, "the certificate's private key")
        try:
            certificate = app.certificate_file.read_text(encoding="ascii")
        except (OSError, UnicodeError) as exc:
            raise TokenRefused(app, f"cannot read certificate_file {app.certificate_file}: "
                                    f"{getattr(exc, 'strerror', None) or type(exc).__name__}"
                               ) from None
        credential = {"private_key": key, "public_certificate": certificate}
    import msal  # lazy: only a configured Microsoft 365 application loads it

    problem: TokenError | None = None
    try:
        client = msal.ConfidentialClientApplication(
            app.client_id,
            client_credential=credential,
            authority=microsoft_authority(app),
            timeout=HTTP_TIMEOUT,
            instance_discovery=app.token_url is None,
            token_cache=msal.TokenCache(),
        )
    except ValueError as exc:  # msal: the authority (the tenant) is unknown or unreachable
        problem = TokenRefused(app, _tenant_problem(app, exc))
    except Exception as exc:
        problem = TokenUnavailable(app, f"the token endpoint cannot be reached "
                                        f"({type(exc).__name__})")
    if problem is not None:
        raise problem
    with _MSAL_LOCK:
        _MSAL_CLIENTS[app] = client
    return client


def _tenant_problem(app: OAuth2App, exc: ValueError) -> str:
    text = " ".join(str(exc).split())[:200]
    if "400" in text or "AADSTS90002" in text or "tenant" in text.lower():
        return (f"tenant {app.tenant!r} was not found: give the directory (tenant) id or a "
                "verified domain of the tenant")
    return f"msal refused the authority {microsoft_authority(app)}: {text}"


def _microsoft365(app: OAuth2App, resolve: Resolve) -> Grant:
    client = _msal_client(app, resolve)
    import msal

    problem: TokenError | None = None
    result: dict = {}
    try:
        client.token_cache = msal.TokenCache()  # `Tokens` decides when to ask again
        result = client.acquire_token_for_client(scopes=[MICROSOFT_SCOPE]) or {}
    except Exception as exc:  # requests' connection errors, a body that is not JSON
        problem = TokenUnavailable(app, f"the token endpoint cannot be reached "
                                        f"({type(exc).__name__})")
    if problem is not None or "access_token" not in result:
        # msal replays a refusal for a minute (its throttle): a new client asks again.
        with _MSAL_LOCK:
            _MSAL_CLIENTS.pop(app, None)
    if problem is not None:
        raise problem
    return _grant(app, result)


def _grant(app: OAuth2App, result: dict) -> Grant:
    token = result.get("access_token")
    if isinstance(token, str) and token:
        logs.register_secret(token, transient=True)
        try:
            expires_in = float(result.get("expires_in", 3600))
        except (TypeError, ValueError):
            expires_in = 3600.0
        return Grant(token, expires_in)
    error = str(result.get("error") or "no access token")
    description = " ".join(str(result.get("error_description") or "").split())[:300]
    text = logs.redact(f"{error}: {hint(app, error, description)}")
    if error in REFUSALS:
        raise TokenRefused(app, text)
    raise TokenUnavailable(app, text)


# --------------------------------------------------------------------------- Google


def _google(app: OAuth2App, username: str, resolve: Resolve) -> Grant:
    assert app.service_account is not None
    text = _secret(app, app.service_account, resolve, "the service account key")
    try:
        info = json.loads(text)
    except ValueError:
        info = None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise TokenRefused(app, f"{app.service_account.describe()} is not a service account's "
                                "JSON key (Google Cloud console: IAM, Service accounts, Keys, "
                                "Add key, JSON)")
    logs.register_secret(info.get("private_key"))
    if app.token_url:
        info["token_uri"] = app.token_url
    from google.auth import exceptions as google_exceptions  # lazy: a configured app only
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    problem: TokenError | None = None
    credentials: Any = None
    try:
        credentials = service_account.Credentials.from_service_account_info(
            info, scopes=[GOOGLE_SCOPE], subject=username)
        request = Request()
        credentials.refresh(lambda **kw: request(**{**kw, "timeout": HTTP_TIMEOUT}))
    except ValueError:
        problem = TokenRefused(app, f"{app.service_account.describe()}: the key is incomplete "
                                    "or its private key cannot be read")
    except google_exceptions.RefreshError as exc:
        problem = _google_refusal(app, exc)
    except Exception as exc:  # TransportError, requests' errors
        problem = TokenUnavailable(app, f"the token endpoint cannot be reached "
                                        f"({type(exc).__name__})")
    if problem is not None:
        raise problem
    token = credentials.token
    logs.register_secret(token, transient=True)
    expires_in = 3600.0
    if credentials.expiry is not None:
        import datetime as dt

        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        expires_in = max((credentials.expiry - now).total_seconds(), 0.0)
    return Grant(token, expires_in)


def _google_refusal(app: OAuth2App, exc: Exception) -> TokenError:
    """google-auth's RefreshError: args[1] is the endpoint's JSON answer when it gave one."""
    answer = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
    error = str(answer.get("error") or "refused")
    description = " ".join(str(answer.get("error_description") or "").split())[:300]
    text = logs.redact(f"{error}: {hint(app, error, description)}")
    if getattr(exc, "retryable", False) or (error not in REFUSALS and not answer):
        return TokenUnavailable(app, text)
    return TokenRefused(app, text)


# --------------------------------------------------------------------------- hints


def hint(app: OAuth2App, error: str, description: str) -> str:
    """The provider's error as one plain sentence of what to do."""
    d = description
    if app.provider == "microsoft365":
        if "AADSTS90002" in d or "AADSTS900023" in d:
            return f"tenant {app.tenant!r} was not found: give the tenant id or a verified domain"
        if "AADSTS700016" in d:
            return (f"no application {app.client_id} in tenant {app.tenant!r}: check "
                    "client_id and tenant")
        if "AADSTS7000215" in d or "AADSTS7000222" in d:
            return "the client secret is wrong or expired: create a new one and update it"
        if any(code in d for code in ("AADSTS700027", "AADSTS700024", "AADSTS50027")):
            return ("the certificate was not verified: upload certificate_file to the app "
                    "registration (Certificates & secrets)")
    elif app.provider == "google":
        if error == "unauthorized_client":
            return ("domain-wide delegation is not granted: in the Admin console (Security, "
                    "API controls) authorise the service account's client id for "
                    f"{GOOGLE_SCOPE}")
        if error == "invalid_grant" and "email" in d.lower():
            return "the mailbox's username is not a user of the Workspace domain"
    return d or "refused by the token endpoint"
