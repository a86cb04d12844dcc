"""Defaults are stated once, in the model (`ackwatch.config.schema.DEFAULTS` lists them by
key path): what config.example.yaml and README.md say a default is must agree with it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ackwatch.config import load_config
from ackwatch.config.schema import DEFAULTS, as_text

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config.example.yaml"
README = REPO / "README.md"

# Defaults that are a rule rather than a value, as the documents word them.
RULES = {
    "state_dir": "$STATE_DIRECTORY",
    "calendars.*.timezone": "the top-level timezone",
    "accounts[].calendar": "the first calendar",
    "mailboxes[].owner": "the username",
}
NAMED_SECTIONS = ("calendars", "policies")  # their keys are names: "*" in a key path


def example_comments(text: str) -> Iterator[tuple[str, str]]:
    """(key path, inline comment) for each ``key: value  # comment`` line of the YAML."""
    stack: list[tuple[int, str]] = []  # (column of the key, its path)
    for line in text.splitlines():
        match = re.match(r"^(\s*)(- )?([A-Za-z_]+):(.*)$", line)
        if match is None:
            continue
        column = len(match[1]) + (2 if match[2] else 0)
        key = match[3]
        if match[2]:  # a list item: drop the previous item's keys and marker
            while stack and stack[-1][0] >= column - 1:
                stack.pop()
        while stack and stack[-1][0] >= column:
            stack.pop()
        parent = stack[-1][1] if stack else ""
        if match[2]:
            parent += "[]"
            stack.append((column - 1, parent))
        elif parent in NAMED_SECTIONS:
            key = "*"
        path = f"{parent}.{key}" if parent else key
        stack.append((column, path))
        _, sep, comment = match[4].partition(" #")
        if sep:
            yield path, comment.strip()


def stated_default(comment: str) -> str | None:
    """``(default 30m)``, ``default: the username``, ``verified (default) | trusted``."""
    for pattern in (r"\(default:? ([^)]+)\)", r"(\S+) \(default\)", r"(?:^|; )default:? ([^;]+)"):
        match = re.search(pattern, comment)
        if match:
            return match[1].strip()
    return None


def normalized(path: str, text: str) -> object:
    """A stated default in a form to compare: ports as {security: port}, else text."""
    if isinstance(DEFAULTS.get(path), dict) or path.endswith(".port"):
        ports: dict[str, int] = {}
        for port, securities in re.findall(r"(\d+) (?:for )?([a-z/]+)", text):
            for security in securities.split("/"):
                ports[security] = int(port)
        return ports
    return text


def expected(path: str) -> object:
    value = DEFAULTS[path]
    return dict(value) if path.endswith(".port") else as_text(value)


def stated_in_example() -> dict[str, str]:
    stated = {}
    for path, comment in example_comments(EXAMPLE.read_text(encoding="utf-8")):
        default = stated_default(comment)
        if default is not None:
            stated[path] = default
    return stated


def test_the_example_states_defaults_where_expected():
    # The parser must keep finding them: a key path here that goes missing is a parser bug.
    assert set(stated_in_example()) >= {
        "agency.trust.inbox_agency_mail",
        "calendars.*.timezone",
        "policies.*.nudge_before",
        "accounts[].language",
        "accounts[].calendar",
        "mailboxes[].security",
        "mailboxes[].port",
        "mailboxes[].owner",
        "mailboxes[].timeout",
        "smtp.port",
        "smtp.security",
        "smtp.timeout",
    }


@pytest.mark.parametrize("path", sorted(stated_in_example()))
def test_each_default_the_example_states_is_the_models(path):
    stated = stated_in_example()[path]
    if path in RULES:
        assert stated.startswith(RULES[path])
    else:
        assert path in DEFAULTS, f"{path}: the example states a default the model lacks"
        assert normalized(path, stated) == expected(path)


def _readme_path(key: str) -> str:
    """A README key (``nudge_before``, ``digest.when``) as a key path of `DEFAULTS`."""
    if key in DEFAULTS or key in RULES:
        return key
    matches = [p for p in (*DEFAULTS, *RULES) if p.endswith("." + key)]
    assert len(matches) == 1, f"README names `{key}`: which key path? {matches}"
    return matches[0]


