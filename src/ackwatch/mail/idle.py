"""IDLE on one connection (RFC 2177): waiting on the IMAP socket and a wake-up socket
pair at once, reading what the server sent, and telling a change from a goodbye.

imapclient's own ``idle_check`` cannot be used as it is: it cannot wait on a second
descriptor, misses data already buffered (imaplib's reader, TLS), and swallows EOF.
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from imapclient import exceptions as imap_exc
from imapclient.imapclient import _parse_untagged_response

from ackwatch.mail import notify
from ackwatch.mail.connection import ImapError

if TYPE_CHECKING:
    from imapclient import IMAPClient

class Waker:
    """A flag that ``poll()`` can wait on together with a socket (a self-pipe).

    `set` (any thread) raises the flag and writes one byte to a socket pair; the watcher
    polls the IMAP socket and `fileno` at once, so a stop or recheck ends an IDLE wait at
    once instead of at the next tick of a timer. `wait` is an `Event.wait` for the paths
    without a socket. The pair exists between `open` and `close` (the watcher thread's
    lifetime); `set` before or after that only raises the flag.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flag = False
        self._r: socket.socket | None = None
        self._w: socket.socket | None = None

    def open(self) -> None:
        with self._lock:
            if self._r is None:
                self._r, self._w = socket.socketpair()
                self._r.setblocking(False)
                self._w.setblocking(False)
                if self._flag:
                    self._poke()

    def close(self) -> None:
        with self._lock:
            for s in (self._r, self._w):
                if s is not None:
                    s.close()
            self._r = self._w = None

    def _poke(self) -> None:
        if self._w is not None:
            with contextlib.suppress(OSError):  # full (a wake-up is pending anyway)
                self._w.send(b"\0")

    def set(self) -> None:
        with self._lock:
            if not self._flag:
                self._flag = True
                self._poke()

    def clear(self) -> None:
        with self._lock:
            self._flag = False
            if self._r is not None:
                with contextlib.suppress(OSError):
                    while self._r.recv(4096):
                        pass

    def is_set(self) -> bool:
        return self._flag

    def fileno(self) -> int:
        r = self._r
        return r.fileno() if r is not None else -1

    def wait(self, timeout: float) -> bool:
        if not self._flag:
            fd = self.fileno()
            if fd < 0:
                time.sleep(max(0.0, timeout))
            else:
                _wait_readable([fd], timeout)
        return self._flag


_UNSOLICITED = ("EXISTS", "EXPUNGE", "FETCH", "VANISHED")


def take_unsolicited(client: IMAPClient) -> bool:
    """Drop what imaplib kept of untagged EXISTS / EXPUNGE / FETCH / VANISHED responses
    (news about the selected folder sent along with other commands); True if any."""
    untagged = client._imap.untagged_responses
    found = False
    for key in _UNSOLICITED:
        if untagged.pop(key, None):
            found = True
    return found


class bounded:
    """Temporarily cap the socket timeout of `client` (e.g. for IDLE DONE)."""

    def __init__(self, client: IMAPClient, seconds: float) -> None:
        self.client = client
        self.seconds = seconds

    def __enter__(self) -> None:
        with contextlib.suppress(Exception):
            self.client.socket().settimeout(self.seconds)

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.client._set_read_timeout()


def _wait_readable(fds: Sequence[int], timeout: float | None) -> set[int]:
    """The subset of `fds` readable (or at EOF / in error) within `timeout` seconds.

    ``poll()``, not ``select()``: a daemon with hundreds of mailboxes has descriptors
    above FD_SETSIZE (1024).
    """
    if hasattr(select, "poll"):
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN | select.POLLPRI)
        ms = None if timeout is None else max(0, math.ceil(timeout * 1000))
        while True:
            try:
                return {fd for fd, _ in poller.poll(ms)}
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
    return set(select.select(list(fds), [], [], timeout)[0])  # pragma: no cover


def _buffered(client: IMAPClient) -> bool:
    """Has data already been read off the socket and not yet consumed?

    ``poll()`` cannot see it: bytes imaplib's buffered reader took in with an earlier
    line (for example an EXISTS that came in the same segment as ``+ idling``) and, on
    TLS, decrypted bytes the SSL object holds (``pending()``).
    """
    sock = client.socket()
    if isinstance(sock, ssl.SSLSocket) and sock.pending() > 0:
        return True
    peek = getattr(getattr(client._imap, "file", None), "peek", None)
    if peek is None:
        return False
    old = sock.gettimeout()
    try:
        sock.settimeout(0.0)  # peek reads the socket only when the buffer is empty
        return bool(peek(1))
    except (OSError, ValueError):  # nothing there (SSLWantReadError), or closed
        return False
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(old)


