"""Bounds on what one IMAP server can make ackwatch read: how big, how many, how long.

A hostile or broken server must not exhaust memory or hang a run. Every connection
`imap.connect` opens carries a `Guard`, and every byte read from the server passes it:

* **Literals**: a ``{n}`` literal is checked before a byte of it is read. Its limit
  follows from the command that asked: `LITERAL_SLACK` times the 1 MiB header limit
  (`message.MAX_HEADER_BYTES`) for a ``BODY.PEEK[HEADER.FIELDS ...]`` fetch, times the
  partial length (``<0.16384>``: the promise reader's body part) for a partial fetch,
  `OTHER_LITERAL` for anything else (BODYSTRUCTURE strings, folder names).
* **Untagged responses and bytes per command**: at most `Limits.max_untagged` untagged
  responses and `Limits.max_bytes` bytes (lines and literals) between sending a command
  and reading its completion. Both are sized from ``sync.batch_size``: a FETCH of a batch
  legitimately answers one untagged response per message.
* **Time**: every command has an overall deadline (``sync.command_deadline``; IDLE: its
  renewal interval plus that), and a connection may carry a session deadline (``run
  --once``: ``sync.mailbox_deadline`` per mailbox). The socket timeout only bounds each
  ``recv``; a server dribbling a byte every few seconds never trips it. A deadline is
  enforced by one process-wide thread (`_Reaper`) that shuts the socket down when it
  passes, which ends a blocked read at once, TLS or not.

Any of these ends the connection: the socket is shut down, the event is logged once
(``imap_response_too_large`` with the size and the limit, ``imap_command_deadline`` with
the seconds), and the read raises `ResponseTooLarge` / `CommandDeadline`, which are
``imaplib.IMAP4.abort`` (imapclient's ``IMAPClientAbortError``): every caller already
treats those as a dead connection (the watcher backs off, ``run --once`` counts the
mailbox as failed). imaplib re-wraps an abort in a plain one on some paths, so
`failure` tells what really happened.

The seam: imaplib documents ``read``, ``readline`` and ``send`` of ``IMAP4`` as the
methods to override, so `_GuardedIMAP4` overrides just those. imapclient has no hook to
choose the ``IMAP4`` class, so `GuardedClient._create_IMAP4` restates its ten lines
(tests/mail/test_imapguard.py fails if imapclient's version of it changes).
"""

from __future__ import annotations

import contextlib
import heapq
import imaplib
import itertools
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from imapclient import IMAPClient
from imapclient.imap4 import IMAP4WithTimeout
from imapclient.tls import IMAP4_TLS

from ackwatch.core.headers import MAX_HEADER_BYTES

if TYPE_CHECKING:
    from ackwatch.config import SyncConfig

log = structlog.get_logger(__name__)

LITERAL_SLACK = 4  # a literal more than this many times what was asked for is refused
OTHER_LITERAL = 64 * 1024  # commands that ask for no body or header text
UNTAGGED_SLACK = 10_000  # untagged responses beyond a batch's own (LIST of many folders...)
BYTES_SLACK = 16 * 1024 * 1024
BYTES_PER_BATCH_MESSAGE = 32 * 1024  # header fields average 1-3 kB; room for odd ones
COMMAND_SECONDS = 300.0
IDLE_RENEW_SECONDS = 10 * 60  # `watcher.IDLE_RENEW_SECONDS` is this one
COMPACT_AFTER = 64  # cancelled deadlines the reaper keeps before it may rebuild its heap

_PARTIAL = re.compile(rb"\]<\d+\.(\d+)>")
_NAME = re.compile(rb"[A-Za-z]+")
_WHOLE_BODY = re.compile(rb"BODY(?:\.PEEK)?\[|RFC822")


class Ended(imaplib.IMAP4.abort):
    """A bound ended the connection."""


class ResponseTooLarge(Ended):
    """The server sent more than a command may produce (``imap_response_too_large``)."""


class CommandDeadline(Ended):
    """A command or the session ran past its deadline (``imap_command_deadline``)."""


