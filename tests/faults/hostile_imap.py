"""A hostile IMAP server on loopback: just enough IMAP to reach the hostile part.

No real server sends a 2 GB literal, an endless stream of untagged responses or one
byte every few seconds, so this one does (issue 18, section 2). It speaks the part of
IMAP4rev1 that `ackwatch run --once` and a watcher use before the hostile answer:
greeting, CAPABILITY, LOGIN / AUTHENTICATE PLAIN, EXAMINE, UID SEARCH, UID FETCH,
STATUS, NOOP, LOGOUT. Every folder holds one message (UID 1).

    with HostileImap("huge_literal") as server:   # server.port on 127.0.0.1
        ...

Modes (what answers the first EXAMINE, or the FETCH of the headers):

* ``huge_literal``: the header FETCH announces ``{2000000000}`` and streams zeros as fast
  as the client takes them;
* ``endless_untagged``: EXAMINE is answered by ``* OK [ALERT] ...`` lines, without end;
* ``dribble``: EXAMINE is answered one byte every `interval` seconds, without end;
* ``dribble_greeting``: the greeting itself comes one byte every `interval` seconds.

Threads only; `close` shuts every connection and returns quickly.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time

HOST = "127.0.0.1"
HUGE = 2_000_000_000
_COMMAND = re.compile(rb"(?P<tag>\S+) (?P<verb>UID [A-Za-z]+|[A-Za-z]+)(?P<args>.*)")
_HEADER = (
    b"From: Client <client@hostile.example>\r\nTo: anna@agency.example\r\n"
    b"Subject: hello\r\nMessage-ID: <h1@hostile.example>\r\n"
    b"Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\n"
)


_ALERT = b"* OK [ALERT] " + b"all your mail are belong to us " * 3 + b"\r\n"


class HostileImap:
    def __init__(self, mode: str, *, interval: float = 1.0) -> None:
        self.mode = mode
        self.interval = interval
        self.sent_bytes = 0  # hostile bytes written, all connections
        self.commands: list[bytes] = []  # verbs received, in order
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.1)
        self.host, self.port = HOST, self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="hostile-imap", daemon=True)

    def __enter__(self) -> HostileImap:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()
        self._thread.join(2)

    # ------------------------------------------------------------------ serving
    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(30)
            if self.mode == "dribble_greeting":
                self._dribble(conn, b"* OK hostile server ready, eventually\r\n")
                return
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hostile ready\r\n")
            reader = conn.makefile("rb")
            while not self._closed.is_set():
                line = reader.readline(65536)
                if not line:
                    return
                m = _COMMAND.match(line.rstrip(b"\r\n"))
                if m is None:
                    continue  # an AUTHENTICATE response, a literal
                tag, verb = m.group("tag"), m.group("verb").upper()
                self.commands.append(verb)
                if not self._answer(conn, tag, verb, m.group("args")):
                    return

    def _answer(self, conn: socket.socket, tag: bytes, verb: bytes, args: bytes) -> bool:
        ok = tag + b" OK done\r\n"
        if verb == b"CAPABILITY":
            conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + ok)
        elif verb == b"AUTHENTICATE":
            conn.sendall(b"+ \r\n")  # the response line is skipped by the loop
            conn.sendall(ok)
        elif verb in (b"EXAMINE", b"SELECT"):
            if self.mode == "endless_untagged":
                self._flood(conn, _ALERT * 1000)
                return False
            if self.mode == "dribble":
                self._dribble(conn, b"* 1 EXISTS\r\n" * 1000)
                return False
            conn.sendall(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 2] ok\r\n"
                         + tag + b" OK [READ-ONLY] done\r\n")  # fmt: skip
        elif verb == b"UID SEARCH":
            conn.sendall(b"* SEARCH 1\r\n" + ok)
        elif verb == b"UID FETCH":
            head = b'* 1 FETCH (UID 1 INTERNALDATE "04-Dec-2026 10:00:00 +0000" FLAGS ()'
            if b"HEADER.FIELDS" in args.upper() and self.mode == "huge_literal":
                conn.sendall(head + b" BODY[HEADER.FIELDS (FROM)] {%d}\r\n" % HUGE)
                self._flood(conn, bytes(1 << 20))
                return False
            if b"HEADER.FIELDS" in args.upper():
                conn.sendall(head + b" BODY[HEADER.FIELDS (FROM)] {%d}\r\n" % len(_HEADER)
                             + _HEADER + b")\r\n" + ok)  # fmt: skip
            else:
                conn.sendall(head + b")\r\n" + ok)
        elif verb == b"LOGOUT":
            conn.sendall(b"* BYE bye\r\n" + ok)
            return False
        else:  # LOGIN, NOOP, STATUS, ENABLE...
            conn.sendall(ok)
        return True

    def _flood(self, conn: socket.socket, chunk: bytes) -> None:
        """Write `chunk` again and again until the client goes away (or 60 s)."""
        end = time.monotonic() + 60
        while not self._closed.is_set() and time.monotonic() < end:
            conn.sendall(chunk)
            self.sent_bytes += len(chunk)

    def _dribble(self, conn: socket.socket, text: bytes) -> None:
        """One byte of `text` every `interval` seconds, until the client goes away."""
        for i in range(len(text)):
            if self._closed.wait(self.interval):
                return
            conn.sendall(text[i : i + 1])
            self.sent_bytes += 1
