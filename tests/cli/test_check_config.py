"""The command line: check-config and deadline, exit codes 0 / 78, and no secret output."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from ackwatch import cli
from ackwatch.cli import main
from ackwatch.config import EX_CONFIG
from ackwatch.core import explain as explain_mod

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config.example.yaml"
SECRET = "Tr0ub4dor&3-never-print-me"
WARSAW = ZoneInfo("Europe/Warsaw")

CONFIG: dict = {
    "timezone": "Europe/Warsaw",
    "agency": {"domains": ["agency.example"]},
    "calendars": {"office": {"hours": {"mon-fri": "09:00-17:00"}, "holidays": "PL"}},
    "policies": {
        "default": {
            "window": "2h",
            "clock": "business",
            "calendar": "office",
            "nudge_before": "30m",
            "escalate_after": "0m",
        },
        "retainer": {"window": "24h", "clock": "calendar", "nudge_before": "4h"},
    },
    "accounts": [
        {"email": "anna@agency.example", "name": "Anna", "manager": "kasia@agency.example"},
    ],
    "clients": [
        {
            "name": "Acme",
            "match": ["acme.example"],
            "account": "anna@agency.example",
            "policy": "retainer",
        }
    ],
    "unknown_senders": "track",
    "mailboxes": [
        {
            "name": "anna",
            "host": "imap.agency.example",
            "username": "anna@agency.example",
            "password_env": "ACKWATCH_ANNA_PASSWORD",
        }
    ],
    "smtp": {"host": "smtp.agency.example", "from": "ackwatch <ackwatch@agency.example>"},
}


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch):
    for name in ("ACKWATCH_CONFIG", "CREDENTIALS_DIRECTORY", "ACKWATCH_ANNA_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def config_file(tmp_path):
    def write(data: dict | str = CONFIG) -> Path:
        path = tmp_path / "config.yaml"
        text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        path.chmod(0o644)
        return path

    return write


# --------------------------------------------------------------------------- structure


def test_subcommands_are_registered_and_all_take_a_config_option():
    assert {"check-config", "deadline"} <= set(cli.COMMANDS)
    parser = cli.build_parser()
    args = parser.parse_args(["check-config", "-c", "x.yaml"])
    assert args.config == "x.yaml"
    args = parser.parse_args(
        [
            "deadline",
            "--config",
            "y.yaml",
            "--from",
            "a@b.example",
            "--received",
            "2026-03-02T10:00",
        ]
    )
    assert args.config == "y.yaml"


def test_config_defaults_to_ackwatch_config_then_etc(monkeypatch):
    assert cli.build_parser().parse_args(["check-config"]).config == "/etc/ackwatch/config.yaml"
    monkeypatch.setenv("ACKWATCH_CONFIG", "/srv/ackwatch.yaml")
    assert cli.build_parser().parse_args(["check-config"]).config == "/srv/ackwatch.yaml"


def test_no_subcommand_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "check-config" in capsys.readouterr().err


def test_version_and_help_exit_0(capsys):
    assert main(["--version"]) == 0
    assert "ackwatch" in capsys.readouterr().out
    assert main(["check-config", "--help"]) == 0


def test_python_dash_m_ackwatch_works(config_file):
    path = config_file()
    result = subprocess.run(
        [sys.executable, "-m", "ackwatch", "check-config", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config OK: ")


# --------------------------------------------------------------------------- check-config


def test_check_config_summarises_a_valid_file(config_file, capsys):
    assert main(["check-config", "-c", str(config_file())]) == 0
    out = capsys.readouterr().out
    assert out == "config OK: 1 mailbox, 1 calendar, 2 policies, 1 account, 1 client\n"


def test_check_config_of_the_example(capsys):
    assert main(["check-config", "-c", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out == "config OK: 3 mailboxes, 2 calendars, 3 policies, 4 accounts, 5 clients\n"


def test_check_config_uses_ackwatch_config(config_file, monkeypatch, capsys):
    monkeypatch.setenv("ACKWATCH_CONFIG", str(config_file()))
    assert main(["check-config"]) == 0
    assert capsys.readouterr().out.startswith("config OK")


def test_check_config_warns_about_an_unset_password_variable(config_file, capsys):
    assert main(["check-config", "-c", str(config_file())]) == 0
    err = capsys.readouterr().err
    assert (
        "warning: mailboxes[0].password_env: ACKWATCH_ANNA_PASSWORD is not set in this shell "
        "(the service's environment may set it)\n"
    ) in err


def test_check_config_warns_when_no_mail_can_be_sent(config_file, capsys):
    data = {k: v for k, v in CONFIG.items() if k != "smtp"}
    assert main(["check-config", "-c", str(config_file(data))]) == 0
    assert "warning: smtp: not configured" in capsys.readouterr().err


@pytest.mark.parametrize("listen", ["0.0.0.0:9464", "[::]:9464", "192.0.2.7:9464",
                                    "metrics.agency.example:9464"])
def test_check_config_warns_when_metrics_listen_beyond_loopback(config_file, capsys, listen):
    assert main(["check-config", "-c", str(config_file({**CONFIG,
                                                       "metrics": {"listen": listen}}))]) == 0
    assert f"warning: metrics.listen: {listen} is not a loopback address" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("listen", ["127.0.0.1:9464", "[::1]:9464", "localhost:9464"])
def test_check_config_is_quiet_about_metrics_on_loopback(config_file, capsys, listen):
    assert main(["check-config", "-c", str(config_file({**CONFIG,
                                                       "metrics": {"listen": listen}}))]) == 0
    assert "metrics.listen" not in capsys.readouterr().err


def test_check_config_reports_every_error_and_exits_78(config_file, capsys):
    data = {**CONFIG, "timezone": "Mars/Olympus", "sync": {"batch_size": "many"}}
    path = config_file(data)
    assert main(["check-config", "-c", str(path)]) == EX_CONFIG
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"{path}: 2 configuration error(s):",
        f'  {path}: timezone: unknown timezone "Mars/Olympus" (use an IANA name such as Europe/Warsaw)',
        f'  {path}: sync.batch_size: expected an integer, got "many"',
    ]


def test_missing_config_file_exits_78_naming_it(tmp_path, capsys):
    path = tmp_path / "nope.yaml"
    assert main(["check-config", "-c", str(path)]) == EX_CONFIG
    err = capsys.readouterr().err
    assert f"{path}: cannot read the config file: it does not exist" in err


def test_invalid_yaml_exits_78(config_file, capsys):
    assert main(["check-config", "-c", str(config_file("timezone: [\n"))]) == EX_CONFIG
    assert "not valid YAML" in capsys.readouterr().err


def test_no_secret_value_ever_appears_in_check_config_output(
    tmp_path, config_file, monkeypatch, capsys
):
    password_file = tmp_path / "piotr.pass"
    password_file.write_text(SECRET + "\n")
    password_file.chmod(0o644)  # also triggers the permission warning
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "office.pass").write_text(SECRET)
    ran = tmp_path / "token-command-ran"
    command = shlex.join([sys.executable, "-c", f"open({str(ran)!r}, 'w'); print({SECRET!r})"])
    data = dict(CONFIG)
    data["mailboxes"] = [
        CONFIG["mailboxes"][0],
        {
            "name": "piotr",
            "host": "imap.agency.example",
            "username": "piotr@agency.example",
            "password_file": str(password_file),
        },
        {
            "name": "office",
            "host": "imap.agency.example",
            "username": "office@agency.example",
            "credential": "office.pass",
        },
        {
            "name": "m365",
            "host": "outlook.office365.com",
            "username": "m365@agency.example",
            "oauth2_token_command": command,
        },
    ]
    data["smtp"] = {
        **CONFIG["smtp"],
        "username": "ackwatch@agency.example",
        "password_env": "ACKWATCH_SMTP_PASSWORD",
    }
    monkeypatch.setenv("ACKWATCH_ANNA_PASSWORD", SECRET)
    monkeypatch.setenv("ACKWATCH_SMTP_PASSWORD", "")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))

    assert main(["check-config", "-c", str(config_file(data))]) == 0
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    assert "config OK: 4 mailboxes" in captured.out
    assert (
        f"mailboxes[1].password_file: {password_file} is readable by group/others" in captured.err
    )
    assert "smtp.password_env: ACKWATCH_SMTP_PASSWORD is set but empty" in captured.err
    assert not ran.exists(), "check-config must not run the token command"


def test_a_literal_password_is_refused_without_echoing_it(config_file, capsys):
    data = dict(CONFIG)
    data["mailboxes"] = [{**CONFIG["mailboxes"][0], "password": SECRET}]
    assert main(["check-config", "-c", str(config_file(data))]) == EX_CONFIG
    captured = capsys.readouterr()
    assert "mailboxes[0].password: a literal password is not allowed" in captured.err
    assert SECRET not in captured.out + captured.err


# --------------------------------------------------------------------------- deadline


def test_deadline_json_for_an_unknown_sender_on_the_business_clock(config_file, capsys):
    # Friday 16:10: 50 minutes on Friday, 70 on Monday (09:00-17:00, Europe/Warsaw).
    code = main(
        ["deadline", "-c", str(config_file()), "--from", "Someone@Unknown.example",
         "--received", "2026-03-06T16:10", "--json"]
    )  # fmt: skip
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record == {
        "policy": "default",
        "clock": "business",
        "client": None,
        "account": "anna@agency.example",
        "received": "2026-03-06T16:10:00+01:00",
        "deadline": "2026-03-09T10:10:00+01:00",
        "nudge_at": "2026-03-09T09:40:00+01:00",
        "escalate_at": "2026-03-09T10:10:00+01:00",
        "tracked": True,
        "reason": "unknown-sender-tracked",
    }


def test_deadline_readable_lines_for_a_client(config_file, capsys):
    code = main(
        ["deadline", "-c", str(config_file()), "--from", "ceo@acme.example",
         "--received", "2026-03-06T16:10:00+01:00"]
    )  # fmt: skip
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert "policy:      retainer" in lines
    assert "clock:       calendar" in lines
    assert "client:      Acme" in lines
    assert "account:     anna@agency.example" in lines
    assert "deadline:    2026-03-07T16:10:00+01:00" in lines
    assert "nudge_at:    2026-03-07T12:10:00+01:00" in lines
    assert "escalate_at: never" in lines


def _fake_explain(monkeypatch, **fields):
    calls = []

    def explain(config, sender, received, to=()):
        calls.append((sender, received, to))
        values = {
            "tracked": True,
            "reason": "client",
            "policy": "default",
            "clock": "business",
            "client": "Acme",
            "account": "anna@agency.example",
            "received": received,
            "deadline": received + dt.timedelta(hours=2),
            "nudge_at": received + dt.timedelta(hours=1, minutes=30),
            "escalate_at": None,
        }
        values.update(fields)
        return explain_mod.Explanation(**values)

    monkeypatch.setattr(explain_mod, "explain", explain)
    return calls


def test_deadline_received_without_offset_is_in_the_config_timezone(
    config_file, monkeypatch, capsys
):
    calls = _fake_explain(monkeypatch)
    assert main(["deadline", "-c", str(config_file()), "--from", "a@acme.example",
                 "--received", "2026-07-01T10:00"]) == 0  # fmt: skip
    ((_, received, _),) = calls
    assert received == dt.datetime(2026, 7, 1, 10, 0, tzinfo=WARSAW)
    assert received.utcoffset() == dt.timedelta(hours=2)  # summer time
    capsys.readouterr()


def test_deadline_received_with_offset_is_kept(config_file, monkeypatch, capsys):
    calls = _fake_explain(monkeypatch)
    assert main(["deadline", "-c", str(config_file()), "--from", "a@acme.example",
                 "--received", "2026-07-01T08:00:00Z", "--to", "Anna@agency.example",
                 "--to", "piotr@agency.example"]) == 0  # fmt: skip
    ((sender, received, to),) = calls
    assert sender == "a@acme.example"
    assert received == dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC)
    assert to == ("anna@agency.example", "piotr@agency.example")
    capsys.readouterr()


def test_deadline_json_has_null_for_missing_times(config_file, monkeypatch, capsys):
    _fake_explain(monkeypatch)
    assert main(["deadline", "-c", str(config_file()), "--from", "a@acme.example",
                 "--received", "2026-07-01T10:00", "--json"]) == 0  # fmt: skip
    record = json.loads(capsys.readouterr().out)
    assert record["escalate_at"] is None
    assert record["deadline"] == "2026-07-01T12:00:00+02:00"
    assert set(record) == {
        "policy", "clock", "client", "account", "received", "deadline", "nudge_at",
        "escalate_at", "tracked", "reason",
    }  # fmt: skip


def test_deadline_for_an_untracked_sender_says_why(config_file, capsys):
    code = main(["deadline", "-c", str(config_file()), "--from", "colleague@agency.example",
                 "--received", "2026-03-06T10:00"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("not tracked: the sender is on the agency side")
    assert "(agency-sender)" in out


def test_deadline_untracked_json(config_file, capsys):
    code = main(["deadline", "-c", str(config_file()), "--from", "colleague@agency.example",
                 "--received", "2026-03-06T10:00", "--json"])  # fmt: skip
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["tracked"] is False
    assert record["reason"] == "agency-sender"
    assert record["deadline"] is None and record["policy"] is None


@pytest.mark.parametrize(
    "args",
    [
        ["--from", "a@acme.example", "--received", "next tuesday"],
        ["--from", "a@acme.example"],
        ["--received", "2026-03-06T10:00"],
        ["--from", "not-an-address", "--received", "2026-03-06T10:00"],
    ],
)
def test_deadline_usage_errors_exit_2(config_file, capsys, args):
    assert main(["deadline", "-c", str(config_file()), *args]) == 2
    assert "error" in capsys.readouterr().err


def test_deadline_with_a_broken_config_exits_78(config_file, capsys):
    path = config_file({**CONFIG, "policies": {}})
    assert main(["deadline", "-c", str(path), "--from", "a@acme.example",
                 "--received", "2026-03-06T10:00"]) == EX_CONFIG  # fmt: skip
    assert 'policies: a policy named "default" is required' in capsys.readouterr().err
