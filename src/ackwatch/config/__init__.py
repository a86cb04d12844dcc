"""The config file: typed, immutable values and the one loader that validates them.

`load_config(path)` returns a `Config` or raises one `ConfigError` that carries every
problem found (file, key path such as ``mailboxes[1].port``, and what is wrong), the way
borgmatic reports schema errors. The CLI catches it once and exits 78 (EX_CONFIG).

Secrets are *references* (`SecretRef`): they are resolved when used (`resolve_secret`),
never while loading, because ops run ``check-config`` in a shell that lacks the
service's environment and credentials.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import ipaddress
import math
import os
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import getaddresses
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

EX_CONFIG = 78

Security = Literal["tls", "starttls", "none"]
Clock = Literal["business", "calendar"]


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config, at a key path like ``mailboxes[1].port``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """Every problem found in one config file, reported together."""

    def __init__(self, file: Path | str, problems: list[Problem]):
        self.file = str(file)
        self.problems = tuple(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.file}: {len(self.problems)} configuration error(s):"]
        lines += [f"  {self.file}: {p}" for p in self.problems]
        return "\n".join(lines)


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives. ``kind``: file | env | credential | command."""

    kind: Literal["file", "env", "credential", "command"]
    value: str

    def describe(self) -> str:
        """Where the secret lives, as the config says it, for messages, logs, the health
        table and ``status``: ``password_file /etc/ackwatch/anna.pass``, ``password_env
        ANNA_PASSWORD``, ``credential anna.pass``. A command is named by its program alone
        (``oauth2_token_command get-token ...``): its arguments may carry a client secret.
        The one description of a secret source (`ackwatch.credentials` uses it too)."""
        key = _SECRET_KEY_OF_KIND.get(self.kind, self.kind)
        if self.kind == "command":
            return f"{key} {_program_name(self.value)}"
        return f"{key} {self.value}"

    def __repr__(self) -> str:  # a config's repr must not show a command's arguments
        return f"SecretRef({self.describe()})"


def _program_name(command: str) -> str:
    """The file name of a command line's program, with `` ...`` when arguments follow;
    ``(program)`` when the first word does not look like a file name (an ``X=secret``)."""
    try:
        argv = shlex.split(command)
    except ValueError:
        argv = command.split()
    if not argv:
        return "(empty)"
    name = argv[0].rstrip("/").rsplit("/", 1)[-1]
    if not re.fullmatch(r"[\w.+-]{1,64}", name):
        name = "(program)"
    return name + (" ..." if len(argv) > 1 else "")


@dataclass(frozen=True)
class Trust:
    """Who vouches for agency-looking mail that arrived in a watched inbox (README "What
    counts", `classify.is_vouched`).

    ``inbox_agency_mail``: ``verified`` (the default) believes such a mail only when a
    receiving server in ``authserv_ids`` says it passed DMARC (or DKIM for an agency
    domain), or its Received chain never left ``relays``; ``trusted`` believes every
    agency-looking From, as ackwatch did before (anyone can forge one)."""

    inbox_agency_mail: str = "verified"  # "verified" | "trusted"
    authserv_ids: tuple[str, ...] = ()  # lower-cased
    relays: tuple[str, ...] = ()  # host names, "*.domain", IP addresses, CIDR networks


@dataclass(frozen=True)
class Agency:
    domains: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    form_senders: tuple[str, ...] = ()
    trust: Trust = Trust()


@dataclass(frozen=True)
class OpenRange:
    """An open interval within one day, minutes from midnight; end may be 1440 (24:00)."""

    start: int
    end: int


@dataclass(frozen=True)
class CalendarConfig:
    name: str
    timezone: str
    # Index 0 = Monday ... 6 = Sunday; each day a sorted tuple of non-overlapping ranges.
    hours: tuple[tuple[OpenRange, ...], ...]
    holidays: str | None = None  # ISO country code, e.g. "PL"
    holiday_subdivision: str | None = None  # e.g. "BY" for "DE-BY"
    closed: frozenset[dt.date] = frozenset()


@dataclass(frozen=True)
class Policy:
    name: str
    window: dt.timedelta
    clock: Clock
    calendar: str | None  # required for clock=business
    nudge_before: dt.timedelta
    escalate_after: dt.timedelta | None  # None: never escalate


@dataclass(frozen=True)
class Absence:
    """A configured absence, inclusive dates in the account's calendar timezone."""

    start: dt.date
    until: dt.date


@dataclass(frozen=True)
class Account:
    email: str
    name: str
    manager: str | None = None
    backup: str | None = None
    language: str = "en"
    calendar: str | None = None  # for display times; default: the first calendar
    away: tuple[Absence, ...] = ()


@dataclass(frozen=True)
class Client:
    name: str
    # Each entry: a domain ("acme.example", matches subdomains too), an address
    # ("ceo@mail.example"), or a glob ("*@acme.*").
    match: tuple[str, ...]
    policy: str = "default"
    account: str | None = None


@dataclass(frozen=True)
class Folders:
    inbox: tuple[str, ...] = ("INBOX",)
    sent: tuple[str, ...] | Literal["auto"] = "auto"


@dataclass(frozen=True)
class MailboxConfig:
    name: str
    host: str
    port: int
    security: Security
    username: str
    password: SecretRef | None  # plain login
    oauth2_token: SecretRef | None  # kind == "command": XOAUTH2
    folders: Folders = field(default_factory=Folders)
    owner: str | None = None
    ca_file: Path | None = None
    timeout: float = 60.0

    @property
    def owner_address(self) -> str:
        return (self.owner or self.username).lower()


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: Security
    from_address: str  # the full From header value, e.g. "ackwatch <ackwatch@agency.example>"
    username: str | None = None
    password: SecretRef | None = None
    ca_file: Path | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class IgnoreRules:
    senders: tuple[str, ...] = ()  # shell-style globs on the address, case-insensitive
    subjects: tuple[re.Pattern[str], ...] = ()  # regexes searched in the decoded subject


@dataclass(frozen=True)
class SyncConfig:
    backfill: dt.timedelta = dt.timedelta(days=7)
    poll_interval: dt.timedelta = dt.timedelta(seconds=60)
    idle: bool = True
    batch_size: int = 500
    # The longest one IMAP command may take as a whole (IDLE: its renewal plus this),
    # and one mailbox's sync in `run --once`: a server sending a byte every few seconds
    # never trips the socket timeout (`ackwatch.mail.imapguard`).
    command_deadline: dt.timedelta = dt.timedelta(minutes=5)
    mailbox_deadline: dt.timedelta = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class NotifyConfig:
    batch_window: dt.timedelta = dt.timedelta(minutes=2)
    max_per_hour: int = 6
    templates_dir: Path | None = None
    out_of_office_lookback: dt.timedelta = dt.timedelta(days=3)
    retry_initial: dt.timedelta = dt.timedelta(seconds=30)  # first SMTP retry; doubles, cap 30m


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    subjects: bool = False


@dataclass(frozen=True)
class DigestConfig:
    enabled: bool = True
    weekday: int = 0  # Monday
    time: dt.time = dt.time(9, 0)


@dataclass(frozen=True)
class MetricsConfig:
    listen: str | None = None  # "127.0.0.1:9464"


