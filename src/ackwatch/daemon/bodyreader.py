"""Reading acknowledgements for promises, off the core thread.

The promise keeper (`keeper`) decides which messages to read; a `BodyReader` thread
does the reading: it opens its own short-lived connection to the mailbox holding a copy
(`connection.connect`; the sender's Sent copy first), EXAMINEs the folder and fetches
``BODY.PEEK[<first text part>]<0.16384>`` (`body.fetch_first_text_part`), runs
`promise_text.find_promise` on the text right there and hands back only the promise
(instant + sentence) as a `BodyRead` event; the text is dropped. The watchers are
untouched (one IDLE connection each), so a mailbox never has more than two connections:
its watcher's and, while a read is under way, the reader's. In ``ackwatch run --once``
(no threads) the same reads run inline (`read_bodies`).
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import structlog

from ackwatch.config import CalendarConfig, Config
from ackwatch.mail import body, connection

if TYPE_CHECKING:
    from imapclient import IMAPClient

    from ackwatch.core.promise_text import Promise

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReadRequest:
    key: str  # the message to read
    copies: tuple[tuple[str, str, int, int], ...]  # (mailbox, folder, uid, uidvalidity)
    sent: dt.datetime  # its received time: the reference instant of the promise
    account: str | None  # who wrote it (an account), else the item's account
    language: str | None
    calendar: CalendarConfig
    attempts: int  # earlier failed attempts
    thread: str
    item_key: str
    client: str | None
    client_address: str
    subject: str


@dataclass(frozen=True)
class BodyRead:
    """A read's outcome (reader thread -> core): never the text, only the promise."""

    request: ReadRequest
    outcome: Literal["promise", "none", "retry"]
    promise: Promise | None = None
    error: str | None = None
    text_read: bool = False  # a text part was read (a "none" then means: no date named)


def read_bodies(
    config: Config,
    requests: Sequence[ReadRequest],
    *,
    connect: Callable[..., object] = connection.connect,
) -> list[BodyRead]:
    """Read the first text part of each request's message (one connection per mailbox
    for the whole batch, logged out at the end) and look for a promise in it."""
    clients: dict[str, IMAPClient] = {}
    broken: dict[str, str] = {}
    out: list[BodyRead] = []
    try:
        for req in requests:
            error: str | None = None
            result: BodyRead | None = None
            for mailbox, folder, uid, uidvalidity in req.copies:
                mb = config.mailbox(mailbox)
                if mb is None:
                    continue
                if mailbox in broken:
                    error = broken[mailbox]
                    continue
                try:
                    client = clients.get(mailbox)
                    if client is None:
                        client = clients[mailbox] = connect(mb)
                    text = body.fetch_first_text_part(
                        client,
                        folder,
                        uid,
                        uidvalidity=uidvalidity,
                    )
                except Exception as exc:  # connection or protocol failure: retry later
                    error = (
                        str(exc)[:200] if isinstance(exc, connection.ImapError) else type(exc).__name__
                    )
                    broken[mailbox] = error
                    dead = clients.pop(mailbox, None)
                    if dead is not None:
                        connection.shutdown(dead)
                    continue
                if text is None:  # gone, UIDVALIDITY changed, or no text part
                    continue
                from ackwatch.core.promise_text import (
                    find_promise,  # 43 patterns: compiled only when used
                )

                found = find_promise(
                    text, sent=req.sent, calendar=req.calendar, language_hint=req.language
                )
                del text
                result = BodyRead(req, "promise" if found else "none", found, text_read=True)
                break
            if result is None:
                result = BodyRead(req, "retry", None, error) if error else BodyRead(req, "none")
            out.append(result)
    finally:
        for client in clients.values():
            connection.logout(client)
    return out


class BodyReader(threading.Thread):
    """Reads bodies off the core thread; results go to ``emit`` (the daemon's queue)."""

    def __init__(self, get_config: Callable[[], Config], emit: Callable[[object], None]):
        super().__init__(name="promise-reader", daemon=True)
        self._get_config = get_config
        self._emit = emit
        self._requests: queue.SimpleQueue[ReadRequest | None] = queue.SimpleQueue()
        self._stop_event = threading.Event()

    def submit(self, requests: Iterable[ReadRequest]) -> None:
        for r in requests:
            self._requests.put(r)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_event.set()
        self._requests.put(None)
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    def run(self) -> None:
        while not self._stop_event.is_set():
            first = self._requests.get()
            if first is None or self._stop_event.is_set():
                continue
            batch = [first]
            while True:
                try:
                    more = self._requests.get_nowait()
                except queue.Empty:
                    break
                if more is not None:
                    batch.append(more)
            try:
                results = read_bodies(self._get_config(), batch)
            except Exception as exc:  # a bug: report every request as failed, keep going
                log.exception("promise_read_error")
                results = [BodyRead(r, "retry", None, type(exc).__name__) for r in batch]
            for result in results:
                self._emit(result)
