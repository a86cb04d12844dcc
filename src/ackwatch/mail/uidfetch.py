"""``UID FETCH`` on a sync's connection: the commands (pipelined in batches), their
answers read (`imapfetch.read_answer`) and parsed (`imapfetch.parse_common` for a first
sync's shape, imapclient's parser for any other, one message at a time for an answer
neither can read) and turned into `FetchedMessage` values.

Only ``BODY.PEEK`` is ever fetched: reading never sets ``\\Seen``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from imapclient import exceptions as imap_exc
from imapclient.imapclient import seq_to_parenstr_upper
from imapclient.response_parser import parse_fetch_response

from ackwatch.core.message import HEADER_FIELDS, canonical_flags
from ackwatch.mail import imapfetch
from ackwatch.mail.connection import decode, describe

if TYPE_CHECKING:
    from imapclient import IMAPClient

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    internaldate: dt.datetime  # aware, UTC
    flags: frozenset[str]
    header_bytes: bytes
    gm_thrid: int | None = None

    @property
    def received(self) -> dt.datetime:
        """The INTERNALDATE, under the store's name (`store.StorableMessage`)."""
        return self.internaldate



def _header_item() -> str:
    return f"BODY.PEEK[HEADER.FIELDS ({' '.join(f.upper() for f in HEADER_FIELDS)})]"


def fetch_items(client: IMAPClient) -> list[str]:
    items = ["UID", "INTERNALDATE", "FLAGS", _header_item()]
    if client.has_capability("X-GM-EXT-1"):
        items.append("X-GM-THRID")
    return items


def uid_set(uids: Iterable[int]) -> str:
    """A compact UID set: 1:3,7,9:12."""
    ordered = sorted(set(int(u) for u in uids))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def _send_uid_fetch(
    client: IMAPClient, msgset: str, items: Sequence[str], modifiers: Sequence[str] | None = None
) -> bytes:
    """Send ``UID FETCH <msgset> (<items>) [(<modifiers>)]``; returns its tag."""
    args = ["FETCH", msgset.encode("ascii"), seq_to_parenstr_upper(items)]
    if modifiers:
        args.append(seq_to_parenstr_upper(modifiers))
    imap = client._imap
    # Unsolicited FETCH responses left over from earlier commands (flag changes by other
    # sessions, keyed by sequence number) must not be mixed into this answer.
    imap.untagged_responses.pop("FETCH", None)
    return imap._command("UID", *args)


def _read_uid_fetch(client: IMAPClient, tag: bytes) -> list[Any]:
    """The raw untagged FETCH data answering `tag` (see `imapfetch.read_answer`)."""
    typ, data, fetched = imapfetch.read_answer(client._imap, tag, "FETCH")
    client._checkok("fetch", typ, data)
    return fetched


def _raw_uid_fetch(
    client: IMAPClient, msgset: str, items: Sequence[str], modifiers: Sequence[str] | None = None
) -> list[Any]:
    """``UID FETCH <msgset> (<items>) [(<modifiers>)]``; the raw untagged FETCH data.

    imapclient's ``fetch()`` cannot be used with ``n:*``: it keeps only the answers whose
    UID equals ``int()`` of a requested id, and ``int("5:*")`` fails.
    """
    return _read_uid_fetch(client, _send_uid_fetch(client, msgset, items, modifiers))


def _pipelined_fetch(
    client: IMAPClient, msgsets: Sequence[str], items: Sequence[str]
) -> Iterator[list[Any]]:
    """The raw answers to ``UID FETCH <msgset> (<items>)`` for each of `msgsets`, in order.

    Still one command at a time on the wire, but batch k+1 is requested as soon as the
    answer to batch k has been read, before the caller parses it: the server looks up
    the next batch while we parse this one. Only the command being read is ever
    unanswered when a read fails. `fetch_new` reads every answer; were it interrupted
    anyway (KeyboardInterrupt), the answer left on the wire would be read like any late
    answer: its completion filed by tag, its FETCH responses joining the next FETCH
    answer, whose callers keep only the UIDs they asked for.
    """
    if not msgsets:
        return
    tag = _send_uid_fetch(client, msgsets[0], items)
    for following in msgsets[1:]:
        data = _read_uid_fetch(client, tag)
        tag = _send_uid_fetch(client, following, items)
        yield data
    yield _read_uid_fetch(client, tag)


