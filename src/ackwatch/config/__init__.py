"""The config file: typed, immutable values and the one loader that validates them.

`load_config(path)` returns a `Config` or raises one `ConfigError` that carries every
problem found (file, key path such as ``mailboxes[1].port``, and what is wrong), the way
borgmatic reports schema errors. The CLI catches it once and exits 78 (EX_CONFIG).

Secrets are *references* (`SecretRef`): they are resolved when used (`resolve_secret`),
never while loading, because ops run ``check-config`` in a shell that lacks the
service's environment and credentials.

This package's interface is what is imported here, deliberately: callers write
``from ackwatch.config import Config, load_config``. The modules behind it:

- `model`: the frozen dataclasses, and every default (stated there once);
- `schema`: the keys the file may have, and the defaults by key path;
- `load`: reads the file; `sections` and `connections` walk it into a `Config`;
- `convert` and `times`: the field converters; `problems`: what is wrong, and where.
"""

from ackwatch.config.convert import is_loopback
from ackwatch.config.load import DEFAULT_CONFIG_PATH, load_config
from ackwatch.config.model import (
    Absence,
    Account,
    Agency,
    CalendarConfig,
    Client,
    Clock,
    ClusterConfig,
    Config,
    DigestConfig,
    Folders,
    IgnoreRules,
    LogConfig,
    MailboxConfig,
    MetricsConfig,
    NotifyConfig,
    OAuth2App,
    OpenRange,
    Policy,
    PromiseConfig,
    SecretRef,
    Security,
    SmtpConfig,
    SyncConfig,
    Trust,
    TrustedProxy,
    WebConfig,
    WebUser,
)
from ackwatch.config.problems import EX_CONFIG, ConfigError, Problem
from ackwatch.config.times import format_duration, parse_duration

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "EX_CONFIG",
    "Absence",
    "Account",
    "Agency",
    "CalendarConfig",
    "Client",
    "Clock",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "DigestConfig",
    "Folders",
    "IgnoreRules",
    "LogConfig",
    "MailboxConfig",
    "MetricsConfig",
    "NotifyConfig",
    "OAuth2App",
    "OpenRange",
    "Policy",
    "Problem",
    "PromiseConfig",
    "SecretRef",
    "Security",
    "SmtpConfig",
    "SyncConfig",
    "Trust",
    "TrustedProxy",
    "WebConfig",
    "WebUser",
    "format_duration",
    "is_loopback",
    "load_config",
    "parse_duration",
]
