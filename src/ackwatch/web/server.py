"""The board served by the daemon (`web.listen`): `WebBoard` ties the state cache, the
application and the HTTP server together.

The server is `httpserve.HttpServer` (waitress), as for the metrics, with limits sized
for a handful of people keeping the page open all day, each polling once a second:
four workers, at most 64 connections, a connection idle for 30 s closed, a request's
line and headers at most 16 kB, and no body (the board takes none).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from ackwatch.config import Config
from ackwatch.daemon.httpserve import HttpServer, Limits, parse_listen
from ackwatch.store import Store
from ackwatch.web.app import BoardApp
from ackwatch.web.state import StateCache

LIMITS = Limits(
    threads=4,
    connection_limit=64,
    idle_timeout=30,
    cleanup_interval=2,
    backlog=32,
    max_request_header_size=16_384,
    max_request_body_size=1_024,
    pass_forwarded_headers=True,  # believed only from `web.trusted_proxy` (`access`)
)


class WebBoard:
    """The board of one daemon. `changed` after each step of the core loop; `close` at
    the end. ``store`` is the daemon's: the board only ever opens read-only readers of it."""

    def __init__(self, store: Store, config: Callable[[], Config],
                 now: Callable[[], dt.datetime]) -> None:
        self.cache = StateCache(store.open_reader, config, now)
        self.app = BoardApp(self.cache, store.open_reader, config, now)
        self._server: HttpServer | None = None

    def serve(self, listen: str) -> int:
        """Listen on ``host:port`` and serve; the port (`OSError` if it cannot bind)."""
        host, port = parse_listen(listen)
        server = HttpServer(self.app, host, port, limits=LIMITS, name="web")
        server.start()
        self._server = server
        return server.port

    def changed(self) -> None:
        self.cache.changed()

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
