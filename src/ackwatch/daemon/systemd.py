"""sd_notify for the daemon: READY, STATUS, WATCHDOG and STOPPING lines to systemd."""

from __future__ import annotations

import os
import socket
import time

import structlog

log = structlog.get_logger(__name__)

NOTIFY_WAIT_SECONDS = 1.0  # READY=1 and STOPPING=1 wait this long for a busy systemd


class Systemd:
    """sd_notify, a no-op outside systemd, that never holds up the core loop.

    The notification socket is a datagram socket: when its reader (systemd) does not keep
    up, the kernel's queue for it (``net.unix.max_dgram_qlen``, often 10 datagrams) fills
    and a blocking send waits until it reads again. sdnotify's socket is blocking, so a
    busy or hung PID 1 would stop the core loop, and with it the nudges and even the exit
    on SIGTERM. So the routine lines (STATUS=, WATCHDOG=1) are dropped when the queue is
    full: a ping systemd cannot read is one it would not have seen anyway. READY=1 and
    STOPPING=1 wait up to `NOTIFY_WAIT_SECONDS`. A run of drops is logged once, when it
    starts, and counted when it ends."""

    def __init__(self, sock: socket.socket | None = None,
                 watchdog_interval: float | None = None) -> None:
        self.socket = sock
        self.watchdog_interval = watchdog_interval
        self.dropped = 0
        self._last_watchdog = 0.0

    @classmethod
    def from_env(cls) -> Systemd:
        if not os.environ.get("NOTIFY_SOCKET"):
            return cls()
        import sdnotify

        usec = os.environ.get("WATCHDOG_USEC")
        interval = int(usec) / 2e6 if usec and usec.isdigit() else None
        # sdnotify connects (an abstract "@" address included); the sends are ours.
        return cls(sdnotify.SystemdNotifier().socket, interval)

    def feed_watchdog(self) -> None:
        """WATCHDOG=1, at most once per nine tenths of the interval systemd asked for."""
        interval = self.watchdog_interval
        if interval and time.monotonic() - self._last_watchdog >= interval * 0.9:
            self.notify("WATCHDOG=1")
            self._last_watchdog = time.monotonic()

    def notify(self, line: str, *, wait: float = 0.0) -> bool:
        """Send ``line``, waiting at most ``wait`` seconds for room; True if it was sent."""
        if self.socket is None:
            return False
        try:
            self.socket.settimeout(wait)  # 0: non-blocking
            self.socket.send(line.encode())
        except OSError as exc:  # BlockingIOError, TimeoutError: the queue is full
            if not self.dropped:
                log.warning("systemd_notify_dropped", notification=line.partition("=")[0],
                            error=type(exc).__name__)
            self.dropped += 1
            return False
        if self.dropped:
            log.info("systemd_notify_resumed", dropped=self.dropped)
            self.dropped = 0
        return True
