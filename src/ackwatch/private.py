"""Files that hold client data stay private: the state directory and database.

- `tighten`: the state directory (0700) and the database with its WAL and SHM files
  (0600) lose any group and other permission they have, at every writable open (daemon,
  ``run --once``, ``backfill``), not only when they are created: a state directory made
  0755 by hand or restored from a backup would otherwise stay that way. Each change is
  logged as ``state_permissions_tightened``. Read-only opens (``status``, ``report``)
  leave the modes alone: they may run as another user (an admin, root) who does not own
  the files, and the next writable open tightens them.
"""

from __future__ import annotations

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