@dataclass(frozen=True)
class PromiseConfig:
    enabled: bool = True
    remind_before: dt.timedelta = dt.timedelta(hours=2)


@dataclass(frozen=True)
class Config:
    path: Path
    timezone: str
    state_dir: Path
    agency: Agency
    calendars: Mapping[str, CalendarConfig]
    policies: Mapping[str, Policy]  # always contains "default"
    accounts: tuple[Account, ...]
    clients: tuple[Client, ...]
    unknown_senders: Literal["track", "ignore"]
    mailboxes: tuple[MailboxConfig, ...]
    smtp: SmtpConfig | None
    ignore: IgnoreRules = field(default_factory=IgnoreRules)
    sync: SyncConfig = field(default_factory=SyncConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    log: LogConfig = field(default_factory=LogConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    promise: PromiseConfig = field(default_factory=PromiseConfig)
    dismiss_keyword: str = "$Ackwatch-Done"
    thread_subject_window: dt.timedelta = dt.timedelta(days=30)

    def account(self, email: str | None) -> Account | None:
        if not email:
            return None
        email = email.lower()
        for acc in self.accounts:
            if acc.email == email:
                return acc
        return None

    def mailbox(self, name: str) -> MailboxConfig | None:
        for mb in self.mailboxes:
            if mb.name == name:
                return mb
        return None

    def calendar_for_account(self, email: str | None) -> CalendarConfig | None:
        """The calendar used to show times to an account (its own, else the first one)."""
        acc = self.account(email)
        if acc is not None and acc.calendar:
            return self.calendars[acc.calendar]
        return next(iter(self.calendars.values()), None)

    def replace(self, **changes: object) -> Config:
        return dataclasses.replace(self, **changes)


# =========================================================================== loader
#
# Everything below reads one YAML file and turns it into the values above, collecting
# every problem on the way. Converters record a `Problem` at the key path they were given
# and return `_INVALID`; the `Config` is only built when no problem was found.


DEFAULT_CONFIG_PATH = Path("/etc/ackwatch/config.yaml")

_DURATION_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_DURATION_RE = re.compile(
    r"\s*(?:([0-9]+)\s*d)?\s*(?:([0-9]+)\s*h)?\s*(?:([0-9]+)\s*m)?\s*(?:([0-9]+)\s*s)?\s*"
)
_DURATION_HELP = "write a duration such as 30s, 45m, 2h, 1h30m or 3d"


def parse_duration(text: str) -> dt.timedelta:
    """``"30s"``, ``"45m"``, ``"2h"``, ``"1h30m"``, ``"3d"``, ``"0m"`` -> `timedelta`.

    Units are d, h, m, s, largest first, each at most once (``"1h 30m"`` is fine too).
    Raises `ValueError` with a readable message for an empty, negative, unit-less or
    otherwise malformed value.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration ({_DURATION_HELP}), got {_show(text)}")
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"empty duration ({_DURATION_HELP})")
    if stripped.startswith("-"):
        raise ValueError(f"negative duration {_show(text)} is not allowed")
    if stripped.isdigit():
        raise ValueError(f"duration {_show(text)} has no unit ({_DURATION_HELP})")
    match = _DURATION_RE.fullmatch(stripped)
    if match is None or not any(match.groups()):
        raise ValueError(f"not a duration: {_show(text)} ({_DURATION_HELP})")
    seconds = sum(
        int(number) * factor
        for number, (_, factor) in zip(match.groups(), _DURATION_UNITS, strict=True)
        if number is not None
    )
    try:
        return dt.timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"duration {_show(text)} is too large") from None


def format_duration(value: dt.timedelta) -> str:
    """The inverse of `parse_duration`: ``timedelta(hours=1, minutes=30)`` -> ``"1h30m"``."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0m"
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    parts = []
    for unit, factor in _DURATION_UNITS:
        if seconds >= factor:
            parts.append(f"{seconds // factor}{unit}")
            seconds %= factor
    return sign + "".join(parts)


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the YAML config file at ``path``; return a frozen `Config`.

    Raises one `ConfigError` carrying every problem found (an unreadable or missing file,
    invalid YAML, unknown keys with a "did you mean" hint, wrong types, missing required
    keys, bad references between sections, ...). The file is the only thing read: secrets
    are kept as `SecretRef` and resolved later (`ackwatch.credentials`).

    Required: ``timezone``, ``agency``, ``policies`` (with a ``default`` policy) and a
    non-empty ``mailboxes`` list. Everything else has a default:

    - ``state_dir``: ``$STATE_DIRECTORY`` (its first entry; set by systemd's
      StateDirectory=), else ``state`` next to the config file.
    - Relative paths (``state_dir``, ``password_file``, ``ca_file``,
      ``notify.templates_dir``) are relative to the directory of the config file, not to
      the working directory, and ``~`` is expanded.
    - ``calendars``, ``accounts``, ``clients``: empty; ``unknown_senders``: ``track``;
      ``smtp``: none (nothing can be sent; check-config warns).
    - A calendar's ``timezone`` defaults to the top-level one; days missing from ``hours``
      are closed.
    - A policy's ``nudge_before`` defaults to 30m (it must be shorter than ``window``);
      ``escalate_after`` absent or null means "never escalate", ``0m`` "at the deadline".
    - A client's ``policy`` defaults to ``default``; an account's ``language`` to ``en``.
    - IMAP: ``security: tls``; the port follows the security (993 tls, 143 otherwise),
      ``timeout`` 60 s, ``folders: {inbox: [INBOX], sent: auto}``.
      SMTP: ``security: starttls``; port 465 tls, 587 starttls, 25 none; ``timeout`` 30 s.
    - The optional sections default to the dataclass defaults above (``sync``,
      ``notify``, ``log``, ``digest`` Monday 09:00, ``metrics`` off, ``promise``,
      ``dismiss_keyword`` ``$Ackwatch-Done``, ``thread_subject_window`` 30d).

    Addresses, domains and sender globs are lower-cased; subject regexes are compiled
    case-insensitive.
    """
    env = os.environ if environ is None else environ
    file = Path(path).expanduser()
    file = file if file.is_absolute() else Path.cwd() / file
    problem = None
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        problem = "cannot read the config file: it does not exist"
    except IsADirectoryError:
        problem = "cannot read the config file: it is a directory"
    except PermissionError:
        problem = "cannot read the config file: permission denied"
    except UnicodeDecodeError as exc:
        problem = f"cannot read the config file: not UTF-8 text (byte {exc.start})"
    except OSError as exc:
        problem = f"cannot read the config file: {exc.strerror or exc}"
    if problem is not None:
        raise ConfigError(file, [Problem("", problem)])
    return _load_text(text, file, env)


def _load_text(text: str, file: Path, environ: Mapping[str, str]) -> Config:
    ctx = _Ctx(file.parent)
    try:
        loader = _YamlLoader(text)
        try:
            raw = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(file, [Problem("", _yaml_error(exc))]) from None
    for key, line in loader.duplicates:
        ctx.error("", f"line {line}: duplicate key {_show(key)} (only the last one would count)")
    if raw is None:
        ctx.error("", "the file is empty")
        raise ConfigError(file, ctx.problems)
    if not isinstance(raw, dict):
        ctx.error("", f"expected a mapping of settings at the top level, got {_show(raw)}")
        raise ConfigError(file, ctx.problems)
    config = _build(ctx, raw, file, environ)
    if ctx.problems or config is None:
        raise ConfigError(file, ctx.problems)
    return config


# --------------------------------------------------------------------------- YAML


class _YamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader that remembers duplicate mapping keys (PyYAML silently keeps the last).

    libyaml's parser where PyYAML has it (its wheels do): the pure-Python one took 0.6 s
    of `ackwatch status` to read a config of 200 mailboxes (bench target 7b)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicates: list[tuple[object, int]] = []


def _construct_mapping(loader: _YamlLoader, node: yaml.MappingNode) -> dict:
    seen: set[object] = set()
    for key_node, _ in node.value:  # the keys written here (merged ``<<`` keys may repeat)
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            if key in seen:
                loader.duplicates.append((key, key_node.start_mark.line + 1))
            seen.add(key)
        except TypeError:  # unhashable key: construct_mapping reports it
            pass
    return loader.construct_mapping(node, deep=True)


_YamlLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML{where}: {problem}"


# --------------------------------------------------------------------------- plumbing


class _InvalidType:
    def __repr__(self) -> str:
        return "<invalid>"


_INVALID: Any = _InvalidType()  # a value that already produced a Problem
_REQUIRED: Any = object()  # "no default": the key must be given


class _Bad(Exception):
    """Raised by scalar converters; the message becomes a `Problem` at the current path."""


Conv = Callable[["_Ctx", object, str], Any]


class _Ctx:
    def __init__(self, base: Path):
        self.base = base  # directory of the config file (relative paths)
        self.problems: list[Problem] = []

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _show(value: object) -> str:
    """A value as a problem message shows it: strings quoted, containers by kind."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _suggest(word: object, choices: Iterable[str], cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(str(word).lower(), list(choices), n=1, cutoff=cutoff)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _scalar(fn: Callable[[Any], Any]) -> Conv:
    def conv(ctx: _Ctx, value: object, path: str) -> Any:
        try:
            return fn(value)
        except _Bad as exc:
            ctx.error(path, str(exc))
            return _INVALID

    return conv


def _mapping(ctx: _Ctx, value: object, path: str) -> dict | None:
    if isinstance(value, dict):
        return value
    ctx.error(path, f"expected a mapping (key: value), got {_show(value)}")
    return None


def _keys(
    ctx: _Ctx,
    m: Mapping,
    path: str,
    allowed: Iterable[str],
    refused: Mapping[str, str] | None = None,
) -> None:
    """Unknown keys are errors (with a hint); ``refused`` keys get their own message."""
    allowed = list(allowed)
    refused = refused or {}
    for key in m:
        if key in allowed:
            continue
        if key in refused:
            ctx.error(_join(path, key), refused[key])
        else:
            ctx.error(_join(path, key), "unknown key" + _suggest(key, allowed))


def _get(ctx: _Ctx, m: Mapping, path: str, key: str, conv: Conv, default: Any = None) -> Any:
    """Convert ``m[key]``; a missing (or null) key gives ``default``, or a problem when
    the key is required (``default=_REQUIRED``)."""
    value = m.get(key)
    if value is None:
        if default is _REQUIRED:
            what = "missing (required)" if key not in m else "has no value (required)"
            ctx.error(_join(path, key), what)
            return _INVALID
        return default
    return conv(ctx, value, _join(path, key))


def _unknown(what: str, name: str, known: Iterable[str]) -> str:
    """'unknown calendar "ofice" (did you mean "office"?)' or '... (known: a, b)'."""
    known = list(known)
    hint = _suggest(name, known)
    if not hint:
        listing = ", ".join(known) if known else "none are defined"
        hint = f" (known: {listing})"
    return f"unknown {what} {_show(name)}{hint}"


def _ok(*values: object) -> bool:
    return all(v is not _INVALID for v in values)


# --------------------------------------------------------------------------- converters


@_scalar
def _c_str(value: object) -> str:
    if not isinstance(value, str):
        raise _Bad(f"expected a string, got {_show(value)}")
    if not value.strip():
        raise _Bad("must not be empty")
    return value.strip()


def _c_int_range(low: int, high: int | None = None) -> Conv:
    @_scalar
    def conv(value: object) -> int:
        if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(f"expected an integer, got {_show(value)}")
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise _Bad(f"must be {span}, got {value}")
        return value

    return conv


@_scalar
def _c_seconds(value: object) -> float:
    """A timeout: a number of seconds (``30``, ``2.5``) or a duration (``30s``, ``2m``)."""
    if isinstance(value, str):
        try:
            value = parse_duration(value).total_seconds()
        except ValueError:
            raise _Bad(f"expected a number of seconds, got {_show(value)}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"expected a number of seconds, got {_show(value)}")
    if not (value > 0 and math.isfinite(value)):
        raise _Bad(f"must be more than 0 seconds, got {value}")
    return float(value)


@_scalar
def _c_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"expected true or false, got {_show(value)}")
    return value


@_scalar
def _c_duration(value: object) -> dt.timedelta:
    try:
        return parse_duration(value)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _Bad(str(exc)) from None


@_scalar
def _c_positive_duration(value: object) -> dt.timedelta:
    try:
        result = parse_duration(value)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _Bad(str(exc)) from None
    if result <= dt.timedelta(0):
        raise _Bad("must be longer than 0")
    return result


def _c_enum(*choices: str, hints: Mapping[str, str] | None = None) -> Conv:
    @_scalar
    def conv(value: object) -> str:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        hint = ""
        if isinstance(value, str):
            alias = (hints or {}).get(value.strip().lower())
            hint = f' (did you mean "{alias}"?)' if alias else _suggest(value, choices)
        raise _Bad(f"expected one of {', '.join(choices)}, got {_show(value)}{hint}")

    return conv


_ADDRESS_RE = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")


@_scalar
def _c_address(value: object) -> str:
    if not isinstance(value, str):
        raise _Bad(f"expected an email address, got {_show(value)}")
    address = value.strip().lower()
    if not _ADDRESS_RE.fullmatch(address) or address.endswith(".") or ".." in address:
        raise _Bad(f"not an email address: {_show(value)}")
    return address


@_scalar
def _c_domain(value: object) -> str:
    if not isinstance(value, str):
        raise _Bad(f"expected a domain name, got {_show(value)}")
    domain = value.strip().lower().lstrip("@").rstrip(".")
    if (
        not domain
        or "@" in domain
        or ".." in domain
        or not domain.isprintable()
        or any(c.isspace() or c in "/:<>,;" for c in domain)
    ):
        raise _Bad(f"not a domain name: {_show(value)}")
    return domain


@_scalar
def _c_pattern(value: object) -> str:
    """A client match entry / ignore sender: domain, address or shell-style glob."""
    if not isinstance(value, str):
        raise _Bad(f"expected a domain, an address or a glob, got {_show(value)}")
    pattern = value.strip().lower()
    if not pattern:
        raise _Bad("must not be empty")
    if any(c.isspace() for c in pattern) or not pattern.isprintable():
        raise _Bad(f"must not contain spaces: {_show(value)}")
    if pattern.count("@") > 1:
        raise _Bad(f"more than one @ in {_show(value)}")
    return pattern


def _c_list(item: Conv, *, allow_single: bool = True, non_empty: bool = False) -> Conv:
    """A YAML list of ``item`` (a single scalar counts as a one-item list)."""

    def conv(ctx: _Ctx, value: object, path: str) -> Any:
        if allow_single and isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            ctx.error(path, f"expected a list, got {_show(value)}")
            return _INVALID
        if non_empty and not value:
            ctx.error(path, "must not be empty")
            return _INVALID
        out = []
        for i, entry in enumerate(value):
            if entry is None:
                ctx.error(f"{path}[{i}]", "empty entry")
                out.append(_INVALID)
            else:
                out.append(item(ctx, entry, f"{path}[{i}]"))
        if not _ok(*out):
            return _INVALID
        return tuple(out)

    return conv


def _c_path(ctx: _Ctx, value: object, path: str) -> Any:
    if not isinstance(value, str) or not value.strip():
        ctx.error(path, f"expected a file path, got {_show(value)}")
        return _INVALID
    p = Path(value.strip()).expanduser()
    return p if p.is_absolute() else ctx.base / p


@_scalar
def _c_timezone(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"expected a timezone name such as Europe/Warsaw, got {_show(value)}")
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        from zoneinfo import available_timezones

        raise _Bad(
            f"unknown timezone {_show(value)}"
            + (
                _suggest_tz(name, available_timezones())
                or " (use an IANA name such as Europe/Warsaw)"
            )
        ) from None
    return name


def _suggest_tz(name: str, zones: Iterable[str]) -> str:
    by_lower = {z.lower(): z for z in zones}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f' (did you mean "{by_lower[close[0]]}"?)' if close else ""


@_scalar
def _c_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        raise _Bad(f"expected a date (YYYY-MM-DD) without a time, got {_show(value)}")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise _Bad(f"not a valid date (YYYY-MM-DD): {_show(value)}") from None
    raise _Bad(f"expected a date (YYYY-MM-DD), got {_show(value)}")


# --------------------------------------------------------------------------- calendars

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HOURS_HELP = '"09:00-17:00", several ranges "09:00-12:00,13:00-17:00", or "closed"'
_RANGE_RE = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")


def _parse_days(spec: object) -> list[int]:
    """``"mon-fri"``, ``"sat"``, ``"mon,wed"``, ``"mon-wed,fri"`` -> weekday numbers."""
    if not isinstance(spec, str):
        raise _Bad(f"expected days such as mon-fri, sat or mon,wed, got {_show(spec)}")
    days: list[int] = []

    def day(name: str) -> int:
        name = name.strip().lower()
        if name in _DAYS:
            return _DAYS.index(name)
        if name in _DAY_NAMES:
            return _DAY_NAMES.index(name)
        raise _Bad(
            f"unknown day {_show(name)}; use mon, tue, wed, thu, fri, sat, sun"
            + _suggest(name, _DAYS)
        )

    for token in spec.split(","):
        if "-" in token:
            first, _, last = token.partition("-")
            a, b = day(first), day(last)
            if a > b:
                raise _Bad(
                    f"day range {_show(token.strip())} runs backwards; days go mon..sun "
                    f"(write e.g. {_DAYS[a]}-sun,mon-{_DAYS[b]})"
                )
            new = list(range(a, b + 1))
        else:
            new = [day(token)]
        for d in new:
            if d in days:
                raise _Bad(f"{_DAYS[d]} is given twice in {_show(spec)}")
            days.append(d)
    return days


def _minutes(hours: str, minutes: str, *, end: bool) -> int:
    h, m = int(hours), int(minutes)
    if end and (h, m) == (24, 0):
        return 1440
    if h > 23 or m > 59:
        raise _Bad(
            f"{hours}:{minutes} is not a time of day (00:00-23:59{', or 24:00' if end else ''})"
        )
    return h * 60 + m


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_ranges(value: object) -> tuple[OpenRange, ...]:
    """``"09:00-12:00,13:00-17:00"`` / ``"closed"`` -> sorted `OpenRange` tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise _Bad(f"expected {_HOURS_HELP}, got the number {value} (quote the hours)")
    if not isinstance(value, str):
        raise _Bad(f"expected {_HOURS_HELP}, got {_show(value)}")
    if value.strip().lower() == "closed":
        return ()
    ranges: list[OpenRange] = []
    for part in value.split(","):
        match = _RANGE_RE.fullmatch(part.strip())
        if match is None:
            raise _Bad(f"malformed hours {_show(part.strip())}: expected {_HOURS_HELP}")
        start = _minutes(match[1], match[2], end=False)
        end = _minutes(match[3], match[4], end=True)
        if end <= start:
            raise _Bad(
                f"in {_show(part.strip())} the end is not after the start "
                "(a range cannot cross midnight: split it over two days, ending at 24:00)"
            )
        ranges.append(OpenRange(start, end))
    ranges.sort(key=lambda r: (r.start, r.end))
    merged: list[OpenRange] = []
    for r in ranges:
        if merged and r.start < merged[-1].end:
            prev = merged[-1]
            raise _Bad(
                f"ranges {_hhmm(prev.start)}-{_hhmm(prev.end)} and "
                f"{_hhmm(r.start)}-{_hhmm(r.end)} overlap"
            )
        if merged and r.start == merged[-1].end:  # touching: one range
            merged[-1] = OpenRange(merged[-1].start, r.end)
        else:
            merged.append(r)
    return tuple(merged)


def _hours(ctx: _Ctx, value: object, path: str) -> Any:
    m = _mapping(ctx, value, path)
    if m is None:
        return _INVALID
    week: list[tuple[OpenRange, ...] | None] = [None] * 7
    given_by: dict[int, str] = {}
    ok = True
    for key, spec in m.items():
        kpath = _join(path, key)
        try:
            days = _parse_days(key)
            ranges = _parse_ranges(spec)
        except _Bad as exc:
            ctx.error(kpath, str(exc))
            ok = False
            continue
        for d in days:
            if d in given_by:
                ctx.error(kpath, f"{_DAYS[d]} is already given by {_show(given_by[d])}")
                ok = False
            else:
                given_by[d] = str(key)
                week[d] = ranges
    if not ok:
        return _INVALID
    hours = tuple(day or () for day in week)
    if not any(hours):
        ctx.error(path, "no open hours on any day (a business clock would never run)")
        return _INVALID
    return hours


def _holidays_country(value: object) -> tuple[str, str | None]:
    if isinstance(value, bool):
        raise _Bad(
            f"expected a country code such as PL or DE-BY, got {_show(value)}: YAML reads "
            'unquoted NO, YES, ON and OFF as booleans; quote the code ("NO")'
        )
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"expected a country code such as PL or DE-BY, got {_show(value)}")
    import holidays as holidays_pkg

    supported: Mapping[str, list[str]] = holidays_pkg.list_supported_countries()
    country, _, subdivision = value.strip().partition("-")
    country = country.upper()
    if country not in supported:
        raise _Bad(
            f"unknown holiday country {_show(country)} (an ISO 3166 code the holidays "
            "package supports, such as PL, DE, GB)" + _suggest_upper(country, supported)
        )
    if not subdivision:
        return country, None
    known = {str(s).upper(): str(s) for s in supported[country]}
    if subdivision.upper() not in known:
        listing = ", ".join(sorted(known.values())) or "none"
        raise _Bad(f"unknown subdivision {_show(subdivision)} of {country} (known: {listing})")
    return country, known[subdivision.upper()]


def _suggest_upper(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word.upper(), list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _calendar(ctx: _Ctx, name: str, value: object, path: str, default_tz: Any) -> Any:
    m = _mapping(ctx, value, path)
    if m is None:
        return _INVALID
    _keys(ctx, m, path, ("timezone", "hours", "holidays", "closed"))
    tz = _get(ctx, m, path, "timezone", _c_timezone, default_tz)
    if tz is None:
        tz = _INVALID  # the top-level timezone is missing; that is reported already
    hours = _get(ctx, m, path, "hours", _hours, _REQUIRED)
    country = _get(ctx, m, path, "holidays", _scalar(_holidays_country))
    closed = _get(ctx, m, path, "closed", _c_list(_c_date, allow_single=False), ())
    if not _ok(tz, hours, country, closed):
        return _INVALID
    return CalendarConfig(
        name=name,
        timezone=tz,
        hours=hours,
        holidays=country[0] if country else None,
        holiday_subdivision=country[1] if country else None,
        closed=frozenset(closed),
    )


def _named_section(
    ctx: _Ctx, raw: Mapping, key: str, build: Callable[[str, object, str], Any], required: bool
) -> dict[str, Any] | None:
    value = raw.get(key)
    if value is None:
        if required:
            ctx.error(key, "missing (required)" if key not in raw else "has no value (required)")
            return None
        return {}
    m = _mapping(ctx, value, key)
    if m is None:
        return None
    out: dict[str, Any] = {}
    for name, entry in m.items():
        if not isinstance(name, str) or not name.strip():
            ctx.error(_join(key, name), f"expected a name, got {_show(name)}")
            continue
        out[name] = build(name, entry, _join(key, name))
    return out


# --------------------------------------------------------------------------- policies

_DEFAULT_NUDGE_BEFORE = dt.timedelta(minutes=30)
_POLICY_KEYS = ("window", "clock", "calendar", "nudge_before", "escalate_after")


def _policy(ctx: _Ctx, name: str, value: object, path: str, calendars: Mapping | None) -> Any:
    m = _mapping(ctx, value, path)
    if m is None:
        return _INVALID
    _keys(ctx, m, path, _POLICY_KEYS)
    window = _get(ctx, m, path, "window", _c_positive_duration, _REQUIRED)
    clock = _get(ctx, m, path, "clock", _c_enum("business", "calendar"), _REQUIRED)
    calendar = _get(ctx, m, path, "calendar", _c_str)
    nudge_before = _get(ctx, m, path, "nudge_before", _c_duration, _DEFAULT_NUDGE_BEFORE)
    escalate_after = _get(ctx, m, path, "escalate_after", _c_duration)
    if clock == "business" and calendar is None:
        ctx.error(_join(path, "calendar"), "missing (required for clock: business)")
        calendar = _INVALID
    if isinstance(calendar, str) and calendars is not None and calendar not in calendars:
        ctx.error(_join(path, "calendar"), _unknown("calendar", calendar, calendars))
        calendar = _INVALID
    if _ok(window, nudge_before) and nudge_before >= window:
        default = "" if "nudge_before" in m else " (the default 30m)"
        ctx.error(
            _join(path, "nudge_before"),
            f"must be shorter than the window ({format_duration(window)}), "
            f"got {format_duration(nudge_before)}{default}",
        )
        nudge_before = _INVALID
    if not _ok(window, clock, calendar, nudge_before, escalate_after):
        return _INVALID
    return Policy(
        name=name,
        window=window,
        clock=clock,
        calendar=calendar,
        nudge_before=nudge_before,
        escalate_after=escalate_after,
    )


# --------------------------------------------------------------------------- accounts

_LANGUAGE_RE = re.compile(r"[a-z]{2,3}(?:[-_][a-z0-9]{2,8})*", re.IGNORECASE)


@_scalar
def _c_language(value: object) -> str:
    if not isinstance(value, str) or not _LANGUAGE_RE.fullmatch(value.strip()):
        raise _Bad(f"expected a language code such as en, pl or uk, got {_show(value)}")
    return value.strip().lower().replace("_", "-")


def _absence(ctx: _Ctx, value: object, path: str) -> Any:
    m = _mapping(ctx, value, path)
    if m is None:
        return _INVALID
    _keys(ctx, m, path, ("from", "until"))
    start = _get(ctx, m, path, "from", _c_date, _REQUIRED)
    until = _get(ctx, m, path, "until", _c_date, _REQUIRED)
    if not _ok(start, until):
        return _INVALID
    if until < start:
        ctx.error(_join(path, "until"), f"{until.isoformat()} is before from ({start.isoformat()})")
        return _INVALID
    return Absence(start=start, until=until)


_ACCOUNT_KEYS = ("email", "name", "manager", "backup", "language", "calendar", "away")


def _accounts(ctx: _Ctx, value: object, calendars: Mapping | None) -> tuple[Any, set[str] | None]:
    """(accounts, their valid email addresses for reference checks; None if unknown)."""
    if value is None:
        return (), set()
    if not isinstance(value, list):
        ctx.error("accounts", f"expected a list of accounts, got {_show(value)}")
        return _INVALID, None
    problems_before = len(ctx.problems)
    parsed: list[tuple[str, dict[str, Any]]] = []
    for i, entry in enumerate(value):
        path = f"accounts[{i}]"
        m = _mapping(ctx, entry, path)
        if m is None:
            continue
        _keys(ctx, m, path, _ACCOUNT_KEYS)
        fields = {
            "email": _get(ctx, m, path, "email", _c_address, _REQUIRED),
            "name": _get(ctx, m, path, "name", _c_str, _REQUIRED),
            "manager": _get(ctx, m, path, "manager", _c_address),
            "backup": _get(ctx, m, path, "backup", _c_address),
            "language": _get(ctx, m, path, "language", _c_language, "en"),
            "calendar": _get(ctx, m, path, "calendar", _c_str),
            "away": _get(ctx, m, path, "away", _c_list(_absence, allow_single=False), ()),
        }
        parsed.append((path, fields))

    first_path: dict[str, str] = {}
    for path, f in parsed:
        email = f["email"]
        if isinstance(email, str):
            if email in first_path:
                ctx.error(
                    _join(path, "email"), f"duplicate account {email} (also {first_path[email]})"
                )
            else:
                first_path[email] = path
    for path, f in parsed:
        email, manager, backup, calendar = f["email"], f["manager"], f["backup"], f["calendar"]
        if isinstance(manager, str) and manager == email:
            ctx.error(_join(path, "manager"), "an account cannot be its own manager")
        if isinstance(backup, str):
            if backup == email:
                ctx.error(_join(path, "backup"), "an account cannot be its own backup")
            elif backup not in first_path:
                ctx.error(
                    _join(path, "backup"),
                    f"{backup} is not one of the accounts (a backup must be an account)"
                    + _suggest(backup, [e for e in first_path if e != email], 0.85),
                )
        if isinstance(calendar, str) and calendars is not None and calendar not in calendars:
            ctx.error(
                _join(path, "calendar"),
                _unknown("calendar", calendar, calendars),
            )
    if len(ctx.problems) > problems_before:
        return _INVALID, set(first_path)
    return tuple(Account(**f) for _, f in parsed), set(first_path)


# --------------------------------------------------------------------------- clients


def _clients(
    ctx: _Ctx, value: object, policies: Mapping | None, account_emails: set[str] | None
) -> Any:
    if value is None:
        return ()
    if not isinstance(value, list):
        ctx.error("clients", f"expected a list of clients, got {_show(value)}")
        return _INVALID
    names: dict[str, str] = {}
    matched_by: dict[str, str] = {}
    out: list[Any] = []
    for i, entry in enumerate(value):
        path = f"clients[{i}]"
        m = _mapping(ctx, entry, path)
        if m is None:
            out.append(_INVALID)
            continue
        _keys(ctx, m, path, ("name", "match", "policy", "account"))
        name = _get(ctx, m, path, "name", _c_str, _REQUIRED)
        match = _get(ctx, m, path, "match", _c_list(_c_pattern, non_empty=True), _REQUIRED)
        policy = _get(ctx, m, path, "policy", _c_str, "default")
        account = _get(ctx, m, path, "account", _c_address)
        if isinstance(name, str):
            if name in names:
                ctx.error(
                    _join(path, "name"), f"duplicate client {_show(name)} (also {names[name]})"
                )
            names.setdefault(name, path)
        if _ok(match):
            for j, pattern in enumerate(match):
                if pattern in matched_by:
                    ctx.error(
                        f"{path}.match[{j}]",
                        f"{_show(pattern)} is already matched by {matched_by[pattern]}",
                    )
                matched_by.setdefault(pattern, f"client {_show(name)} ({path})")
        if isinstance(policy, str) and policies is not None and policy not in policies:
            ctx.error(_join(path, "policy"), _unknown("policy", policy, policies))
            policy = _INVALID
        if (
            isinstance(account, str)
            and account_emails is not None
            and account not in account_emails
        ):
            ctx.error(
                _join(path, "account"),
                f"{account} is not one of the accounts" + _suggest(account, account_emails, 0.85),
            )
            account = _INVALID
        if _ok(name, match, policy, account):
            out.append(Client(name=name, match=match, policy=policy, account=account))
        else:
            out.append(_INVALID)
    return tuple(out) if _ok(*out) else _INVALID


# --------------------------------------------------------------------------- connections

_SECRET_KEYS = {
    "password_file": "file",
    "password_env": "env",
    "credential": "credential",
    "oauth2_token_command": "command",
}
_SECRET_KEY_OF_KIND = {kind: key for key, kind in _SECRET_KEYS.items()}
_LITERAL_PASSWORD = "a literal password is not allowed in the config file; use one of {}"
_IMAP_PORTS = {"tls": 993, "starttls": 143, "none": 143}
_SMTP_PORTS = {"tls": 465, "starttls": 587, "none": 25}
_CONNECTION_KEYS = ("host", "port", "security", "username", "ca_file", "timeout")


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1 (also written ``[::1]``)."""
    host = host.strip().lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@_scalar
def _c_host(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"expected a host name or address, got {_show(value)}")
    host = value.strip()
    if "://" in host or "/" in host:
        raise _Bad(f"expected a host name, not a URL: {_show(value)}")
    if any(c.isspace() for c in host):
        raise _Bad(f"a host name cannot contain spaces: {_show(value)}")
    if host.count(":") == 1:
        raise _Bad(f"give the port separately (port: ...), not in the host: {_show(value)}")
    return host


@_scalar
def _c_env_name(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value.strip()):
        raise _Bad(f"expected an environment variable name, got {_show(value)}")
    return value.strip()


@_scalar
def _c_credential_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"expected a systemd credential name, got {_show(value)}")
    name = value.strip()
    if "/" in name or name in (".", ".."):
        raise _Bad(
            f"a credential is a name, not a path: {_show(value)} "
            "(LoadCredential=NAME:/path in the unit, credential: NAME here)"
        )
    return name


@_scalar
def _c_command(value: object) -> str:
    if isinstance(value, list) and value and all(isinstance(a, str) for a in value):
        return shlex.join(value)
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"expected a command line (a string or a list of arguments), got {_show(value)}")
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        raise _Bad(f"cannot split the command line: {exc}") from None
    if not argv:
        raise _Bad("empty command")
    return value.strip()


