"""`ackwatch check-mailboxes`: a working set-up exits 0 and says what ackwatch would watch;
a refused login exits 77, an unreachable server or a missing sent folder 69, each with one
plain sentence of what to do; nothing is changed and no mail is sent unless asked."""

from __future__ import annotations

import json

import pytest
import yaml
from tests.servers.imapserver import free_port
from tests.support import run_once
from tests.support.daemon import ANNA, PIOTR, client_mail, write_config
from tests.support.oauth2 import use_apps

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]


def check(cfg, *args: str, env: dict[str, str] | None = None):
    return run_once.ackwatch("check-mailboxes", "-c", str(cfg), *args, env=env)


def edit(cfg, change) -> None:
    data = yaml.safe_load(cfg.read_text())
    change(data)
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def test_a_working_set_up_exits_0_and_says_what_would_be_watched(dovecot, sink, tmp_path):
    anna = dovecot.add_user()
    dovecot.append(anna, "INBOX", client_mail("Quote", "<q@acme.example>"))
    cfg = write_config(tmp_path, dovecot, {"anna": (anna, ANNA)}, sink)
    edit(cfg, lambda d: d["mailboxes"][0].__setitem__("folders", {"inbox": ["INBOX"]}))
    run = check(cfg)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "anna (127.0.0.1:" in run.stdout and "): OK" in run.stdout
    assert "login: LOGIN" in run.stdout
    assert "capabilities: IDLE, CONDSTORE, SPECIAL-USE" in run.stdout
    assert "sent: Sent (found by SPECIAL-USE \\Sent)" in run.stdout
    assert "messages in the backfill window: 1" in run.stdout
    assert "smtp (127.0.0.1:" in run.stdout and sink.messages == []
    assert dovecot.password(anna) not in run.stdout + run.stderr


def test_send_test_sends_one_mail_through_smtp(dovecot, sink, tmp_path):
    anna = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (anna, ANNA)}, sink)
    run = check(cfg, "--send-test", "ops@agency.example")
    assert run.returncode == 0, run.stdout + run.stderr
    assert [m.message["To"] for m in sink.messages] == ["ops@agency.example"]


def test_a_wrong_password_exits_77_and_says_where_the_password_lives(dovecot, sink, tmp_path):
    anna, piotr = dovecot.add_user(), dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (anna, ANNA), "piotr": (piotr, PIOTR)}, sink)
    (tmp_path / "piotr.pass").write_text("wrong-password\n")
    run = check(cfg, "--json")
    assert run.returncode == 77, run.stdout + run.stderr
    report = json.loads(run.stdout)
    anna_probe, piotr_probe = report["mailboxes"]
    assert anna_probe["failure"] is None
    assert piotr_probe["failure"] == "refused"
    assert f"check the user name and the password in password_file {tmp_path / 'piotr.pass'}" \
        in piotr_probe["problem"]
    assert "wrong-password" not in run.stdout + run.stderr


def test_a_missing_sent_folder_exits_69_and_lists_the_servers_folders(dovecot, sink, tmp_path):
    anna = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (anna, ANNA)}, sink)
    edit(cfg, lambda d: d["mailboxes"][0].__setitem__(
        "folders", {"inbox": ["INBOX"], "sent": ["Sent Items"]}))
    run = check(cfg)
    assert run.returncode == 69, run.stdout + run.stderr
    assert ("what to do: the folder(s) Sent Items do not exist: the server has "
            in run.stdout)
    assert "INBOX" in run.stdout.split("the server has", 1)[1]


def test_a_server_that_is_down_exits_69_naming_it(dovecot, sink, tmp_path):
    anna = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (anna, ANNA)}, sink)
    port = free_port()
    edit(cfg, lambda d: d["mailboxes"][0].__setitem__("port", port))
    run = check(cfg)
    assert run.returncode == 69, run.stdout + run.stderr
    assert f"anna (127.0.0.1:{port}): FAILED: cannot reach 127.0.0.1:{port}" in run.stdout


def test_an_application_mailbox_shows_its_mechanism_and_no_secret(dovecot_oauth, token_server,
                                                                  sink, tmp_path):
    anna = dovecot_oauth.add_user()
    cfg = use_apps(write_config(tmp_path, dovecot_oauth, {"anna": (anna, ANNA)}, sink),
                   token_server, {"anna": "workspace"})
    env = {"REQUESTS_CA_BUNDLE": str(token_server.ca_file)}
    run = check(cfg, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "login: OAUTHBEARER (oauth2 application workspace)" in run.stdout
    token_server.refuse()
    try:
        refused = check(cfg, "--json", env=env)
    finally:
        token_server.accept()
    assert refused.returncode == 77
    assert "domain-wide delegation is not granted" in refused.stdout
    for secret in token_server.secrets_issued():
        assert secret not in run.stdout + run.stderr + refused.stdout + refused.stderr
