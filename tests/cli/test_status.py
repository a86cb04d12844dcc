"""`ackwatch status` over a real state database: every printed value is safe for a terminal,
and a state directory whose name holds URI characters (# ? %) works.

The state is written with `Store` directly, as the daemon would; `status` runs in-process
(`cli.main`) and its output is read from capsys.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from ackwatch.cli import main
from ackwatch.core.item_rules import Deadlines, Item
from ackwatch.store.database import DB_NAME
from ackwatch.store.sqlite import SqliteStore as Store

NOW = dt.datetime.now(dt.UTC)
CLEAR_SCREEN = "\x1b[2J"
WINDOW_TITLE = "\x1b]0;pwned\x07"
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "invoice\u202egpj.exe" shows as "invoiceexe.jpg"
HOSTILE_SUBJECT = f"Quote {CLEAR_SCREEN}{WINDOW_TITLE}invoice{RLO}gpj.exe"
HOSTILE_ERROR = f"NO [AUTHENTICATIONFAILED] {CLEAR_SCREEN}{WINDOW_TITLE}bad{RLO}drow\x85x"


def write_config(directory: Path, state_dir: Path) -> Path:
    config = {
        "timezone": "Europe/Warsaw",
        "state_dir": str(state_dir),
        "agency": {"domains": ["agency.example"]},
        "policies": {"default": {"window": "2h", "clock": "calendar", "nudge_before": "30m"}},
        "accounts": [{"email": "anna@agency.example", "name": "Anna"}],
        "mailboxes": [{"name": "anna", "host": "127.0.0.1", "security": "none",
                       "username": "anna@agency.example",
                       "password_env": "ACKWATCH_TEST_UNUSED"}],
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def pending_item(subject: str, client_address: str = "ceo@acme.example") -> Item:
    received = NOW - dt.timedelta(minutes=10)
    deadline = received + dt.timedelta(hours=2)
    return Item(
        key="<quote.1@acme.example>", thread="t1", message_id="<quote.1@acme.example>",
        client_address=client_address, client=None, subject=subject, received=received,
        mailboxes=("anna",), account="anna@agency.example",
        deadlines=Deadlines("default", "calendar", deadline,
                            deadline - dt.timedelta(minutes=30), None),
        ack=None,
    )


def fill_state(state_dir: Path, subject: str = "Quote for the spring campaign") -> None:
    store = Store.open(state_dir)
    try:
        store.sync_items([pending_item(subject)], now=NOW, initial_keys=set())
        store.set_health("anna", "down", since=NOW, last_error=HOSTILE_ERROR)
    finally:
        store.close()


def status(config: Path, capsys, *args: str) -> str:
    capsys.readouterr()
    assert main(["status", "-c", str(config), *args]) == 0
    return capsys.readouterr().out


@pytest.fixture
def hostile_state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    fill_state(state, HOSTILE_SUBJECT)
    return write_config(tmp_path, state)


def test_status_shows_escape_sequences_and_bidi_overrides_as_visible_escapes(
    hostile_state, capsys
):
    out = status(hostile_state, capsys)
    assert "\x1b" not in out and "\x07" not in out and RLO not in out and "\x85" not in out
    assert "\\x1b[2J" in out  # the mailbox error, cut to 40 columns, shows what it held
    assert "Quote \\x1b[2J\\x1b]0…" in out  # the subject, cut to 20 columns
    assert all(c == "\n" or c.isprintable() for c in out)


def test_status_json_keeps_the_values_and_writes_unsafe_characters_as_escapes(
    hostile_state, capsys
):
    out = status(hostile_state, capsys, "--json")
    assert all(c == "\n" or c.isprintable() for c in out)
    assert "\\u202e" in out
    assert [item["subject"] for item in json.loads(out)] == [HOSTILE_SUBJECT]
    mailboxes = status(hostile_state, capsys, "--json", "--mailboxes")
    assert all(c == "\n" or c.isprintable() for c in mailboxes)
    assert [m["last_error"] for m in json.loads(mailboxes)] == [HOSTILE_ERROR]


@pytest.mark.parametrize("name", ["state#1", "state?mode=rw", "state%23", "a #?%20 b"])
def test_status_reads_a_state_dir_whose_name_holds_uri_characters(tmp_path, capsys, name):
    state = tmp_path / name
    fill_state(state)
    config = write_config(tmp_path, state)
    before = sorted(p.name for p in tmp_path.iterdir())
    out = status(config, capsys)
    assert "Quote for the sprin…" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no stray file beside it
    assert (state / DB_NAME).is_file()


def test_one_node_on_sqlite_lists_no_nodes_and_no_mailbox_holder(hostile_state, capsys):
    assert json.loads(status(hostile_state, capsys, "--json", "--nodes")) == []
    assert "No node has run on this state" in status(hostile_state, capsys, "--nodes")
    assert [m["node"] for m in json.loads(status(hostile_state, capsys, "--json",
                                                 "--mailboxes"))] == [None]


def test_status_nodes_names_the_leader_and_each_nodes_mailboxes(hostile_state, capsys):
    store = Store.open(hostile_state.parent / "state")
    try:
        for node in ("n1", "n2"):
            store.heartbeat(node, starting=True)
        store.claim_leases("n2", ["anna"], 30)
        store.take_leadership("n1", 30)
    finally:
        store.close()
    nodes = json.loads(status(hostile_state, capsys, "--json", "--nodes"))
    assert [(n["node"], n["leader"], n["live"], n["mailboxes"]) for n in nodes] == [
        ("n1", True, True, []), ("n2", False, True, ["anna"])]
    text = status(hostile_state, capsys, "--nodes")
    assert "n1               leader" in text and "mailboxes: anna" in text
    assert [m["node"] for m in json.loads(status(hostile_state, capsys, "--json",
                                                 "--mailboxes"))] == ["n2"]
