"""Input from an IMAP server is bounded (issue 18, section 2).

A hostile server (`hostile_imap.HostileImap`) beside a healthy Dovecot mailbox in one
config: ``ackwatch run --once`` cuts the hostile one with a logged event, counts it as
failed, syncs the healthy one, and stays within generous bounds of memory (peak RSS of
the process) and time. A watcher of the daemon puts the hostile mailbox into backoff.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from tests.faults.hostile_imap import HUGE, HostileImap
from tests.support.daemon import client_mail

from ackwatch.config import Folders, MailboxConfig, SecretRef, SyncConfig
from ackwatch.mail import imapguard
from ackwatch.mail.watcher import HealthEvent, MailboxWatcher

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]

RSS_LIMIT_MB = 300  # the whole run --once; the bench's daemon peaks at 118-124 MB
KILL_AT_MB = 600  # a run past this is stopped at once (the unbounded code reached 2.7 GB)


def write_config(tmp_path: Path, hostile: HostileImap, dovecot: Any, user: str,
                 sync: str = "") -> Path:
    healthy_pw, hostile_pw = tmp_path / "anna.pass", tmp_path / "hostile.pass"
    healthy_pw.write_text(dovecot.password(user) + "\n")
    hostile_pw.write_text("whatever\n")
    for p in (healthy_pw, hostile_pw):
        p.chmod(0o600)
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
        sync:
          batch_size: 500
        SYNC
        mailboxes:
          - name: hostile
            host: 127.0.0.1
            port: {hostile.port}
            security: none
            username: office
            password_file: {hostile_pw}
            folders: {{inbox: [INBOX], sent: [Sent]}}
            timeout: 3
          - name: anna
            host: {dovecot.host}
            port: {dovecot.port}
            security: none
            username: {user}
            password_file: {healthy_pw}
            owner: anna@agency.example
            folders: {{inbox: [INBOX], sent: [Sent]}}
            timeout: 10
        """).replace("SYNC\n", "".join(f"  {line}\n" for line in sync.splitlines())))
    cfg.chmod(0o600)
    return cfg


