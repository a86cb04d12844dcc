"""Waiting for PostgreSQL notifications on a connection of its own (``LISTEN``): how the
node that leads hears at once that another node stored mail (`daemon.cluster`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable

import psycopg

from ackwatch.config.model import DatabaseConfig
from ackwatch.store.postgres.connection import connect


def listen(
    config: DatabaseConfig, password: str | None, channels: Iterable[str],
    heard: Callable[[str, str], None], stop: threading.Event,
) -> None:
    """Call ``heard(channel, payload)`` for each notification on ``channels`` until
    ``stop`` is set; returns when it is (within a second), raises `psycopg.Error` when
    the connection fails (the caller connects again). The channels are identifiers of
    ours, never user input."""
    conn = connect(config, password, readonly=False)
    try:
        for channel in channels:
            conn.raw.execute(f"LISTEN {channel}")
        while not stop.is_set():
            for n in conn.raw.notifies(timeout=1.0):
                heard(n.channel, n.payload)
                if stop.is_set():
                    break
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.close()
