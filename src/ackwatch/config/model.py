"""The config's values: frozen dataclasses, and every default the config file has.

The defaults are stated here once: as the dataclasses' field defaults, and, for the
few keys that have no field of their own (a connection's security and port, what
happens to unknown senders), as the constants at the end. The loader takes its
defaults from here, `schema.DEFAULTS` lists them by key path, and tests check that
README.md and config.example.yaml say the same.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

Security = Literal["tls", "starttls", "none"]
Clock = Literal["business", "calendar"]
# libpq's sslmode values ackwatch accepts: verified TLS, or none on loopback only.
SslMode = Literal["verify-full", "verify-ca", "disable"]
SecretKind = Literal["file", "env", "credential", "command"]

# The config keys that name a secret source, and the `SecretRef.kind` each gives.
SECRET_KEYS: Mapping[str, SecretKind] = MappingProxyType(
    {
        "password_file": "file",
        "password_env": "env",
        "credential": "credential",
        "oauth2_token_command": "command",
    }
)
SECRET_KEY_OF_KIND: Mapping[str, str] = MappingProxyType(
    {kind: key for key, kind in SECRET_KEYS.items()}
)


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives. ``kind``: file | env | credential | command."""

    kind: SecretKind
    value: str

    def describe(self) -> str:
        """Where the secret lives, as the config says it, for messages, logs, the health
        table and ``status``: ``password_file /etc/ackwatch/anna.pass``, ``password_env
        ANNA_PASSWORD``, ``credential anna.pass``. A command is named by its program alone
        (``oauth2_token_command get-token ...``): its arguments may carry a client secret.
        The one description of a secret source (`ackwatch.credentials` uses it too)."""
        key = SECRET_KEY_OF_KIND.get(self.kind, self.kind)
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
    agency-looking From (anyone can forge one)."""

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
    nudge_before: dt.timedelta = dt.timedelta(minutes=30)  # must be shorter than window
    escalate_after: dt.timedelta | None = None  # None: never escalate; 0: at the deadline


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
    # Copied (Cc) on the account's nudges and promise reminders; gets its figures in a
    # weekly digest. Any address but the account's own.
    mentor: str | None = None
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


OAUTH2_PROVIDERS = ("microsoft365", "google")


@dataclass(frozen=True)
class OAuth2App:
    """An application that logs in to many mailboxes (``oauth2_apps.NAME``).

    microsoft365: ``tenant``, ``client_id`` and either ``client_secret`` or a certificate
    (``certificate_file``, public PEM, with ``private_key``). google: ``service_account``
    (the JSON key, domain-wide delegation). ``token_url`` replaces the provider's token
    endpoint (for Google the key file's ``token_uri`` is used otherwise). Secrets are
    references, resolved when a token is first needed."""

    name: str
    provider: Literal["microsoft365", "google"]
    tenant: str | None = None
    client_id: str | None = None
    client_secret: SecretRef | None = None
    certificate_file: Path | None = None
    private_key: SecretRef | None = None
    service_account: SecretRef | None = None
    token_url: str | None = None

    def __repr__(self) -> str:
        return f"OAuth2App({self.name}, {self.provider})"


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
    oauth2: OAuth2App | None = None  # XOAUTH2/OAUTHBEARER with the app's token

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
    oauth2: OAuth2App | None = None  # AUTH XOAUTH2/OAUTHBEARER with the app's token


@dataclass(frozen=True)
class DatabaseConfig:
    """The state in PostgreSQL instead of SQLite under ``state_dir``. ``url`` is the
    server, user and database (``postgresql://ackwatch@db.internal:5432/ackwatch``),
    never with a password: that comes from ``password`` (a secret source)."""

    url: str
    host: str
    port: int
    user: str
    dbname: str
    password: SecretRef | None = None
    sslmode: SslMode = "verify-full"
    sslrootcert: Path | None = None
    # How long `ackwatch run` waits out a database it lost (restart, failover) before it
    # exits non-zero for systemd to restart it (`ackwatch.daemon.outage`).
    give_up_after: dt.timedelta = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class IgnoreRules:
    senders: tuple[str, ...] = ()  # shell-style globs on the address, case-insensitive
    subjects: tuple[re.Pattern[str], ...] = ()  # regexes searched in the decoded subject


@dataclass(frozen=True)
class SyncConfig:
    backfill: dt.timedelta = dt.timedelta(days=7)
    poll_interval: dt.timedelta = dt.timedelta(seconds=60)
    idle: bool = True
    # How the sent folders are watched besides the poll: "auto" (IMAP NOTIFY on the IDLE
    # connection where offered), "idle" (a second connection IDLEs the sent folder),
    # "poll" (the poll only).
    watch_sent: str = "auto"
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
    # How long a nudge or escalation waits for a mailbox whose pre-send re-check failed.
    recheck_grace: dt.timedelta = dt.timedelta(minutes=2)


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
class ClusterConfig:
    """Several nodes on one PostgreSQL state (`daemon.cluster`): a node holds a mailbox
    (and the leadership) for ``lease`` and renews every ``renew``; a node that cannot
    renew stops watching and sending before its lease can expire. Unused on SQLite."""

    lease: dt.timedelta = dt.timedelta(seconds=15)
    renew: dt.timedelta = dt.timedelta(seconds=5)


@dataclass(frozen=True)
class MetricsConfig:
    listen: str | None = None  # "127.0.0.1:9464"


@dataclass(frozen=True)
class WebUser:
    """One person who may open the board: a name, an argon2 hash of their password
    (``ackwatch hash-password``; None for a user the reverse proxy names), and the
    accounts whose mail they see (None: every account)."""

    name: str
    password_hash: str | None = None
    accounts: frozenset[str] | None = None


@dataclass(frozen=True)
class TrustedProxy:
    """A reverse proxy that authenticates and names the user in a header; requests from
    ``address`` (an IP address or network) are believed, from anywhere else refused."""

    address: str
    user_header: str = "X-Forwarded-User"


@dataclass(frozen=True)
class WebConfig:
    listen: str | None = None  # "127.0.0.1:8025"
    trusted_proxy: TrustedProxy | None = None
    users: tuple[WebUser, ...] = ()
    target: float = 0.9  # the service-level target the board names clients below

    @property
    def authenticated(self) -> bool:
        return self.trusted_proxy is not None or bool(self.users)


@dataclass(frozen=True)
class PromiseConfig:
    enabled: bool = True
    remind_before: dt.timedelta = dt.timedelta(hours=2)
    # Send the account a short note when its acknowledgement named no date (off by
    # default), unless a date follows in the thread within ``ask_grace``.
    ask_for_date: bool = False
    ask_grace: dt.timedelta = dt.timedelta(minutes=30)


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
    database: DatabaseConfig | None = None  # None: SQLite under state_dir
    ignore: IgnoreRules = field(default_factory=IgnoreRules)
    sync: SyncConfig = field(default_factory=SyncConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    log: LogConfig = field(default_factory=LogConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    promise: PromiseConfig = field(default_factory=PromiseConfig)
    web: WebConfig = field(default_factory=WebConfig)
    dismiss_keyword: str = "$Ackwatch-Done"
    thread_subject_window: dt.timedelta = dt.timedelta(days=30)
    oauth2_apps: Mapping[str, OAuth2App] = field(default_factory=lambda: MappingProxyType({}))

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

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- defaults
# Defaults of keys that have no dataclass field of their own.

UNKNOWN_SENDERS: Literal["track", "ignore"] = "track"
IMAP_SECURITY: Security = "tls"
SMTP_SECURITY: Security = "starttls"
# The port when none is given follows the security.
IMAP_PORTS: Mapping[str, int] = MappingProxyType({"tls": 993, "starttls": 143, "none": 143})
SMTP_PORTS: Mapping[str, int] = MappingProxyType({"tls": 465, "starttls": 587, "none": 25})


def default_of(cls: type, name: str) -> Any:
    """The default of the dataclass field ``cls.name`` (a fresh one for a factory)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            break
    raise LookupError(f"{cls.__name__}.{name} has no default")
