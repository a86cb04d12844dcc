"""The stored forms of values: instants as text that sorts as they do, flag sets and
mailbox lists as JSON. Memoized where a sync meets the same few values thousands of times."""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import overload


@overload
def iso(t: dt.datetime) -> str: ...
@overload
def iso(t: dt.datetime | None) -> str | None: ...
def iso(t: dt.datetime | None) -> str | None:
    """The stored form of an instant: UTC, always six digits of microseconds
    ("2026-11-20T09:30:05.000000+00:00"), so that the text sorts as the instant does."""
    if t is None:
        return None
    if t.tzinfo is not dt.UTC:
        if t.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        t = t.astimezone(dt.UTC)
    if t.microsecond:
        return t.isoformat()
    # The usual case (IMAP times have whole seconds): isoformat's timespec argument alone
    # costs a fifth of the call, on five times per item.
    return t.isoformat()[:19] + ".000000+00:00"


@overload
def from_iso(text: str) -> dt.datetime: ...
@overload
def from_iso(text: str | None) -> dt.datetime | None: ...
def from_iso(text: str | None) -> dt.datetime | None:
    """The instant of a stored time (None stays None)."""
    return None if text is None else dt.datetime.fromisoformat(text)


@functools.lru_cache(maxsize=256)
def flags_json(flags: frozenset[str]) -> str:
    """The stored form of a flag set (a sync sees a handful of sets, thousands of times)."""
    return json.dumps(sorted(flags))


@functools.lru_cache(maxsize=256)
def names_json(names: tuple[str, ...]) -> str:
    """The stored form of an item's mailbox names (a few combinations, thousands of items)."""
    return json.dumps(list(names))
