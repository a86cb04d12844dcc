"""Signals wake the core loop at once, whichever thread the kernel delivered them to;
a stop they ask for is bounded in time (`StopDeadline`)."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

# SIGTERM to exit within 10 s (README; the unit's TimeoutStopSec leaves systemd a margin).
STOP_BUDGET_SECONDS = 9.0
EXIT_STOP_OVERDUE = 1


class Wake:
    """Sentinel put on the event queue to wake the core loop (signals, a stop, a reload)."""


def wake_on_signals(post: Callable[[object], None]) -> Callable[[], None]:
    """Make every signal ``post`` a `Wake` to the core loop's queue; returns the undo.

    Python runs a signal's handler in the main thread only, and only when that thread
    runs Python code. The kernel may deliver SIGTERM or SIGHUP to any thread (a
    watcher's, when the main one already has a signal pending), and then the main
    thread, asleep on the event queue, would run the handler only when its wait ends:
    up to the loop's longest sleep later, past systemd's stop timeout. CPython writes
    each signal to the wake-up fd whatever the thread; a small thread reading it posts a
    `Wake`, the main thread returns to Python code and runs the handler before it looks
    at its flags again. Call from the main thread, after installing the handlers."""
    import signal

    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

    def wake() -> None:
        with reader:
            while True:
                try:
                    if not reader.recv(64):
                        return  # `undo` closed the writer
                except OSError:
                    return
                post(Wake())

    threading.Thread(target=wake, name="ackwatch-signals", daemon=True).start()

    def undo() -> None:
        signal.set_wakeup_fd(previous)
        writer.close()  # the reading thread sees the end of file, closes its side, ends

    return undo


class StopDeadline:
    """Ends the process if a stop asked for (SIGTERM) is not done within ``seconds``.

    The clean stop is bounded part by part (the watchers, the cluster's threads and
    leases, the body reader), but the core thread itself may be stuck in a statement
    on a state database that stopped answering without closing the connection (a
    firewall dropping packets): nothing in the process can end that wait. Past the
    budget the process exits at once (``stop_overdue`` in the log, exit 1), as a crash
    would: the transaction in flight is rolled back by the database, the outbox keeps
    its guarantee (at most one duplicate), and the node's leases expire for the others
    to take over. ``exit``: `os._exit` (a test passes its own)."""

    def __init__(self, seconds: float = STOP_BUDGET_SECONDS,
                 exit: Callable[[int], object] = os._exit) -> None:
        self._seconds = seconds
        self._exit = exit
        self._armed = threading.Event()

    def arm(self) -> None:
        """Start counting (once; a second SIGTERM does not restart it)."""
        if self._armed.is_set():
            return
        self._armed.set()
        threading.Thread(target=self._wait, name="ackwatch-stop-deadline", daemon=True).start()

    def _wait(self) -> None:
        threading.Event().wait(self._seconds)  # a daemon thread: a timely exit ends it
        log.error("stop_overdue", seconds=self._seconds,
                  reason="a thread is stuck (state database or server not answering)")
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        self._exit(EXIT_STOP_OVERDUE)
