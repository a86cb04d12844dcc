"""The body reads one promise keeper update asks for.

A read is asked for once per message (`WantedReads`: none for a message being read
already); what the reader needs comes from the store (`read_request`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable
from typing import Any

from ackwatch.config import Config
from ackwatch.core import promise_rules as promises
from ackwatch.core.message import Message
from ackwatch.daemon.asking import ReadRequestFor
from ackwatch.daemon.bodyreader import ReadRequest
from ackwatch.daemon.parsedmail import messages_of
from ackwatch.store import Store, StoredCopy

Parse = Callable[[Iterable[StoredCopy]], list[Message]]  # stored copies -> their parses


class SentBy:
    """Key -> (first received, sender) of stored mail, read from the store on demand."""

    def __init__(self, store: Store, parse: Parse = messages_of):
        self._store = store
        self._parse = parse
        self._known: dict[str, tuple[dt.datetime, str] | None] = {}

    def get(self, key: str) -> tuple[dt.datetime, str] | None:
        if key not in self._known:
            copies = self._parse(self._store.load_copies(keys=[key]))
            first = min(copies, key=lambda m: m.received, default=None)
            self._known[key] = None if first is None else (first.received, first.sender.address)
        return self._known[key]


class WantedReads:
    """The reads one keeper update asks for (``requests``, by message key) and the times
    of the retries it found not due yet (``retry_times``). ``inflight``: the messages
    the reader has already been given."""

    def __init__(self, store: Store, config: Config, inflight: Collection[str], parse: Parse):
        self._store = store
        self._config = config
        self._inflight = inflight
        self._sent_by = SentBy(store, parse)
        self.requests: dict[str, ReadRequest] = {}
        self.retry_times: list[dt.datetime] = []

    def asked(self, key: str) -> bool:
        """``key`` is being read, or this update asks for it already."""
        return key in self._inflight or key in self.requests

    def want(
        self, key: str, *, attempts: int, item: dict[str, Any], fallback_account: str | None
    ) -> None:
        """Ask for ``key`` (an acknowledgement or a promise's follow-up), unless it is no
        longer stored."""
        req = read_request(self._store, self._config, key, attempts=attempts, item=item,
                           fallback_account=fallback_account, sent_by=self._sent_by)  # fmt: skip
        if req is not None:
            self.requests[key] = req

    def request_for(self) -> ReadRequestFor:
        """`read_request` as the "say by when" notes ask for it."""

        def request(
            key: str, attempts: int, item: dict[str, object], fallback: str | None
        ) -> ReadRequest | None:
            return read_request(self._store, self._config, key, attempts=attempts, item=item,
                                fallback_account=fallback, sent_by=self._sent_by)  # fmt: skip

        return request


def read_request(
    store: Store,
    config: Config,
    key: str,
    *,
    attempts: int,
    item: dict[str, Any],
    fallback_account: str | None,
    sent_by: SentBy,
) -> ReadRequest | None:
    """What the reader needs to read ``key`` (an item's acknowledgement or a promise's
    follow-up); None when it is no longer stored."""
    seen = sent_by.get(key)
    if seen is None:
        return None
    sent, sender = seen
    copies = tuple(store.message_copies(key))
    if not copies:
        return None
    account = sender if config.account(sender) is not None else fallback_account
    acc = config.account(account)
    return ReadRequest(
        key=key,
        copies=copies,
        sent=sent,
        account=account,
        language=acc.language if acc is not None else None,
        calendar=promises.account_calendar(config, account),
        attempts=attempts,
        thread=str(item["thread"]),
        item_key=str(item["item_key"]),
        client=item["client"],
        client_address=str(item["client_address"]),
        subject=str(item["subject"]),
    )


__all__ = [
    "Parse",
    "SentBy",
    "WantedReads",
    "read_request",
]
