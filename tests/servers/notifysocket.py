"""systemd's side of NOTIFY_SOCKET for tests: a bound AF_UNIX datagram socket."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path


def notify_socket_path(tmp_path: Path) -> Path:
    """``tmp_path/notify.sock``, or a unique name in /tmp when that path is too long."""
    path = tmp_path / "notify.sock"
    if len(str(path)) > 100:  # AF_UNIX path limit
        path = Path(f"/tmp/ackwatch-notify-{os.getpid()}-{time.monotonic_ns()}.sock")
    return path


@contextlib.contextmanager
def bound_notify_socket(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    """A bound NOTIFY_SOCKET and its path, removed afterwards."""
    path = notify_socket_path(tmp_path)
    with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)) as sock:
        path.unlink(missing_ok=True)
        sock.bind(str(path))
        try:
            yield path, sock
        finally:
            path.unlink(missing_ok=True)