_SECRET_CONVS: dict[str, Conv] = {
    "password_file": _c_path,
    "password_env": _c_env_name,
    "credential": _c_credential_name,
    "oauth2_token_command": _c_command,
}


def _secret(ctx: _Ctx, m: Mapping, path: str, kinds: tuple[str, ...], required: bool) -> Any:
    """The one secret reference of a connection: None when none is given (and allowed)."""
    given = [k for k in kinds if m.get(k) is not None]
    if len(given) > 1:
        ctx.error(path, f"give only one of {', '.join(kinds)}; found {' and '.join(given)}")
        return _INVALID
    if not given:
        if required:
            ctx.error(path, f"no password: give one of {', '.join(kinds)}")
            return _INVALID
        return None
    key = given[0]
    value = _SECRET_CONVS[key](ctx, m[key], _join(path, key))
    if value is _INVALID:
        return _INVALID
    return SecretRef(_SECRET_KEYS[key], str(value))  # type: ignore[arg-type]


def _connection(
    ctx: _Ctx, m: Mapping, path: str, ports: Mapping[str, int], default_security: str
) -> dict[str, Any]:
    host = _get(ctx, m, path, "host", _c_host, _REQUIRED)
    security = _get(
        ctx,
        m,
        path,
        "security",
        _c_enum("tls", "starttls", "none", hints={"ssl": "tls"}),
        default_security,
    )
    port = _get(ctx, m, path, "port", _c_int_range(1, 65535))
    if port is None:
        port = ports.get(security, _INVALID) if _ok(security) else _INVALID
    if security == "none" and isinstance(host, str) and not is_loopback(host):
        ctx.error(
            _join(path, "security"),
            f"none (no encryption) is only allowed for a loopback host (localhost, 127.0.0.1, "
            f"::1), not {host}; use tls or starttls",
        )
        security = _INVALID
    return {
        "host": host,
        "port": port,
        "security": security,
        "ca_file": _get(ctx, m, path, "ca_file", _c_path),
    }


