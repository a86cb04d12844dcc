"""The daemon with Microsoft 365 and Google applications on a real Dovecot (oauth2 passdb)
and the test token server: `run --once` lists what waits; short tokens expire again and
again under a running daemon without a refused login; a revoked application puts its
mailbox in ``auth_failed`` with a sentence naming it (recovery: test_oauth2_login.py, as
the daemon's auth_failed back-off is a minute)."""

from __future__ import annotations

import json
import time

import pytest
from tests.support import run_once
from tests.support.daemon import ANNA, PIOTR, client_mail, started, write_config
from tests.support.oauth2 import use_apps

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]


def env(token_server) -> dict[str, str]:
    return {"REQUESTS_CA_BUNDLE": str(token_server.ca_file)}


@pytest.fixture(autouse=True)
def accepting(token_server):
    token_server.accept()
    token_server.lifetime = 3600
    yield
    token_server.accept()
    token_server.lifetime = 3600


def test_run_once_lists_what_waits_in_mailboxes_opened_by_applications(
    dovecot_oauth, token_server, sink, tmp_path
):
    anna, piotr = dovecot_oauth.add_user(), dovecot_oauth.add_user()
    dovecot_oauth.append(anna, "INBOX", client_mail("Quote", "<g1@acme.example>"))
    dovecot_oauth.append(piotr, "INBOX", client_mail("Brief", "<m1@acme.example>", to=PIOTR))
    cfg = use_apps(write_config(tmp_path, dovecot_oauth, {"anna": (anna, ANNA),
                                                           "piotr": (piotr, PIOTR)}, sink),
                   token_server, {"anna": "workspace", "piotr": "m365"})
    run = run_once.ackwatch("run", "--once", "-c", str(cfg), env=env(token_server))
    assert run.returncode == 0, run.stdout + run.stderr
    status = run_once.ackwatch("status", "-c", str(cfg), "--json")
    waiting = {item["message_id"] for item in json.loads(status.stdout)}
    assert waiting == {"<g1@acme.example>", "<m1@acme.example>"}
    assert ("google", anna) in token_server.grants
    for secret in token_server.secrets_issued():
        for text in (run.stdout, run.stderr, status.stdout):
            assert secret not in text
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s.encode() in data for s in token_server.secrets_issued())


def test_tokens_expire_again_and_again_under_a_running_daemon_without_a_refused_login(
    dovecot_oauth, token_server, sink, ackwatch, tmp_path
):
    token_server.lifetime = 3  # renewed after 2.4 s
    anna = dovecot_oauth.add_user()
    cfg = use_apps(write_config(tmp_path, dovecot_oauth, {"anna": (anna, ANNA)}, sink),
                   token_server, {"anna": "workspace"})
    daemon = started(ackwatch, cfg, env=env(token_server))
    for round_ in range(3):  # each round outlives the token the last login used
        time.sleep(3.5)
        dovecot_oauth.restart()  # every session ends: the daemon logs in again
        dovecot_oauth.append(anna, "INBOX", client_mail(f"Round {round_}",
                                                        f"<r{round_}@acme.example>"))
        daemon.wait_item(f"<r{round_}@acme.example>", timeout=30)
    assert token_server.grants.count(("google", anna)) >= 3
    assert daemon.events("mailbox_auth_failed") == []
    assert "refused" not in daemon.text()


def test_a_revoked_application_puts_its_mailbox_in_auth_failed_naming_it(
    dovecot_oauth, token_server, sink, ackwatch, tmp_path
):
    anna = dovecot_oauth.add_user()
    cfg = use_apps(write_config(tmp_path, dovecot_oauth, {"anna": (anna, ANNA)}, sink),
                   token_server, {"anna": "m365"})
    daemon = started(ackwatch, cfg, env=env(token_server))
    token_server.refuse()
    dovecot_oauth.restart()
    failed = daemon.wait_event("mailbox_auth_failed", timeout=30)[0]
    assert "oauth2 application m365 (microsoft365)" in failed["error"]
    assert "IMAP.AccessAsApp" in failed["error"] or "Application is disabled" in failed["error"]