def _read_responses(client: IMAPClient) -> list[Any]:
    """The untagged responses that have begun to arrive (`idle_check`'s loop without its
    ``poll()``, which would miss `_buffered` data).

    None is waited for: a response is read once its first byte is here (`_buffered`, so
    TLS records without data and the end of the stream read as nothing). But each one
    begun is read whole, at the socket's usual timeout: a server may write one line in
    several pieces (pymap does), and a line read on a non-blocking socket ends where the
    bytes that came so far end ("unterminated line"): a connection that is fine would be
    taken for a cut one.
    """
    out: list[Any] = []
    while _buffered(client):
        out.append(_parse_untagged_response(client._imap._get_line()))
    return out


def idle_check(
    client: IMAPClient, timeout: float, strikes: int, wake: Waker | None = None
) -> tuple[list[Any], int]:
    """Wait up to `timeout` for IDLE responses (or for `wake`); read them.

    imapclient swallows EOF while reading IDLE responses (it cannot tell it from "no more
    data" on its non-blocking socket), so a server that goes away without BYE would leave
    us polling a dead socket forever. A socket that polls readable but yields no response
    twice in a row is treated as closed. A wake-up returns ``[]`` with `strikes` unchanged.
    """
    if not _buffered(client):
        sock_fd = client.socket().fileno()
        fds = [sock_fd]
        if wake is not None and wake.fileno() >= 0:
            fds.append(wake.fileno())
        ready = _wait_readable(fds, timeout)
        if sock_fd not in ready:
            return [], (strikes if ready else 0)
    responses = _read_responses(client)
    if responses:
        return responses, 0
    if strikes + 1 >= 2:
        raise ImapError("connection closed by the server during IDLE")
    return [], strikes + 1


def _start_idle(client: IMAPClient) -> None:
    """``IDLE``, as imapclient's `idle` sends it, waiting for the server's "+".

    Untagged responses that come before the "+" are filed by imaplib (where
    `take_unsolicited` and `notify.take_notified` find them), not taken for an error as
    imapclient takes them: a server may send them at any time (RFC 3501, 5.3), and
    NOTIFY's news about another folder can cross the command."""
    imap = client._imap
    tag = client._idle_tag = imap._command("IDLE")
    while imap._get_response() is not None:
        answer = imap.tagged_commands.get(tag)  # None until the tagged answer came
        if answer is not None:  # refused (NO / BAD) without a "+"
            del imap.tagged_commands[tag]
            raise imap_exc.IMAPClientError(f"IDLE refused: {answer[0]}")


def idle_wait(
    client: IMAPClient,
    wake: Waker,
    *,
    until: float,
    renew: float,
    interrupted: Callable[[], bool],
    host: str,
    notified: Callable[[], None] | None = None,
) -> bool:
    """IDLE until a change, `interrupted()`, the ``time.monotonic()`` instant `until` or
    `renew` seconds from now; True on a change of the selected folder. Raises `ImapError`
    on BYE. A NOTIFY ``STATUS`` (news about another folder, `notify`) calls `notified` and
    ends the wait too.

    Blocks in one ``poll()`` on the IMAP socket and `wake`; no timer ticks. `wake` is
    cleared before each look at `interrupted`.
    """
    _start_idle(client)
    started = time.monotonic()
    deadline = min(until, started + renew)
    # What came before the server's "+" (filed by imaplib) counts as if read during IDLE.
    changed = take_unsolicited(client)
    other = notified is not None and notify.take_notified(client)
    if other and notified is not None:
        notified()
    strikes = 0
    while True:  # an exception here means a dead connection: no DONE, reconnect
        wake.clear()  # then look at what it was raised for
        now = time.monotonic()
        if changed or other or interrupted() or now >= deadline:
            break
        responses, strikes = idle_check(client, deadline - now, strikes, wake)
        for resp in responses:
            if _is_bye(resp):
                raise ImapError(f"{host}: server closed the connection (BYE)")
            if _is_change(resp):
                changed = True
            elif notified is not None and notify.is_notification(resp):
                notified()
                other = True
    with bounded(client, 10.0):
        _text, more = client.idle_done()
    if notified is not None and any(notify.is_notification(r) for r in more or ()):
        notified()
    return changed or any(_is_change(r) for r in more or ())


def _is_bye(resp: Any) -> bool:
    return isinstance(resp, tuple) and len(resp) >= 1 and resp[0] == b"BYE"


def _is_change(resp: Any) -> bool:
    """EXISTS / EXPUNGE / FETCH (flag change) / RECENT in an IDLE response."""
    if not isinstance(resp, tuple) or len(resp) < 2:
        return False
    kind = resp[1]
    return isinstance(kind, bytes) and kind.upper() in (b"EXISTS", b"EXPUNGE", b"FETCH", b"RECENT")



__all__ = ["Waker", "bounded", "idle_check", "idle_wait", "take_unsolicited"]