@dataclass(frozen=True)
class Limits:
    """What one command may make ackwatch read, and for how long."""

    command_seconds: float = COMMAND_SECONDS
    idle_seconds: float = IDLE_RENEW_SECONDS + COMMAND_SECONDS
    max_untagged: int = UNTAGGED_SLACK + 2 * 500
    max_bytes: int = BYTES_SLACK + 500 * BYTES_PER_BATCH_MESSAGE

    @classmethod
    def for_sync(cls, sync: SyncConfig, idle_renew: float = IDLE_RENEW_SECONDS) -> Limits:
        """Sized from the batch size: a FETCH answers one untagged response per message
        of the batch (twice that allows a flag update for each, unsolicited)."""
        seconds = sync.command_deadline.total_seconds()
        return cls(
            command_seconds=seconds,
            idle_seconds=idle_renew + seconds,
            max_untagged=UNTAGGED_SLACK + 2 * sync.batch_size,
            max_bytes=BYTES_SLACK + sync.batch_size * BYTES_PER_BATCH_MESSAGE,
        )


def literal_limit(command: bytes, max_bytes: int) -> int:
    """The largest literal the answer to `command` (the line sent) may carry: what it
    asked for with room (`LITERAL_SLACK`); a whole body (ackwatch never asks for one)
    only the answer's byte limit."""
    upper = command.upper()
    if b"HEADER.FIELDS" in upper:
        return LITERAL_SLACK * MAX_HEADER_BYTES
    partial = _PARTIAL.search(command)
    if partial is not None:
        return LITERAL_SLACK * max(1, int(partial.group(1)))
    if _WHOLE_BODY.search(upper) is not None:
        return max_bytes
    return OTHER_LITERAL


def command_name(command: bytes) -> str:
    """``UID FETCH``, ``EXAMINE``, ``LOGIN``: the verb of a command line, never its
    arguments (a LOGIN's are a password)."""
    words = command.rstrip(b"\r\n").split(b" ", 3)[1:3]
    name = [w.upper() for w in words if _NAME.fullmatch(w)][:2]
    if len(name) == 2 and name[0] != b"UID":
        name = name[:1]
    return b" ".join(name).decode("ascii") or "?"