@_scalar
def _c_folder(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"expected a folder name, got {_show(value)}")
    return value.strip()


def _folders(ctx: _Ctx, value: object, path: str) -> Any:
    m = _mapping(ctx, value, path)
    if m is None:
        return _INVALID
    _keys(ctx, m, path, ("inbox", "sent"))
    inbox = _get(ctx, m, path, "inbox", _c_list(_c_folder, non_empty=True), ("INBOX",))
    sent_raw = m.get("sent")
    if sent_raw is None or (isinstance(sent_raw, str) and sent_raw.strip().lower() == "auto"):
        sent: Any = "auto"
    else:
        sent = _c_list(_c_folder, non_empty=True)(ctx, sent_raw, _join(path, "sent"))
    if not _ok(inbox, sent):
        return _INVALID
    return Folders(inbox=inbox, sent=sent)


_MAILBOX_KEYS = (
    "name",
    *_CONNECTION_KEYS,
    *_SECRET_KEYS,
    "folders",
    "owner",
)


def _mailboxes(ctx: _Ctx, value: object) -> Any:
    if value is None:
        ctx.error("mailboxes", "missing (required): at least one mailbox to watch")
        return _INVALID
    if not isinstance(value, list):
        ctx.error("mailboxes", f"expected a list of mailboxes, got {_show(value)}")
        return _INVALID
    if not value:
        ctx.error("mailboxes", "must not be empty: at least one mailbox to watch")
        return _INVALID
    refused = {"password": _LITERAL_PASSWORD.format(", ".join(_SECRET_KEYS))}
    names: dict[str, str] = {}
    out: list[Any] = []
    for i, entry in enumerate(value):
        path = f"mailboxes[{i}]"
        m = _mapping(ctx, entry, path)
        if m is None:
            out.append(_INVALID)
            continue
        _keys(ctx, m, path, _MAILBOX_KEYS, refused)
        name = _get(ctx, m, path, "name", _c_str, _REQUIRED)
        if isinstance(name, str):
            if name in names:
                ctx.error(
                    _join(path, "name"),
                    f"duplicate mailbox name {_show(name)} (also {names[name]})",
                )
                name = _INVALID
            else:
                names[name] = path
        conn = _connection(ctx, m, path, _IMAP_PORTS, "tls")
        username = _get(ctx, m, path, "username", _c_str, _REQUIRED)
        secret = _secret(ctx, m, path, tuple(_SECRET_KEYS), required="password" not in m)
        folders = _get(ctx, m, path, "folders", _folders, Folders())
        owner = _get(ctx, m, path, "owner", _c_address)
        timeout = _get(ctx, m, path, "timeout", _c_seconds, 60.0)
        if not _ok(name, username, secret, folders, owner, timeout, *conn.values()):
            out.append(_INVALID)
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
                **conn,
            )
        )
    return tuple(out) if _ok(*out) else _INVALID


