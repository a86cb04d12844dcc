"""The HTTP server of the metrics endpoint (and of the web board to come): whatever its
clients do, it holds a bounded number of connections, threads and descriptors.

The waits here are generous upper bounds on a server that must close or answer, as
issue 18 asks for hostile clients; nothing asserts a lower bound."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from tests.support.flood import idle_connections

from ackwatch.config import is_loopback
from ackwatch.daemon.httpserve import HttpServer, Limits, parse_listen


def hello(environ: dict, start_response) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello\n"]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def get(port: int, timeout: float = 10.0) -> bytes:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout).read()


@pytest.fixture
def serve() -> Iterator:
    servers: list[HttpServer] = []

    def start(limits: Limits) -> HttpServer:
        server = HttpServer(hello, "127.0.0.1", 0, limits=limits, name="test")
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_idle_connections_beyond_the_limit_cost_the_server_no_descriptor(serve):
    before = open_fds()
    server = serve(Limits(connection_limit=8, idle_timeout=60))
    with idle_connections(server.port, 200) as clients:
        time.sleep(1.0)  # let the server accept all it will
        server_fds = open_fds() - before - len(clients)
        # The listening socket, the wake-up pipe and at most `connection_limit` accepted.
        assert server_fds <= 8 + 4, server_fds


def test_an_idle_connection_is_closed_after_the_idle_timeout(serve):
    server = serve(Limits(idle_timeout=1, cleanup_interval=1))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as idle:
        assert idle.recv(1) == b""  # closed by the server, well within the 10 s bound


def test_the_server_answers_again_once_idle_connections_time_out(serve):
    server = serve(Limits(connection_limit=8, idle_timeout=1, cleanup_interval=1))
    with idle_connections(server.port, 50):
        assert get(server.port, timeout=20) == b"hello\n"


def test_threads_stay_fixed_under_a_flood(serve):
    before = threading.active_count()
    server = serve(Limits(threads=2, connection_limit=8, idle_timeout=60))
    with idle_connections(server.port, 100):
        time.sleep(1.0)
        assert threading.active_count() - before <= 3  # one I/O thread, two workers


def test_close_releases_the_port_and_the_threads(serve):
    before = {t.name for t in threading.enumerate()}
    server = serve(Limits())
    assert get(server.port) == b"hello\n"
    server.close()
    deadline = time.monotonic() + 5
    while {t.name for t in threading.enumerate()} - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {t.name for t in threading.enumerate()} - before == set()
    with socket.socket() as s:  # the port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", server.port))


def test_a_taken_port_raises_before_any_thread_starts():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        before = threading.active_count()
        with pytest.raises(OSError):
            HttpServer(hello, "127.0.0.1", taken.getsockname()[1])
        assert threading.active_count() == before


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [("127.0.0.1:9464", "127.0.0.1", 9464), ("[::1]:9464", "::1", 9464),
     ("localhost:80", "localhost", 80)],
)
def test_listen_is_host_and_port(listen, host, port):
    assert parse_listen(listen) == (host, port)


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.0.2.7", False), ("metrics.example", False),
])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_closing_twice_or_unstarted_is_harmless():
    server = HttpServer(hello, "127.0.0.1", 0)
    server.close()
    server.close()
    with contextlib.suppress(OSError):
        get(server.port, timeout=1)
