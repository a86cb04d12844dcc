"""Every command leaves the state as one file: no WAL side files once it has ended.

SQLite keeps ``-wal`` and ``-shm`` beside a WAL database while it is open and removes
them when the last connection closes, if that connection may write (a ``mode=ro`` one
cannot). Left behind, they are the sign of a connection not closed, and another user's
or a read-only mount's leftovers make the next writer fail. Real processes: the daemon
stopped by SIGTERM (with the board, the watchers' readers and a `status` read while it
ran), ``run --once``, and ``status`` and ``report`` on a stopped daemon's state.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from tests.servers.imapserver import free_port
from tests.support import run_once
from tests.support.daemon import ANNA, client_mail, started, with_board, write_config

from ackwatch.store.database import DB_NAME

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]

WAL_FILES = (f"{DB_NAME}-shm", f"{DB_NAME}-wal")  # sorted


def leftovers(state: Path) -> list[str]:
    return sorted(p.name for p in state.iterdir() if p.name in WAL_FILES)


@pytest.fixture
def daemon_state(dovecot, tmp_path, sink, ackwatch) -> Path:
    """The config of a daemon that ran (board on) and was stopped by SIGTERM."""
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink)
    port = free_port()
    with_board(cfg, port)
    d = started(ackwatch, cfg)
    d.wait_event("web_listening")
    mid = "<state-files@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Quote for the state files", mid))
    d.wait_item(mid)  # `ackwatch status` read it while the daemon ran
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read()
    assert b"Quote for the state files" in page  # the board's reader read it
    assert leftovers(tmp_path / "state") == list(WAL_FILES)  # open while it runs
    assert d.stop() == 0
    return cfg


def test_the_daemon_stopped_by_sigterm_leaves_no_wal_files(daemon_state, tmp_path):
    assert leftovers(tmp_path / "state") == []


def test_status_and_report_on_a_stopped_daemons_state_leave_no_wal_files(
    daemon_state, tmp_path
):
    status = run_once.ackwatch("status", "-c", str(daemon_state))
    assert status.returncode == 0, status.stderr
    assert "Quote for the state" in status.stdout  # cut to the column
    assert leftovers(tmp_path / "state") == []
    report = run_once.ackwatch("report", "-c", str(daemon_state), "--format", "json")
    assert report.returncode == 0, report.stderr
    assert leftovers(tmp_path / "state") == []


def test_run_once_leaves_no_wal_files(dovecot, tmp_path):
    user = dovecot.add_user()
    dovecot.append(user, "INBOX", client_mail("Quote for run --once", "<once@acme.example>"))
    cfg = run_once.write_config(tmp_path, dovecot, {"anna": user})
    result = run_once.ackwatch("run", "--once", "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    assert leftovers(tmp_path / "state") == []
    status = run_once.ackwatch("status", "-c", str(cfg))
    assert status.returncode == 0, status.stderr
    assert leftovers(tmp_path / "state") == []