@_scalar
def _c_from(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad(
            f'expected a From address such as "ackwatch <ackwatch@agency.example>", got {_show(value)}'
        )
    if "\n" in value or "\r" in value:
        raise _Bad("must be on one line")
    pairs = [(n, a) for n, a in getaddresses([value]) if a]
    if len(pairs) != 1 or not _ADDRESS_RE.fullmatch(pairs[0][1]):
        raise _Bad(
            f'expected one address such as "ackwatch <ackwatch@agency.example>", got {_show(value)}'
        )
    return value.strip()


_SMTP_SECRET_KEYS = ("password_file", "password_env", "credential")


def _smtp(ctx: _Ctx, value: object) -> Any:
    if value is None:
        return None
    path = "smtp"
    m = _mapping(ctx, value, path)
    if m is None:
        return _INVALID
    refused = {
        "password": _LITERAL_PASSWORD.format(", ".join(_SMTP_SECRET_KEYS)),
        "oauth2_token_command": "not supported for smtp; use password_file, password_env or credential",
    }
    _keys(ctx, m, path, (*_CONNECTION_KEYS, *_SMTP_SECRET_KEYS, "from"), refused)
    conn = _connection(ctx, m, path, _SMTP_PORTS, "starttls")
    from_address = _get(ctx, m, path, "from", _c_from, _REQUIRED)
    username = _get(ctx, m, path, "username", _c_str)
    secret = _secret(ctx, m, path, _SMTP_SECRET_KEYS, required=False)
    timeout = _get(ctx, m, path, "timeout", _c_seconds, 30.0)
    if secret is not None and _ok(secret) and username is None:
        ctx.error(_join(path, "username"), "missing (required when a password is given)")
        username = _INVALID
    refused_given = "password" in m or "oauth2_token_command" in m
    if isinstance(username, str) and secret is None and not refused_given:
        ctx.error(
            path,
            f"username given but no password: give one of {', '.join(_SMTP_SECRET_KEYS)} "
            "(or remove username to send without AUTH)",
        )
        username = _INVALID
    if not _ok(from_address, username, secret, timeout, *conn.values()):
        return _INVALID
    return SmtpConfig(
        from_address=from_address, username=username, password=secret, timeout=timeout, **conn
    )


# --------------------------------------------------------------------------- small sections


def _agency(ctx: _Ctx, value: object) -> Any:
    if value is None:
        ctx.error("agency", "missing (required): the agency's domains and addresses")
        return _INVALID
    m = _mapping(ctx, value, "agency")
    if m is None:
        return _INVALID
    _keys(ctx, m, "agency", ("domains", "addresses", "form_senders", "trust"))
    domains = _get(ctx, m, "agency", "domains", _c_list(_c_domain), ())
    addresses = _get(ctx, m, "agency", "addresses", _c_list(_c_address), ())
    forms = _get(ctx, m, "agency", "form_senders", _c_list(_c_address), ())
    trust = _get(ctx, m, "agency", "trust", _trust, Trust())
    if not _ok(domains, addresses, forms, trust):
        return _INVALID
    return Agency(domains=domains, addresses=addresses, form_senders=forms, trust=trust)


def _trust(ctx: _Ctx, value: object, path: str) -> Any:
    m = _mapping(ctx, value, path)
    if m is None:
        return _INVALID
    _keys(ctx, m, path, ("inbox_agency_mail", "authserv_ids", "relays"))
    mode = _get(
        ctx, m, path, "inbox_agency_mail", _c_enum("verified", "trusted"), "verified"
    )
    ids = _get(ctx, m, path, "authserv_ids", _c_list(_c_authserv_id), ())
    relays = _get(ctx, m, path, "relays", _c_list(_c_relay), ())
    if not _ok(mode, ids, relays):
        return _INVALID
    return Trust(inbox_agency_mail=mode, authserv_ids=ids, relays=relays)


@_scalar
def _c_authserv_id(value: object) -> str:
    """An RFC 8601 authserv-id: one token, usually the receiving server's host name."""
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"expected an authserv-id such as \"mx.agency.example\", got {_show(value)}")
    token = value.strip().lower()
    if not token.isprintable() or any(c.isspace() or c in ';()"=' for c in token):
        raise _Bad(f"an authserv-id is one word (no blanks, ; ( ) \" =): {_show(value)}")
    return token


