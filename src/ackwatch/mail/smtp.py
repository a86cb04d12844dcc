"""Sending ackwatch's mails over SMTP (``tls`` / ``starttls`` / ``none`` on loopback),
and telling a failure worth retrying (`TemporarySendError`) from one that is not
(`PermanentSendError`). Error texts never contain the SMTP password.
"""

from __future__ import annotations

import base64
import contextlib
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.utils import getaddresses
from typing import TYPE_CHECKING, Literal

import structlog

from ackwatch.config import is_loopback
from ackwatch.mail import smtpauth, tls
from ackwatch.mail.compose import clean_text

if TYPE_CHECKING:
    from ackwatch.config import SecretRef, SmtpConfig

log = structlog.get_logger(__name__)

__all__ = [
    "AUTH_FAILURES",
    "TLS_FAILURES",
    "PermanentSendError",
    "SendError",
    "TemporarySendError",
    "check",
    "send",
]

SMTP_TOTAL_TIMEOUTS = 3  # a whole delivery may take at most this many smtp.timeout



# Why a connection could not be made safe or authenticated (`SendError.failure`): the
# server's or the setup's fault, never the mail's, so the mail waits and is retried.
TLS_FAILURES = ("starttls_not_offered", "starttls_refused", "tls_handshake", "tls_certificate")
AUTH_FAILURES = ("auth_refused", "auth_unusable", "secret_unavailable")
SendFailure = Literal[
    "starttls_not_offered", "starttls_refused", "tls_handshake", "tls_certificate",
    "auth_refused", "auth_unusable", "secret_unavailable",
]


class SendError(Exception):
    """A mail could not be sent. Messages never contain the SMTP password."""

    temporary: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        recipients: Mapping[str, tuple[int, str]] | None = None,
        failure: SendFailure | None = None,
    ):
        super().__init__(message)
        self.code = code
        # Per-recipient refusals: address -> (SMTP code, server text).
        self.recipients: dict[str, tuple[int, str]] = dict(recipients or {})
        # A TLS or credentials failure (`TLS_FAILURES`, `AUTH_FAILURES`); None otherwise.
        self.failure: SendFailure | None = failure

    @property
    def tls_failure(self) -> bool:
        return self.failure in TLS_FAILURES


class TemporarySendError(SendError):
    """Worth retrying later: 4xx replies, refused/timed-out/dropped connections, and
    every TLS or credentials failure (STARTTLS missing, a certificate that does not
    verify, a refused or unusable password): ops or the network fix those, not the mail,
    and the nudge must go out once they are fixed. Never a plain-text fall-back."""

    temporary = True


class PermanentSendError(SendError):
    """Retrying the same mail will not help: 5xx replies to the mail itself, a config
    that can never send (``security: none`` off loopback)."""


