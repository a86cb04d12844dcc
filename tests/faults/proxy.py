"""A loopback TCP proxy of the fault suite: put it between ackwatch and a server, then break it.

    with FaultProxy(("127.0.0.1", dovecot.port)) as proxy:
        ...config points at proxy.host:proxy.port...
        proxy.stall()        # keep every connection open, forward nothing (a hung server)
        proxy.resume()       # forward again (what was held back is delivered)
        proxy.cut()          # close every open connection now (RST-like EOF both ways)
        proxy.cut_after(40)  # close each connection after 40 more bytes from the server
        proxy.refuse()       # close the listening socket: connects get ECONNREFUSED
        proxy.accept()       # listen again on the same port
        proxy.delay = 1.5    # wait this long before forwarding each server->client chunk
        proxy.split = 0.3    # forward each server->client chunk in two halves, 0.3 s apart

Threads only (one acceptor, one pump per direction per connection), loopback only, and
every blocking call has a short timeout so that `close()` always returns quickly.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time

_TICK = 0.05


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for s in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()


class FaultProxy:
    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1", port: int = 0) -> None:
        if not host.startswith("127."):
            raise ValueError("the fault proxy listens on loopback only")
        self.target = target
        self.host = host
        self.port = port
        self.delay = 0.0  # seconds before each server->client chunk is forwarded
        # Seconds between the two halves of each server->client chunk (0: whole): a server
        # that writes a response line in pieces, as pymap sometimes does.
        self.split = 0.0
        self.connections = 0  # accepted so far
        self._flowing = threading.Event()
        self._flowing.set()
        self._cut_after: int | None = None
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._listener: socket.socket | None = None
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FaultProxy:
        self.accept()
        return self

    def close(self) -> None:
        self._closed.set()
        self._flowing.set()
        self.refuse()
        self.cut()
        for t in self._threads:
            t.join(2)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ faults
    def accept(self) -> None:
        """(Re)open the listening socket on the same port."""
        if self._listener is not None:
            return
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(32)
        s.settimeout(_TICK)
        self.port = s.getsockname()[1]
        self._listener = s
        self._spawn(self._accept_loop, s)

    def refuse(self) -> None:
        """Stop listening: new connections are refused (open ones are left alone)."""
        s, self._listener = self._listener, None
        if s is not None:
            with contextlib.suppress(OSError):
                s.close()

    def stall(self) -> None:
        """Forward nothing (either way) until `resume`; connections stay open."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def cut(self) -> int:
        """Close every open connection; returns how many."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for p in pairs:
            p.close()
        return len(pairs)

    def cut_after(self, nbytes: int | None) -> None:
        """Close each connection once `nbytes` more server bytes went through (mid-response);
        None turns it off."""
        self._cut_after = nbytes

    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for p in self._pairs if not p.closed.is_set())

    # ------------------------------------------------------------------ internals
    def _spawn(self, fn, *args) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()]
        self._threads.append(t)
        t.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._closed.is_set() and self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                with contextlib.suppress(OSError):
                    client.close()
                continue
            for s in (client, upstream):
                s.settimeout(5)
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.append(pair)
                self.connections += 1
            self._spawn(self._pump, pair, client, upstream, False)
            self._spawn(self._pump, pair, upstream, client, True)

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        budget = self._cut_after if from_server else None
        while not pair.closed.is_set():
            if not self._flowing.is_set():
                time.sleep(_TICK)
                continue
            try:
                if not select.select([src], [], [], _TICK)[0]:
                    continue
                data = src.recv(65536)
            except (OSError, ValueError):
                break
            if not data:
                break
            if from_server:
                if self.delay:
                    end = time.monotonic() + self.delay
                    while time.monotonic() < end and not pair.closed.is_set():
                        time.sleep(_TICK)
                budget = self._cut_after if budget is None else budget
                if budget is not None:
                    if len(data) >= budget:
                        with contextlib.suppress(OSError):
                            dst.sendall(data[:budget])
                        break
                    budget -= len(data)
            while not self._flowing.is_set() and not pair.closed.is_set():
                time.sleep(_TICK)  # stalled while holding data: deliver it on resume
            try:
                if from_server and self.split and len(data) > 1:
                    dst.sendall(data[: len(data) // 2])
                    time.sleep(self.split)
                    data = data[len(data) // 2 :]
                dst.sendall(data)
            except OSError:
                break
        pair.close()
        with self._lock:
            if pair in self._pairs:
                self._pairs.remove(pair)
