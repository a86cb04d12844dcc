"""IMAP connections: the one connection factory, login (password, UTF-8 or XOAUTH2),
the errors it raises and how a connection ends.

`connect` opens, secures and logs in every IMAP connection ackwatch makes; each one
carries an `ackwatch.mail.imapguard.Guard`. Errors never contain a credential.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from imapclient import IMAPClient
from imapclient import exceptions as imap_exc
from imapclient.imapclient import SocketTimeout

from ackwatch.config import is_loopback
from ackwatch.mail import imapguard, tls

if TYPE_CHECKING:
    from ackwatch.config import MailboxConfig, SecretRef

Resolver = Callable[["SecretRef"], str]

# =========================================================================== errors


class ImapError(Exception):
    """A connection or protocol failure; the message never contains credentials."""


class AuthError(ImapError):
    """The server rejected the credentials (or they could not be resolved)."""


def _redact(text: str, secrets: Iterable[str]) -> str:
    for s in secrets:
        if s and len(s) >= 3:
            text = text.replace(s, "***")
    return text


def describe(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    detail = " ".join(str(exc).split())[:300]
    name = type(exc).__name__
    return _redact(f"{name}: {detail}" if detail else name, secrets)


# The exceptions that mean "this connection is unusable or the server said no".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes socket.timeout / TimeoutError / ssl.SSLError / ConnectionError
    imap_exc.IMAPClientError,  # imaplib.IMAP4.error and .abort
    EOFError,
)


# =========================================================================== connect


def _resolve(resolve: Resolver, ref: SecretRef, what: str) -> str:
    try:
        value = resolve(ref)
    except Exception as exc:
        # The resolver's own message is meant to be safe, but a failing token command may
        # echo its output: keep only the exception type and where the secret lives.
        raise AuthError(f"cannot resolve {what} ({ref.describe()}): {type(exc).__name__}") from None
    value = value.strip() if isinstance(value, str) else value
    if not value:
        raise AuthError(f"{what} ({ref.describe()}) is empty")
    return value


def connect(
    mb: MailboxConfig,
    *,
    resolve: Resolver | None = None,
    timeout: float | None = None,
    limits: imapguard.Limits | None = None,
    deadline: float | None = None,
) -> IMAPClient:
    """Open, secure and log in one IMAP connection for `mb`. The only connection factory.

    Every socket operation has a timeout (`mb.timeout`); every command an overall
    deadline and bounds on what its answer may hold (`limits`, default
    `imapguard.Limits()`), and the whole connection ends by `deadline` (a
    ``time.monotonic()`` instant) when one is given: see `ackwatch.mail.imapguard`.
    ``tls``: verified TLS
    (``ca_file`` for a private CA); ``starttls``: STARTTLS is mandatory, any failure is
    fatal, never a fallback to plain text; ``none``: loopback only. Raises `AuthError`
    when the credentials are refused, `ImapError` for everything else; neither message
    contains a credential.
    """
    if resolve is None:
        from ackwatch.credentials import resolve_secret  # lazy: a shell module

        resolve = resolve_secret
    timeout = mb.timeout if timeout is None else timeout
    where = f"{mb.host}:{mb.port}"
    if mb.security == "none" and not is_loopback(mb.host):
        raise ImapError(f"{where}: security none is only allowed on loopback")
    try:
        ctx = tls.client_context(mb.ca_file) if mb.security in ("tls", "starttls") else None
    except (OSError, ssl.SSLError) as exc:
        raise ImapError(f"{where}: cannot load CA file: {describe(exc)}") from None
    guard: imapguard.Guard | None = None
    try:
        guard = imapguard.Guard(limits or imapguard.Limits(), mb.name, deadline)
        client = imapguard.GuardedClient(
            mb.host,
            port=mb.port,
            ssl=mb.security == "tls",
            ssl_context=ctx,
            timeout=SocketTimeout(connect=timeout, read=timeout),
            guard=guard,
        )
    except CONNECTION_ERRORS as exc:
        if guard is not None:
            guard.end()
        raise ImapError(f"{where}: connect failed: {describe(exc)}") from None
    client.normalise_times = False  # keep INTERNALDATE's zone; we convert to UTC
    _no_delay(client)
    try:
        if mb.security == "starttls":
            try:
                if not client.has_capability("STARTTLS"):
                    raise ImapError(f"{where}: server does not offer STARTTLS")
                client.starttls(ctx)
            except ImapError:
                raise
            except CONNECTION_ERRORS as exc:
                raise ImapError(f"{where}: STARTTLS failed: {describe(exc)}") from None
            client._cached_capabilities = None  # capabilities change after STARTTLS
        _login(client, mb, resolve, where)
    except BaseException:
        shutdown(client)
        raise
    return client


def _no_delay(client: IMAPClient) -> None:
    """TCP_NODELAY: imaplib writes a command's CRLF separately (e.g. after UID SEARCH's
    arguments), and Nagle plus the server's delayed ACK held it back ~40 ms each time."""
    with contextlib.suppress(OSError, AttributeError):
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def oauth2_mechanism(client: IMAPClient) -> str | None:
    """OAUTHBEARER (RFC 7628) where offered, else XOAUTH2 (Google's and Microsoft's
    older one); None when the server offers neither."""
    for mechanism in ("OAUTHBEARER", "XOAUTH2"):
        if client.has_capability(f"AUTH={mechanism}"):
            return mechanism
    return None


