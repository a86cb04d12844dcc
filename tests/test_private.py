"""Private files: report output only ever replaces a regular file, created 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ackwatch.private import RefusedPath, check_regular, write_private


def test_write_private_replaces_a_regular_file_with_a_new_0600_one(tmp_path: Path):
    out = tmp_path / "week.csv"
    out.write_text("old")
    out.chmod(0o644)
    write_private(out, "new")
    assert out.read_text() == "new"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["week.csv"]


def test_write_private_creates_a_missing_file_0600(tmp_path: Path):
    write_private(tmp_path / "new.json", "{}")
    assert stat.S_IMODE(os.stat(tmp_path / "new.json").st_mode) == 0o600


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda p: os.mkfifo(p), "a FIFO"),
        (lambda p: p.mkdir(), "a directory"),
        (lambda p: p.symlink_to("/dev/null"), "a symbolic link"),
        (lambda p: (p.with_name("real.csv").write_text("x"), p.symlink_to("real.csv")),
         "a symbolic link"),
    ],
    ids=["fifo", "directory", "symlink-to-device", "symlink-to-regular-file"],
)
def test_write_private_refuses_what_is_not_a_regular_file(tmp_path: Path, make, what):
    target = tmp_path / "report.csv"
    make(target)
    before = os.lstat(target)
    with pytest.raises(RefusedPath, match=f"^{what}, not a regular file$"):
        write_private(target, "client subjects")
    after = os.lstat(target)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)  # untouched
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_device_is_not_a_regular_file():
    with pytest.raises(RefusedPath, match=r"^a device, not a regular file$"):
        check_regular(Path("/dev/null"))
