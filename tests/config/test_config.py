"""The config loader: every key validated, every problem reported at once, with its path."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import re
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml

from ackwatch.config import (
    Absence,
    Config,
    ConfigError,
    Folders,
    OpenRange,
    SecretRef,
    format_duration,
    load_config,
    parse_duration,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config.example.yaml"

# The smallest valid file; tests change one thing at a time with `variant`.
MINIMAL: dict = {
    "timezone": "Europe/Warsaw",
    "agency": {"domains": ["agency.example"]},
    "calendars": {"office": {"hours": {"mon-fri": "09:00-17:00"}, "holidays": "PL"}},
    "policies": {"default": {"window": "2h", "clock": "business", "calendar": "office"}},
    "accounts": [
        {"email": "anna@agency.example", "name": "Anna", "backup": "piotr@agency.example"},
        {"email": "piotr@agency.example", "name": "Piotr"},
    ],
    "clients": [{"name": "Acme", "match": ["acme.example"], "account": "anna@agency.example"}],
    "mailboxes": [
        {
            "name": "anna",
            "host": "imap.agency.example",
            "username": "anna@agency.example",
            "password_env": "ACKWATCH_ANNA_PASSWORD",
        }
    ],
}

DELETE = object()


def variant(*edits: tuple[str, object]) -> dict:
    """MINIMAL with ``("mailboxes[0].port", 99)`` style edits (DELETE removes the key)."""
    data = copy.deepcopy(MINIMAL)
    for path, value in edits:
        keys: list[str | int] = []
        for part in path.split("."):
            name, *indexes = re.split(r"\[(\d+)\]", part)
            if name:
                keys.append(name)
            keys += [int(i) for i in indexes if i]
        node = data
        for key in keys[:-1]:
            node = node[key]
        if value is DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return data


@pytest.fixture
def write(tmp_path):
    def write(data: dict | str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        text = (
            data
            if isinstance(data, str)
            else yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
        )
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def load(write):
    def load(data: dict | str, environ: dict | None = None) -> Config:
        return load_config(write(data), environ={} if environ is None else environ)

    return load


@pytest.fixture
def problems(write):
    """The problems of an invalid file, as "path: message" strings."""

    def problems(data: dict | str) -> list[str]:
        with pytest.raises(ConfigError) as info:
            load_config(write(data), environ={})
        return [str(p) for p in info.value.problems]

    return problems


def one_problem(found: list[str]) -> str:
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- the example


def test_example_config_is_valid():
    config = load_config(EXAMPLE, environ={})
    assert config.timezone == "Europe/Warsaw"
    assert set(config.policies) >= {"default", "retainer"}
    assert len(config.mailboxes) >= 2
    assert any(mb.host == "imap.gmail.com" for mb in config.mailboxes)
    assert {mb.oauth2.provider for mb in config.mailboxes if mb.oauth2} == {"microsoft365", "google"}
    assert config.smtp is not None
    assert any(acc.away for acc in config.accounts)
    assert config.calendars["office"].holidays == "PL"


def test_example_config_mentions_every_key_the_loader_knows():
    from ackwatch.config import schema

    text = EXAMPLE.read_text(encoding="utf-8")
    for key in schema.TOP_KEYS:
        assert re.search(rf"^{key}:", text, re.M), key
    for key in (*schema.MAILBOX_KEYS, *schema.POLICY_KEYS):
        assert key in text, key
    for key in schema.ACCOUNT_KEYS:
        assert key in text, key


# --------------------------------------------------------------------------- defaults


def test_minimal_config_gets_the_documented_defaults(load, tmp_path):
    config = load(MINIMAL)
    assert config.path == tmp_path / "config.yaml"
    assert config.state_dir == tmp_path / "state"
    assert config.unknown_senders == "track"
    assert config.smtp is None
    mb = config.mailboxes[0]
    assert (mb.port, mb.security, mb.timeout) == (993, "tls", 60.0)
    assert mb.folders == Folders(inbox=("INBOX",), sent="auto")
    assert mb.password == SecretRef("env", "ACKWATCH_ANNA_PASSWORD")
    assert mb.oauth2_token is None
    assert mb.owner is None and mb.owner_address == "anna@agency.example"
    policy = config.policies["default"]
    assert policy.nudge_before == dt.timedelta(minutes=30)
    assert policy.escalate_after is None
    assert config.clients[0].policy == "default"
    assert config.accounts[0].language == "en"
    assert config.calendars["office"].timezone == "Europe/Warsaw"
    assert config.sync.backfill == dt.timedelta(days=7)
    assert config.sync.poll_interval == dt.timedelta(seconds=60)
    assert (config.sync.idle, config.sync.batch_size) == (True, 500)
    assert config.notify.batch_window == dt.timedelta(minutes=2)
    assert config.notify.max_per_hour == 6
    assert config.notify.out_of_office_lookback == dt.timedelta(days=3)
    assert (config.log.level, config.log.subjects) == ("info", False)
    assert (config.digest.enabled, config.digest.weekday, config.digest.time) == (
        True,
        0,
        dt.time(9, 0),
    )
    assert config.metrics.listen is None
    assert config.promise.enabled and config.promise.remind_before == dt.timedelta(hours=2)
    assert config.dismiss_keyword == "$Ackwatch-Done"
    assert config.thread_subject_window == dt.timedelta(days=30)


def test_config_is_frozen_and_its_mappings_read_only(load):
    config = load(MINIMAL)
    assert isinstance(config.policies, MappingProxyType)
    assert isinstance(config.calendars, MappingProxyType)
    with pytest.raises(TypeError):
        config.policies["x"] = config.policies["default"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.timezone = "UTC"  # type: ignore[misc]


def test_state_dir_defaults_to_systemd_state_directory(load):
    config = load(MINIMAL, environ={"STATE_DIRECTORY": "/var/lib/ackwatch:/var/lib/other"})
    assert config.state_dir == Path("/var/lib/ackwatch")


def test_relative_paths_are_relative_to_the_config_files_directory(load, tmp_path):
    config = load(
        variant(
            ("state_dir", "data"),
            ("mailboxes[0].password_env", DELETE),
            ("mailboxes[0].password_file", "secrets/anna.pass"),
            ("mailboxes[0].ca_file", "/etc/ssl/ca.pem"),
            ("notify", {"templates_dir": "templates"}),
        )
    )
    assert config.state_dir == tmp_path / "data"
    assert config.mailboxes[0].password == SecretRef("file", str(tmp_path / "secrets/anna.pass"))
    assert config.mailboxes[0].ca_file == Path("/etc/ssl/ca.pem")
    assert config.notify.templates_dir == tmp_path / "templates"


@pytest.mark.parametrize(
    ("security", "imap_port", "smtp_port"),
    [("tls", 993, 465), ("starttls", 143, 587)],
)
def test_default_port_follows_security(load, security, imap_port, smtp_port):
    smtp = {"host": "smtp.agency.example", "security": security, "from": "aw@agency.example"}
    config = load(variant(("mailboxes[0].security", security), ("smtp", smtp)))
    assert config.mailboxes[0].port == imap_port
    assert config.smtp is not None and config.smtp.port == smtp_port


def test_security_none_defaults_to_plain_ports_on_loopback(load):
    smtp = {"host": "127.0.0.1", "security": "none", "from": "aw@agency.example"}
    config = load(
        variant(
            ("mailboxes[0].host", "localhost"), ("mailboxes[0].security", "none"), ("smtp", smtp)
        )
    )
    assert config.mailboxes[0].port == 143
    assert config.smtp is not None and config.smtp.port == 25


@pytest.mark.parametrize(("value", "seconds"), [(10, 10.0), (2.5, 2.5), ("2m", 120.0)])
def test_timeout_is_seconds_or_a_duration(load, value, seconds):
    assert load(variant(("mailboxes[0].timeout", value))).mailboxes[0].timeout == seconds


def test_addresses_domains_and_globs_are_lower_cased(load):
    config = load(
        variant(
            ("agency.domains", ["Agency.Example"]),
            ("accounts[0].email", "Anna@Agency.Example"),
            ("accounts[1].backup", "ANNA@agency.example"),
            ("clients[0].match", ["ACME.example", "CEO@Mail.Example"]),
            ("clients[0].account", "Anna@agency.EXAMPLE"),
            ("ignore", {"senders": ["NoReply@*"]}),
        )
    )
    assert config.agency.domains == ("agency.example",)
    assert config.accounts[0].email == "anna@agency.example"
    assert config.accounts[1].backup == "anna@agency.example"
    assert config.clients[0].match == ("acme.example", "ceo@mail.example")
    assert config.clients[0].account == "anna@agency.example"
    assert config.ignore.senders == ("noreply@*",)


def test_ignore_subjects_are_case_insensitive_regexes(load):
    config = load(variant(("ignore", {"subjects": ["^automatic reply", "out of office"]})))
    assert config.ignore.subjects[0].search("AUTOMATIC REPLY: away")
    assert config.ignore.subjects[1].search("Re: Out Of Office")


def test_a_single_string_counts_as_a_one_item_list(load):
    config = load(
        variant(("clients[0].match", "acme.example"), ("agency.domains", "agency.example"))
    )
    assert config.clients[0].match == ("acme.example",)
    assert config.agency.domains == ("agency.example",)


def test_oauth2_token_command_is_an_oauth2_token_not_a_password(load):
    config = load(
        variant(
            ("mailboxes[0].password_env", DELETE),
            ("mailboxes[0].oauth2_token_command", "/usr/local/bin/token --user 'anna x'"),
        )
    )
    mb = config.mailboxes[0]
    assert mb.password is None
    assert mb.oauth2_token == SecretRef("command", "/usr/local/bin/token --user 'anna x'")


def test_oauth2_token_command_may_be_an_argument_list(load):
    config = load(
        variant(
            ("mailboxes[0].password_env", DELETE),
            ("mailboxes[0].oauth2_token_command", ["/usr/bin/tok", "--user", "anna x"]),
        )
    )
    assert config.mailboxes[0].oauth2_token == SecretRef("command", "/usr/bin/tok --user 'anna x'")


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("password_file", "/etc/ackwatch/anna.pass", "file"),
        ("password_env", "ACKWATCH_ANNA_PASSWORD", "env"),
        ("credential", "anna.pass", "credential"),
    ],
)
def test_password_sources_become_secret_references(load, key, value, kind):
    config = load(variant(("mailboxes[0].password_env", DELETE), (f"mailboxes[0].{key}", value)))
    assert config.mailboxes[0].password == SecretRef(kind, value)


def test_secrets_are_not_resolved_while_loading(load):
    # Neither the variable nor the file exists: loading still succeeds.
    config = load(variant(("mailboxes[0].password_env", "NOT_SET_ANYWHERE")), environ={})
    assert config.mailboxes[0].password == SecretRef("env", "NOT_SET_ANYWHERE")


def test_folders_and_owner(load):
    config = load(
        variant(
            ("mailboxes[0].folders", {"inbox": ["INBOX", "Clients"], "sent": ["Sent Items"]}),
            ("mailboxes[0].owner", "Kasia@agency.example"),
        )
    )
    mb = config.mailboxes[0]
    assert mb.folders == Folders(inbox=("INBOX", "Clients"), sent=("Sent Items",))
    assert mb.owner_address == "kasia@agency.example"


def test_optional_sections(load):
    config = load(
        variant(
            ("sync", {"backfill": "14d", "poll_interval": "5m", "idle": False, "batch_size": 100}),
            ("notify", {"batch_window": "0m", "max_per_hour": 2}),
            ("log", {"level": "DEBUG", "subjects": True}),
            ("digest", {"enabled": False, "when": "fri 16:30"}),
            ("metrics", {"listen": "[::1]:9464"}),
            ("promise", {"enabled": False, "remind_before": "1h30m"}),
            ("dismiss_keyword", "$NoReplyNeeded"),
            ("thread_subject_window", "14d"),
            ("unknown_senders", "ignore"),
        )
    )
    assert config.sync.backfill == dt.timedelta(days=14) and config.sync.idle is False
    assert config.notify.batch_window == dt.timedelta(0) and config.notify.max_per_hour == 2
    assert config.log.level == "debug" and config.log.subjects is True
    assert (config.digest.enabled, config.digest.weekday, config.digest.time) == (
        False,
        4,
        dt.time(16, 30),
    )
    assert config.metrics.listen == "[::1]:9464"
    assert config.promise.remind_before == dt.timedelta(hours=1, minutes=30)
    assert config.dismiss_keyword == "$NoReplyNeeded"
    assert config.thread_subject_window == dt.timedelta(days=14)
    assert config.unknown_senders == "ignore"


def test_null_escalate_after_never_escalates_and_0m_escalates_at_the_deadline(load):
    config = load(
        variant(
            ("policies.default.escalate_after", None),
            ("policies.now", {"window": "1h", "clock": "calendar", "escalate_after": "0m"}),
        )
    )
    assert config.policies["default"].escalate_after is None
    assert config.policies["now"].escalate_after == dt.timedelta(0)
    assert config.policies["now"].calendar is None


def test_away_ranges(load):
    config = load(variant(("accounts[0].away", [{"from": "2026-12-20", "until": "2027-01-06"}])))
    assert config.accounts[0].away == (Absence(dt.date(2026, 12, 20), dt.date(2027, 1, 6)),)


def test_smtp_without_auth(load):
    config = load(variant(("smtp", {"host": "smtp.agency.example", "from": "aw@agency.example"})))
    assert config.smtp is not None
    assert (config.smtp.username, config.smtp.password, config.smtp.security) == (
        None,
        None,
        "starttls",
    )


def test_smtp_with_auth(load):
    smtp = {
        "host": "smtp.agency.example",
        "port": 465,
        "security": "tls",
        "username": "ackwatch@agency.example",
        "credential": "smtp.pass",
        "from": "ackwatch <ackwatch@agency.example>",
    }
    config = load(variant(("smtp", smtp)))
    assert config.smtp is not None
    assert config.smtp.password == SecretRef("credential", "smtp.pass")
    assert config.smtp.from_address == "ackwatch <ackwatch@agency.example>"


# --------------------------------------------------------------------------- weekly hours

M = OpenRange


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (
            {"mon-fri": "09:00-17:00"},
            ((M(540, 1020),),) * 5 + ((), ()),
        ),
        (
            {"mon,wed": "09:00-12:00,13:00-17:00", "sun": "10:00-24:00"},
            (
                (M(540, 720), M(780, 1020)),
                (),
                (M(540, 720), M(780, 1020)),
                (),
                (),
                (),
                (M(600, 1440),),
            ),
        ),
        (
            {"mon-fri": "13:00-17:00, 08:00-12:00", "sat": "closed"},
            ((M(480, 720), M(780, 1020)),) * 5 + ((), ()),
        ),
        (  # touching ranges are one range
            {"tue": "09:00-12:00,12:00-17:00"},
            ((), (M(540, 1020),), (), (), (), (), ()),
        ),
        (
            {"Monday": "0:00-24:00"},
            ((M(0, 1440),), (), (), (), (), (), ()),
        ),
    ],
)
def test_weekly_hours_map_onto_monday_to_sunday(load, hours, expected):
    config = load(variant(("calendars.office.hours", hours)))
    assert config.calendars["office"].hours == expected


@pytest.mark.parametrize(
    ("hours", "path", "message"),
    [
        ({"mon-fri": "09:00-17:00", "fri": "10:00-12:00"}, "fri", "fri is already given by"),
        ({"mon,mon": "09:00-17:00"}, "mon,mon", "mon is given twice"),
        ({"fri-mon": "09:00-17:00"}, "fri-mon", "runs backwards"),
        ({"mon": "17:00-09:00"}, "mon", "the end is not after the start"),
        ({"mon": "09:00-09:00"}, "mon", "the end is not after the start"),
        ({"mon": "09:00-13:00,12:00-17:00"}, "mon", "overlap"),
        ({"mon": "9-17"}, "mon", "malformed hours"),
        ({"mon": "09:00-25:00"}, "mon", "not a time of day"),
        ({"mon": "24:00-24:00"}, "mon", "not a time of day"),
        ({"mon": "09:60-17:00"}, "mon", "not a time of day"),
        ({"mon": True}, "mon", "expected"),
        ({"mn": "09:00-17:00"}, "mn", 'unknown day "mn"'),
    ],
)
def test_malformed_hours_are_errors(problems, hours, path, message):
    found = one_problem(problems(variant(("calendars.office.hours", hours))))
    assert found.startswith(f"calendars.office.hours.{path}: ")
    assert message in found


def test_a_calendar_that_is_never_open_is_an_error(problems):
    found = one_problem(problems(variant(("calendars.office.hours", {"mon-sun": "closed"}))))
    assert found.startswith("calendars.office.hours: no open hours")


# --------------------------------------------------------------------------- holidays


@pytest.mark.parametrize(
    ("value", "country", "subdivision"),
    [("PL", "PL", None), ("pl", "PL", None), ("DE-BY", "DE", "BY"), ("de-by", "DE", "BY")],
)
def test_holiday_country_and_subdivision(load, value, country, subdivision):
    calendar = load(variant(("calendars.office.holidays", value))).calendars["office"]
    assert (calendar.holidays, calendar.holiday_subdivision) == (country, subdivision)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("XX", 'unknown holiday country "XX"'),
        ("DE-XX", 'unknown subdivision "XX" of DE'),
        (False, "quote the code"),  # what YAML makes of an unquoted NO (Norway)
        (48, "expected a country code"),
    ],
)
def test_unsupported_holiday_country_is_an_error(problems, value, message):
    found = one_problem(problems(variant(("calendars.office.holidays", value))))
    assert found.startswith("calendars.office.holidays: ")
    assert message in found


def test_unquoted_no_country_code_gets_a_hint(problems):
    text = yaml.safe_dump(variant(("calendars.office.holidays", "PLACEHOLDER")))
    found = one_problem(problems(text.replace("PLACEHOLDER", "NO")))
    assert 'quote the code ("NO")' in found


def test_closed_days_accept_yaml_dates_and_strings(load):
    text = yaml.safe_dump(variant(("calendars.office.closed", ["PLACEHOLDER", "2026-12-31"])))
    assert "- PLACEHOLDER" in text
    config = load(text.replace("PLACEHOLDER", "2026-12-24"))  # unquoted: a YAML date
    assert config.calendars["office"].closed == {dt.date(2026, 12, 24), dt.date(2026, 12, 31)}


# --------------------------------------------------------------------------- errors, table


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        ((("mailboxes[0].port", "99x"),), 'mailboxes[0].port: expected an integer, got "99x"'),
        ((("mailboxes[0].port", 0),), "mailboxes[0].port: must be between 1 and 65535, got 0"),
        ((("mailboxes[0].port", 70000),), "mailboxes[0].port: must be between 1 and 65535"),
        ((("mailboxes[0].port", True),), "mailboxes[0].port: expected an integer, got true"),
        (
            (("mailboxes[0].security", "ssl"),),
            'mailboxes[0].security: expected one of tls, starttls, none, got "ssl" (did you mean "tls"?)',
        ),
        ((("mailboxes[0].timeout", "soon"),), "mailboxes[0].timeout: expected a number of seconds"),
        ((("mailboxes[0].timeout", float("inf")),), "mailboxes[0].timeout: must be more than 0"),
        ((("mailboxes[0].port", "９９３"),), "mailboxes[0].port: expected an integer"),
        ((("mailboxes[0].timeout", 0),), "mailboxes[0].timeout: must be more than 0"),
        (
            (("mailboxes[0].host", "imaps://imap.example"),),
            "mailboxes[0].host: expected a host name, not a URL",
        ),
        ((("mailboxes[0].host", DELETE),), "mailboxes[0].host: missing (required)"),
        ((("mailboxes[0].name", None),), "mailboxes[0].name: has no value (required)"),
        ((("mailboxes[0].username", 7),), "mailboxes[0].username: expected a string, got 7"),
        ((("mailboxes[0].owner", "kasia"),), 'mailboxes[0].owner: not an email address: "kasia"'),
        (
            (("mailboxes[0].password_env", "1BAD-NAME"),),
            "mailboxes[0].password_env: expected an environment variable name",
        ),
        (
            (("mailboxes[0].password_env", DELETE), ("mailboxes[0].credential", "/etc/x")),
            "mailboxes[0].credential: a credential is a name, not a path",
        ),
        (
            (
                ("mailboxes[0].password_env", DELETE),
                ("mailboxes[0].oauth2_token_command", "tok 'unclosed"),
            ),
            "mailboxes[0].oauth2_token_command: cannot split the command line",
        ),
        (
            (("mailboxes[0].folders", {"inbox": []}),),
            "mailboxes[0].folders.inbox: must not be empty",
        ),
        (
            (("mailboxes[0].folders", {"inbox": ["INBOX"], "sent": 3}),),
            "mailboxes[0].folders.sent: expected a list, got 3",
        ),
        ((("mailboxes", []),), "mailboxes: must not be empty"),
        ((("mailboxes", DELETE),), "mailboxes: missing (required)"),
        ((("mailboxes", {"anna": {}}),), "mailboxes: expected a list of mailboxes, got a mapping"),
        (
            (("timezone", "Europe/Warsa"),),
            'timezone: unknown timezone "Europe/Warsa" (did you mean "Europe/Warsaw"?)',
        ),
        ((("timezone", "Mars/Olympus"),), 'timezone: unknown timezone "Mars/Olympus"'),
        ((("timezone", DELETE),), "timezone: missing (required)"),
        (
            (("calendars.office.timezone", "Nowhere"),),
            'calendars.office.timezone: unknown timezone "Nowhere"',
        ),
        (
            (("calendars.office.closed", ["2026-02-30"]),),
            'calendars.office.closed[0]: not a valid date (YYYY-MM-DD): "2026-02-30"',
        ),
        (
            (("calendars.office.closed", ["24.12.2026"]),),
            "calendars.office.closed[0]: not a valid date",
        ),
        ((("calendars.office.hours", DELETE),), "calendars.office.hours: missing (required)"),
        (
            (("policies.default.window", "2 hours"),),
            'policies.default.window: not a duration: "2 hours"',
        ),
        ((("policies.default.window", 2),), "policies.default.window: expected a duration"),
        ((("policies.default.window", "0m"),), "policies.default.window: must be longer than 0"),
        ((("policies.default.window", "-2h"),), "policies.default.window: negative duration"),
        (
            (("policies.default.clock", "wall"),),
            'policies.default.clock: expected one of business, calendar, got "wall"',
        ),
        ((("policies.default.clock", DELETE),), "policies.default.clock: missing (required)"),
        (
            (("policies.default.calendar", DELETE),),
            "policies.default.calendar: missing (required for clock: business)",
        ),
        (
            (("policies.default.calendar", "ofice"),),
            'policies.default.calendar: unknown calendar "ofice" (did you mean "office"?)',
        ),
        (
            (("policies.default.nudge_before", "2h"),),
            "policies.default.nudge_before: must be shorter than the window (2h), got 2h",
        ),
        (
            (("policies.default.window", "20m"),),
            "policies.default.nudge_before: must be shorter than the window (20m), got 30m (the default 30m)",
        ),
        (
            (("policies.default.escalate_after", "soon"),),
            'policies.default.escalate_after: not a duration: "soon"',
        ),
        (
            (("policies", {"fast": MINIMAL["policies"]["default"]}), ("clients[0].policy", "fast")),
            'policies: a policy named "default" is required',
        ),
        ((("policies", DELETE),), "policies: missing (required)"),
        (
            (("clients[0].policy", "retainer"),),
            'clients[0].policy: unknown policy "retainer" (known: default)',
        ),
        (
            (("clients[0].account", "zed@agency.example"),),
            "clients[0].account: zed@agency.example is not one of the accounts",
        ),
        ((("clients[0].match", []),), "clients[0].match: must not be empty"),
        ((("clients[0].match", ["acme example"]),), "clients[0].match[0]: must not contain spaces"),
        ((("clients[0].name", DELETE),), "clients[0].name: missing (required)"),
        (
            (("clients", [*MINIMAL["clients"], {"name": "Acme", "match": "acme2.example"}]),),
            'clients[1].name: duplicate client "Acme" (also clients[0])',
        ),
        (
            (("accounts[0].backup", "bob@agency.example"),),
            "accounts[0].backup: bob@agency.example is not one of the accounts",
        ),
        (
            (("accounts[0].backup", "anna@agency.example"),),
            "accounts[0].backup: an account cannot be its own backup",
        ),
        ((("accounts[0].manager", "kasia"),), 'accounts[0].manager: not an email address: "kasia"'),
        (
            (("accounts[0].mentor", "anna@agency.example"),),
            "accounts[0].mentor: an account cannot be its own mentor",
        ),
        (
            (("accounts[0].mentor", "senior at agency"),),
            'accounts[0].mentor: not an email address: "senior at agency"',
        ),
        (
            (("accounts[0].manager", "anna@agency.example"),),
            "accounts[0].manager: an account cannot be its own manager",
        ),
        (
            (("accounts[0].calendar", "home"),),
            'accounts[0].calendar: unknown calendar "home" (known: office)',
        ),
        ((("accounts[0].language", "polish!"),), "accounts[0].language: expected a language code"),
        ((("accounts[0].name", DELETE),), "accounts[0].name: missing (required)"),
        (
            (("accounts[1].email", "ANNA@agency.example"), ("accounts[0].backup", None)),
            "accounts[1].email: duplicate account anna@agency.example (also accounts[0])",
        ),
        (
            (("accounts[0].away", [{"from": "2026-12-20", "until": "2026-12-01"}]),),
            "accounts[0].away[0].until: 2026-12-01 is before from (2026-12-20)",
        ),
        (
            (("accounts[0].away", [{"from": "2026-12-20"}]),),
            "accounts[0].away[0].until: missing (required)",
        ),
        (
            (
                (
                    "accounts[0].away",
                    [{"from": "2026-12-20", "until": "2026-12-24", "to": "2026-12-24"}],
                ),
            ),
            "accounts[0].away[0].to: unknown key",
        ),
        ((("agency", DELETE),), "agency: missing (required)"),
        (
            (("agency.addresses", ["not-an-address"]),),
            'agency.addresses[0]: not an email address: "not-an-address"',
        ),
        (
            (("agency.domains", ["agency example"]),),
            'agency.domains[0]: not a domain name: "agency example"',
        ),
        (
            (("unknown_senders", "drop"),),
            'unknown_senders: expected one of track, ignore, got "drop"',
        ),
        (
            (("ignore", {"subjects": ["(unclosed"]}),),
            'ignore.subjects[0]: invalid regular expression "(unclosed"',
        ),
        (
            (("ignore", {"senders": "noreply@*", "subject": ["x"]}),),
            'ignore.subject: unknown key (did you mean "subjects"?)',
        ),
        (
            (("sync", {"idle": "yes please"}),),
            'sync.idle: expected true or false, got "yes please"',
        ),
        ((("sync", {"poll_interval": "0s"}),), "sync.poll_interval: must be longer than 0"),
        ((("sync", {"batch_size": 0}),), "sync.batch_size: must be between 1 and 100000, got 0"),
        ((("notify", {"max_per_hour": 0}),), "notify.max_per_hour: must be at least 1, got 0"),
        ((("notify", {"batch_window": "2"}),), 'notify.batch_window: duration "2" has no unit'),
        (
            (("log", {"level": "warn"}),),
            'log.level: expected one of debug, info, warning, error, critical, got "warn" (did you mean "warning"?)',
        ),
        (
            (("digest", {"when": "monday"}),),
            'digest.when: expected a weekday and a time such as "mon 09:00"',
        ),
        ((("digest", {"when": "mon 25:00"}),), "digest.when: 25:00 is not a time of day"),
        (
            (("metrics", {"listen": "9464"}),),
            'metrics.listen: expected host:port such as "127.0.0.1:9464"',
        ),
        (
            (("metrics", {"listen": "0.0.0.0:99999"}),),
            "metrics.listen: port must be between 1 and 65535",
        ),
        (
            (("promise", {"remind_before": "tomorrow"}),),
            'promise.remind_before: not a duration: "tomorrow"',
        ),
        ((("dismiss_keyword", "Done (really)"),), "dismiss_keyword: expected an IMAP keyword"),
        (
            (("thread_subject_window", "forever"),),
            'thread_subject_window: not a duration: "forever"',
        ),
        ((("state_dir", ["a"]),), "state_dir: expected a file path, got a list"),
        ((("smtp", {"host": "smtp.agency.example"}),), "smtp.from: missing (required)"),
        (
            (("smtp", {"host": "smtp.agency.example", "from": "not an address"}),),
            "smtp.from: expected one address",
        ),
        (
            (
                (
                    "smtp",
                    {
                        "host": "smtp.agency.example",
                        "from": "a@agency.example",
                        "password_env": "X",
                    },
                ),
            ),
            "smtp.username: missing (required when a password is given)",
        ),
        (
            (
                (
                    "smtp",
                    {"host": "smtp.agency.example", "from": "a@agency.example", "username": "a"},
                ),
            ),
            "smtp: username given but no password",
        ),
        (
            (
                (
                    "smtp",
                    {
                        "host": "smtp.agency.example",
                        "from": "a@agency.example",
                        "username": "a",
                        "oauth2_token_command": "tok",
                    },
                ),
            ),
            "smtp.oauth2_token_command: not supported for smtp",
        ),
        (
            (("smtp", "smtp.agency.example"),),
            'smtp: expected a mapping (key: value), got "smtp.agency.example"',
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_invalid_values_are_reported_with_their_key_path(problems, edits, expected):
    found = one_problem(problems(variant(*edits)))
    assert found.startswith(expected), found


def test_unknown_key_is_reported_with_its_path_and_a_suggestion(problems):
    found = problems(
        variant(
            ("mailboxes[0].pasword_file", "/etc/ackwatch/anna.pass"),
            ("polices", {}),
            ("calendars.office.hollidays", "PL"),
            ("zzz_totally_unrelated", 1),
        )
    )
    assert 'mailboxes[0].pasword_file: unknown key (did you mean "password_file"?)' in found
    assert 'polices: unknown key (did you mean "policies"?)' in found
    assert 'calendars.office.hollidays: unknown key (did you mean "holidays"?)' in found
    assert "zzz_totally_unrelated: unknown key" in found
    assert len(found) == 4


def test_all_errors_are_reported_together(problems):
    found = problems(
        variant(
            ("timezone", "Nowhere/Town"),
            ("mailboxes[0].port", "99x"),
            ("policies.default.window", "2x"),
            ("clients[0].policy", "retainer"),
            ("accounts[0].backup", "bob@agency.example"),
            ("ignore", {"subjects": ["("]}),
        )
    )
    paths = [p.split(": ")[0] for p in found]
    assert paths == [
        "timezone",
        "policies.default.window",
        "accounts[0].backup",
        "clients[0].policy",
        "mailboxes[0].port",
        "ignore.subjects[0]",
    ]


def test_error_rendering_names_file_key_path_and_problem(write):
    path = write(variant(("mailboxes[0].port", "99x")))
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    lines = info.value.render().splitlines()
    assert lines[0] == f"{path}: 1 configuration error(s):"
    assert lines[1] == f'  {path}: mailboxes[0].port: expected an integer, got "99x"'


def test_literal_password_is_refused(problems):
    found = one_problem(problems(variant(("mailboxes[0].password", "hunter2"))))
    assert found.startswith("mailboxes[0].password: a literal password is not allowed")
    for way in ("password_file", "password_env", "credential", "oauth2_token_command"):
        assert way in found
    assert "hunter2" not in found


def test_literal_smtp_password_is_refused(problems):
    smtp = {
        "host": "smtp.x.example",
        "from": "a@agency.example",
        "username": "a",
        "password": "s3cret",
    }
    found = one_problem(problems(variant(("smtp", smtp))))
    assert found.startswith("smtp.password: a literal password is not allowed")
    assert "s3cret" not in found


def test_a_mailbox_needs_exactly_one_password_source(problems):
    none = one_problem(problems(variant(("mailboxes[0].password_env", DELETE))))
    assert none.startswith("mailboxes[0]: no password: give one of password_file, password_env")
    two = one_problem(problems(variant(("mailboxes[0].password_file", "/etc/ackwatch/a.pass"))))
    assert two.startswith("mailboxes[0]: give only one of")
    assert "password_file and password_env" in two


@pytest.mark.parametrize("host", ["imap.agency.example", "10.0.0.5", "192.168.1.1", "::2"])
def test_security_none_refused_for_remote_host(problems, host):
    found = one_problem(
        problems(variant(("mailboxes[0].host", host), ("mailboxes[0].security", "none")))
    )
    assert found.startswith("mailboxes[0].security: none (no encryption) is only allowed")


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"])
def test_security_none_allowed_on_loopback(load, host):
    config = load(variant(("mailboxes[0].host", host), ("mailboxes[0].security", "none")))
    assert config.mailboxes[0].security == "none"


def test_smtp_security_none_refused_for_remote_host(problems):
    smtp = {"host": "smtp.agency.example", "security": "none", "from": "a@agency.example"}
    found = one_problem(problems(variant(("smtp", smtp))))
    assert found.startswith("smtp.security: none (no encryption) is only allowed")


def test_duplicate_mailbox_names_are_errors(problems):
    data = variant()
    data["mailboxes"].append(dict(data["mailboxes"][0]))
    found = one_problem(problems(data))
    assert found == 'mailboxes[1].name: duplicate mailbox name "anna" (also mailboxes[0])'


def test_the_same_client_match_twice_is_an_error(problems):
    data = variant()
    data["clients"].append({"name": "Acme 2", "match": ["ACME.example"]})
    found = one_problem(problems(data))
    assert found.startswith(
        'clients[1].match[0]: "acme.example" is already matched by client "Acme"'
    )


def test_manager_need_not_be_an_account(load):
    config = load(variant(("accounts[0].manager", "boss@agency.example")))
    assert config.accounts[0].manager == "boss@agency.example"


def test_a_mentor_is_any_address_an_account_or_not(load):
    config = load(variant(("accounts[0].mentor", "Senior@Agency.example"),
                          ("accounts[1].mentor", "anna@agency.example")))
    assert [a.mentor for a in config.accounts] == ["senior@agency.example", "anna@agency.example"]


def test_no_mentor_unless_configured(load):
    assert load(MINIMAL).accounts[0].mentor is None


def test_calendar_policy_may_name_a_calendar_for_its_timezone(load):
    policy = {"window": "24h", "clock": "calendar", "calendar": "office", "nudge_before": "4h"}
    config = load(variant(("policies.retainer", policy)))
    assert config.policies["retainer"].calendar == "office"


# --------------------------------------------------------------------------- the file itself


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.file == str(tmp_path / "nope.yaml")
    assert "does not exist" in info.value.render()


def test_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "expected a mapping of settings at the top level, got a list"),
        ("timezone: [unclosed\n", "not valid YAML at line 2"),
        ("a: b: c\n", "not valid YAML at line 1, column 5"),
    ],
)
def test_unusable_files_are_config_errors(problems, text, message):
    assert message in one_problem(problems(text))


def test_duplicate_yaml_keys_are_errors(problems):
    text = yaml.safe_dump(MINIMAL) + "timezone: UTC\n"
    found = one_problem(problems(text))
    assert 'duplicate key "timezone"' in found
    assert found.startswith("line ")


def test_relative_path_to_load_config_is_made_absolute(write, monkeypatch, tmp_path):
    write(MINIMAL)
    monkeypatch.chdir(tmp_path)
    config = load_config("config.yaml", environ={})
    assert config.path == tmp_path / "config.yaml"
    assert config.path.is_absolute()


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", dt.timedelta(seconds=30)),
        ("45m", dt.timedelta(minutes=45)),
        ("2h", dt.timedelta(hours=2)),
        ("1h30m", dt.timedelta(hours=1, minutes=30)),
        ("1h 30m", dt.timedelta(hours=1, minutes=30)),
        ("3d", dt.timedelta(days=3)),
        ("1d2h3m4s", dt.timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("0m", dt.timedelta(0)),
        (" 90m ", dt.timedelta(minutes=90)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("   ", "empty duration"),
        ("-5m", "negative duration"),
        ("30", "has no unit"),
        ("2 hours", "not a duration"),
        ("30m2h", "not a duration"),  # largest unit first
        ("1h1h", "not a duration"),
        ("1.5h", "not a duration"),
        ("h", "not a duration"),
        ("99999999999999d", "too large"),
        (30, "expected a duration"),
        (None, "expected a duration"),
    ],
)
def test_parse_duration_rejects_garbage_with_a_clear_message(text, message):
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


@pytest.mark.parametrize("text", ["30s", "45m", "2h", "1h30m", "3d", "0m", "1d2h3m4s"])
def test_format_duration_round_trips(text):
    assert format_duration(parse_duration(text)) == text


def test_yaml_merge_keys_may_be_overridden_without_a_duplicate_error(load):
    text = yaml.safe_dump(variant(("policies.retainer", "PLACEHOLDER")), sort_keys=False)
    text = text.replace("  default:\n", "  default: &pol\n").replace(
        "retainer: PLACEHOLDER",
        "retainer:\n    <<: *pol\n    window: 24h\n    clock: calendar",
    )
    config = load(text)
    assert config.policies["retainer"].window == dt.timedelta(hours=24)
    assert config.policies["retainer"].clock == "calendar"
    assert config.policies["retainer"].calendar == "office"


# --------------------------------------------------------------------------- agency.trust


def test_agency_trust_is_verified_by_default_and_read_when_given(load):
    from ackwatch.config import Trust

    assert load(variant()).agency.trust == Trust()
    config = load(variant(("agency.trust", {
        "inbox_agency_mail": "Trusted",
        "authserv_ids": ["MX.Agency.Example", "mx.google.com"],
        "relays": ["mail.agency.example", "*.relay.agency.example", "192.0.2.25",
                   "10.0.0.0/8", "2001:db8::/32"],
    })))
    assert config.agency.trust == Trust(
        inbox_agency_mail="trusted",
        authserv_ids=("mx.agency.example", "mx.google.com"),
        relays=("mail.agency.example", "*.relay.agency.example", "192.0.2.25", "10.0.0.0/8",
                "2001:db8::/32"),
    )


def test_agency_trust_errors_name_their_key_paths(problems):
    found = problems(variant(("agency.trust", {
        "inbox_agency_mail": "yes",
        "authserv_ids": ["mx.agency.example; dmarc=pass"],
        "relays": ["mail.agency.example", "https://relay.example", "10.0.0.0/33"],
        "relay": ["x"],
    })))
    assert any(p.startswith("agency.trust.inbox_agency_mail: expected one of verified, trusted")
               for p in found), found
    assert any(p.startswith("agency.trust.authserv_ids[0]: an authserv-id is one word")
               for p in found), found
    assert any(p.startswith("agency.trust.relays[1]: expected a host name") for p in found)
    assert any(p.startswith("agency.trust.relays[2]: expected a host name") for p in found)
    assert 'agency.trust.relay: unknown key (did you mean "relays"?)' in found
    assert len(found) == 5, found
