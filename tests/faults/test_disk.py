"""The state directory fills up or turns read-only under a running daemon.

Expected: a clear error on stderr, exit status 73 (EX_CANTCREAT, not restarted in a loop
by a human-readable reason), and a database that is still intact (``integrity_check``)
and usable once the disk is fixed.

How the faults are made (honestly, no hooks in the code under test):
- disk full: the state dir is a small tmpfs (``mount -t tmpfs -o size=...``): real
  ENOSPC. Needs root (else skipped with that reason).
- read-only: as root, the same tmpfs remounted ``ro`` (root ignores file modes); as a
  normal user, ``chmod`` of the state dir and its files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.faults.daemon_config import write_config
from tests.support.daemon import ANNA, client_mail, started
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]

EX_CANTCREAT = 73


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    run = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                          str(path)], capture_output=True, timeout=10, check=False)
    return run.returncode == 0


@pytest.fixture
def state_mount(tmp_path: Path) -> Iterator[Path | None]:
    """tmp_path/state as a 600 KiB tmpfs (None when that is impossible here)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    mounted = _mount_tmpfs(state, "600k")
    try:
        yield state if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(state)], capture_output=True, timeout=10,
                           check=False)


def integrity(state: Path, copy_to: Path) -> str:
    """integrity_check of a copy (database + WAL), so a read-only mount does not matter."""
    copy_to.mkdir()
    for f in state.iterdir():
        if f.name.startswith("ackwatch.sqlite3") and not f.name.endswith("-shm"):
            shutil.copy(f, copy_to / f.name)
    with contextlib.closing(sqlite3.connect(copy_to / "ackwatch.sqlite3")) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def test_disk_full_exits_73_clearly_and_leaves_an_intact_database(
    dovecot, tmp_path, sink, ackwatch, state_mount
):
    if state_mount is None:
        pytest.skip("disk full needs a small tmpfs: run as root (mount -t tmpfs)")
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=sink.port,
                       window="1h", nudge_before="30m")
    d = started(ackwatch, cfg)
    # Big header fields (stored with each message) fill the 600 KiB quickly.
    appended = 0
    for i in range(200):
        refs = " ".join(f"<ref-{i}-{j}-{'x' * 40}@acme.example>" for j in range(120))
        dovecot.append(user, "INBOX", client_mail(f"Fill {i}", f"<fill-{i}@acme.example>",
                                                  extra_headers=[("References", refs)]))
        appended += 1
        if not d.alive():
            break
    wait_for(lambda: not d.alive(), 30, "the daemon to stop on a full disk")
    assert d.proc.returncode == EX_CANTCREAT, d.tail()
    text = d.text()
    assert "database or disk is full" in text, d.tail()
    assert "Traceback" not in text, d.tail()
    assert integrity(state_mount, tmp_path / "copy") == "ok"

    # Room again (a bigger tmpfs over the copy): it starts and resumes.
    subprocess.run(["mount", "-o", "remount,size=64m", str(state_mount)], check=True,
                   timeout=10)
    d = started(ackwatch, cfg)
    wait_for(lambda: len(d.status()) >= appended or not d.alive(), 60, "every mail tracked",
             step=0.5)
    assert d.alive(), d.tail()
    assert d.stop() == 0


def test_read_only_state_dir_exits_73_clearly(dovecot, tmp_path, sink, ackwatch, state_mount):
    """A state dir that became read-only (remounted ro after a disk error, wrong owner
    after a restore): the daemon refuses to start, says why, and the data survives.
    (A file system cannot be remounted read-only under a process that has files open for
    writing, so the running case is the disk-full test's.)"""
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=sink.port,
                       window="1h", nudge_before="30m")
    d = started(ackwatch, cfg)
    state = tmp_path / "state"
    first = "<before-ro@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Before read-only", first))
    d.wait_item(first)
    assert d.stop() == 0

    if state_mount is not None:
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True, timeout=10)
    elif os.geteuid() != 0:
        for f in state.iterdir():
            f.chmod(0o400)
        state.chmod(0o500)
    else:
        pytest.skip("root without mount: file modes cannot make the state read-only")
    try:
        dovecot.append(user, "INBOX", client_mail("While read-only", "<ro@acme.example>"))
        d = ackwatch(cfg)
        wait_for(lambda: not d.alive(), 30, "the daemon to refuse the read-only state dir")
        assert d.proc.returncode == EX_CANTCREAT, d.tail()
        text = d.text()
        assert "not writable: read-only file system or permissions" in text, d.tail()
        assert "Traceback" not in text, d.tail()
        assert integrity(state, tmp_path / "copy") == "ok"
    finally:
        if state_mount is not None:
            # Room for the restart as in the disk-full test: the 600 KiB are for that one.
            subprocess.run(["mount", "-o", "remount,rw,size=64m", str(state)], timeout=10,
                           check=False)
        else:
            state.chmod(0o700)
            for f in state.iterdir():
                f.chmod(stat.S_IRUSR | stat.S_IWUSR)
    d = started(ackwatch, cfg)
    d.wait_item("<ro@acme.example>")
    assert d.stop() == 0