@_scalar
def _c_relay(value: object) -> str:
    """A relay: a host name, "*.domain", an IP address or a CIDR network."""
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"expected a host name, IP address or network, got {_show(value)}")
    entry = value.strip().lower().rstrip(".")
    try:
        ipaddress.ip_network(entry, strict=False)
        return entry
    except ValueError:
        pass
    name = entry[2:] if entry.startswith("*.") else entry
    if "/" in entry or not re.fullmatch(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*", name):
        raise _Bad(
            "expected a host name (mail.agency.example, *.agency.example), an IP address "
            f"or a network (192.0.2.0/24), got {_show(value)}"
        )
    return entry


def _c_regex(ctx: _Ctx, value: object, path: str) -> Any:
    if not isinstance(value, str) or not value:
        ctx.error(path, f"expected a regular expression, got {_show(value)}")
        return _INVALID
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as exc:
        ctx.error(path, f"invalid regular expression {_show(value)}: {exc}")
        return _INVALID


def _ignore(ctx: _Ctx, value: object) -> Any:
    if value is None:
        return IgnoreRules()
    m = _mapping(ctx, value, "ignore")
    if m is None:
        return _INVALID
    _keys(ctx, m, "ignore", ("senders", "subjects"))
    senders = _get(ctx, m, "ignore", "senders", _c_list(_c_pattern), ())
    subjects = _get(ctx, m, "ignore", "subjects", _c_list(_c_regex), ())
    if not _ok(senders, subjects):
        return _INVALID
    return IgnoreRules(senders=senders, subjects=subjects)


def _section(ctx: _Ctx, raw: Mapping, key: str, cls: type, fields: Mapping[str, Conv]) -> Any:
    """An optional section whose keys map 1:1 onto dataclass fields with defaults."""
    value = raw.get(key)
    if value is None:
        return cls()
    m = _mapping(ctx, value, key)
    if m is None:
        return _INVALID
    _keys(ctx, m, key, fields)
    values = {}
    for name, conv in fields.items():
        got = _get(ctx, m, key, name, conv, _MISSING_FIELD)
        if got is not _MISSING_FIELD:
            values[name] = got
    if not _ok(*values.values()):
        return _INVALID
    return cls(**values)


_MISSING_FIELD: Any = object()

_DIGEST_RE = re.compile(r"([a-z]+)\s+(\d{1,2}):(\d{2})", re.IGNORECASE)


@_scalar
def _c_weekly_time(value: object) -> tuple[int, dt.time]:
    match = _DIGEST_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise _Bad(f'expected a weekday and a time such as "mon 09:00", got {_show(value)}')
    day = match[1].lower()
    if day not in _DAYS:
        raise _Bad(f"unknown day {_show(match[1])}; use mon..sun" + _suggest(day, _DAYS))
    minutes = _minutes(match[2], match[3], end=False)
    return _DAYS.index(day), dt.time(minutes // 60, minutes % 60)


def _digest(ctx: _Ctx, value: object) -> Any:
    if value is None:
        return DigestConfig()
    m = _mapping(ctx, value, "digest")
    if m is None:
        return _INVALID
    _keys(ctx, m, "digest", ("enabled", "when"))
    enabled = _get(ctx, m, "digest", "enabled", _c_bool, True)
    when = _get(ctx, m, "digest", "when", _c_weekly_time, (0, dt.time(9, 0)))
    if not _ok(enabled, when):
        return _INVALID
    return DigestConfig(enabled=enabled, weekday=when[0], time=when[1])


@_scalar
def _c_listen(value: object) -> str:
    if not isinstance(value, str) or ":" not in value:
        raise _Bad(f'expected host:port such as "127.0.0.1:9464", got {_show(value)}')
    host, _, port = value.strip().rpartition(":")
    if not host or (":" in host and not (host.startswith("[") and host.endswith("]"))):
        raise _Bad(
            f'expected host:port such as "127.0.0.1:9464" or "[::1]:9464", got {_show(value)}'
        )
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535:
        raise _Bad(f"port must be between 1 and 65535 in {_show(value)}")
    return value.strip()


@_scalar
def _c_keyword(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[^\s(){%*\"\\\]\x00-\x1f\x7f]+", value):
        raise _Bad(
            f'expected an IMAP keyword (no spaces, no ( ) {{ % * " \\ ]), got {_show(value)}'
        )
    return value


def _state_dir(ctx: _Ctx, raw: Mapping, environ: Mapping[str, str]) -> Any:
    if raw.get("state_dir") is not None:
        return _c_path(ctx, raw["state_dir"], "state_dir")
    from_systemd = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(from_systemd) if from_systemd else ctx.base / "state"


# --------------------------------------------------------------------------- the whole file

_TOP_KEYS = (
    "timezone",
    "state_dir",
    "agency",
    "calendars",
    "policies",
    "accounts",
    "clients",
    "unknown_senders",
    "mailboxes",
    "smtp",
    "ignore",
    "sync",
    "notify",
    "log",
    "digest",
    "metrics",
    "promise",
    "dismiss_keyword",
    "thread_subject_window",
)


def _build(ctx: _Ctx, raw: Mapping, file: Path, environ: Mapping[str, str]) -> Config | None:
    _keys(ctx, raw, "", _TOP_KEYS)
    timezone = _get(ctx, raw, "", "timezone", _c_timezone, _REQUIRED)
    state_dir = _state_dir(ctx, raw, environ)
    agency = _agency(ctx, raw.get("agency"))

    calendars = _named_section(
        ctx, raw, "calendars", lambda n, v, p: _calendar(ctx, n, v, p, timezone), required=False
    )
    policies = _named_section(
        ctx, raw, "policies", lambda n, v, p: _policy(ctx, n, v, p, calendars), required=True
    )
    if policies is not None and "default" not in policies:
        ctx.error(
            "policies",
            'a policy named "default" is required (it applies to unknown senders and to '
            "clients without a policy)",
        )
    accounts, account_emails = _accounts(ctx, raw.get("accounts"), calendars)
    clients = _clients(ctx, raw.get("clients"), policies, account_emails)
    unknown = _get(ctx, raw, "", "unknown_senders", _c_enum("track", "ignore"), "track")
    mailboxes = _mailboxes(ctx, raw.get("mailboxes"))
    smtp = _smtp(ctx, raw.get("smtp"))
    ignore = _ignore(ctx, raw.get("ignore"))
    sync = _section(
        ctx,
        raw,
        "sync",
        SyncConfig,
        {
            "backfill": _c_duration,
            "poll_interval": _c_positive_duration,
            "idle": _c_bool,
            "batch_size": _c_int_range(1, 100_000),
            "command_deadline": _c_positive_duration,
            "mailbox_deadline": _c_positive_duration,
        },
    )
    notify = _section(
        ctx,
        raw,
        "notify",
        NotifyConfig,
        {
            "batch_window": _c_duration,
            "max_per_hour": _c_int_range(1),
            "templates_dir": _c_path,
            "out_of_office_lookback": _c_duration,
            "retry_initial": _c_positive_duration,
        },
    )
    log = _section(
        ctx,
        raw,
        "log",
        LogConfig,
        {
            "level": _c_enum(
                "debug", "info", "warning", "error", "critical", hints={"warn": "warning"}
            ),
            "subjects": _c_bool,
        },
    )
    digest = _digest(ctx, raw.get("digest"))
    metrics = _section(ctx, raw, "metrics", MetricsConfig, {"listen": _c_listen})
    promise = _section(
        ctx,
        raw,
        "promise",
        PromiseConfig,
        {
            "enabled": _c_bool,
            "remind_before": _c_duration,
        },
    )
    keyword = _get(ctx, raw, "", "dismiss_keyword", _c_keyword, "$Ackwatch-Done")
    subject_window = _get(ctx, raw, "", "thread_subject_window", _c_duration, dt.timedelta(days=30))

    if ctx.problems:
        return None
    assert calendars is not None and policies is not None
    return Config(
        path=file,
        timezone=timezone,
        state_dir=state_dir,
        agency=agency,
        calendars=MappingProxyType(dict(calendars)),
        policies=MappingProxyType(dict(policies)),
        accounts=accounts,
        clients=clients,
        unknown_senders=unknown,
        mailboxes=mailboxes,
        smtp=smtp,
        ignore=ignore,
        sync=sync,
        notify=notify,
        log=log,
        digest=digest,
        metrics=metrics,
        promise=promise,
        dismiss_keyword=keyword,
        thread_subject_window=subject_window,
    )
