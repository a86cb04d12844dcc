"""Serve a WSGI app (the metrics endpoint, the web board) without risk to the daemon.

prometheus-client's own server starts a thread per connection and never times one out:
200 idle connections made the core loop fail to start threads (a due nudge held back),
250 used up the file descriptors (the state database could not be opened). This serves
with waitress instead, whose cost is fixed whatever the clients do:

- one I/O thread (``ackwatch-http``) and ``threads`` workers, started once;
- at most ``connection_limit`` open connections: at the limit waitress stops accepting,
  further clients wait in the kernel's ``backlog`` (no descriptor of ours) or are
  refused by it;
- a connection idle for ``idle_timeout`` seconds is closed (checked every
  ``cleanup_interval`` seconds).

So the server holds at most ``connection_limit + 4`` descriptors (listening socket,
waitress' wake-up pipe) and ``threads + 1`` threads. waitress is imported only when a
server is started.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Limits:
    """What one server may use, whatever its clients do."""

    threads: int = 2
    connection_limit: int = 32
    idle_timeout: int = 10  # seconds without a byte before a connection is closed
    cleanup_interval: int = 2  # seconds between checks for idle connections
    backlog: int = 16
    # waitress' own defaults; the board asks for far less (`web.server`).
    max_request_header_size: int = 262_144  # bytes of request line and headers
    max_request_body_size: int = 1_073_741_824
    # waitress drops X-Forwarded-For and its kind unless told which proxy to believe;
    # an app that decides that itself (the board: `web.access`) gets them.
    pass_forwarded_headers: bool = False


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` / ``"[::1]:9464"`` / ``":9464"`` -> (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class HttpServer:
    """``app`` served on ``host:port`` by waitress on threads of its own.

    The listening socket is bound in the constructor (a taken port raises `OSError`
    there, before any thread starts); `start` serves; `close` stops within about a
    second and releases every socket and thread."""

    def __init__(
        self, app: WsgiApp, host: str, port: int, *, limits: Limits = Limits(),
        name: str = "http",
    ) -> None:
        self.name = name
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            from waitress.server import create_server

            self._server: Any = create_server(
                app,
                sockets=[sock],
                threads=limits.threads,
                connection_limit=limits.connection_limit,
                channel_timeout=limits.idle_timeout,
                cleanup_interval=limits.cleanup_interval,
                backlog=limits.backlog,
                max_request_header_size=limits.max_request_header_size,
                max_request_body_size=limits.max_request_body_size,
                clear_untrusted_proxy_headers=not limits.pass_forwarded_headers,
                asyncore_use_poll=True,  # select() fails beyond descriptor 1023
                ident="ackwatch",
            )
        except BaseException:
            sock.close()
            raise
        self.port: int = sock.getsockname()[1]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"ackwatch-{self.name}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from waitress import wasyncore

        server = self._server
        try:
            while not self._stopping.is_set() and server._map:
                wasyncore.loop(timeout=1.0, map=server._map, use_poll=True, count=1)
        finally:
            # Everything is closed on this thread, which owns the socket map.
            server.task_dispatcher.shutdown(timeout=1.0)
            wasyncore.close_all(server._map)

    def close(self, timeout: float = 3.0) -> None:
        """Stop serving and release the sockets and threads (idempotent)."""
        self._stopping.set()
        thread = self._thread
        if thread is None:  # never started: close the bound socket here
            from waitress import wasyncore

            self._server.task_dispatcher.shutdown(timeout=1.0)
            wasyncore.close_all(self._server._map)
            return
        if thread.is_alive():
            self._server.pull_trigger()  # wakes the I/O thread from its poll
            thread.join(timeout)