def stated_in_readme() -> dict[str, str]:
    text = " ".join(README.read_text(encoding="utf-8").split())  # lines joined
    patterns = (
        r"\(default `([a-z_.]+): ([^`]+)`\)",  # (default `agency.trust.x: verified`)
        r"`([a-z_.]+)` \(default `([^`]+)`",  # `digest.when` (default `mon 09:00`
        r"`([a-z_.]+)` defaults to `?([^`,; ]+)",  # `nudge_before` defaults to 30m
        r"`([a-z_]+\.[a-z_.]+)` \(([0-9][^;,)]*)[;,)]",  # `sync.command_deadline` (5m;
        r"\(`([a-z_.]+)`, ([0-9]+ days)\)",  # (`sync.backfill`, 7 days)
        r"`([a-z_.]+)`[^`]*? at the default ([0-9]+)\)",  # `sync.batch_size` ... default 500)
    )
    stated = {}
    for pattern in patterns:
        for key, value in re.findall(pattern, text):
            stated[_readme_path(key)] = re.sub(r"^([0-9]+) days$", r"\1d", value.strip())
    return stated


def test_the_readme_states_defaults_where_expected():
    assert set(stated_in_readme()) >= {
        "agency.trust.inbox_agency_mail",
        "policies.*.nudge_before",
        "state_dir",
        "sync.backfill",
        "sync.batch_size",
        "sync.command_deadline",
        "sync.mailbox_deadline",
        "notify.batch_window",
        "notify.max_per_hour",
        "notify.out_of_office_lookback",
        "digest.when",
        "promise.remind_before",
    }


@pytest.mark.parametrize("path", sorted(stated_in_readme()))
def test_each_default_the_readme_states_is_the_models(path):
    stated = stated_in_readme()[path]
    if path in RULES:
        assert stated.startswith(RULES[path])
    else:
        assert stated == expected(path)


def test_a_file_that_leaves_everything_optional_out_loads_the_listed_defaults(tmp_path):
    file = tmp_path / "config.yaml"
    file.write_text(
        "timezone: Europe/Warsaw\n"
        "agency: {domains: [agency.example]}\n"
        "policies: {default: {window: 2h, clock: calendar}}\n"
        "accounts: [{email: anna@agency.example, name: Anna}]\n"
        "clients: [{name: Acme, match: [acme.example]}]\n"
        "mailboxes: [{name: a, host: imap.example, username: a, password_env: A}]\n"
        "smtp: {host: smtp.example, from: a@agency.example}\n"
        "database: {url: 'postgresql://ackwatch@db.example/ackwatch'}\n"
        "web: {trusted_proxy: {address: 127.0.0.1}}\n",
        encoding="utf-8",
    )
    config = load_config(file, environ={})
    mailbox, smtp = config.mailboxes[0], config.smtp
    assert smtp is not None and config.database is not None
    loaded = {
        "unknown_senders": config.unknown_senders,
        "agency.trust.inbox_agency_mail": config.agency.trust.inbox_agency_mail,
        "policies.*.nudge_before": config.policies["default"].nudge_before,
        "policies.*.escalate_after": config.policies["default"].escalate_after,
        "accounts[].language": config.accounts[0].language,
        "clients[].policy": config.clients[0].policy,
        "mailboxes[].security": mailbox.security,
        "mailboxes[].port": {mailbox.security: mailbox.port},
        "mailboxes[].timeout": mailbox.timeout,
        "mailboxes[].folders.inbox": mailbox.folders.inbox,
        "mailboxes[].folders.sent": mailbox.folders.sent,
        "smtp.security": smtp.security,
        "smtp.port": {smtp.security: smtp.port},
        "smtp.timeout": smtp.timeout,
        "database.sslmode": config.database.sslmode,
        "database.give_up_after": config.database.give_up_after,
        "digest.enabled": config.digest.enabled,
        "digest.when": (config.digest.weekday, config.digest.time),
        "dismiss_keyword": config.dismiss_keyword,
        "thread_subject_window": config.thread_subject_window,
        "web.listen": config.web.listen,
        "web.target": config.web.target,
        "web.trusted_proxy.user_header": (
            config.web.trusted_proxy and config.web.trusted_proxy.user_header),
    }
    for section in ("sync", "notify", "log", "metrics", "cluster", "promise"):
        for name, value in vars(getattr(config, section)).items():
            loaded[f"{section}.{name}"] = value
    assert set(loaded) == set(DEFAULTS)
    for path, value in loaded.items():
        default = DEFAULTS[path]
        if path.endswith(".port"):
            assert value.items() <= dict(default).items(), path
        else:
            assert value == default, path