def _parse_by_uid(data: list[Any]) -> dict[int, dict[bytes, Any]]:
    """Parsed FETCH data keyed by UID; responses without a UID (unsolicited) are dropped."""
    out: dict[int, dict[bytes, Any]] = {}
    for item in parse_fetch_response(data, False, False).values():
        uid = item.get(b"UID")
        if isinstance(uid, int) and uid > 0:
            out[uid] = item
    return out


def uid_fetch(
    client: IMAPClient, msgset: str, items: Sequence[str], modifiers: Sequence[str] | None = None
) -> dict[int, dict[bytes, Any]]:
    """Parsed ``UID FETCH``; a response imapclient cannot parse is retried per message."""
    data = _raw_uid_fetch(client, msgset, items, modifiers)
    parsed = _try_parse(data)
    if parsed is None:
        parsed = _uid_fetch_each(client, msgset, items, modifiers, len(data))
    return parsed


def _try_parse(data: list[Any]) -> dict[int, dict[bytes, Any]] | None:
    """`_parse_by_uid`, or None (logged) when the answer cannot be parsed."""
    try:
        return _parse_by_uid(data)
    except Exception as exc:
        log.warning("fetch_unparseable", error=describe(exc), items=len(data))
        return None


def _uid_fetch_each(
    client: IMAPClient,
    msgset: str,
    items: Sequence[str],
    modifiers: Sequence[str] | None,
    answers: int,
) -> dict[int, dict[bytes, Any]]:
    """The fallback for an unparseable answer (`answers` responses): find the UIDs (they
    parse even when some item does not), then fetch one message at a time."""
    out: dict[int, dict[bytes, Any]] = {}
    try:
        uids = sorted(_uid_fetch_ok(client, msgset, ["UID"]))
    except Exception as exc:
        log.warning("fetch_unparseable", error=describe(exc), items=answers)
        return out
    for uid in uids:
        try:
            out.update(_parse_by_uid(_raw_uid_fetch(client, str(uid), items, modifiers)))
        except imap_exc.IMAPClientAbortError:
            raise
        except Exception as exc:
            log.warning("fetch_item_malformed", uid=uid, error=describe(exc))
    return out


def _uid_fetch_ok(client: IMAPClient, msgset: str, items: Sequence[str]) -> dict[int, Any]:
    return _parse_by_uid(_raw_uid_fetch(client, msgset, items))


_FLAG_SETS: dict[tuple[Any, ...], frozenset[str]] = {}  # raw FLAGS -> canonical set
_FLAG_SETS_MAX = 256
_NO_FLAGS: frozenset[str] = frozenset()


def flags_of(value: Any) -> frozenset[str]:
    """The FLAGS of a FETCH answer in their one form (`canonical_flags`).

    Each distinct raw combination is converted once (a sync sees a handful of them,
    tens of thousands of times): the parsers give tuples of bytes (or ints), so equal
    tuples always convert alike.
    """
    if not value:
        return _NO_FLAGS
    if isinstance(value, (bytes, str)):
        value = (value,)
    if type(value) is not tuple:
        return canonical_flags(value)
    try:
        return _FLAG_SETS[value]
    except KeyError:
        pass
    except TypeError:  # an unhashable element: not kept
        return canonical_flags(value)
    flags = canonical_flags(value)
    if len(_FLAG_SETS) >= _FLAG_SETS_MAX:
        _FLAG_SETS.clear()
    _FLAG_SETS[value] = flags
    return flags


def _header_bytes(data: Mapping[bytes, Any]) -> bytes | None:
    for key, value in data.items():
        if _is_header_key(key):
            if value is None:
                return b""
            return value if isinstance(value, bytes) else decode(value).encode()
    return None


@functools.lru_cache(maxsize=64)
def _is_header_key(key: Any) -> bool:
    """Is `key` a ``BODY[HEADER.FIELDS ...]`` item name? (Cached: every message of a
    sync has the same few item names.)"""
    return isinstance(key, bytes) and key.upper().startswith(b"BODY[HEADER.FIELDS")


