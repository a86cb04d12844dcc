"""The config file's keys: what the loader accepts (any other key is an error with a
"did you mean" hint)."""

from __future__ import annotations

from ackwatch.config.model import SECRET_KEYS

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
POLICY_KEYS = ("window", "clock", "calendar", "nudge_before", "escalate_after")
ACCOUNT_KEYS = ("email", "name", "manager", "backup", "language", "calendar", "away")
CONNECTION_KEYS = ("host", "port", "security", "username", "ca_file", "timeout")
MAILBOX_KEYS = (
    "name",
    *CONNECTION_KEYS,
    *SECRET_KEYS,
    "folders",
    "owner",
)
SMTP_SECRET_KEYS = ("password_file", "password_env", "credential")
