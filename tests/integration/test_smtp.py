"""Sending ackwatch's mails to a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import socket
import ssl
import traceback
from collections.abc import Callable
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs
from structlog.tracebacks import ExceptionDictTransformer

from ackwatch.config import SecretRef, SmtpConfig
from ackwatch.mail.compose import Notice, NoticeLine, render
from ackwatch.mail.smtp import PermanentSendError, SendError, TemporarySendError, send

if TYPE_CHECKING:  # imported at run time by pytest_plugins (so its asserts are rewritten)
    from tests.servers.smtp import SmtpSink, TlsCert

pytest_plugins = ["tests.servers.smtp"]
pytestmark = [
    pytest.mark.integration,
    # The AUTH sink accepts AUTH without TLS on purpose (smtp.security: none on loopback).
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

NOW = dt.datetime(2026, 11, 23, 13, 32, 10, tzinfo=dt.UTC)
FROM = "ackwatch <ackwatch@agency.example>"
USER = "ackwatch@agency.example"
PASSWORD = "Tr0ub4dor&3-horse-battery"
SinkFactory = Callable[..., "SmtpSink"]


def resolve(ref: SecretRef) -> str:
    assert ref == SecretRef("env", "ACKWATCH_SMTP_PASSWORD")
    return PASSWORD


def escalation_mail() -> EmailMessage:
    notice = Notice(
        kind="escalation",
        to="kasia@agency.example",
        cc=("anna@agency.example",),
        lines=(
            NoticeLine(
                "Acme", "ceo@acme.example", "Secret project quote",
                received=NOW - dt.timedelta(hours=3), deadline=NOW - dt.timedelta(minutes=20),
                message_id="<c1@acme.example>",
            ),
        ),
        now=NOW,
        language="pl",
        timezone="Europe/Warsaw",
        account="anna@agency.example",
        account_name="Anna Nowak",
    )
    return render(notice, smtp_from=FROM)


def with_auth(config: SmtpConfig) -> SmtpConfig:
    return dataclasses.replace(
        config, username=USER, password=SecretRef("env", "ACKWATCH_SMTP_PASSWORD")
    )


def leak_forms() -> list[str]:
    def b64(s: str) -> str:
        return base64.b64encode(s.encode()).decode()

    return [PASSWORD, b64(PASSWORD), b64(f"\0{USER}\0{PASSWORD}")]


def everything_about(err: BaseException) -> str:
    """Every text a log pipeline could make of the exception, locals included."""
    texts = [str(err), repr(err), repr(err.args), repr(getattr(err, "recipients", None))]
    texts += traceback.format_exception(err)
    dict_tb = ExceptionDictTransformer(show_locals=True, locals_max_string=100_000)
    texts.append(repr(dict_tb((type(err), err, err.__traceback__))))
    return "\n".join(texts)


def send_expecting(
    cls: type[SendError], msg: EmailMessage, config: SmtpConfig, **kw: object
) -> SendError:
    with pytest.raises(cls) as info:
        send(msg, config, local_hostname="ackwatch.test", **kw)  # type: ignore[arg-type]
    return info.value


# --------------------------------------------------------------------------- delivery


def test_send_plain_loopback(smtp_sink: SmtpSink) -> None:
    msg = escalation_mail()
    with capture_logs() as logs:
        send(msg, smtp_sink.smtp_config("none"), local_hostname="ackwatch.test")

    [got] = smtp_sink.messages
    assert got.mail_from == "ackwatch@agency.example"
    assert sorted(got.rcpt_tos) == ["anna@agency.example", "kasia@agency.example"]
    assert got.message["Message-ID"] == msg["Message-ID"]
    assert got.message["Subject"] == msg["Subject"]
    assert got.message["Auto-Submitted"] == "auto-generated"
    assert got.message["X-Ackwatch"] == "escalation"
    assert got.message["Bcc"] is None
    assert "Secret project quote" in got.message.get_body(("plain",)).get_content()

    [event] = [e for e in logs if e["event"] == "mail_sent"]
    assert event["kind"] == "escalation"
    assert event["message_id"] == msg["Message-ID"]
    assert event["to"] == ["kasia@agency.example", "anna@agency.example"]
    assert "Secret project" not in repr(logs)  # never log subjects


def test_send_with_auth(smtp_sink_factory: SinkFactory) -> None:
    sink = smtp_sink_factory(auth=(USER, PASSWORD))
    send(escalation_mail(), with_auth(sink.smtp_config("none")), resolve=resolve,
         local_hostname="ackwatch.test")
    assert sink.auth_attempts == [(USER, True)]
    assert len(sink.messages) == 1


def test_send_without_auth_to_auth_server_is_permanent(smtp_sink_factory: SinkFactory) -> None:
    sink = smtp_sink_factory(auth=(USER, PASSWORD))
    err = send_expecting(PermanentSendError, escalation_mail(), sink.smtp_config("none"))
    assert err.code is not None and 500 <= err.code < 600
    assert sink.messages == []


def test_security_none_is_refused_off_loopback() -> None:
    config = SmtpConfig("smtp.agency.example", 25, "none", FROM, timeout=1)
    err = send_expecting(PermanentSendError, escalation_mail(), config)
    assert "loopback" in str(err)


# --------------------------------------------------------------------------- TLS


def test_starttls_not_offered_is_a_temporary_tls_failure_never_plain_text(
    smtp_sink_factory: SinkFactory,
) -> None:
    sink = smtp_sink_factory(auth=(USER, PASSWORD))  # AUTH in the clear would be accepted
    with capture_logs() as logs:
        err = send_expecting(
            TemporarySendError, escalation_mail(), with_auth(sink.smtp_config("starttls")),
            resolve=resolve,
        )
    assert "STARTTLS" in str(err) and err.failure == "starttls_not_offered"
    assert sink.messages == []
    assert sink.auth_attempts == []  # the password never went out in plain text
    [failed] = [e for e in logs if e["event"] == "smtp_tls_failed"]
    assert failed["reason"] == "starttls_not_offered" and failed["log_level"] == "error"


def test_starttls_with_private_ca_sends(smtp_sink_factory: SinkFactory, tls_cert: TlsCert) -> None:
    sink = smtp_sink_factory(starttls=tls_cert, auth=(USER, PASSWORD))
    config = with_auth(sink.smtp_config("starttls", ca_file=tls_cert.cert))
    send(escalation_mail(), config, resolve=resolve, local_hostname="ackwatch.test")
    assert sink.auth_attempts == [(USER, True)]
    assert len(sink.messages) == 1


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_smtp_refuses_tls_older_than_1_2_even_where_the_platform_allows_it(
    smtp_sink_factory: SinkFactory, tls_cert: TlsCert, security: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The SMTP context has the IMAP one's TLS 1.2 minimum of its own, not by way of a
    Python or OpenSSL default (TLS 1.0 and 1.1 are still allowed by some)."""
    made: list[ssl.SSLContext] = []
    default = ssl.create_default_context

    def permissive(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        ctx = default(*args, **kwargs)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        made.append(ctx)
        return ctx

    tls = {"starttls": tls_cert} if security == "starttls" else {"implicit_tls": tls_cert}
    sink = smtp_sink_factory(auth=(USER, PASSWORD), **tls)
    config = with_auth(sink.smtp_config(security, ca_file=tls_cert.cert))
    monkeypatch.setattr(ssl, "create_default_context", permissive)
    send(escalation_mail(), config, resolve=resolve, local_hostname="ackwatch.test")
    monkeypatch.undo()
    assert len(sink.messages) == 1
    assert made and all(c.minimum_version == ssl.TLSVersion.TLSv1_2 for c in made)
    assert all(c.verify_mode == ssl.CERT_REQUIRED and c.check_hostname for c in made)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_unverifiable_certificate_is_a_temporary_tls_failure(
    smtp_sink_factory: SinkFactory, tls_cert: TlsCert, security: str
) -> None:
    tls = {"starttls": tls_cert} if security == "starttls" else {"implicit_tls": tls_cert}
    sink = smtp_sink_factory(auth=(USER, PASSWORD), **tls)
    with capture_logs() as logs:
        err = send_expecting(  # no ca_file: the self-signed certificate does not verify
            TemporarySendError, escalation_mail(), with_auth(sink.smtp_config(security)),
            resolve=resolve,
        )
    assert "certificate verification failed" in str(err)
    assert err.failure == "tls_certificate"
    assert sink.messages == [] and sink.auth_attempts == []
    [failed] = [e for e in logs if e["event"] == "smtp_tls_failed"]
    assert failed["reason"] == "tls_certificate"
    assert failed["host"] == "127.0.0.1" and failed["security"] == security


def test_plain_server_behind_a_tls_port_is_a_temporary_tls_failure(smtp_sink: SmtpSink) -> None:
    with capture_logs() as logs:
        err = send_expecting(TemporarySendError, escalation_mail(), smtp_sink.smtp_config("tls"))
    assert err.failure == "tls_handshake" and "TLS handshake failed" in str(err)
    assert [e["reason"] for e in logs if e["event"] == "smtp_tls_failed"] == ["tls_handshake"]
    assert smtp_sink.messages == []


def test_implicit_tls_sends(smtp_sink_factory: SinkFactory, tls_cert: TlsCert) -> None:
    sink = smtp_sink_factory(implicit_tls=tls_cert)
    send(escalation_mail(), sink.smtp_config("tls", ca_file=tls_cert.cert),
         local_hostname="ackwatch.test")
    assert len(sink.messages) == 1


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data"])
def test_4xx_is_temporary(smtp_sink: SmtpSink, stage: str) -> None:
    reply = "451 4.3.0 Try again later"
    if stage == "mail":
        smtp_sink.refuse_mail = reply
    elif stage == "rcpt":
        smtp_sink.refuse_rcpt["*"] = reply
    else:
        smtp_sink.refuse_data = reply
    err = send_expecting(TemporarySendError, escalation_mail(), smtp_sink.smtp_config())
    assert err.temporary
    assert "Try again later" in str(err)
    if stage == "rcpt":
        assert err.recipients == {
            "kasia@agency.example": (451, "4.3.0 Try again later"),
            "anna@agency.example": (451, "4.3.0 Try again later"),
        }
    else:
        assert err.code == 451
    assert smtp_sink.messages == []


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data"])
def test_5xx_is_permanent(smtp_sink: SmtpSink, stage: str) -> None:
    if stage == "mail":
        smtp_sink.refuse_mail = "553 5.7.1 Sender not allowed"
    elif stage == "rcpt":
        smtp_sink.refuse_rcpt["kasia@agency.example"] = "550 5.1.1 No such user"
        smtp_sink.refuse_rcpt["anna@agency.example"] = "552 5.2.2 Mailbox full"
    else:
        smtp_sink.refuse_data = "554 5.6.0 Message rejected"
    err = send_expecting(PermanentSendError, escalation_mail(), smtp_sink.smtp_config())
    assert not err.temporary
    if stage == "rcpt":
        assert err.recipients == {
            "kasia@agency.example": (550, "5.1.1 No such user"),
            "anna@agency.example": (552, "5.2.2 Mailbox full"),
        }
        assert "kasia@agency.example: 550 5.1.1 No such user" in str(err)
    else:
        assert err.code in (553, 554)
    assert smtp_sink.messages == []


def test_mixed_refusals_are_temporary(smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse_rcpt["kasia@agency.example"] = "550 5.1.1 No such user"
    smtp_sink.refuse_rcpt["anna@agency.example"] = "450 4.2.1 Slow down"
    err = send_expecting(TemporarySendError, escalation_mail(), smtp_sink.smtp_config())
    assert set(err.recipients) == {"kasia@agency.example", "anna@agency.example"}


def test_partial_refusal_delivers_and_logs(smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse_rcpt["anna@agency.example"] = "550 5.1.1 No such user"
    with capture_logs() as logs:
        send(escalation_mail(), smtp_sink.smtp_config(), local_hostname="ackwatch.test")
    assert [m.rcpt_tos for m in smtp_sink.messages] == [("kasia@agency.example",)]
    [refused] = [e for e in logs if e["event"] == "mail_recipients_refused"]
    assert refused["refused"] == {"anna@agency.example": 550}


def test_connection_refused_is_temporary() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = SmtpConfig("127.0.0.1", port, "none", FROM, timeout=2)
    err = send_expecting(TemporarySendError, escalation_mail(), config)
    assert "connection failed" in str(err)


def test_timeout_is_temporary(smtp_sink: SmtpSink) -> None:
    smtp_sink.delay = 1.5
    config = dataclasses.replace(smtp_sink.smtp_config(), timeout=0.3)
    err = send_expecting(TemporarySendError, escalation_mail(), config)
    assert "timed out" in str(err)


def test_unresolvable_password_is_temporary_and_names_its_source(smtp_sink: SmtpSink) -> None:
    def broken(ref: SecretRef) -> str:
        raise KeyError(f"{ref.value} is not set")

    with capture_logs() as logs:
        err = send_expecting(
            TemporarySendError, escalation_mail(), with_auth(smtp_sink.smtp_config()),
            resolve=broken,
        )
    assert "password_env ACKWATCH_SMTP_PASSWORD" in str(err)
    assert err.failure == "secret_unavailable"
    assert err.__context__ is None and err.__cause__ is None
    assert [e["reason"] for e in logs if e["event"] == "smtp_auth_failed"] == [
        "secret_unavailable"
    ]


def test_refused_password_is_temporary_and_logged_loudly(smtp_sink_factory: SinkFactory) -> None:
    sink = smtp_sink_factory(auth=(USER, "another-password"))
    with capture_logs() as logs:
        err = send_expecting(
            TemporarySendError, escalation_mail(), with_auth(sink.smtp_config()), resolve=resolve
        )
    assert err.code == 535 and err.failure == "auth_refused"
    [failed] = [e for e in logs if e["event"] == "smtp_auth_failed"]
    assert failed["reason"] == "auth_refused" and failed["log_level"] == "error"


# --------------------------------------------------------------------------- non-ASCII secrets

UTF8_PASSWORD = "Zażółć-gęślą-jaźń-Пароль-€"


def utf8_resolve(ref: SecretRef) -> str:
    return UTF8_PASSWORD


def shows_a_character_of(secret: str, text: str) -> bool:
    """A non-ASCII character of ``secret`` in ``text``, raw or as Python escapes it."""
    return any(
        c in text or f"\\u{ord(c):04x}" in text or f"\\x{ord(c):02x}" in text
        for c in secret if not c.isascii()
    )


def test_non_ascii_password_is_sent_as_utf8_auth_plain(smtp_sink_factory: SinkFactory) -> None:
    sink = smtp_sink_factory(auth=(USER, UTF8_PASSWORD))
    send(escalation_mail(), with_auth(sink.smtp_config("none")), resolve=utf8_resolve,
         local_hostname="ackwatch.test")
    assert sink.auth_attempts == [(USER, True)]
    assert len(sink.messages) == 1


def test_non_ascii_password_after_starttls_is_sent_as_utf8(
    smtp_sink_factory: SinkFactory, tls_cert: TlsCert
) -> None:
    sink = smtp_sink_factory(starttls=tls_cert, auth=(USER, UTF8_PASSWORD))
    config = with_auth(sink.smtp_config("starttls", ca_file=tls_cert.cert))
    send(escalation_mail(), config, resolve=utf8_resolve, local_hostname="ackwatch.test")
    assert sink.auth_attempts == [(USER, True)] and len(sink.messages) == 1


def test_non_ascii_password_without_auth_plain_is_refused_clearly_without_a_character_of_it(
    smtp_sink_factory: SinkFactory,
) -> None:
    sink = smtp_sink_factory(auth=(USER, UTF8_PASSWORD), auth_exclude=("PLAIN",))
    with capture_logs() as logs:
        err = send_expecting(
            TemporarySendError, escalation_mail(), with_auth(sink.smtp_config("none")),
            resolve=utf8_resolve,
        )
    assert err.failure == "auth_unusable"
    assert "password_env ACKWATCH_SMTP_PASSWORD" in str(err) and "AUTH PLAIN" in str(err)
    assert sink.auth_attempts == []  # nothing was tried, nothing refused
    text = everything_about(err) + repr(logs)
    assert not shows_a_character_of(UTF8_PASSWORD, text)
    assert "position" not in text and "UnicodeEncodeError" not in text
    assert [e["reason"] for e in logs if e["event"] == "smtp_auth_failed"] == ["auth_unusable"]


def test_wrong_non_ascii_password_is_refused_without_a_character_of_it(
    smtp_sink_factory: SinkFactory,
) -> None:
    sink = smtp_sink_factory(auth=(USER, "another-password"))
    with capture_logs() as logs:
        err = send_expecting(
            TemporarySendError, escalation_mail(), with_auth(sink.smtp_config("none")),
            resolve=utf8_resolve,
        )
    assert err.code == 535 and err.failure == "auth_refused"
    assert sink.auth_attempts == [(USER, False)]
    text = everything_about(err) + repr(logs)
    assert not shows_a_character_of(UTF8_PASSWORD, text) and "position" not in text


def test_password_never_in_exception_text(smtp_sink_factory: SinkFactory) -> None:
    # 1. Wrong password: 535 from the server.
    sink = smtp_sink_factory(auth=(USER, "another-password"))
    err = send_expecting(
        TemporarySendError, escalation_mail(), with_auth(sink.smtp_config()), resolve=resolve
    )
    assert err.code == 535
    errors: list[SendError] = [err]

    # 2. A server that echoes the credentials back in its refusals.
    sink = smtp_sink_factory(auth=(USER, PASSWORD))
    sink.refuse_rcpt["*"] = f"550 5.7.1 Policy: {USER} {PASSWORD} not allowed"
    errors.append(send_expecting(
        PermanentSendError, escalation_mail(), with_auth(sink.smtp_config()), resolve=resolve
    ))
    sink.refuse_rcpt.clear()
    plain_b64 = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    sink.refuse_data = f"451 4.7.0 Retry ({plain_b64}) {PASSWORD}"
    errors.append(send_expecting(
        TemporarySendError, escalation_mail(), with_auth(sink.smtp_config()), resolve=resolve
    ))

    # 3. STARTTLS missing, after the password was resolved.
    errors.append(send_expecting(
        TemporarySendError, escalation_mail(), with_auth(sink.smtp_config("starttls")),
        resolve=resolve,
    ))

    for e in errors:
        text = everything_about(e)
        for form in leak_forms():
            assert form not in text, f"password leaked via {type(e).__name__}: {e}"
        assert e.__context__ is None and e.__cause__ is None
    assert "***" in str(errors[1]) and "***" in str(errors[2])
