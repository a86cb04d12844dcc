"""Logging setup: structlog events and stdlib records, one renderer, no secrets.

Under systemd stderr goes to journald and is not a TTY: every event is one JSON object on
one line (``event``, ``level``, ``timestamp`` in ISO 8601 UTC, ``logger``, then the event's
fields). On a terminal the same events are rendered by structlog's ConsoleRenderer.
Records from stdlib ``logging`` (imapclient, aiosmtpd, ``warnings``) go through the same
processors and renderer, at WARNING by default.

What never reaches the output:

- ``subject`` / ``subjects`` fields, unless ``log.subjects: true`` (``subjects=True``);
- the value of any field whose name looks secret (``password``, ``token``, ``secret``,
  ``authorization``, ``credential``, ...): replaced by ``"***"``;
- any value registered with `register_secret` (passwords and tokens once resolved),
  anywhere: event text, field values, nested containers, reprs, exception text;
- IMAP ``LOGIN`` / ``AUTHENTICATE`` arguments and SMTP ``AUTH`` arguments in protocol
  traces (imapclient's ``imapclient.imaplib`` debug logger, smtplib, aiosmtpd).

Modules log with ``structlog.get_logger(__name__)`` (or `get_logger`) as usual; only the
CLI calls `configure_logging`, once at start and again after a reload.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from typing import IO, Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "REDACTED",
    "configure_logging",
    "forget_secrets",
    "get_logger",
    "redact",
    "redaction_processors",
    "register_secret",
    "reset_logging",
]

REDACTED = "***"

# Field names whose value is a secret. Searched (case-insensitive) in the field name, so
# `smtp_password`, `access_token`, `Authorization`, `client_secret` all match.
SECRET_FIELD = re.compile(
    r"pass(?:word|wd|phrase)|secret|token|authori[sz]ation|credential|api_?key"
    r"|private_?key|cookie|bearer",
    re.IGNORECASE,
)
# ... unless the name says the value only *points at* the secret (a path, a variable
# name, a credential name): `password_file=/etc/ackwatch/anna.pass` stays readable.
SECRET_REFERENCE_SUFFIX = re.compile(r"_(?:file|path|env|name|ref|source|kind)$", re.IGNORECASE)
SUBJECT_FIELDS = frozenset({"subject", "subjects"})

# Protocol traces. imapclient already masks LOGIN/AUTHENTICATE in its own adapter; this
# is the second belt, and it also covers other libraries and SMTP AUTH.
_IMAP_AUTH_LINE = re.compile(
    r"""^(?P<head>\s*>\s*b?['"]?[\w.]+\s+(?:UID\s+)?)(?P<cmd>LOGIN|AUTHENTICATE)\b.*$""",
    re.IGNORECASE | re.MULTILINE,
)
_SMTP_AUTH = re.compile(
    r"\b(?P<cmd>AUTH\s+(?:PLAIN|LOGIN|XOAUTH2|OAUTHBEARER|CRAM-MD5))[ \t]+[^\s'\"\\]+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(?P<cmd>Bearer)[ \t]+[A-Za-z0-9\-._~+/=]{8,}", re.IGNORECASE)

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_FIRST_KEYS = ("event", "level", "timestamp", "logger")
_MAX_DEPTH = 8
# Loggers whose records carry protocol traces: a filter on each of them protects every
# handler (also ones added by others, such as pytest's caplog), not only ours.
_TRACE_LOGGERS = ("imapclient", "imapclient.imaplib", "imapclient.imapclient", "imaplib",
                  "smtplib", "mail.log", "mail.debug")


# --------------------------------------------------------------------------- secrets


class _SecretRegistry:
    """Known secret values; a compiled pattern matching any of them (longest first)."""

    TRANSIENT_MAX = 128

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._permanent: set[str] = set()
        # Short-lived values (OAuth2 access tokens, renewed hourly): bounded, oldest out.
        self._transient: OrderedDict[str, None] = OrderedDict()
        self._pattern: re.Pattern[str] | None = None
        self._stale = False

    @staticmethod
    def _variants(value: str) -> set[str]:
        """The value as it may appear in text: raw, stripped, repr- and JSON-escaped."""
        out = set()
        for v in {value, value.strip()}:
            if not v.strip():
                continue
            out |= {v, repr(v)[1:-1], json.dumps(v)[1:-1], repr(v.encode("utf-8"))[2:-1]}
        return {v for v in out if v}

    def add(self, value: str | bytes, *, transient: bool = False) -> None:
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode("utf-8", "replace")
        if not isinstance(value, str):
            value = str(value)
        variants = self._variants(value)
        if not variants:
            return
        with self._lock:
            for v in variants:
                if transient:
                    self._transient[v] = None
                    self._transient.move_to_end(v)
                else:
                    self._permanent.add(v)
            while len(self._transient) > self.TRANSIENT_MAX * 4:
                self._transient.popitem(last=False)
            self._stale = True  # compiled on next use, not on every registration

    def clear(self) -> None:
        with self._lock:
            self._permanent.clear()
            self._transient.clear()
            self._pattern = None
            self._stale = False

    def _current(self) -> re.Pattern[str] | None:
        if self._stale:
            with self._lock:
                if self._stale:
                    values = sorted(self._permanent | set(self._transient), key=len, reverse=True)
                    self._pattern = (
                        re.compile("|".join(map(re.escape, values))) if values else None
                    )
                    self._stale = False
        return self._pattern

    def scrub(self, text: str) -> str:
        pattern = self._current()
        if pattern is not None and text:
            text = pattern.sub(REDACTED, text)
        return text


_SECRETS = _SecretRegistry()


def register_secret(value: str | bytes | None, *, transient: bool = False) -> None:
    """Never show *value* in any log output from now on (it becomes ``***``).

    Call it as soon as a password or token is resolved (`ackwatch.credentials`).
    ``transient=True`` for values that are replaced regularly, such as OAuth2 access
    tokens: only the most recent ones are kept, so the registry does not grow forever.
    Empty values are ignored.
    """
    if value is None:
        return
    _SECRETS.add(value, transient=transient)


def forget_secrets() -> None:
    """Empty the registry (tests)."""
    _SECRETS.clear()


def _scrub_protocol(text: str) -> str:
    if ">" in text:
        text = _IMAP_AUTH_LINE.sub(lambda m: f"{m['head']}{m['cmd']} {REDACTED}", text)
    text = _SMTP_AUTH.sub(lambda m: f"{m['cmd']} {REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m['cmd']} {REDACTED}", text)


def redact(text: str) -> str:
    """*text* without registered secrets and protocol credentials."""
    return _SECRETS.scrub(_scrub_protocol(text))


# --------------------------------------------------------------------------- processors


def _is_secret_field(name: object) -> bool:
    return (
        isinstance(name, str)
        and SECRET_FIELD.search(name) is not None
        and SECRET_REFERENCE_SUFFIX.search(name) is None
    )


def _clean(value: Any, *, subjects: bool, depth: int = 0) -> Any:
    """Field names checked in nested mappings too; strings scrubbed; objects repr'd."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return REDACTED if redact(str(value)) != str(value) else value
    if isinstance(value, str):
        return redact(value)
    if depth >= _MAX_DEPTH:
        return REDACTED
    if isinstance(value, MutableMapping | dict):
        return _clean_mapping(value, subjects=subjects, depth=depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v, subjects=subjects, depth=depth + 1) for v in value]
    if isinstance(value, bytes | bytearray):
        return redact(repr(bytes(value)))
    if isinstance(value, dt.datetime | dt.date | dt.time | dt.timedelta):
        return str(value)
    return redact(repr(value))


def _clean_mapping(mapping: Any, *, subjects: bool, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if not subjects and isinstance(key, str) and key.lower() in SUBJECT_FIELDS:
            continue
        name = redact(str(key)) if not isinstance(key, str) else redact(key)
        if _is_secret_field(key) and not (value is None or value == "" or isinstance(value, bool)):
            out[name] = REDACTED
        else:
            out[name] = _clean(value, subjects=subjects, depth=depth)
    return out


def drop_subjects(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Remove ``subject`` / ``subjects`` fields (subjects are client data)."""
    for key in [k for k in event_dict if isinstance(k, str) and k.lower() in SUBJECT_FIELDS]:
        del event_dict[key]
    return event_dict


def _make_redactor(subjects: bool) -> Processor:
    def redact_fields(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        """Secret-looking fields -> ``***``; registered secrets removed from every value."""
        private = {k: v for k, v in event_dict.items() if isinstance(k, str) and k.startswith("_")}
        public = {k: v for k, v in event_dict.items() if k not in private}
        cleaned = _clean_mapping(public, subjects=subjects, depth=0)
        cleaned.update(private)  # _record, _from_structlog: structlog's own bookkeeping
        return cleaned

    return redact_fields


def redaction_processors(*, subjects: bool = False) -> list[Processor]:
    """The field-level processors (for ``structlog.testing.capture_logs(processors=...)``)."""
    chain: list[Processor] = [] if subjects else [drop_subjects]
    chain.append(_make_redactor(subjects))
    return chain


def _timestamp(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """ISO 8601 UTC with milliseconds; a stdlib record keeps its own creation time."""
    record = event_dict.get("_record")
    created = record.created if isinstance(record, logging.LogRecord) else time.time()
    stamp = dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds")
    event_dict["timestamp"] = stamp.replace("+00:00", "Z")
    return event_dict


def _logger_name(logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        event_dict["logger"] = record.name
    else:
        event_dict.setdefault("logger", getattr(logger, "name", None) or "ackwatch")
    return event_dict


def _with_node(node: str) -> Processor:
    def add_node(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("node", node)
        return event_dict

    return add_node


def _foreign_stack(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    stack = event_dict.pop("stack_info", None)
    if isinstance(stack, str):
        event_dict["stack"] = stack
    return event_dict


def _order(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    first = {k: event_dict.pop(k) for k in _FIRST_KEYS if k in event_dict}
    return {**first, **event_dict}


def _scrubbed(renderer: Processor) -> Callable[..., str]:
    """Last pass over the rendered line (console output: reprs, tracebacks)."""

    def render(logger: WrappedLogger, name: str, event_dict: EventDict) -> str:
        return redact(str(renderer(logger, name, event_dict)))

    return render


# --------------------------------------------------------------------------- output


class _Sink:
    """One stream, one lock: structlog events and stdlib records never interleave."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.lock = threading.Lock()

    def write(self, line: str) -> None:
        with self.lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # journald gone, stream closed: nowhere to log
                pass


class _Logger:
    """The wrapped logger for structlog: writes the rendered line to the sink."""

    def __init__(self, sink: _Sink, name: str | None):
        self._sink = sink
        self.name = name

    def msg(self, message: str) -> None:
        self._sink.write(message)

    log = debug = info = warn = warning = error = err = critical = exception = fatal = msg


class _LoggerFactory:
    def __init__(self, sink: _Sink):
        self.sink = sink

    def __call__(self, *args: Any) -> _Logger:
        name = args[0] if args and isinstance(args[0], str) else None
        return _Logger(self.sink, name)


class _SinkHandler(logging.Handler):
    def __init__(self, sink: _Sink):
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.sink.write(line)


class _RedactingFilter(logging.Filter):
    """Rewrites a stdlib record's text so that no handler can see a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):  # a structlog event on its way to a formatter
            return True
        try:
            message = record.getMessage()
        except Exception:
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


_REDACTING_FILTER = _RedactingFilter()
_installed: _SinkHandler | None = None


def _level(value: str | int) -> int:
    if isinstance(value, int):
        return value
    try:
        return _LEVELS[value.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown log level {value!r} (debug, info, warning, error)") from None


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def configure_logging(
    *,
    level: str | int = "info",
    subjects: bool = False,
    stream: IO[str] | None = None,
    force_json: bool | None = None,
    stdlib_level: str | int = "warning",
    node: str | None = None,
) -> None:
    """Set up structlog and stdlib logging; safe to call again (reload).

    level: minimum level of ackwatch's own events (``log.level``).
    subjects: keep ``subject``/``subjects`` fields (``log.subjects``); dropped otherwise.
    stream: where lines go (default ``sys.stderr``, which journald collects).
    force_json: True/False to choose; None: JSON unless *stream* is a TTY.
    stdlib_level: minimum level of other libraries' records (imapclient, aiosmtpd).
    node: this process's node name (``run --node``), a field of every event, from every
    thread (a context variable would not reach the watcher threads).
    """
    global _installed
    stream = sys.stderr if stream is None else stream
    tty = _isatty(stream)
    as_json = (not tty) if force_json is None else force_json
    sink = _Sink(stream)

    renderer: Processor
    if as_json:
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False, default=repr)
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=tty, exception_formatter=structlog.dev.plain_traceback
        )

    shared: list[Processor] = [
        *([_with_node(node)] if node else []),
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _logger_name,
        _timestamp,
    ]
    # Exceptions become text before the redactor, so tracebacks are scrubbed as well.
    final: list[Processor] = [
        structlog.processors.format_exc_info,
        *redaction_processors(subjects=subjects),
        _order,
    ]

    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            *final,
            _scrubbed(renderer),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_level(level)),
        logger_factory=_LoggerFactory(sink),
        context_class=dict,
        # Not cached: a reload may reconfigure (level, subjects) and must take effect.
        cache_logger_on_first_use=False,
    )

    handler = _SinkHandler(sink)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _foreign_stack],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *final,
                _scrubbed(renderer),
            ],
        )
    )
    handler.addFilter(_REDACTING_FILTER)

    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
    root.addHandler(handler)
    root.setLevel(_level(stdlib_level))
    _installed = handler
    for name in _TRACE_LOGGERS:
        trace_logger = logging.getLogger(name)
        if _REDACTING_FILTER not in trace_logger.filters:
            trace_logger.addFilter(_REDACTING_FILTER)
    logging.captureWarnings(True)


def reset_logging() -> None:
    """Undo `configure_logging`: structlog defaults, our handler removed (tests)."""
    global _installed
    structlog.reset_defaults()
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
        _installed = None
    root.setLevel(logging.WARNING)
    for name in _TRACE_LOGGERS:
        logging.getLogger(name).removeFilter(_REDACTING_FILTER)
    logging.captureWarnings(False)


def get_logger(name: str | None = None, **initial: Any) -> Any:
    """A structlog logger named *name* (the ``logger`` field), with *initial* fields bound."""
    return structlog.get_logger(name, **initial) if name else structlog.get_logger(**initial)
