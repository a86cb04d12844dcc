"""Threads across every watched mailbox and folder (DESIGN.md "Thread").

Pure: `assign_threads` maps each message key to a thread id; independent of the order
in which messages are given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from .message import Message


def normalize_subject(subject: str) -> str:
    """Strip reply/forward prefixes in many languages, list tags, whitespace; casefold."""
    raise NotImplementedError


def assign_threads(
    messages: Iterable[Message],
    *,
    subject_window: dt.timedelta = dt.timedelta(days=30),
    agency_addresses: frozenset[str] | None = None,
) -> Mapping[str, str]:
    """Message key -> thread id for every message given."""
    raise NotImplementedError
