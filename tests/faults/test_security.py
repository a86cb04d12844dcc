"""Security end to end: TLS verification, secrets never shown, private files, own mail.

(The connect-level TLS/STARTTLS checks are in tests/integration/test_imap_sync.py; these
run the real command.)
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest
from tests.faults.daemon_config import write_config
from tests.faults.proxy import FaultProxy
from tests.support.daemon import ANNA, client_mail, mails, started
from tests.support.run_once import ackwatch as ackwatch_cmd
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]

IMAP_SECRET = "Imap-S3cret-7f2c9d"
SMTP_SECRET = "Smtp-S3cret-a81e44"


def test_tls_certificate_and_host_name_are_verified(tls_dovecot, tmp_path, sink):
    user = tls_dovecot.add_user()
    tls = f"  security: tls\n  ca_file: {tls_dovecot.cert_file}\n"

    def config(port: int, host: str = "127.0.0.1", ca: bool = True) -> Path:
        cfg = write_config(tmp_path, tls_dovecot, {"anna": (user, ANNA)}, smtp_port=sink.port,
                           imap_port=port, imap_host=host, imap_timeout=15)
        head, mailbox = cfg.read_text().rsplit("  security: none\n", 1)  # the mailbox's
        cfg.write_text(head + (tls if ca else "  security: tls\n") + mailbox)
        return cfg

    bad = ackwatch_cmd("run", "--once", "-c", str(config(tls_dovecot.tls_port, ca=False)))
    assert bad.returncode == 69, bad.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in bad.stdout + bad.stderr
    good = ackwatch_cmd("run", "--once", "-c", str(config(tls_dovecot.tls_port)))
    assert good.returncode == 0, good.stdout + good.stderr
    # The right CA, the wrong name: 127.0.0.2 is not in the certificate.
    with FaultProxy(("127.0.0.1", tls_dovecot.tls_port), host="127.0.0.2") as proxy:
        wrong = ackwatch_cmd("run", "--once", "-c", str(config(proxy.port, host="127.0.0.2")))
    assert wrong.returncode == 69
    assert "IP address mismatch" in wrong.stdout + wrong.stderr or "mismatch" in wrong.stdout


def test_secrets_never_in_output_or_state(dovecot, tmp_path, ackwatch):
    from tests.servers.smtp import SmtpSink  # lazily: it is a pytest plugin of test_smtp

    user = dovecot.add_user(password=IMAP_SECRET)
    with SmtpSink(auth=("ackwatch", "another-password")) as bad_auth:
        cfg = write_config(
            tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=bad_auth.port,
            window="4s", nudge_before="2s",
            smtp_extra="  username: ackwatch\n  password_env: ACKWATCH_TEST_SMTP\n",
        )
        env = {"ACKWATCH_TEST_SMTP": SMTP_SECRET}
        outputs = [ackwatch_cmd("check-config", "-c", str(cfg), env=env)]
        pw_file = tmp_path / "anna.pass"
        pw_file.write_text("wrong-" + IMAP_SECRET + "\n")
        outputs.append(ackwatch_cmd("run", "--once", "-c", str(cfg), env=env))
        assert outputs[-1].returncode == 69
        pw_file.write_text(IMAP_SECRET + "\n")
        outputs.append(ackwatch_cmd("run", "--once", "-c", str(cfg), env=env))
        assert outputs[-1].returncode == 0, outputs[-1].stderr
        d = started(ackwatch, cfg, env=env)
        dovecot.append(user, "INBOX", client_mail("AUTH fails", "<auth@acme.example>"))
        failed = d.wait_event("smtp_auth_failed", timeout=20)[0]  # retried until fixed
        assert "authentication failed" in failed["error"]
        outputs.append(ackwatch_cmd("status", "-c", str(cfg), env=env))
        outputs.append(ackwatch_cmd("status", "-c", str(cfg), "--json", "--mailboxes", env=env))
        assert d.stop() == 0
    text = "\n".join(o.stdout + o.stderr for o in outputs) + d.text()
    state = b"".join(f.read_bytes() for f in (tmp_path / "state").iterdir())
    for secret in (IMAP_SECRET, SMTP_SECRET):
        for form in (secret, base64.b64encode(secret.encode()).decode(),
                     base64.b64encode(f"\0ackwatch\0{secret}".encode()).decode()):
            assert form not in text, form
            assert form.encode() not in state, form


def test_lax_file_modes_warn_and_the_state_is_private(dovecot, tmp_path, sink):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=sink.port)
    cfg.chmod(0o644)
    (tmp_path / "anna.pass").chmod(0o644)
    out = ackwatch_cmd("check-config", "-c", str(cfg))
    assert out.returncode == 0
    assert f"{cfg} is readable by others" in out.stderr
    assert "password_file" in out.stderr and "readable by group/others" in out.stderr
    old = os.umask(0)
    try:
        assert ackwatch_cmd("run", "--once", "-c", str(cfg)).returncode == 0
    finally:
        os.umask(old)
    state = tmp_path / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for f in state.iterdir():  # the database, its WAL and shared-memory files
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_own_nudge_in_a_watched_inbox_is_not_a_client_mail_but_a_forged_one_is(
    dovecot, tmp_path, sink, ackwatch
):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=sink.port,
                       window="4s", nudge_before="2s")
    # Every mail ackwatch sends is delivered into the watched INBOX, as it would be.
    sink.messages.on_append = lambda r: dovecot.append(user, "INBOX", r.raw)
    d = started(ackwatch, cfg)
    mid = "<loop@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Loop?", mid))
    wait_for(lambda: mails(sink, "nudge"), 20, "the nudge")
    forged = "<forged@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Forged", forged,
                                              extra_headers=[("X-Ackwatch", "nudge")]))
    d.wait_item(forged)
    time.sleep(6)  # a nudge taken for client mail would be an item now, and nudged
    sink.messages.on_append = None
    ids = sorted(i["message_id"] for i in d.status())
    assert ids == sorted([mid, forged]), ids
    nudges = mails(sink, "nudge")
    assert all(str(n["Message-ID"]) not in ids for n in nudges)
    assert len(nudges) <= 2, [n["X-Ackwatch-Items"] for n in nudges]
    assert d.stop() == 0


CLIENT_SECRET = "s3cr3t-9d1e77b0"


@pytest.mark.parametrize(
    "program",
    [
        f"{sys.executable} -c 'raise SystemExit(1)'",  # fails
        "/nonexistent/get-token",  # not found
    ],
    ids=["failing", "not-found"],
)
def test_a_failing_token_command_shows_only_its_program_name(
    dovecot, tmp_path, sink, ackwatch, program
):
    """The command line of ``oauth2_token_command`` carries a client secret: when it fails,
    only the program's name reaches the logs, the health table and ``status``."""
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=sink.port)
    command = f"{program} --tenant agency --client-secret {CLIENT_SECRET}"
    text = cfg.read_text()
    text = text.replace(f"password_file: {tmp_path / 'anna.pass'}",
                        f'oauth2_token_command: "{command}"')  # fmt: skip
    cfg.write_text(text)
    outputs = [ackwatch_cmd("check-config", "-c", str(cfg))]
    outputs.append(once := ackwatch_cmd("run", "--once", "-c", str(cfg)))
    assert once.returncode == 69
    outputs.append(ackwatch_cmd("status", "-c", str(cfg), "--json", "--mailboxes"))
    (health,) = json.loads(outputs[-1].stdout)
    name = program.split()[0].rsplit("/", 1)[-1]
    assert health["state"] == "auth_failed"
    assert f"oauth2_token_command {name} ..." in health["last_error"]
    d = ackwatch(cfg)
    (failed,) = d.wait_event("mailbox_auth_failed")
    assert f"oauth2_token_command {name} ..." in failed["error"]
    assert d.stop() == 0
    outputs.append(ackwatch_cmd("status", "-c", str(cfg), "--json", "--mailboxes"))
    text = "\n".join(o.stdout + o.stderr for o in outputs) + d.text()
    state = b"".join(f.read_bytes() for f in (tmp_path / "state").iterdir())
    for secret in (CLIENT_SECRET, command):
        assert secret not in text
        assert secret.encode() not in state
