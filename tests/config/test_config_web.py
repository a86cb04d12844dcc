"""The ``web`` section: the board is off by default, on loopback without a password,
and anywhere else only behind authentication (a trusted proxy or users with hashes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ackwatch.config import EX_CONFIG, ConfigError, load_config

BASE = {
    "timezone": "Europe/Warsaw",
    "agency": {"domains": ["agency.example"]},
    "policies": {"default": {"window": "2h", "clock": "calendar"}},
    "accounts": [{"email": "anna@agency.example", "name": "Anna"},
                 {"email": "piotr@agency.example", "name": "Piotr"}],
    "mailboxes": [{"name": "a", "host": "imap.example", "username": "a", "password_env": "A"}],
}
HASH = ("$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA"
        "$N2H3bmV2ZXJhcmVhbHBhc3N3b3JkaGFzaGJ1dGFzaGFwZQ")


def _write(tmp_path: Path, web: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, "web": web}), encoding="utf-8")
    return path


def _problems(tmp_path: Path, web: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, web), environ={})
    return [str(p) for p in info.value.problems]


def test_the_board_is_off_by_default(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    web = load_config(path, environ={}).web
    assert web.listen is None and not web.authenticated and web.target == 0.9


def test_a_loopback_board_needs_no_authentication(tmp_path):
    web = load_config(_write(tmp_path, {"listen": "127.0.0.1:8025"}), environ={}).web
    assert web.listen == "127.0.0.1:8025" and not web.authenticated


def test_a_board_beyond_loopback_without_authentication_is_refused_at_web_listen(tmp_path):
    problems = _problems(tmp_path, {"listen": "0.0.0.0:8025"})
    assert len(problems) == 1
    assert problems[0].startswith("web.listen: 0.0.0.0:8025 is not a loopback address")


def test_refusing_a_public_board_exits_78_naming_the_file_and_key(tmp_path):
    path = _write(tmp_path, {"listen": "[::]:8025"})
    done = subprocess.run([sys.executable, "-m", "ackwatch", "check-config", "-c", str(path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == EX_CONFIG
    assert f"{path}: web.listen: [::]:8025 is not a loopback address" in done.stderr + done.stdout


def test_users_with_hashes_and_account_limits(tmp_path):
    web = load_config(_write(tmp_path, {
        "listen": "0.0.0.0:8025",
        "users": [{"name": "kasia", "password_hash": HASH},
                  {"name": "anna", "password_hash": HASH, "accounts": ["Anna@agency.example"]}],
    }), environ={}).web
    assert web.authenticated
    assert [(u.name, u.accounts) for u in web.users] == [
        ("kasia", None), ("anna", frozenset({"anna@agency.example"}))]


def test_a_trusted_proxy_names_users_who_need_no_password(tmp_path):
    web = load_config(_write(tmp_path, {
        "listen": "10.0.0.5:8025",
        "trusted_proxy": {"address": "10.0.0.1"},
        "users": [{"name": "anna", "accounts": ["anna@agency.example"]}],
    }), environ={}).web
    assert web.trusted_proxy is not None
    assert web.trusted_proxy.address == "10.0.0.1/32"
    assert web.trusted_proxy.user_header == "X-Forwarded-User"
    assert web.users[0].password_hash is None


def test_bad_users_are_reported_with_their_key_paths_and_never_echo_a_password(tmp_path):
    problems = _problems(tmp_path, {
        "listen": "127.0.0.1:8025",
        "users": [{"name": "anna", "password_hash": "hunter2"},
                  {"name": "kasia", "password_hash": HASH, "accounts": ["nobody@agency.example"]},
                  {"name": "kasia", "password_hash": HASH},
                  {"name": "piotr"}],
        "target": 1.5,
    })
    text = "\n".join(problems)
    assert "hunter2" not in text
    assert any(p.startswith("web.users[0].password_hash: expected an argon2 hash")
               for p in problems)
    assert ("web.users[1].accounts[0]: nobody@agency.example is not a configured account"
            in problems)
    assert "web.users[2].name: kasia is listed twice" in problems
    assert "web.users[3].password_hash: missing (required)" in problems
    assert any(p.startswith("web.target: expected a share") for p in problems)


def test_unknown_web_keys_are_errors(tmp_path):
    problems = _problems(tmp_path, {"listen": "127.0.0.1:8025", "port": 8025})
    assert any(p.startswith("web.port:") for p in problems)
