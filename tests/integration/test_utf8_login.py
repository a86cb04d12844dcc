"""IMAP credentials that are not ASCII (issue 18, section 5).

LOGIN cannot carry them (imaplib sends its arguments as ASCII; RFC 3501 defines no other
charset), AUTHENTICATE PLAIN can (UTF-8, RFC 4616): ackwatch uses it where the server
offers AUTH=PLAIN, and otherwise the mailbox is ``auth_failed`` with an error naming where
the password lives, never a character of it. A mailbox that cannot log in never stops
``run --once`` from syncing the next ones, and nothing reaches stderr but JSON events.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.servers.dovecot import DovecotServer
from tests.servers.imapserver import ImapTestServer
from tests.support.config_yaml import mailbox_yaml, password_file
from tests.support.daemon import client_mail
from tests.support.run_once import ackwatch

from ackwatch.mail import connection, sync

pytestmark = pytest.mark.integration

UTF8_PASSWORD = "Zażółć-gęślą-jaźń-7f2c"
NON_ASCII = {c for c in UTF8_PASSWORD if not c.isascii()}


@pytest.fixture(scope="module")
def dovecot_without_plain(dovecot_server: DovecotServer) -> Iterator[DovecotServer]:
    """A Dovecot that offers AUTH=LOGIN but not AUTH=PLAIN (LOGIN still works)."""
    server = DovecotServer(pool=2, auth_mechanisms="login")
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


def test_non_ascii_password_logs_in_with_authenticate_plain(imap_server, make_mailbox_config):
    user = imap_server.add_user(password=UTF8_PASSWORD)
    imap_server.append(user, "INBOX", client_mail("Quote", "<utf8@acme.example>"))
    client = connection.connect(make_mailbox_config(imap_server, user))
    try:
        result = sync.sync_folder(client, "INBOX", "inbox", None, since=_since())
    finally:
        connection.logout(client)
    assert len(result.new_messages) == 1


def test_wrong_non_ascii_password_is_auth_failed_without_a_character_of_it(
    imap_server, make_mailbox_config
):
    user = imap_server.add_user()
    mb = make_mailbox_config(imap_server, user, password=UTF8_PASSWORD)
    with pytest.raises(connection.AuthError) as info:
        connection.connect(mb)
    assert "refused" in str(info.value)
    assert_no_character_of_the_password(str(info.value))


def test_server_without_auth_plain_refuses_a_non_ascii_password_clearly(
    dovecot_without_plain, make_mailbox_config
):
    user = dovecot_without_plain.add_user()
    mb = make_mailbox_config(dovecot_without_plain, user, password=UTF8_PASSWORD)
    with pytest.raises(connection.AuthError) as info:
        connection.connect(mb)
    message = str(info.value)
    assert "password of" in message and "is not ASCII" in message
    assert "does not offer AUTHENTICATE PLAIN" in message
    assert f"password_env {mb.password.value}" in message  # where it lives
    assert_no_character_of_the_password(message)


def write_config(tmp_path: Path, mailboxes: dict[str, tuple[ImapTestServer, str, str]]) -> Path:
    """{name: (server, user, password)}, in order."""
    entries = []
    for name, (server, user, password) in mailboxes.items():
        pw = password_file(tmp_path, name, password)
        entries.append(mailbox_yaml(name, server.host, server.port, user, pw,
                                    "anna@agency.example"))
    cfg = tmp_path / "config.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        timezone: Europe/Warsaw
        state_dir: {tmp_path / "state"}
        agency:
          domains: [agency.example]
        policies:
          default: {{window: 24h, clock: calendar, nudge_before: 1h}}
        accounts:
          - {{email: anna@agency.example, name: Anna, manager: kasia@agency.example}}
        unknown_senders: track
        digest:
          enabled: false
        mailboxes:
        """) + "".join(entries))
    cfg.chmod(0o600)
    return cfg


def json_events(stderr: str) -> list[dict]:
    """Every stderr line as a JSON event (fails on a raw traceback or any other text)."""
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("plain", [True, False], ids=["auth-plain", "no-auth-plain"])
def test_run_once_with_a_non_ascii_password_still_syncs_the_next_mailboxes(
    request, tmp_path, plain
):
    dovecot = request.getfixturevalue("dovecot_server")
    # Without AUTH=PLAIN the server could not check a UTF-8 password either: its user has
    # an ASCII one, ackwatch is given a UTF-8 one.
    server = dovecot if plain else request.getfixturevalue("dovecot_without_plain")
    first = server.add_user(password=UTF8_PASSWORD) if plain else server.add_user()
    second = dovecot.add_user()
    server.append(first, "INBOX", client_mail("Quote one", "<one@acme.example>"))
    dovecot.append(second, "INBOX", client_mail("Quote two", "<two@acme.example>"))
    cfg = write_config(tmp_path, {"utf8": (server, first, UTF8_PASSWORD),
                                  "ascii": (dovecot, second, dovecot.password(second))})
    run = ackwatch("run", "--once", "-c", str(cfg))
    status = ackwatch("status", "-c", str(cfg), "--json", "--mailboxes")
    events = json_events(run.stderr)
    health = {h["mailbox"]: h for h in json.loads(status.stdout)}
    assert health["ascii"]["state"] == "up"
    if plain:
        assert run.returncode == 0, run.stderr
        assert health["utf8"]["state"] == "up"
    else:
        assert run.returncode == 0, run.stderr  # one mailbox was reached
        assert health["utf8"]["state"] == "auth_failed"
        (failed,) = [e for e in events if e["event"] == "mailbox_unreachable"]
        assert failed["mailbox"] == "utf8"
        assert "does not offer AUTHENTICATE PLAIN" in failed["error"]
        assert f"password_file {tmp_path / 'utf8.pass'}" in failed["error"]
    for text in (run.stdout, run.stderr, status.stdout, status.stderr):
        assert_no_character_of_the_password(text)
        assert "Traceback" not in text
    state = b"".join(f.read_bytes() for f in (tmp_path / "state").iterdir())
    assert UTF8_PASSWORD.encode() not in state


def assert_no_character_of_the_password(text: str) -> None:
    assert UTF8_PASSWORD not in text
    assert not NON_ASCII & set(text), "a character of the password is shown"
    assert "position" not in text  # UnicodeEncodeError's "in position 3-6"


def _since():
    import datetime as dt

    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=7)).date()
