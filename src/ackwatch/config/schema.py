"""The config file's keys, and every default by key path.

The key tables are what the loader accepts (any other key is an error with a "did you
mean" hint); `DEFAULTS` is what a key that is left out means, read from the model
(`ackwatch.config.model`), the one place a default is stated. README.md and
config.example.yaml state the same defaults; tests/config/test_config_defaults.py checks it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType

from ackwatch.config.model import (
    IMAP_PORTS,
    IMAP_SECURITY,
    SECRET_KEYS,
    SMTP_PORTS,
    SMTP_SECURITY,
    UNKNOWN_SENDERS,
    Account,
    Client,
    ClusterConfig,
    Config,
    DatabaseConfig,
    DigestConfig,
    Folders,
    LogConfig,
    MailboxConfig,
    MetricsConfig,
    NotifyConfig,
    Policy,
    PromiseConfig,
    SmtpConfig,
    SyncConfig,
    Trust,
    TrustedProxy,
    WebConfig,
    default_of,
)
from ackwatch.config.times import DAYS, format_duration

TOP_KEYS = (
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
    "database",
    "ignore",
    "sync",
    "notify",
    "log",
    "digest",
    "metrics",
    "cluster",
    "promise",
    "web",
    "dismiss_keyword",
    "thread_subject_window",
    "oauth2_apps",
)
POLICY_KEYS = ("window", "clock", "calendar", "nudge_before", "escalate_after")
ACCOUNT_KEYS = (
    "email", "name", "manager", "backup", "mentor", "language", "calendar", "away",
)
CONNECTION_KEYS = ("host", "port", "security", "username", "ca_file", "timeout")
MAILBOX_KEYS = (
    "name",
    *CONNECTION_KEYS,
    *SECRET_KEYS,
    "oauth2",
    "folders",
    "owner",
)
SMTP_SECRET_KEYS = ("password_file", "password_env", "credential")
DATABASE_KEYS = ("url", *SMTP_SECRET_KEYS, "sslmode", "sslrootcert", "give_up_after")
# An application of oauth2_apps: every key, and the ones each provider takes.
OAUTH2_PROVIDER_KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "microsoft365": ("provider", "tenant", "client_id", "client_secret_file",
                     "client_secret_env", "credential", "certificate_file",
                     "private_key_file", "private_key_credential", "token_url"),
    "google": ("provider", "service_account_file", "credential", "token_url"),
})
OAUTH2_APP_KEYS = tuple(dict.fromkeys(k for keys in OAUTH2_PROVIDER_KEYS.values() for k in keys))

# The optional sections whose keys are their dataclass's fields, one for one.
FIELD_SECTIONS: Mapping[str, type] = MappingProxyType(
    {
        "sync": SyncConfig,
        "notify": NotifyConfig,
        "log": LogConfig,
        "metrics": MetricsConfig,
        "cluster": ClusterConfig,
        "promise": PromiseConfig,
    }
)


def _defaults() -> dict[str, object]:
    """Key path -> default value. ``[]`` stands for every entry of a list, ``*`` for
    every name of a named section. A key missing here has no default (it is required)
    or one that is a rule, not a value (``state_dir``, a calendar's ``timezone``, a
    mailbox's ``owner``, an account's ``calendar``: see `load_config`)."""
    defaults: dict[str, object] = {
        "unknown_senders": UNKNOWN_SENDERS,
        "agency.trust.inbox_agency_mail": default_of(Trust, "inbox_agency_mail"),
        "policies.*.nudge_before": default_of(Policy, "nudge_before"),
        "policies.*.escalate_after": default_of(Policy, "escalate_after"),
        "accounts[].language": default_of(Account, "language"),
        "clients[].policy": default_of(Client, "policy"),
        "mailboxes[].security": IMAP_SECURITY,
        "mailboxes[].port": IMAP_PORTS,
        "mailboxes[].timeout": default_of(MailboxConfig, "timeout"),
        "mailboxes[].folders.inbox": default_of(Folders, "inbox"),
        "mailboxes[].folders.sent": default_of(Folders, "sent"),
        "smtp.security": SMTP_SECURITY,
        "smtp.port": SMTP_PORTS,
        "smtp.timeout": default_of(SmtpConfig, "timeout"),
        "database.sslmode": default_of(DatabaseConfig, "sslmode"),
        "database.give_up_after": default_of(DatabaseConfig, "give_up_after"),
    }
    for section, cls in FIELD_SECTIONS.items():
        for f in dataclasses.fields(cls):
            defaults[f"{section}.{f.name}"] = default_of(cls, f.name)
    defaults["digest.enabled"] = default_of(DigestConfig, "enabled")
    weekday, time = default_of(DigestConfig, "weekday"), default_of(DigestConfig, "time")
    defaults["digest.when"] = (weekday, time)
    defaults["web.listen"] = default_of(WebConfig, "listen")
    defaults["web.target"] = default_of(WebConfig, "target")
    defaults["web.trusted_proxy.user_header"] = default_of(TrustedProxy, "user_header")
    defaults["dismiss_keyword"] = default_of(Config, "dismiss_keyword")
    defaults["thread_subject_window"] = default_of(Config, "thread_subject_window")
    return defaults


DEFAULTS: Mapping[str, object] = MappingProxyType(_defaults())


def as_text(value: object) -> str:
    """A default as the config file writes it: ``30m``, ``60``, ``true``, ``[INBOX]``,
    ``mon 09:00``, ``993 tls, 143 starttls, 143 none``; ``null`` for none."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dt.time):
        return f"{DAYS[value[0]]} {value[1]:%H:%M}"
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return ", ".join(f"{port} {security}" for security, port in value.items())
    return str(value)