class Guard:
    """The bounds of one connection (see the module doc). Not thread-safe except for
    `expire`, which the reaper thread calls."""

    def __init__(
        self, limits: Limits, mailbox: str, session_deadline: float | None = None
    ) -> None:
        self.limits = limits
        self.mailbox = mailbox
        self.session_deadline = session_deadline
        self.imap: imaplib.IMAP4 | None = None
        self.failure: imaplib.IMAP4.abort | None = None
        self._lock = threading.Lock()
        self._entry: list[Any] | None = None
        self._tag: bytes | None = None
        self._command = "greeting"
        self._untagged = 0
        self._bytes = 0
        self._literal_limit = OTHER_LITERAL
        self._arm(limits.command_seconds)

    # ------------------------------------------------------------------ hooks
    def sent(self, data: bytes, tagpre: bytes) -> None:
        """Before `data` is sent: a new tagged command starts its count and its clock."""
        self.check()
        if not data.startswith(tagpre):
            return  # a literal, an AUTHENTICATE response, IDLE's DONE: same command
        tag, _, _rest = data.partition(b" ")
        self._tag = tag + b" "
        self._command = command_name(data)
        self._untagged = self._bytes = 0
        self._literal_limit = literal_limit(data, self.limits.max_bytes)
        idle = self._command == "IDLE"
        self._arm(self.limits.idle_seconds if idle else self.limits.command_seconds)

    def line(self, line: bytes) -> None:
        """After a line was read."""
        self._bytes += len(line)
        if line[:2] == b"* ":
            self._untagged += 1
            if self._untagged > self.limits.max_untagged:
                self._refuse("untagged responses", self._untagged, self.limits.max_untagged)
        if self._bytes > self.limits.max_bytes:
            self._refuse("answer bytes", self._bytes, self.limits.max_bytes)
        tag = self._tag
        if tag is not None and line[: len(tag)] == tag:  # the command's completion
            self._tag = None
            self._disarm()

    def literal(self, size: int) -> None:
        """Before a literal of `size` bytes is read."""
        self.check()
        if size > self._literal_limit:
            self._refuse("literal", size, self._literal_limit)
        self._bytes += size
        if self._bytes > self.limits.max_bytes:
            self._refuse("answer bytes", self._bytes, self.limits.max_bytes)

    def check(self) -> None:
        """Raise the failure that ended this connection, if any."""
        failure = self.failure
        if failure is not None:
            raise type(failure)(str(failure))

    # ------------------------------------------------------------------ deadlines
    def _arm(self, seconds: float) -> None:
        when = time.monotonic() + seconds
        if self.session_deadline is not None and self.session_deadline < when:
            if self.session_deadline <= time.monotonic():
                self._expired(self._command, session=True)
            when = self.session_deadline
        with self._lock:
            if self._entry is not None:
                _REAPER.cancel(self._entry)
            self._entry = _REAPER.arm(self, when)

    def _disarm(self) -> None:
        with self._lock:
            entry, self._entry = self._entry, None
        if entry is not None:
            _REAPER.cancel(entry)
        if self.session_deadline is not None:  # the session's clock runs between commands
            with self._lock:
                self._entry = _REAPER.arm(self, self.session_deadline)

    def expire(self, entry: list[Any]) -> None:
        """The reaper's call: `entry`'s deadline passed."""
        with self._lock:
            if self._entry is not entry or self.failure is not None:
                return  # re-armed or disarmed meanwhile
            self._entry = None
        sock = getattr(self.imap, "sock", None)
        if sock is None or sock.fileno() < 0:
            return  # closed already (logged out, or never connected)
        session = self.session_deadline is not None and time.monotonic() >= self.session_deadline
        with contextlib.suppress(CommandDeadline):
            self._expired(self._command, session=session)

    def _expired(self, command: str, *, session: bool) -> None:
        if session:
            what = "the mailbox's sync (sync.mailbox_deadline)"
        elif command == "IDLE":
            what = f"IDLE ({self.limits.idle_seconds:g}s)"
        else:
            what = f"{command} (sync.command_deadline {self.limits.command_seconds:g}s)"
        self._fail(
            CommandDeadline(f"imap_command_deadline: {what} ran out of time"),
            "imap_command_deadline",
            command=command,
            session=session,
            seconds=None if session else (
                self.limits.idle_seconds if command == "IDLE" else self.limits.command_seconds
            ),
        )

    # ------------------------------------------------------------------ ending
    def _refuse(self, what: str, size: int, limit: int) -> None:
        self._fail(
            ResponseTooLarge(
                f"imap_response_too_large: {what} of {size} is more than the {limit} "
                f"allowed for {self._command}"
            ),
            "imap_response_too_large",
            command=self._command,
            what=what,
            size=size,
            limit=limit,
        )

    def _fail(self, exc: imaplib.IMAP4.abort, event: str, **fields: Any) -> None:
        with self._lock:
            first = self.failure is None
            if first:
                self.failure = exc
            entry, self._entry = self._entry, None
        if entry is not None:
            _REAPER.cancel(entry)
        if first:
            log.error(event, mailbox=self.mailbox, **fields)
            self.cut()
        raise exc

    def end(self) -> None:
        """The connection is being closed: no deadline any more."""
        with self._lock:
            entry, self._entry = self._entry, None
            self.session_deadline = None
        if entry is not None:
            _REAPER.cancel(entry)

    def cut(self) -> None:
        """Shut the socket down: a read blocked on it returns at once (EOF)."""
        sock = getattr(self.imap, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError, ValueError):
                # The plain socket's shutdown, also under TLS: SSLSocket.shutdown would
                # drop the SSL object under a read still running in another thread.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Reaper:
    """One daemon thread for every connection's deadline: a heap of (when, n, guard).

    A cancelled deadline stays in the heap until it comes up, unless cancelled ones
    are most of it: then the heap is rebuilt without them. Every command arms one (five
    minutes ahead, an IDLE fifteen), so with a few commands a second the cancelled ones
    would otherwise hold tens of thousands of entries (issue 24's soak)."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._heap: list[list[Any]] = []
        self._cancelled = 0  # about how many entries of the heap are cancelled
        self._count = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, guard: Guard, when: float) -> list[Any]:
        entry = [when, next(self._count), guard]
        with self._cv:
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="imap-deadlines",
                                                daemon=True)  # fmt: skip
                self._thread.start()
            elif self._heap[0] is entry:
                self._cv.notify()
        return entry

    def cancel(self, entry: list[Any]) -> None:
        with self._cv:
            if entry[2] is None:
                return
            entry[2] = None  # left in the heap, dropped when it comes up
            self._cancelled += 1
            if self._cancelled > COMPACT_AFTER and 2 * self._cancelled > len(self._heap):
                self._heap = [e for e in self._heap if e[2] is not None]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _run(self) -> None:
        while True:
            with self._cv:
                while True:
                    heap = self._heap
                    while heap and heap[0][2] is None:
                        heapq.heappop(heap)
                        self._cancelled = max(0, self._cancelled - 1)
                    now = time.monotonic()
                    if heap and heap[0][0] <= now:
                        entry = heapq.heappop(heap)
                        break
                    self._cv.wait(heap[0][0] - now if heap else None)
            guard = entry[2]
            if guard is not None:
                try:
                    guard.expire(entry)
                except Exception:  # never let one connection stop the others' deadlines
                    log.exception("imap_deadline_error")


_REAPER = _Reaper()


class _GuardedIMAP4(imaplib.IMAP4):
    """imaplib's documented overrides (``read``, ``readline``, ``send``) through a `Guard`."""

    _guard: Guard

    def read(self, size: int) -> bytes:
        guard = self._guard
        guard.literal(size)
        data = super().read(size)
        if guard.failure is not None:  # a cut by the reaper reads as EOF: say why
            guard.check()
        return data

    def readline(self) -> bytes:
        guard = self._guard
        line = super().readline()  # after a cut: EOF at once
        if guard.failure is not None:
            guard.check()  # say why
        guard.line(line)
        return line

    # imaplib sends only bytes, and its tag prefix is bytes (typeshed: Buffer, str).
    def send(self, data: bytes) -> None:  # type: ignore[override]
        self._guard.sent(data, self.tagpre)  # type: ignore[arg-type]
        super().send(data)


