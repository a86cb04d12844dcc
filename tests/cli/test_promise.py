"""`ackwatch promise`: the account's calendar and language, JSON and readable output."""

from __future__ import annotations

import io
import json

import pytest
import yaml

from ackwatch.cli import main
from ackwatch.config import EX_CONFIG

CONFIG: dict = {
    "timezone": "Europe/Warsaw",
    "agency": {"domains": ["agency.example"]},
    "calendars": {
        "office": {"hours": {"mon-fri": "09:00-17:00"}, "holidays": "PL"},
        "kyiv": {"timezone": "Europe/Kyiv", "hours": {"mon-fri": "10:00-18:00"}},
    },
    "policies": {
        "default": {"window": "2h", "clock": "business", "calendar": "office"},
    },
    "accounts": [
        {"email": "anna@agency.example", "name": "Anna", "language": "pl"},
        {"email": "oksana@agency.example", "name": "Oksana", "language": "uk", "calendar": "kyiv"},
    ],
    "mailboxes": [
        {
            "name": "anna",
            "host": "imap.agency.example",
            "username": "anna@agency.example",
            "password_env": "ACKWATCH_ANNA_PASSWORD",
        }
    ],
}


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch):
    for name in ("ACKWATCH_CONFIG", "CREDENTIALS_DIRECTORY", "ACKWATCH_ANNA_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def config_path(tmp_path):
    def write(data: dict = CONFIG) -> str:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")
        return str(path)

    return write


def run(config: str, *args: str) -> int:
    return main(["promise", "-c", config, *args])


def test_promise_json_gives_the_instant_with_offset_and_the_sentence(config_path, capsys):
    code = run(
        config_path(), "--sent", "2026-11-24T10:00", "--account", "anna@agency.example",
        "--json", "Dzień dobry! Wycena będzie do piątku do 12:00. Pozdrawiam, Anna",
    )  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {
        "promised": "2026-11-27T12:00:00+01:00",
        "sentence": "Wycena będzie do piątku do 12:00.",
    }


def test_promise_json_without_a_promise_has_nulls(config_path, capsys):
    code = run(config_path(), "--sent", "2026-11-24T10:00+01:00", "--account",
               "anna@agency.example", "--json", "Dziękuję, przekażę dalej.")  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {
        "promised": None, "sentence": None,
        "sentences_read": [{"sentence": "Dziękuję, przekażę dalej.",
                            "why": "a promise word, but no date or time ahead of the reply"}],
    }  # fmt: skip


def test_promise_readable_output(config_path, capsys):
    code = run(config_path(), "--sent", "2026-11-24T10:00", "--account", "anna@agency.example",
               "I'll send the quote by Friday noon.")  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out == (
        "promised: Fri 27 Nov 2026 12:00 (Europe/Warsaw)\n"
        "sentence: I'll send the quote by Friday noon.\n"
    )


def test_promise_readable_output_without_a_promise(config_path, capsys):
    code = run(config_path(), "--sent", "2026-11-24T10:00", "--account", "anna@agency.example",
               "Thanks, got it!")  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out == (
        "no date found: the reply does not say by when\n"
        "  - Thanks, got it!\n"
        "    no promise word (by, will, do, będzie, до, bis, ...)\n"
    )


def test_promise_without_a_date_shows_each_sentence_it_looked_at(config_path, capsys):
    code = run(config_path(), "--sent", "2026-11-24T10:00", "--account", "anna@agency.example",
               "Thanks, on it. Could you send the logo by Friday? I will check with the studio.")  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "no date found: the reply does not say by when"
    assert out[1:] == [
        "  - Thanks, on it.", "    no promise word (by, will, do, będzie, до, bis, ...)",
        "  - Could you send the logo by Friday?",
        "    not a promise (a question, a request, an absence, payment or validity terms)",
        "  - I will check with the studio.",
        "    a promise word, but no date or time ahead of the reply",
    ]


def test_promise_json_without_a_date_lists_the_sentences(config_path, capsys):
    run(config_path(), "--sent", "2026-11-24T10:00", "--account", "anna@agency.example",
        "--json", "Dziękuję, zajmę się tym.")  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert data["promised"] is None
    assert [s["sentence"] for s in data["sentences_read"]] == ["Dziękuję, zajmę się tym."]


def test_promise_reads_the_text_from_stdin(config_path, capsys, monkeypatch):
    body = (
        "Добрий день!\nНадішлю кошторис завтра.\n\nЗ повагою,\nОксана\n\n"
        "пн, 23 лист. 2026 р. о 09:12 Іван <ivan@client.example> пише:\n> до 24.11?\n"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(body))
    code = run(config_path(), "--sent", "2026-11-24T10:00", "--account",
               "anna@agency.example", "--json")  # fmt: skip
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record == {"promised": "2026-11-25T17:00:00+01:00",
                      "sentence": "Надішлю кошторис завтра."}  # fmt: skip


def test_promise_uses_the_accounts_own_calendar(config_path, capsys):
    # Oksana works on the Kyiv calendar (10:00-18:00, Europe/Kyiv).
    code = run(config_path(), "--sent", "2026-11-24T10:00+02:00", "--account",
               "Oksana@Agency.example", "--json", "Надішлю до п'ятниці.")  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["promised"] == "2026-11-27T18:00:00+02:00"


def test_promise_sent_without_offset_is_in_the_config_timezone(config_path, capsys):
    # 16:30 Warsaw is before closing: "EOD" is today 17:00. (16:30 UTC would be after it.)
    code = run(config_path(), "--sent", "2026-11-24T16:30", "--account",
               "anna@agency.example", "--json", "Will send by EOD.")  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["promised"] == "2026-11-24T17:00:00+01:00"


def test_promise_unknown_account_uses_the_first_calendar_and_warns(config_path, capsys):
    code = run(config_path(), "--sent", "2026-11-24T10:00", "--account",
               "someone@agency.example", "--json", "by Friday, I will send it")  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["promised"] == "2026-11-27T17:00:00+01:00"
    assert "not a configured account" in captured.err


def test_promise_without_any_calendar_uses_office_hours_and_warns(config_path, capsys):
    data = {
        **CONFIG,
        "calendars": {},
        "policies": {"default": {"window": "24h", "clock": "calendar"}},
        "accounts": CONFIG["accounts"][:1],
    }
    code = run(config_path(data), "--sent", "2026-11-24T10:00", "--account",
               "anna@agency.example", "--json", "Wyślę w czwartek.")  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["promised"] == "2026-11-26T17:00:00+01:00"
    assert "no calendar configured" in captured.err


def test_promise_rejects_a_bad_account_and_a_bad_date(config_path, capsys):
    assert run(config_path(), "--sent", "2026-11-24T10:00", "--account", "anna",
               "by Friday") == 2  # fmt: skip
    assert "--account" in capsys.readouterr().err
    assert run(config_path(), "--sent", "Friday", "--account", "anna@agency.example",
               "by Friday") == 2  # fmt: skip
    assert "ISO 8601" in capsys.readouterr().err


def test_promise_with_a_broken_config_exits_78(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("timezone: [\n", "utf-8")
    assert run(str(path), "--sent", "2026-11-24T10:00", "--account", "a@b.example", "x") == (
        EX_CONFIG
    )
    capsys.readouterr()
