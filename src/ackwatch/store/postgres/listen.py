"""Waiting for PostgreSQL notifications on a connection of its own (``LISTEN``): how the
node that leads hears at once that another node stored mail (`daemon.cluster`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import psycopg

from ackwatch.config.model import DatabaseConfig
from ackwatch.store.postgres.connection import connect


def listen(
    config: DatabaseConfig, password: str | None, channel: str,
    heard: Callable[[], None], stop: threading.Event,
) -> None:
    """Call ``heard`` for each notification on ``channel`` until ``stop`` is set; returns
    when it is (within a second), raises `psycopg.Error` when the connection fails (the
    caller connects again). ``channel`` is an identifier of ours, never user input."""
    conn = connect(config, password, readonly=False)
    try:
        conn.raw.execute(f"LISTEN {channel}")
        while not stop.is_set():
            for _ in conn.raw.notifies(timeout=1.0):
                heard()
                if stop.is_set():
                    break
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.close()
