"""Signals wake the core loop at once, whichever thread the kernel delivered them to."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


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