class _GuardedPlain(_GuardedIMAP4, IMAP4WithTimeout):
    def __init__(self, guard: Guard, host: str, port: int, timeout: float | None) -> None:
        self._guard = guard
        guard.imap = self
        super().__init__(host, port, timeout)


class _GuardedTLS(_GuardedIMAP4, IMAP4_TLS):
    def __init__(
        self, guard: Guard, host: str, port: int, ssl_context: Any, timeout: float | None
    ) -> None:
        self._guard = guard
        guard.imap = self
        # IMAP4_TLS.__init__, next in the MRO; untyped, so mypy sees imaplib.IMAP4's.
        super().__init__(host, port, ssl_context, timeout)  # type: ignore[call-arg]


class GuardedClient(IMAPClient):
    """An `IMAPClient` whose every read passes `guard`, the greeting included."""

    def __init__(self, *args: Any, guard: Guard, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(*args, **kwargs)

    def _create_IMAP4(self) -> imaplib.IMAP4:
        # imapclient 3.x/4.x's own method, with our classes (no stream connections here).
        connect_timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _GuardedTLS(self.guard, self.host, self.port, self.ssl_context, connect_timeout)
        return _GuardedPlain(self.guard, self.host, self.port, connect_timeout)


def failure(client: object) -> imaplib.IMAP4.abort | None:
    """What ended `client`'s connection, when its guard did (None otherwise)."""
    guard = getattr(client, "guard", None)
    return guard.failure if isinstance(guard, Guard) else None


def session_deadline(client: object) -> float | None:
    """The session deadline `client` was opened with (for a second connection)."""
    guard = getattr(client, "guard", None)
    return guard.session_deadline if isinstance(guard, Guard) else None


def end(client: object) -> None:
    """`client`'s connection is being closed: drop its deadline."""
    guard = getattr(client, "guard", None)
    if isinstance(guard, Guard):
        guard.end()