def _app_login(client: IMAPClient, mb: MailboxConfig, resolve: Resolver, where: str) -> None:
    """Log in with the token of the mailbox's application: a refused login gets one fresh
    token and one more try; a second refusal is an `AuthError` naming the application."""
    from ackwatch import oauth2  # lazy: a shell module; the providers load on first use

    app = mb.oauth2
    assert app is not None
    mechanism = oauth2_mechanism(client)
    if mechanism is None:
        raise AuthError(f"{where}: the server offers neither AUTH=OAUTHBEARER nor AUTH=XOAUTH2, "
                        f"which oauth2 application {app.name} needs")
    for attempt in (1, 2):
        try:
            token = oauth2.TOKENS.token(app, mb.username, fresh=attempt == 2, resolve=resolve)
        except oauth2.TokenRefused as exc:
            raise AuthError(f"{where}: {exc}") from None
        except oauth2.TokenError as exc:
            raise ImapError(f"{where}: {exc}") from None
        try:
            if mechanism == "OAUTHBEARER":
                client.oauthbearer_login(mb.username, token)
            else:
                client.oauth2_login(mb.username, token)
            client.ackwatch_mechanism = mechanism  # for check-mailboxes
            return
        except imap_exc.IMAPClientError as exc:
            if _dropped(exc):
                raise ImapError(
                    f"{where}: {mechanism} login aborted: {describe(exc, [token])}") from None
            if attempt == 2:
                raise AuthError(
                    f"{where}: {mechanism} login as {mb.username} refused with a fresh token "
                    f"of oauth2 application {app.name} ({app.provider}): "
                    f"{describe(exc, [token])}; {refusal_hint(app.provider)}"
                ) from None
        except OSError as exc:
            raise ImapError(f"{where}: login failed: {describe(exc, [token])}") from None


def refusal_hint(provider: str) -> str:
    """What to check when the server refuses a token the provider gave."""
    if provider == "microsoft365":
        return ("the application needs the IMAP.AccessAsApp permission (admin consent), a "
                "service principal in Exchange (New-ServicePrincipal) and FullAccess to the "
                "mailbox (Add-MailboxPermission): systemd/README.md")
    if provider == "google":
        return ("the service account's client id needs domain-wide delegation for "
                "https://mail.google.com/, and the user must have IMAP enabled")
    return "the token was refused"


