"""An aiosmtpd sink on a free loopback port that records what it receives.

Use it directly::

    from tests.servers.smtp import SmtpSink

    with SmtpSink() as sink:
        send(msg, sink.smtp_config())
        assert sink.messages[0].message["Subject"] == ...

or through the fixtures (``pytest_plugins = ["tests.servers.smtp"]`` in a test module):

- ``smtp_sink``: a started plain sink (no TLS, no AUTH).
- ``smtp_sink_factory``: ``smtp_sink_factory(auth=("u", "p"), starttls=True, ...)`` starts
  a sink with those options; all are stopped at teardown.
- ``tls_cert``: a self-signed certificate for 127.0.0.1/localhost made with the ``openssl``
  CLI (session-wide); the test is skipped, visibly, when ``openssl`` is missing.

``SmtpSink(port=old.port, starttls=cert)`` starts a sink where another one ran (a
server restarted with different options).

Knobs, changeable while the sink runs: ``refuse_mail`` (reply to MAIL FROM),
``refuse_rcpt`` (address -> reply, ``"*"`` for every address), ``refuse_data`` (reply to
the message), ``delay`` (seconds to wait before answering DATA). A reply is the full
SMTP line, e.g. ``"451 4.3.0 Try again later"`` or ``"550 5.1.1 No such user"``.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from tests.servers.imapserver import free_port

from ackwatch.config import SecretRef, Security, SmtpConfig

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    """One message the sink accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage


@dataclass(frozen=True)
class TlsCert:
    cert: Path  # PEM; also usable as the client's ca_file (self-signed)
    key: Path


class _Handler:
    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH XOAUTH2 (offered only when the sink has `oauth2_check`): the initial
        response ``user=U^Aauth=Bearer T^A^A``, checked by ``oauth2_check(U, T)``."""
        initial = args[1] if len(args) > 1 else await server.challenge_auth("")
        if isinstance(initial, bytes):
            initial = initial.decode("ascii", "replace")
        try:
            raw = base64.b64decode(initial).decode("utf-8")
            fields = dict(p.split("=", 1) for p in raw.split("\x01") if "=" in p)
            user, token = fields["user"], fields["auth"].removeprefix("Bearer ")
        except (ValueError, KeyError):
            return AuthResult(success=False, handled=False)
        check = self.sink.oauth2_check
        ok = check is not None and check(user, token)
        with self.sink._lock:
            self.sink.auth_attempts.append((user, ok))
        return AuthResult(success=ok, handled=False, auth_data=LoginPassword(user.encode(), b""))

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if self.sink.refuse_mail:
            return self.sink.refuse_mail
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        refuse = self.sink.refuse_rcpt
        reply = refuse.get(address.lower()) or refuse.get("*")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        if self.sink.refuse_data:
            return self.sink.refuse_data
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.sink._lock:
            self.sink.messages.append(
                Received(envelope.mail_from or "", tuple(envelope.rcpt_tos), raw, parsed)
            )
        return "250 OK: queued"


def _server_context(cert: TlsCert) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert.cert), str(cert.key))
    return ctx


@dataclass
class SmtpSink:
    """An SMTP server on 127.0.0.1 that records messages. See the module docstring."""

    auth: tuple[str, str] | None = None  # require AUTH (PLAIN/LOGIN) with these
    auth_exclude: tuple[str, ...] = ()  # AUTH mechanisms not to offer, e.g. ("PLAIN",)
    starttls: TlsCert | None = None  # offer (and require) STARTTLS with this certificate
    implicit_tls: TlsCert | None = None  # TLS from the first byte (smtp.security: tls)
    refuse_mail: str | None = None
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    refuse_data: str | None = None
    delay: float = 0.0
    messages: list[Received] = field(default_factory=list)
    auth_attempts: list[tuple[str, bool]] = field(default_factory=list)  # (login, ok)
    # Offer (and require) AUTH XOAUTH2, a token accepted when oauth2_check(user, token).
    oauth2_check: Callable[[str, str], bool] | None = None
    port: int = 0  # 0: a free port; else this one (a sink restarted where one ran)
    host: str = HOST

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        self.refuse_rcpt = {k.lower(): v for k, v in self.refuse_rcpt.items()}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SmtpSink:
        kwargs: dict[str, Any] = {"server_hostname": "sink.test", "ready_timeout": 5.0}
        if self.auth is not None or self.oauth2_check is not None:
            excluded = [*self.auth_exclude, *(() if self.oauth2_check else ("XOAUTH2",))]
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
                # Plain loopback AUTH is what `security: none` does; with STARTTLS on,
                # AUTH is only offered after the handshake, as on a real server.
                auth_require_tls=self.starttls is not None,
                auth_exclude_mechanism=excluded,
            )
        if self.starttls is not None:
            kwargs.update(tls_context=_server_context(self.starttls), require_starttls=True)
        if self.implicit_tls is not None:
            kwargs["ssl_context"] = _server_context(self.implicit_tls)
        last_error: Exception | None = None
        fixed = self.port
        for attempt in range(5):  # the free port may be taken between probe and bind
            if fixed:
                time.sleep(0.2 * attempt)  # the old socket may linger a moment
            self.port = fixed or free_port()
            controller = Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)
            try:
                controller.start()
            except Exception as e:  # pragma: no cover - port race
                last_error = e
                continue
            self._controller = controller
            return self
        raise RuntimeError(f"could not start the SMTP sink: {last_error}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if self.auth is None or not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = data.login.decode("utf-8", "replace")
        ok = (login, data.password.decode("utf-8", "replace")) == self.auth
        with self._lock:
            self.auth_attempts.append((login, ok))
        return AuthResult(success=ok, handled=False)

    def smtp_config(
        self,
        security: Security = "none",
        *,
        from_address: str = "ackwatch <ackwatch@agency.example>",
        username: str | None = None,
        password_env: str | None = None,
        ca_file: Path | None = None,
        timeout: float = 5.0,
    ) -> SmtpConfig:
        """An `SmtpConfig` pointing at this sink (the password as an env reference)."""
        return SmtpConfig(
            host=self.host,
            port=self.port,
            security=security,
            from_address=from_address,
            username=username,
            password=SecretRef("env", password_env) if password_env else None,
            ca_file=ca_file,
            timeout=timeout,
        )

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.auth_attempts.clear()


def make_self_signed_cert(directory: Path) -> TlsCert | None:
    """A self-signed certificate for 127.0.0.1 and localhost, or None without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            "2",
            "-subj",
            "/CN=ackwatch test sink",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return TlsCert(cert, key)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> TlsCert:
    cert = make_self_signed_cert(tmp_path_factory.mktemp("smtp-tls"))
    if cert is None:
        pytest.skip("openssl CLI not found: cannot make a certificate for the TLS tests")
    return cert


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def smtp_sink_factory() -> Iterator[Callable[..., SmtpSink]]:
    sinks: list[SmtpSink] = []

    def make(**options: Any) -> SmtpSink:
        sink = SmtpSink(**options).start()
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.stop()