def to_message(uid: int, data: Mapping[bytes, Any]) -> FetchedMessage | None:
    """A `FetchedMessage`, or None (logged) when an item is missing or malformed."""
    try:
        when = data.get(b"INTERNALDATE")
        if not isinstance(when, dt.datetime):
            # Losing a client mail is worse than a slightly late received time.
            log.warning("fetch_item_malformed", uid=uid, error="bad INTERNALDATE, using now")
            when = dt.datetime.now(dt.UTC)
        if when.tzinfo is None or when.utcoffset() is None:
            when = when.replace(tzinfo=dt.UTC)
        header = _header_bytes(data)
        if header is None:
            log.warning("fetch_item_malformed", uid=uid, error="no header fields")
            return None
        thrid = data.get(b"X-GM-THRID")
        return FetchedMessage(
            uid=int(uid),
            internaldate=when.astimezone(dt.UTC),
            flags=flags_of(data.get(b"FLAGS")),
            header_bytes=header,
            gm_thrid=int(thrid) if thrid is not None else None,
        )
    except Exception as exc:
        log.warning("fetch_item_malformed", uid=uid, error=describe(exc))
        return None



def fetch_new(
    client: IMAPClient,
    uids: Sequence[int],
    batch_size: int,
    items: Sequence[str],
    on_batch: Callable[[Sequence[FetchedMessage]], None] | None = None,
) -> list[FetchedMessage]:
    """The messages `uids`, fetched in batches (pipelined), in UID order.

    A batch whose answer cannot be parsed is fetched again one message at a time once
    the pipeline is done (no other command may be sent while one is in flight).
    ``on_batch``: see `sync_folder` (not given the messages of such a retried batch).
    """
    ordered = sorted(set(uids))
    size = max(1, batch_size)
    batches = [ordered[i : i + size] for i in range(0, len(ordered), size)]
    msgsets = [uid_set(batch) for batch in batches]
    found: list[list[FetchedMessage]] = []
    retry: list[tuple[int, int]] = []  # (batch index, number of answers)
    for i, data in enumerate(_pipelined_fetch(client, msgsets, items)):
        common = imapfetch.parse_common(data)
        if common is not None:
            found.append(_common_messages(common, batches[i]))
        else:
            answer = _try_parse(data)
            if answer is None:
                retry.append((i, len(data)))
                answer = {}
            found.append(_messages(answer, batches[i]))
        if on_batch is not None and found[-1]:
            on_batch(found[-1])
    for i, answers in retry:
        found[i] = _messages(_uid_fetch_each(client, msgsets[i], items, None, answers), batches[i])
    return [msg for batch in found for msg in batch]


def _messages(
    answer: Mapping[int, Mapping[bytes, Any]], wanted: Iterable[int]
) -> list[FetchedMessage]:
    """The `FetchedMessage`s of the `wanted` UIDs in `answer`, in UID order."""
    wanted = set(wanted)
    out = []
    for uid in sorted(answer):
        if uid in wanted:
            msg = to_message(uid, answer[uid])
            if msg is not None:
                out.append(msg)
    return out


def _common_messages(
    answers: Sequence[tuple[int, dt.datetime, tuple[bytes, ...], bytes]], wanted: Iterable[int]
) -> list[FetchedMessage]:
    """`_messages` of what `imapfetch.parse_common` read: the same messages, with no
    dict per answer in between (the last answer of a UID wins, as in `_parse_by_uid`)."""
    wanted = set(wanted)
    utc = dt.UTC
    by_uid = {}
    for uid, when, flags, header in answers:
        if uid in wanted:
            if when.tzinfo is not utc:
                when = when.astimezone(utc)
            by_uid[uid] = FetchedMessage(uid, when, flags_of(flags), header)
    return [by_uid[uid] for uid in sorted(by_uid)]


__all__ = [
    "FetchedMessage",
    "fetch_items",
    "fetch_new",
    "flags_of",
    "to_message",
    "uid_fetch",
    "uid_set",
]