class _Secret:
    """Holds the password so that no frame local, repr or traceback shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


class _Redactor:
    """Removes a secret (raw, and as AUTH PLAIN/LOGIN would base64 it) from text."""

    def __init__(self, username: str | None, secret: _Secret | None):
        self._needles: list[str] = []
        if secret is not None and secret.reveal():
            pw = secret.reveal()
            forms = [pw, _b64(pw), _b64(f"\0{username or ''}\0{pw}")]
            self._needles = sorted({f for f in forms if f}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for needle in self._needles:
            text = text.replace(needle, "***")
        return text


def _b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8", "replace")).decode("ascii")


def check(smtp: SmtpConfig, *, resolve: Callable[[SecretRef], str] | None = None) -> None:
    """Connect, secure and log in as `send` does, then QUIT: no mail is sent. Raises what
    `send` raises (``check-mailboxes``)."""
    send(None, smtp, resolve=resolve)


def send(
    msg: EmailMessage | None,
    smtp: SmtpConfig,
    *,
    resolve: Callable[[SecretRef], str] | None = None,
    local_hostname: str | None = None,
) -> None:
    """Deliver ``msg`` (From/To/Cc headers give the envelope) through ``smtp``.

    Raises `TemporarySendError` or `PermanentSendError`. When some (not all) recipients
    are refused the mail went out to the others: that is logged (``mail_recipients_refused``)
    and not raised, since retrying would duplicate it for those who got it.
    ``resolve`` resolves the password reference (default: `ackwatch.credentials.resolve_secret`).
    """
    secret: _Secret | None = None
    error: SendError | None = None
    if smtp.username and smtp.password is not None:
        try:
            if resolve is None:
                from ackwatch.credentials import resolve_secret  # lazy: shell module

                resolve = resolve_secret
            secret = _Secret(resolve(smtp.password))
        except Exception as e:
            error = TemporarySendError(
                f"cannot resolve the SMTP password ({_describe(smtp.password)}): "
                f"{type(e).__name__}",
                failure="secret_unavailable",
            )
    redact = _Redactor(smtp.username, secret)

    refused: dict[str, tuple[int, bytes]] = {}
    if error is None:
        try:
            refused = _deliver(msg, smtp, secret, local_hostname)
        except Exception as e:
            error = _classify(e, smtp, redact)
    # Raised outside the except blocks so that the smtplib exception (whose frames hold
    # the password in their locals) is neither the __cause__ nor the __context__.
    if error is not None:
        # A SendError raised deep in the conversation carries its own traceback and
        # context (smtplib's frames): drop them too.
        error.__cause__ = error.__context__ = None
        _log_failure(error, smtp)
        raise error.with_traceback(None)
    if msg is None:  # `check`
        return

    to = [addr for _, addr in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []))]
    if refused:
        log.warning(
            "mail_recipients_refused",
            kind=msg.get("X-Ackwatch"),
            message_id=msg.get("Message-ID"),
            refused={a: c for a, (c, _) in refused.items()},
        )
    log.info("mail_sent", kind=msg.get("X-Ackwatch"), to=to, message_id=msg.get("Message-ID"))


def _deliver(
    msg: EmailMessage | None,
    smtp: SmtpConfig,
    secret: _Secret | None,
    local_hostname: str | None,
) -> dict[str, tuple[int, bytes]]:
    if smtp.security == "none" and not is_loopback(smtp.host):
        raise PermanentSendError(
            f"smtp.security 'none' is allowed on loopback only, not {smtp.host!r}"
        )
    conn: smtplib.SMTP
    if smtp.security == "tls":
        conn = smtplib.SMTP_SSL(
            local_hostname=local_hostname, timeout=smtp.timeout, context=tls.client_context(smtp.ca_file)
        )
    elif smtp.security in ("starttls", "none"):
        conn = smtplib.SMTP(local_hostname=local_hostname, timeout=smtp.timeout)
    else:
        raise PermanentSendError(f"unknown smtp.security {smtp.security!r}")
    # `timeout` bounds each socket operation; a server answering every command just in
    # time could still hold the daemon's core (and its watchdog) for minutes. The whole
    # conversation is cut off after SMTP_TOTAL_TIMEOUTS x timeout (90 s by default, below
    # the unit's WatchdogSec=120).
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:  # the plain socket's shutdown, also under TLS: wakes the reader
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    timer = threading.Timer(smtp.timeout * SMTP_TOTAL_TIMEOUTS, expire)
    timer.daemon = True
    timer.start()
    conn._host = smtp.host  # type: ignore[attr-defined]  # TLS server name (set by __init__(host))
    try:
        code, greeting = conn.connect(smtp.host, smtp.port)
        if code != 220:
            raise smtplib.SMTPConnectError(code, greeting)
        conn.ehlo_or_helo_if_needed()
        if smtp.security == "starttls":
            _starttls(conn, smtp)
        if smtp.oauth2 is not None:
            _app_login(conn, smtp)
        elif secret is not None:
            assert smtp.username is not None and smtp.password is not None
            try:
                smtpauth.login(conn, smtp.username, secret.reveal(),
                               source=_describe(smtp.password))
            except smtpauth.CredentialsUnusable as exc:
                raise TemporarySendError(
                    f"{smtp.host}:{smtp.port}: {exc}", failure="auth_unusable"
                ) from None
        if msg is None:  # `check`: logged in, nothing to send
            with contextlib.suppress(smtplib.SMTPException, OSError):
                conn.quit()
            return {}
        refused = conn.send_message(msg)
        with contextlib.suppress(smtplib.SMTPException, OSError):
            conn.quit()  # the mail was accepted; a failed goodbye does not matter
        return dict(refused)
    except Exception:
        if expired.is_set():
            raise TemporarySendError(
                f"{smtp.host}:{smtp.port}: gave up after "
                f"{smtp.timeout * SMTP_TOTAL_TIMEOUTS:g}s (server too slow)"
            ) from None
        raise
    finally:
        timer.cancel()
        conn.close()


def _app_login(conn: smtplib.SMTP, smtp: SmtpConfig) -> None:
    """AUTH with the token of ``smtp.oauth2``: one fresh token and one more try after a
    refusal. Every failure holds the mail (`TemporarySendError`), and names the app."""
    from ackwatch import oauth2  # lazy: a shell module; the providers load on first use

    app, where = smtp.oauth2, f"{smtp.host}:{smtp.port}"
    assert app is not None and smtp.username is not None
    mechanism = smtpauth.oauth2_mechanism(conn)
    if mechanism is None:
        raise TemporarySendError(
            f"{where} offers neither AUTH OAUTHBEARER nor XOAUTH2, which oauth2 application "
            f"{app.name} needs (offered: {' '.join(smtpauth.mechanisms(conn)) or 'none'})",
            failure="auth_unusable")
    for attempt in (1, 2):
        try:
            token = oauth2.TOKENS.token(app, smtp.username, fresh=attempt == 2)
        except oauth2.TokenRefused as exc:
            raise TemporarySendError(f"{where}: {exc}", failure="secret_unavailable") from None
        except oauth2.TokenError as exc:
            raise TemporarySendError(f"{where}: {exc}") from None
        try:
            smtpauth.oauth2_login(conn, smtp.username, token, mechanism)
            return
        except smtplib.SMTPAuthenticationError as exc:
            if attempt == 2:
                text = clean_text(_text(exc.smtp_error), 300).replace(token, "***")
                raise TemporarySendError(
                    f"{where}: {mechanism} as {smtp.username} refused with a fresh token of "
                    f"oauth2 application {app.name} ({app.provider}): {exc.smtp_code} {text}",
                    code=exc.smtp_code, failure="auth_refused") from None


def _starttls(conn: smtplib.SMTP, smtp: SmtpConfig) -> None:
    """Upgrade to TLS or raise a TLS failure: never go on in plain text."""
    where = f"{smtp.host}:{smtp.port}"
    if not conn.has_extn("starttls"):
        # The server, or something in between that strips it, does not offer STARTTLS.
        raise TemporarySendError(
            f"{where} does not offer STARTTLS; refusing to send in plain text "
            "(smtp.security: starttls)",
            failure="starttls_not_offered",
        )
    try:
        conn.starttls(context=tls.client_context(smtp.ca_file))
    except smtplib.SMTPResponseException as exc:
        text = clean_text(_text(exc.smtp_error), 300)
        raise TemporarySendError(
            f"{where}: STARTTLS refused: {exc.smtp_code} {text}",
            code=exc.smtp_code, failure="starttls_refused",
        ) from None
    except ssl.SSLError as exc:  # the certificate, or the handshake itself
        raise _tls_error(exc, where) from None
    conn.ehlo()


def _tls_error(exc: ssl.SSLError, where: str) -> TemporarySendError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TemporarySendError(
            f"{where}: TLS certificate verification failed: {exc.verify_message}"
            " (set smtp.ca_file for a private CA)",
            failure="tls_certificate",
        )
    return TemporarySendError(
        f"{where}: TLS handshake failed: {exc.reason or type(exc).__name__}",
        failure="tls_handshake",
    )


def _describe(ref: SecretRef) -> str:
    from ackwatch.credentials import describe  # lazy: shell module

    return describe(ref)


def _log_failure(error: SendError, smtp: SmtpConfig) -> None:
    """TLS and credentials failures are ops problems: loud, on every attempt."""
    if error.failure is None:
        return
    event = "smtp_tls_failed" if error.tls_failure else "smtp_auth_failed"
    log.error(event, host=smtp.host, port=smtp.port, security=smtp.security,
              reason=error.failure, error=str(error))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _classify(exc: BaseException, smtp: SmtpConfig, redact: _Redactor) -> SendError:
    where = f"{smtp.host}:{smtp.port}"
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        recipients = {
            addr: (code, redact(clean_text(_text(text), 300)))
            for addr, (code, text) in exc.recipients.items()
        }
        detail = "; ".join(f"{a}: {c} {t}" for a, (c, t) in recipients.items())
        permanent = bool(recipients) and all(500 <= c < 600 for c, _ in recipients.values())
        cls = PermanentSendError if permanent else TemporarySendError
        return cls(f"{where}: all recipients refused: {detail}", recipients=recipients)
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        text = redact(clean_text(_text(exc.smtp_error), 300))
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            # The credentials, not the mail: retried (loudly) until ops fix them.
            return TemporarySendError(
                f"{where}: authentication failed: {code} {text}", code=code,
                failure="auth_refused",
            )
        what = {
            smtplib.SMTPSenderRefused: "sender refused",
            smtplib.SMTPDataError: "message refused",
            smtplib.SMTPConnectError: "connection refused by greeting",
            smtplib.SMTPHeloError: "EHLO/HELO refused",
        }.get(type(exc), "server error")
        cls = PermanentSendError if 500 <= code < 600 else TemporarySendError
        return cls(f"{where}: {what}: {code} {text}", code=code)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TemporarySendError(f"{where}: server disconnected: {redact(clean_text(str(exc)))}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentSendError(f"{where}: not supported by the server: {redact(str(exc))}")
    if isinstance(exc, smtplib.SMTPException):
        return PermanentSendError(f"{where}: {redact(clean_text(str(exc)))}")
    if isinstance(exc, ssl.SSLError):  # smtp.security: tls, from the first byte
        return _tls_error(exc, where)
    if isinstance(exc, TimeoutError):
        return TemporarySendError(f"{where}: timed out after {smtp.timeout:g}s")
    if isinstance(exc, socket.gaierror):
        return TemporarySendError(f"{where}: cannot resolve host: {exc.strerror}")
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
        return TemporarySendError(f"{where}: connection failed: {reason}")
    if isinstance(exc, UnicodeError):
        # Its text quotes the offending character and its position: never shown, it may
        # come from a secret (non-ASCII credentials take `smtpauth`'s path, not this one).
        return PermanentSendError(
            f"{where}: text the SMTP conversation cannot carry ({type(exc).__name__})"
        )
    # Anything else: the type and a redacted text only.
    return PermanentSendError(
        f"{where}: {type(exc).__name__}: {redact(clean_text(str(exc), 300))}"
    )