def run_once(cfg: Path, timeout: float = 90.0) -> tuple[int, float, float, list[dict]]:
    """``ackwatch run --once``: (exit status, seconds, peak RSS in MB, log events).

    The peak is the child's own high-water mark (``VmHWM`` in /proc, sampled every 50 ms
    until it exits): not `os.wait4`'s ``ru_maxrss``, which Linux carries over from the
    parent across the fork and exec (a test process of 330 MB made every child "330 MB").
    A run that passes `KILL_AT_MB` or `timeout` is killed, and reported as such.
    """
    log = cfg.parent / "once.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ackwatch", "run", "--once", "-c", str(cfg)],
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
    start = time.monotonic()
    killed = threading.Event()
    peak_kb = [0]

    def watch() -> None:
        status = Path(f"/proc/{proc.pid}/status")
        while proc.returncode is None and not killed.is_set():
            try:
                fields = {ln.split(":")[0]: int(ln.split()[1]) for ln in
                          status.read_text().splitlines() if ln.startswith(("VmRSS:", "VmHWM:"))}
                rss = fields["VmRSS"]
            except (OSError, KeyError, IndexError, ValueError):
                return
            peak_kb[0] = max(peak_kb[0], fields.get("VmHWM", rss))
            if rss > KILL_AT_MB * 1024 or time.monotonic() - start > timeout:
                killed.set()
                os.kill(proc.pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _pid, status = os.waitpid(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - start
    watcher.join(1)
    events = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append({"event": "(not JSON)", "line": line})
    assert not killed.is_set(), f"killed after {elapsed:.1f}s at {peak_kb[0] // 1024} MB"
    return proc.returncode, elapsed, peak_kb[0] / 1024, events


def status_json(cfg: Path, *extra: str) -> Any:
    out = subprocess.run([sys.executable, "-m", "ackwatch", "status", "-c", str(cfg), "--json",
                          *extra], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def named(events: list[dict], name: str) -> list[dict]:
    return [e for e in events if e.get("event") == name]


@pytest.fixture
def healthy(dovecot) -> str:
    user = dovecot.add_user()
    dovecot.append(user, "INBOX", client_mail("Quote please", "<quote@acme.example>"))
    return user


def assert_healthy_mailbox_synced(cfg: Path, events: list[dict]) -> None:
    assert not named(events, "(not JSON)"), named(events, "(not JSON)")
    health = {h["mailbox"]: h for h in status_json(cfg, "--mailboxes")}
    assert health["anna"]["state"] == "up"
    assert health["hostile"]["state"] == "backoff"
    assert [i["subject"] for i in status_json(cfg)] == ["Quote please"]


def test_a_2_gb_literal_is_refused_before_it_is_read(dovecot, healthy, tmp_path):
    with HostileImap("huge_literal") as hostile:
        cfg = write_config(tmp_path, hostile, dovecot, healthy)
        code, seconds, rss_mb, events = run_once(cfg)
    assert seconds < 30
    assert rss_mb < RSS_LIMIT_MB
    assert code == 0
    refused = named(events, "imap_response_too_large")  # one per connection (2 folders)
    assert {(e["mailbox"], e["command"], e["what"], e["size"], e["limit"]) for e in refused} == {
        ("hostile", "UID FETCH", "literal", HUGE, imapguard.LITERAL_SLACK * (1 << 20))
    }
    assert [e["mailbox"] for e in named(events, "mailbox_sync_failed")] == ["hostile"]
    assert "imap_response_too_large" in named(events, "mailbox_sync_failed")[0]["error"]
    assert_healthy_mailbox_synced(cfg, events)


def test_endless_untagged_responses_are_cut_at_the_cap(dovecot, healthy, tmp_path):
    with HostileImap("endless_untagged") as hostile:
        cfg = write_config(tmp_path, hostile, dovecot, healthy)
        code, seconds, rss_mb, events = run_once(cfg)
    assert seconds < 30
    assert rss_mb < RSS_LIMIT_MB
    assert code == 0
    cut = named(events, "imap_response_too_large")
    assert {e["mailbox"] for e in cut} == {"hostile"}
    assert {e["command"] for e in cut} == {"EXAMINE"}
    assert cut[0]["what"] == "untagged responses"
    assert cut[0]["limit"] == imapguard.UNTAGGED_SLACK + 2 * 500
    assert_healthy_mailbox_synced(cfg, events)


def test_a_server_dribbling_a_byte_a_second_is_cut_at_the_command_deadline(
    dovecot, healthy, tmp_path
):
    # A byte a second never trips the 3 s socket timeout; the command deadline (4 s) does.
    with HostileImap("dribble", interval=1.0) as hostile:
        cfg = write_config(tmp_path, hostile, dovecot, healthy,
                           sync="command_deadline: 4s\nmailbox_deadline: 60s")
        code, seconds, rss_mb, events = run_once(cfg, timeout=60)
    assert seconds < 30
    assert rss_mb < RSS_LIMIT_MB
    assert code == 0
    late = named(events, "imap_command_deadline")
    assert {e["mailbox"] for e in late} == {"hostile"}
    assert {e["command"] for e in late} == {"EXAMINE"}
    assert late[0]["seconds"] == 4
    assert "imap_command_deadline" in named(events, "mailbox_sync_failed")[0]["error"]
    assert_healthy_mailbox_synced(cfg, events)


def test_a_mailbox_sync_of_run_once_ends_at_its_deadline_even_in_the_greeting(
    dovecot, healthy, tmp_path
):
    with HostileImap("dribble_greeting", interval=1.0) as hostile:
        cfg = write_config(tmp_path, hostile, dovecot, healthy,
                           sync="command_deadline: 5m\nmailbox_deadline: 3s")
        code, seconds, _rss, events = run_once(cfg, timeout=60)
    assert code == 0
    (late,) = named(events, "imap_command_deadline")
    assert late["mailbox"] == "hostile" and late["session"] is True
    (unreachable,) = named(events, "mailbox_unreachable")
    assert unreachable["mailbox"] == "hostile"
    assert seconds < 30
    health = {h["mailbox"]: h["state"] for h in status_json(cfg, "--mailboxes")}
    assert health == {"anna": "up", "hostile": "backoff"}


# --------------------------------------------------------------------------- the daemon


def hostile_mailbox(server: HostileImap) -> MailboxConfig:
    return MailboxConfig(
        name="hostile", host=server.host, port=server.port, security="none",
        username="office", password=SecretRef("env", "X"), oauth2_token=None,
        folders=Folders(inbox=("INBOX",), sent=("Sent",)), timeout=3.0,
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["huge_literal", "endless_untagged", "dribble"])
def test_a_watcher_puts_a_hostile_mailbox_into_backoff(mode):
    import datetime as dt

    events: list[object] = []
    sync = SyncConfig(command_deadline=dt.timedelta(seconds=3), idle=False)
    with HostileImap(mode, interval=1.0) as server, capture_logs() as logs:
        watcher = MailboxWatcher(
            hostile_mailbox(server), sync, dict, lambda _f: (), events.append,
            resolve=lambda _ref: "whatever", backoff_initial=60.0,
        )  # fmt: skip
        watcher.start()
        deadline = time.monotonic() + 30
        while watcher.health.state != "backoff" and time.monotonic() < deadline:
            time.sleep(0.05)
        watcher.stop()
    assert watcher.health.state in ("backoff", "stopped")
    states = [e.health for e in events if isinstance(e, HealthEvent)]
    assert states[0].state == "backoff"
    expected = "imap_command_deadline" if mode == "dribble" else "imap_response_too_large"
    assert expected in (states[0].last_error or "")
    assert [entry["mailbox"] for entry in logs if entry["event"] == expected] == ["hostile"]
