"""The ``database`` section: the state in PostgreSQL, its password never in the file's
URL, TLS verified unless the server is on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ackwatch.config import ConfigError, SecretRef, load_config

BASE = {
    "timezone": "Europe/Warsaw",
    "agency": {"domains": ["agency.example"]},
    "policies": {"default": {"window": "2h", "clock": "calendar"}},
    "mailboxes": [{"name": "a", "host": "imap.example", "username": "a", "password_env": "A"}],
}
URL = "postgresql://ackwatch@db.internal:5432/ackwatch"


def _write(tmp_path: Path, database: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, "database": database}), encoding="utf-8")
    return path


def _problems(tmp_path: Path, database: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, database), environ={})
    return [str(p) for p in info.value.problems]


def test_without_a_database_section_the_state_stays_in_sqlite(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    assert load_config(path, environ={}).database is None


def test_a_database_url_with_its_password_source_and_verified_tls_by_default(tmp_path):
    config = load_config(_write(tmp_path, {"url": URL, "password_env": "PGPASS"}), environ={})
    db = config.database
    assert db is not None
    assert (db.host, db.port, db.user, db.dbname) == ("db.internal", 5432, "ackwatch", "ackwatch")
    assert db.password == SecretRef("env", "PGPASS")
    assert db.sslmode == "verify-full" and db.sslrootcert is None


def test_the_port_defaults_to_5432_and_a_ca_file_is_relative_to_the_config(tmp_path):
    config = load_config(_write(tmp_path, {
        "url": "postgres://ackwatch@db.internal/state", "sslmode": "verify-ca",
        "sslrootcert": "ca.pem", "credential": "db.pass",
    }), environ={})
    db = config.database
    assert db is not None and db.port == 5432 and db.dbname == "state"
    assert db.sslrootcert == tmp_path / "ca.pem" and db.sslmode == "verify-ca"


@pytest.mark.parametrize("url", [
    "postgresql://ackwatch:hunter2@db.internal:5432/ackwatch",
    "postgresql://ackwatch@db.internal:5432/ackwatch?password=hunter2",
])
def test_a_password_in_the_url_is_refused_without_showing_it(tmp_path, url):
    (found,) = _problems(tmp_path, {"url": url})
    assert found.startswith("database.url: the URL must not hold a password")
    assert "hunter2" not in found


def test_a_literal_password_key_is_refused_without_showing_it(tmp_path):
    (found,) = _problems(tmp_path, {"url": URL, "password": "hunter2"})
    assert found.startswith("database.password: a literal password is not allowed")
    assert "hunter2" not in found


@pytest.mark.parametrize(("url", "says"), [
    ("mysql://ackwatch@db/ackwatch", "expected a postgresql:// URL"),
    ("postgresql://db.internal/ackwatch", "names no user"),
    ("postgresql://ackwatch@db.internal", "names no database name"),
    ("postgresql://ackwatch@db.internal/a?sslmode=disable", "give no parameters in the URL"),
    ("postgresql://ackwatch@db.internal:99999/a", "not a valid URL"),
])
def test_a_url_that_is_not_one_database_is_refused_with_its_key_path(tmp_path, url, says):
    (found,) = _problems(tmp_path, {"url": url})
    assert found.startswith("database.url: ") and says in found


def test_a_database_needs_a_url_and_at_most_one_password_source(tmp_path):
    found = _problems(tmp_path, {"password_env": "A", "password_file": "/etc/a"})
    assert any(p.startswith("database.url: missing") for p in found)
    assert any(p.startswith("database: give only one of") for p in found)


@pytest.mark.parametrize(("mode", "hint"), [("require", "verify-ca"), ("prefer", "verify-full")])
def test_an_sslmode_that_does_not_verify_is_refused_with_a_hint(tmp_path, mode, hint):
    (found,) = _problems(tmp_path, {"url": URL, "sslmode": mode})
    assert found.startswith("database.sslmode: expected one of verify-full, verify-ca, disable")
    assert hint in found


def test_no_tls_only_for_a_loopback_server(tmp_path):
    (found,) = _problems(tmp_path, {"url": URL, "sslmode": "disable"})
    assert found.startswith("database.sslmode: disable (no encryption) is only allowed")
    local = load_config(_write(tmp_path, {"url": "postgresql://a@127.0.0.1/s",
                                          "sslmode": "disable"}), environ={})
    assert local.database is not None and local.database.sslmode == "disable"


def test_an_unknown_database_key_is_named(tmp_path):
    (found,) = _problems(tmp_path, {"url": URL, "sslmod": "verify-ca"})
    assert found.startswith("database.sslmod: ")
