"""Files that hold client data stay private: the state directory and database, report files.

- `tighten`: the state directory (0700) and the database with its WAL and SHM files
  (0600) lose any group and other permission they have, at every writable open (daemon,
  ``run --once``, ``backfill``), not only when they are created: a state directory made
  0755 by hand or restored from a backup would otherwise stay that way. Each change is
  logged as ``state_permissions_tightened``. Read-only opens (``status``, ``report``)
  leave the modes alone: they may run as another user (an admin, root) who does not own
  the files, and the next writable open tightens them.
- `write_private`: a report file, written as a new 0600 file that replaces the old one
  in one rename. Only a regular file (or nothing) may be at the path: a FIFO, a device, a
  directory or a symbolic link (to anything) is refused with `RefusedPath`, so that
  ``--output`` never writes into a pipe or a device nor follows a link someone planted.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

_GROUP_AND_OTHER = 0o077


def tighten(paths: Iterable[Path]) -> None:
    """Remove group and other permission bits from each existing path (never adds any)."""
    for path in paths:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("state_permissions_not_tightened", path=str(path),
                        reason=exc.strerror or type(exc).__name__)
            continue
        if not mode & _GROUP_AND_OTHER:
            continue
        tightened = mode & ~_GROUP_AND_OTHER
        try:
            os.chmod(path, tightened)
        except OSError as exc:  # not the owner, a read-only file system: carry on
            log.warning("state_permissions_not_tightened", path=str(path),
                        old_mode=f"{mode:04o}", reason=exc.strerror or type(exc).__name__)
            continue
        log.warning("state_permissions_tightened", path=str(path), old_mode=f"{mode:04o}",
                    new_mode=f"{tightened:04o}")


class RefusedPath(ValueError):
    """An output path that is not a regular file; the message says what is there."""


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "something else"


def check_regular(path: Path) -> None:
    """Raise `RefusedPath` unless ``path`` is absent or a regular file (not followed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise RefusedPath(f"{_kind(mode)}, not a regular file")


def write_private(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` as a new 0600 file, atomically (readers never see half a
    file): a temporary file beside it (``mkstemp``: created 0600 with O_EXCL, so it never
    opens what is already there), then a rename over the path. Raises `RefusedPath` when
    something other than a regular file is at ``path``, `OSError` when writing fails."""
    import tempfile  # only report --output needs it

    target = Path(path)
    check_regular(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        check_regular(target)  # what may have appeared meanwhile is refused, not replaced
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