def _login(client: IMAPClient, mb: MailboxConfig, resolve: Resolver, where: str) -> None:
    if mb.oauth2 is not None:
        _app_login(client, mb, resolve, where)
        return
    if mb.oauth2_token is not None:
        for attempt in (1, 2):  # a stale cached token: run the command once more
            token = _resolve(resolve, mb.oauth2_token, "OAuth2 token")
            try:
                client.oauth2_login(mb.username, token)
                return
            except imap_exc.IMAPClientError as exc:
                if _dropped(exc):
                    raise ImapError(
                        f"{where}: XOAUTH2 login aborted: {describe(exc, [token])}"
                    ) from None
                if attempt == 2:
                    raise AuthError(
                        f"{where}: XOAUTH2 login as {mb.username} refused: {describe(exc, [token])}"
                    ) from None
            except OSError as exc:
                raise ImapError(f"{where}: login failed: {describe(exc, [token])}") from None
        return
    if mb.password is None:
        raise AuthError(f"{where}: no password or oauth2_token_command configured")
    password = _resolve(resolve, mb.password, "password")
    try:
        if mb.username.isascii() and password.isascii():
            client.login(mb.username, password)
        else:
            _utf8_login(client, mb, password, where)
    except UnicodeError:  # never its message: it quotes the character and its position
        raise AuthError(
            f"{where}: the credentials of {mb.username} ({mb.password.describe()}) "
            "cannot be sent (not ASCII)"
        ) from None
    except imap_exc.IMAPClientError as exc:
        if _dropped(exc):
            raise ImapError(f"{where}: login aborted: {describe(exc, [password])}") from None
        raise AuthError(
            f"{where}: login as {mb.username} refused: {describe(exc, [password])}"
        ) from None
    except OSError as exc:
        raise ImapError(f"{where}: login failed: {describe(exc, [password])}") from None


def _utf8_login(client: IMAPClient, mb: MailboxConfig, password: str, where: str) -> None:
    """Log in with a user name or password that is not ASCII: AUTHENTICATE PLAIN, which
    carries UTF-8 (RFC 4616). LOGIN cannot: imaplib sends its arguments as ASCII, and RFC
    3501 leaves any other charset undefined. A server without AUTH=PLAIN is an
    `AuthError` naming where the password lives, never a character of it."""
    assert mb.password is not None
    if not client.has_capability("AUTH=PLAIN"):
        which = "password" if mb.username.isascii() else "user name"
        raise AuthError(
            f"{where}: the {which} of {mb.username} ({mb.password.describe()}) is not ASCII, "
            "and the server does not offer AUTHENTICATE PLAIN, the one way to send it as "
            "UTF-8; LOGIN takes ASCII only"
        )
    client.plain_login(mb.username, password)


def _dropped(exc: imap_exc.IMAPClientError) -> bool:
    """Whether a failed login is a lost connection rather than refused credentials.

    imapclient turns every error of LOGIN and AUTHENTICATE into `LoginError`, a connection
    closed under it ("socket error: EOF") included, and keeps the error it replaced as the
    exception's context. A lost connection is retried like any network error; refused
    credentials (the server's NO) wait for the longer back-off of ``auth_failed`` (a
    minute, then up to 30), and their error names the credentials; a lost connection
    must not do either."""
    lost = (imap_exc.IMAPClientAbortError, OSError)
    return isinstance(exc, lost) or isinstance(exc.__context__, lost)


def shutdown(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):
        client.shutdown()
    imapguard.end(client)


def logout(client: IMAPClient) -> None:
    """LOGOUT, bounded by the socket timeout; never raises."""
    try:
        client.socket().settimeout(5)
        client.logout()
    except Exception:
        pass
    shutdown(client)


def failure_text(client: IMAPClient | None, exc: BaseException) -> str:
    """What to record for a connection that failed with `exc`: the guard's own error
    when a bound ended it (imaplib re-wraps that in a plain abort on some paths)."""
    ended = imapguard.failure(client) if client is not None else None
    if ended is not None:
        return str(ended)
    return str(exc) if isinstance(exc, ImapError) else describe(exc)



def decode(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def enable_condstore(client: IMAPClient) -> None:
    """``ENABLE CONDSTORE`` (RFC 7162) where offered: once per connection.

    Without it Dovecot leaves HIGHESTMODSEQ out of EXAMINE until some other command
    enabled CONDSTORE, so the first cursors had none and every folder with pending
    messages looked changed at the next poll.
    """
    if not (client.has_capability("CONDSTORE") and client.has_capability("ENABLE")):
        return
    with contextlib.suppress(imap_exc.IMAPClientError):
        client.enable("CONDSTORE")



__all__ = [
    "CONNECTION_ERRORS",
    "AuthError",
    "ImapError",
    "Resolver",
    "connect",
    "decode",
    "describe",
    "enable_condstore",
    "failure_text",
    "logout",
    "oauth2_mechanism",
    "refusal_hint",
    "shutdown",
]
