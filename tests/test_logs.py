"""Logging: JSON lines for journald, readable on a TTY, and never a secret or a subject."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
import structlog
from structlog.testing import capture_logs

from ackwatch import logs

SECRET = "s3cr3t-Pa55!"


@pytest.fixture(autouse=True)
def _clean_logging():
    saved = structlog.get_config()
    logs.forget_secrets()
    yield
    logs.reset_logging()
    logs.forget_secrets()
    structlog.configure(**saved)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _configure(**kw) -> io.StringIO:
    stream = io.StringIO()
    logs.configure_logging(stream=stream, **kw)
    return stream


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# --------------------------------------------------------------------------- format


def test_non_tty_stream_gets_one_json_object_per_event():
    stream = _configure()
    log = logs.get_logger("ackwatch.daemon.service")
    log.info("nudge_sent", account="anna@agency.example", items=3)
    log.warning("mail_deferred", attempt=2)

    first, second = _lines(stream)
    assert list(first)[:4] == ["event", "level", "timestamp", "logger"]
    assert first["event"] == "nudge_sent"
    assert first["level"] == "info"
    assert first["logger"] == "ackwatch.daemon.service"
    assert first["account"] == "anna@agency.example"
    assert first["items"] == 3
    assert second["level"] == "warning"


def test_timestamp_is_iso_8601_utc():
    stream = _configure()
    logs.get_logger("ackwatch").info("tick")
    (line,) = _lines(stream)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])


def test_structlog_get_logger_with_module_name_sets_logger_field():
    stream = _configure()
    structlog.get_logger("ackwatch.mail.imap").info("connected", mailbox="anna")
    assert _lines(stream)[0]["logger"] == "ackwatch.mail.imap"


def test_tty_stream_gets_colored_console_lines():
    stream = _Tty()
    logs.configure_logging(stream=stream)
    logs.get_logger("ackwatch").info("daemon_started", mailboxes=2)
    out = stream.getvalue()
    assert "daemon_started" in out
    assert "\x1b[" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.splitlines()[0])


def test_forced_console_on_non_tty_has_no_colors():
    stream = _configure(force_json=False)
    logs.get_logger("ackwatch").info("daemon_started", mailboxes=2)
    out = stream.getvalue()
    assert "daemon_started" in out and "mailboxes=2" in out
    assert "\x1b[" not in out


def test_forced_json_on_tty():
    stream = _Tty()
    logs.configure_logging(stream=stream, force_json=True)
    logs.get_logger("ackwatch").info("daemon_started")
    assert json.loads(stream.getvalue())["event"] == "daemon_started"


def test_level_filters_own_events():
    stream = _configure(level="warning")
    log = logs.get_logger("ackwatch")
    log.info("quiet")
    log.warning("loud")
    assert [e["event"] for e in _lines(stream)] == ["loud"]


def test_unknown_level_is_rejected():
    with pytest.raises(ValueError, match="unknown log level"):
        logs.configure_logging(level="chatty", stream=io.StringIO())


def test_exception_is_rendered_as_text_in_the_json_object():
    stream = _configure()
    try:
        raise RuntimeError("imap went away")
    except RuntimeError:
        logs.get_logger("ackwatch").exception("watcher_crashed", mailbox="anna")
    (line,) = _lines(stream)
    assert line["level"] == "error"
    assert "RuntimeError: imap went away" in line["exception"]


def test_reconfiguring_replaces_the_handler_instead_of_adding_one():
    _configure()
    second = _configure()
    logging.getLogger("imapclient").warning("server said BYE")
    assert len(_lines(second)) == 1
    ours = [h for h in logging.getLogger().handlers if isinstance(h, logs._SinkHandler)]
    assert len(ours) == 1


# --------------------------------------------------------------------------- subjects


def test_subjects_are_dropped_by_default():
    stream = _configure()
    logs.get_logger("ackwatch").info(
        "item_opened", subject="Quote for Q3", subjects=["a", "b"], client="Acme"
    )
    (line,) = _lines(stream)
    assert "subject" not in line and "subjects" not in line
    assert "Quote for Q3" not in stream.getvalue()
    assert line["client"] == "Acme"


def test_subjects_are_kept_when_log_subjects_is_on():
    stream = _configure(subjects=True)
    logs.get_logger("ackwatch").info("item_opened", subject="Quote for Q3")
    assert _lines(stream)[0]["subject"] == "Quote for Q3"


def test_capture_logs_with_redaction_processors_shows_clean_fields():
    logs.configure_logging(stream=io.StringIO())
    with capture_logs(processors=logs.redaction_processors(subjects=False)) as cap:
        logs.get_logger("ackwatch").info(
            "item_opened", subject="Quote", password="hunter22", password_file="/etc/a"
        )
    assert cap == [
        {
            "event": "item_opened",
            "log_level": "info",
            "password": "***",
            "password_file": "/etc/a",
        }
    ]


def test_nested_subjects_are_dropped_too():
    stream = _configure()
    logs.get_logger("ackwatch").info("digest", items=[{"subject": "Quote", "age": 3}])
    assert _lines(stream)[0]["items"] == [{"age": 3}]


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    "field",
    ["password", "smtp_password", "access_token", "Authorization", "client_secret",
     "credential", "api_key", "passphrase"],
)
def test_secret_looking_fields_are_redacted(field):
    stream = _configure()
    logs.get_logger("ackwatch").info("auth", **{field: "plain-value-123"})
    assert _lines(stream)[0][field] == "***"
    assert "plain-value-123" not in stream.getvalue()


@pytest.mark.parametrize("field", ["password_file", "password_env", "credential_name"])
def test_fields_naming_where_a_secret_lives_stay_readable(field):
    stream = _configure()
    logs.get_logger("ackwatch").info("secret_missing", **{field: "anna.pass"})
    assert _lines(stream)[0][field] == "anna.pass"


def test_registered_secret_never_appears_in_any_json_output():
    stream = _configure(stdlib_level="debug")
    logs.register_secret(SECRET)
    log = logs.get_logger("ackwatch")

    class Conn:
        def __repr__(self) -> str:
            return f"Conn(user='anna', pw='{SECRET}')"

    log.info(f"event text {SECRET}", note=f"field {SECRET}", nested={"a": [SECRET]}, conn=Conn())
    log.info("bytes", raw=SECRET.encode())
    try:
        raise ValueError(f"login failed for {SECRET}")
    except ValueError:
        log.exception("login_failed")
    logging.getLogger("imapclient").debug("sending %s", SECRET)

    out = stream.getvalue()
    assert SECRET not in out
    lines = _lines(stream)  # still valid JSON after redaction
    assert len(lines) == 4
    assert lines[0]["event"] == "event text ***"
    assert lines[0]["nested"] == {"a": ["***"]}
    assert "***" in lines[2]["exception"]


def test_registered_secret_with_quotes_and_non_ascii_never_appears():
    awkward = 'pä"ss\\wörd'
    stream = _configure()
    logs.register_secret(awkward)
    log = logs.get_logger("ackwatch")
    log.info("dump", cfg={"x": awkward}, as_repr=repr(awkward), as_json=json.dumps(awkward))
    out = stream.getvalue()
    assert awkward not in out and json.dumps(awkward)[1:-1] not in out
    assert awkward not in json.dumps(_lines(stream))


def test_registered_secret_never_appears_on_the_console():
    stream = _configure(force_json=False)
    logs.register_secret(SECRET + "\n")  # as read from a password file
    try:
        raise ValueError(f"bad {SECRET}")
    except ValueError:
        logs.get_logger("ackwatch").exception("oops", args=(SECRET,))
    assert SECRET not in stream.getvalue()


def test_transient_secrets_are_bounded_but_recent_ones_are_redacted():
    stream = _configure()
    logs.register_secret(SECRET)
    for i in range(2000):
        logs.register_secret(f"ya29.token-{i:05d}", transient=True)
    logs.get_logger("ackwatch").info("t", old="ya29.token-00000", new="ya29.token-01999", pw=SECRET)
    (line,) = _lines(stream)
    assert line["new"] == "***"
    assert line["pw"] == "***"  # a password is never evicted by token churn


def test_empty_secret_is_ignored():
    stream = _configure()
    logs.register_secret("")
    logs.register_secret("   ")
    logs.register_secret(None)
    logs.get_logger("ackwatch").info("hello world")
    assert _lines(stream)[0]["event"] == "hello world"


# --------------------------------------------------------------------------- stdlib


def test_stdlib_records_use_the_same_renderer_at_warning():
    stream = _configure()
    logging.getLogger("imapclient.imapclient").info("Connected to host")
    logging.getLogger("mail.log").warning("peer %s reset", "127.0.0.1")
    (line,) = _lines(stream)
    assert line["event"] == "peer 127.0.0.1 reset"
    assert line["level"] == "warning"
    assert line["logger"] == "mail.log"
    assert line["timestamp"].endswith("Z")


def test_imap_login_trace_is_redacted_in_our_output():
    stream = _configure(stdlib_level="debug")
    logging.getLogger("imapclient.imaplib").debug("> b'GKJE3 LOGIN anna@agency.example \"pw 1\"'")
    logging.getLogger("imapclient.imaplib").debug("> b'GKJE4 AUTHENTICATE XOAUTH2 dXNlcj1h'")
    events = [e["event"] for e in _lines(stream)]
    assert events == ["> b'GKJE3 LOGIN ***", "> b'GKJE4 AUTHENTICATE ***"]


def test_imap_login_trace_is_redacted_for_other_handlers_too(caplog):
    logs.configure_logging(stream=io.StringIO())
    logs.register_secret("tok-XYZ-123")
    with caplog.at_level(logging.DEBUG, logger="imapclient.imaplib"):
        logging.getLogger("imapclient.imaplib").debug('> b\'A1 LOGIN anna "pw 1"\'')
        logging.getLogger("imapclient.imaplib").debug("< token tok-XYZ-123")
    assert "pw 1" not in caplog.text
    assert "tok-XYZ-123" not in caplog.text
    assert "LOGIN ***" in caplog.text


def test_imapclient_adapter_output_goes_through_our_renderer():
    imapclient = pytest.importorskip("imapclient.imapclient")
    stream = _configure(stdlib_level="debug")
    adapter = imapclient.IMAPlibLoggerAdapter(logging.getLogger("imapclient.imaplib"), {})
    adapter.debug("> b'X1 LOGIN anna \"pw 1\"'")
    (line,) = _lines(stream)
    assert "pw 1" not in stream.getvalue()
    assert line["logger"] == "imapclient.imaplib"


def test_smtp_auth_and_bearer_tokens_are_redacted():
    stream = _configure(stdlib_level="debug")
    logging.getLogger("mail.log").debug("AUTH PLAIN AGFubmEAcGFzcw==")
    logs.get_logger("ackwatch").info("http", header="Authorization: Bearer eyJhbGciOiJIUzI1NiJ9")
    out = stream.getvalue()
    assert "AGFubmEAcGFzcw" not in out
    assert "eyJhbGciOiJIUzI1NiJ9" not in out
