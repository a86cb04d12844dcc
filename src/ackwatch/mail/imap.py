"""IMAP shell: one connection factory, read-only incremental sync, one watcher per mailbox.

ackwatch never changes a mailbox. Every folder is opened with EXAMINE
(``select_folder(readonly=True)``), only ``BODY.PEEK[HEADER.FIELDS (...)]`` of the fields
in `ackwatch.core.message.HEADER_FIELDS` is fetched (never without PEEK), and no
STORE / EXPUNGE / APPEND / CREATE / CLOSE-after-SELECT is ever sent. The one body read is
`fetch_first_text_part` (at most 16 kB of an acknowledgement's first text part, for the
promise keeper; never called with ``promise.enabled: false``).

Sync per folder (`sync_folder`):

* first sync or UIDVALIDITY change: ``UID SEARCH SINCE <backfill date>`` (after a
  cheaper, looser ``YOUNGER`` where the server has WITHIN: `backfill_criteria`), then
  fetch the hits in batches; the cursor jumps to ``UIDNEXT - 1`` so older mail is never
  read;
* afterwards ``UID FETCH <last+1>:*`` filtered by ``uid > last`` (servers answer
  ``n:*`` with the last message even when n is past every UID);
* flags of still-pending messages: ``UID FETCH <pending> (FLAGS) (CHANGEDSINCE m)`` with
  CONDSTORE (skipped outright when HIGHESTMODSEQ did not move), else a plain FLAGS fetch.

`folder_changed` answers "is there anything to do" with one STATUS round trip.

`MailboxWatcher` is one daemon thread and ONE connection per mailbox: IDLE on the first
inbox folder where offered (renewed every 10 minutes), broken off every
``sync.poll_interval`` to STATUS-poll the other folders (never the IDLE folder itself,
which stays selected; see the class docstring), and on `recheck` / `stop`, which wake the
IDLE wait through a socket pair (no timer ticks). Faults reconnect with exponential
backoff and jitter; state changes (not attempts) are logged and emitted as `HealthEvent`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import ipaddress
import math
import random
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import structlog
from imapclient import IMAPClient
from imapclient import exceptions as imap_exc
from imapclient.imapclient import SocketTimeout, _parse_untagged_response, seq_to_parenstr_upper

from ackwatch.core.message import HEADER_FIELDS, FolderRole
from ackwatch.core.positional import positional_constructor
from ackwatch.mail import imapfetch, imapguard

if TYPE_CHECKING:
    from ackwatch.config import Folders, MailboxConfig, SecretRef, SyncConfig

log = structlog.get_logger(__name__)

Resolver = Callable[["SecretRef"], str]

IDLE_RENEW_SECONDS = imapguard.IDLE_RENEW_SECONDS  # well before RFC 2177's 29 minutes
IDLE_SAFETY_POLLS = 30  # re-check the IDLE folder with one EXAMINE every this many polls
YOUNGER_MARGIN = dt.timedelta(days=3)  # `backfill_criteria`: time zones, a server's clock

SENT_FOLDER_NAMES: tuple[str, ...] = (
    "Sent",
    "Sent Items",
    "Sent Messages",
    "Sent Mail",
    "Sent Email",
    "[Gmail]/Sent Mail",
    "[Google Mail]/Sent Mail",
    "INBOX.Sent",
    "INBOX/Sent",
    "INBOX.Sent Items",
    "INBOX.Sent Messages",
    "Wysłane",
    "Elementy wysłane",
    "Wysłane elementy",
    "Надіслані",
    "Відправлені",
    "Отправленные",
    "Изпратени",
    "Gesendet",
    "Gesendete Elemente",
    "Gesendete Objekte",
    "Envoyés",
    "Éléments envoyés",
    "Messages envoyés",
    "Enviados",
    "Elementos enviados",
    "Itens Enviados",
    "Inviata",
    "Posta inviata",
    "Elementi inviati",
    "Verzonden",
    "Verzonden items",
    "Skickat",
    "Skickade objekt",
    "Sendt",
    "Sendte elementer",
    "Sendt post",
    "Lähetetyt",
    "Odeslané",
    "Odeslaná pošta",
    "Odoslané",
    "Elküldött",
    "Elküldött elemek",
    "Trimise",
    "Poslano",
    "Poslane",
    "Послато",
    "Απεσταλμένα",
    "Gönderilenler",
    "Gönderilmiş Öğeler",
)


# =========================================================================== errors


class ImapError(Exception):
    """A connection or protocol failure; the message never contains credentials."""


class AuthError(ImapError):
    """The server rejected the credentials (or they could not be resolved)."""


def _redact(text: str, secrets: Iterable[str]) -> str:
    for s in secrets:
        if s and len(s) >= 3:
            text = text.replace(s, "***")
    return text


def _describe(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    detail = " ".join(str(exc).split())[:300]
    name = type(exc).__name__
    return _redact(f"{name}: {detail}" if detail else name, secrets)


# The exceptions that mean "this connection is unusable or the server said no".
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes socket.timeout / TimeoutError / ssl.SSLError / ConnectionError
    imap_exc.IMAPClientError,  # imaplib.IMAP4.error and .abort
    EOFError,
)


# =========================================================================== values


@dataclass(frozen=True)
class FolderCursor:
    """How far one folder has been read: resume point of the incremental sync."""

    uidvalidity: int
    last_uid: int
    highestmodseq: int | None = None  # None without CONDSTORE


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


_new_fetched = positional_constructor(FetchedMessage)  # for a first sync's tens of thousands


@dataclass(frozen=True)
class FolderSync:
    """The outcome of syncing one folder once."""

    folder: str
    role: FolderRole
    cursor: FolderCursor  # the new cursor; store it once the rest is applied
    new_messages: tuple[FetchedMessage, ...] = ()
    # Current flags of pending messages that changed (with CONDSTORE) or of all pending
    # messages (without); every pending UID still present is listed at most once.
    flag_updates: tuple[tuple[int, frozenset[str]], ...] = ()
    # True on the first sync and when UIDVALIDITY changed: every UID known before for
    # this folder is meaningless now; `new_messages` is the backfill.
    reset: bool = False
    # Pending UIDs that no longer exist in the folder (expunged or moved away).
    vanished: tuple[int, ...] = ()


HealthState = Literal["up", "connecting", "backoff", "auth_failed", "stopped"]


@dataclass(frozen=True)
class MailboxHealth:
    state: HealthState
    since: dt.datetime
    last_error: str | None = None  # redacted
    last_sync: dt.datetime | None = None


@dataclass(frozen=True)
class FolderSyncEvent:
    mailbox: str
    sync: FolderSync


@dataclass(frozen=True)
class HealthEvent:
    mailbox: str
    health: MailboxHealth


@dataclass(frozen=True)
class FoldersDiscovered:
    mailbox: str
    inbox: tuple[str, ...]
    sent: tuple[str, ...]


WatcherEvent = FolderSyncEvent | HealthEvent | FoldersDiscovered


# =========================================================================== connect


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _ssl_context(mb: MailboxConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(mb.ca_file) if mb.ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx  # verify_mode CERT_REQUIRED, check_hostname True


def _resolve(resolve: Resolver, ref: SecretRef, what: str) -> str:
    try:
        value = resolve(ref)
    except Exception as exc:
        # The resolver's own message is meant to be safe, but a failing token command may
        # echo its output: keep only the exception type and where the secret lives.
        raise AuthError(f"cannot resolve {what} ({ref.describe()}): {type(exc).__name__}") from None
    value = value.strip() if isinstance(value, str) else value
    if not value:
        raise AuthError(f"{what} ({ref.describe()}) is empty")
    return value


def connect(
    mb: MailboxConfig,
    *,
    resolve: Resolver | None = None,
    timeout: float | None = None,
    limits: imapguard.Limits | None = None,
    deadline: float | None = None,
) -> IMAPClient:
    """Open, secure and log in one IMAP connection for `mb`. The only connection factory.

    Every socket operation has a timeout (`mb.timeout`); every command an overall
    deadline and bounds on what its answer may hold (`limits`, default
    `imapguard.Limits()`), and the whole connection ends by `deadline` (a
    ``time.monotonic()`` instant) when one is given: see `ackwatch.mail.imapguard`.
    ``tls``: verified TLS
    (``ca_file`` for a private CA); ``starttls``: STARTTLS is mandatory, any failure is
    fatal, never a fallback to plain text; ``none``: loopback only. Raises `AuthError`
    when the credentials are refused, `ImapError` for everything else; neither message
    contains a credential.
    """
    if resolve is None:
        from ackwatch.credentials import resolve_secret as resolve  # being written concurrently
    timeout = mb.timeout if timeout is None else timeout
    where = f"{mb.host}:{mb.port}"
    if mb.security == "none" and not _is_loopback(mb.host):
        raise ImapError(f"{where}: security none is only allowed on loopback")
    try:
        ctx = _ssl_context(mb) if mb.security in ("tls", "starttls") else None
    except (OSError, ssl.SSLError) as exc:
        raise ImapError(f"{where}: cannot load CA file: {_describe(exc)}") from None
    guard: imapguard.Guard | None = None
    try:
        guard = imapguard.Guard(limits or imapguard.Limits(), mb.name, deadline)
        client = imapguard.GuardedClient(
            mb.host,
            port=mb.port,
            ssl=mb.security == "tls",
            ssl_context=ctx,
            timeout=SocketTimeout(connect=timeout, read=timeout),
            guard=guard,
        )
    except _CONNECTION_ERRORS as exc:
        if guard is not None:
            guard.end()
        raise ImapError(f"{where}: connect failed: {_describe(exc)}") from None
    client.normalise_times = False  # keep INTERNALDATE's zone; we convert to UTC
    _no_delay(client)
    try:
        if mb.security == "starttls":
            try:
                if not client.has_capability("STARTTLS"):
                    raise ImapError(f"{where}: server does not offer STARTTLS")
                client.starttls(ctx)
            except ImapError:
                raise
            except _CONNECTION_ERRORS as exc:
                raise ImapError(f"{where}: STARTTLS failed: {_describe(exc)}") from None
            client._cached_capabilities = None  # capabilities change after STARTTLS
        _login(client, mb, resolve, where)
    except BaseException:
        _shutdown(client)
        raise
    return client


def _no_delay(client: IMAPClient) -> None:
    """TCP_NODELAY: imaplib writes a command's CRLF separately (e.g. after UID SEARCH's
    arguments), and Nagle plus the server's delayed ACK held it back ~40 ms each time."""
    with contextlib.suppress(OSError, AttributeError):
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _login(client: IMAPClient, mb: MailboxConfig, resolve: Resolver, where: str) -> None:
    if mb.oauth2_token is not None:
        for attempt in (1, 2):  # a stale cached token: run the command once more
            token = _resolve(resolve, mb.oauth2_token, "OAuth2 token")
            try:
                client.oauth2_login(mb.username, token)
                return
            except imap_exc.IMAPClientError as exc:
                if _dropped(exc):
                    raise ImapError(
                        f"{where}: XOAUTH2 login aborted: {_describe(exc, [token])}"
                    ) from None
                if attempt == 2:
                    raise AuthError(
                        f"{where}: XOAUTH2 login as {mb.username} refused: {_describe(exc, [token])}"
                    ) from None
            except OSError as exc:
                raise ImapError(f"{where}: login failed: {_describe(exc, [token])}") from None
        return
    if mb.password is None:
        raise AuthError(f"{where}: no password or oauth2_token_command configured")
    password = _resolve(resolve, mb.password, "password")
    try:
        if mb.username.isascii() and password.isascii():
            client.login(mb.username, password)
        else:
            _utf8_login(client, mb, password, where)
    except UnicodeError:  # never its message: it quotes the character and its position
        raise AuthError(
            f"{where}: the credentials of {mb.username} ({mb.password.describe()}) "
            "cannot be sent (not ASCII)"
        ) from None
    except imap_exc.IMAPClientError as exc:
        if _dropped(exc):
            raise ImapError(f"{where}: login aborted: {_describe(exc, [password])}") from None
        raise AuthError(
            f"{where}: login as {mb.username} refused: {_describe(exc, [password])}"
        ) from None
    except OSError as exc:
        raise ImapError(f"{where}: login failed: {_describe(exc, [password])}") from None


def _utf8_login(client: IMAPClient, mb: MailboxConfig, password: str, where: str) -> None:
    """Log in with a user name or password that is not ASCII: AUTHENTICATE PLAIN, which
    carries UTF-8 (RFC 4616). LOGIN cannot: imaplib sends its arguments as ASCII, and RFC
    3501 leaves any other charset undefined. A server without AUTH=PLAIN is an
    `AuthError` naming where the password lives, never a character of it."""
    assert mb.password is not None
    if not client.has_capability("AUTH=PLAIN"):
        which = "password" if mb.username.isascii() else "user name"
        raise AuthError(
            f"{where}: the {which} of {mb.username} ({mb.password.describe()}) is not ASCII, "
            "and the server does not offer AUTHENTICATE PLAIN, the one way to send it as "
            "UTF-8; LOGIN takes ASCII only"
        )
    client.plain_login(mb.username, password)


def _dropped(exc: imap_exc.IMAPClientError) -> bool:
    """Whether a failed login is a lost connection rather than refused credentials.

    imapclient turns every error of LOGIN and AUTHENTICATE into `LoginError`, a connection
    closed under it ("socket error: EOF") included, and keeps the error it replaced as the
    exception's context. A lost connection is retried like any network error; refused
    credentials (the server's NO) wait for the longer back-off of ``auth_failed`` (a
    minute, then up to 30). Seen: a connection cut while LOGIN waited on a stalled server
    put a good mailbox in ``auth_failed``, with an error that blamed its password."""
    lost = (imap_exc.IMAPClientAbortError, OSError)
    return isinstance(exc, lost) or isinstance(exc.__context__, lost)


def _shutdown(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):
        client.shutdown()
    imapguard.end(client)


def logout(client: IMAPClient) -> None:
    """LOGOUT, bounded by the socket timeout; never raises."""
    try:
        client.socket().settimeout(5)
        client.logout()
    except Exception:
        pass
    _shutdown(client)


def failure_text(client: IMAPClient | None, exc: BaseException) -> str:
    """What to record for a connection that failed with `exc`: the guard's own error
    when a bound ended it (imaplib re-wraps that in a plain abort on some paths)."""
    ended = imapguard.failure(client) if client is not None else None
    if ended is not None:
        return str(ended)
    return str(exc) if isinstance(exc, ImapError) else _describe(exc)


# =========================================================================== discovery


def _decode(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def discover_folders(client: IMAPClient, folders: Folders) -> tuple[list[str], list[str]]:
    """(inbox folders, sent folders) to watch.

    ``sent: auto``: every folder with the SPECIAL-USE ``\\Sent`` attribute; without any,
    every existing folder whose name (or last path part) is a common sent-folder name,
    in the order of `SENT_FOLDER_NAMES`. Configured folders are taken as given.
    """
    inbox = list(folders.inbox)
    if folders.sent != "auto":
        return inbox, list(folders.sent)
    listed = client.list_folders()
    by_flag = [
        _decode(name)
        for attrs, _delim, name in listed
        if any(_decode(a).lower() == "\\sent" for a in attrs or ())
    ]
    if by_flag:
        return inbox, _unique(f for f in by_flag if f not in inbox)
    names = {}
    for _attrs, delim, name in listed:
        name = _decode(name)
        names.setdefault(name.casefold(), name)
        if delim:
            leaf = name.rsplit(_decode(delim), 1)[-1]
            names.setdefault(leaf.casefold(), name)
    found = []
    for candidate in SENT_FOLDER_NAMES:
        real = names.get(candidate.casefold())
        if real is not None and real not in inbox:
            found.append(real)
    return inbox, _unique(found)


def watched_folders(inbox: Sequence[str], sent: Sequence[str]) -> list[tuple[str, FolderRole]]:
    """(folder, role) of every folder to sync: the inbox folders, then the sent folders
    that are not also inbox folders."""
    return [(f, "inbox") for f in inbox] + [(f, "sent") for f in sent if f not in inbox]


def _unique(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i in items:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


# =========================================================================== sync


def _header_item() -> str:
    return f"BODY.PEEK[HEADER.FIELDS ({' '.join(f.upper() for f in HEADER_FIELDS)})]"


def _fetch_items(client: IMAPClient) -> list[str]:
    items = ["UID", "INTERNALDATE", "FLAGS", _header_item()]
    if client.has_capability("X-GM-EXT-1"):
        items.append("X-GM-THRID")
    return items


def _msgset(uids: Iterable[int]) -> str:
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
    unanswered when a read fails. `_fetch_new` reads every answer; were it interrupted
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
    for item in imapfetch.parse_fetch(data).values():
        uid = item.get(b"UID")
        if isinstance(uid, int) and uid > 0:
            out[uid] = item
    return out


def _uid_fetch(
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
        log.warning("fetch_unparseable", error=_describe(exc), items=len(data))
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
        log.warning("fetch_unparseable", error=_describe(exc), items=answers)
        return out
    for uid in uids:
        try:
            out.update(_parse_by_uid(_raw_uid_fetch(client, str(uid), items, modifiers)))
        except imap_exc.IMAPClientAbortError:
            raise
        except Exception as exc:
            log.warning("fetch_item_malformed", uid=uid, error=_describe(exc))
    return out


def _uid_fetch_ok(client: IMAPClient, msgset: str, items: Sequence[str]) -> dict[int, Any]:
    return _parse_by_uid(_raw_uid_fetch(client, msgset, items))


def _flags(value: Any) -> frozenset[str]:
    if not value:
        return frozenset()
    if isinstance(value, (bytes, str)):
        value = (value,)
    if type(value) is tuple:
        try:
            return _flag_set(value)
        except TypeError:  # an unhashable element: no cache
            pass
    return frozenset(_decode(f) for f in value)


@functools.lru_cache(maxsize=256)
def _flag_set(value: tuple[Any, ...]) -> frozenset[str]:
    """Flags decoded once per combination (a sync sees a handful of them, 33k times).
    The parsers give bytes (or ints), so equal keys always decode alike."""
    return frozenset(_decode(f) for f in value)


def _header_bytes(data: Mapping[bytes, Any]) -> bytes | None:
    for key, value in data.items():
        if _is_header_key(key):
            if value is None:
                return b""
            return value if isinstance(value, bytes) else _decode(value).encode()
    return None


@functools.lru_cache(maxsize=64)
def _is_header_key(key: Any) -> bool:
    """Is `key` a ``BODY[HEADER.FIELDS ...]`` item name? (Cached: every message of a
    sync has the same few item names.)"""
    return isinstance(key, bytes) and key.upper().startswith(b"BODY[HEADER.FIELDS")


def _to_message(uid: int, data: Mapping[bytes, Any]) -> FetchedMessage | None:
    """A `FetchedMessage`, or None (logged) when an item is missing or malformed."""
    try:
        when = data.get(b"INTERNALDATE")
        if not isinstance(when, dt.datetime):
            # Losing a client mail is worse than a slightly late received time.
            log.warning("fetch_item_malformed", uid=uid, error="bad INTERNALDATE, using now")
            when = _now()
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
            flags=_flags(data.get(b"FLAGS")),
            header_bytes=header,
            gm_thrid=int(thrid) if thrid is not None else None,
        )
    except Exception as exc:
        log.warning("fetch_item_malformed", uid=uid, error=_describe(exc))
        return None


def _select_info(client: IMAPClient, folder: str) -> tuple[int, int | None, int | None]:
    """EXAMINE `folder`; (UIDVALIDITY, UIDNEXT or None, HIGHESTMODSEQ or None)."""
    info = client.select_folder(folder, readonly=True)
    uidvalidity = int(info[b"UIDVALIDITY"])
    uidnext = info.get(b"UIDNEXT")
    modseq = info.get(b"HIGHESTMODSEQ") if client.has_capability("CONDSTORE") else None
    return (
        uidvalidity,
        int(uidnext) if uidnext is not None else None,
        int(modseq) if modseq is not None else None,
    )


def _fetch_new(
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
    msgsets = [_msgset(batch) for batch in batches]
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
            msg = _to_message(uid, answer[uid])
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
            by_uid[uid] = _new_fetched(uid, when, _flags(flags), header, None)
    return [by_uid[uid] for uid in sorted(by_uid)]


def backfill_criteria(
    client: IMAPClient, since: dt.date, now: dt.datetime | None = None
) -> list[object]:
    """The first sync's SEARCH: ``SINCE <since>``, after ``YOUNGER <n>`` where the server
    has WITHIN (RFC 5032), n reaching `YOUNGER_MARGIN` further back than the start of
    ``since``: the answer is that of SINCE alone (what is SINCE is YOUNGER too, mail
    dated in the future included), only quicker.

    Dovecot evaluates SINCE by turning each message's date into a day (4 us a message,
    4 s in a folder of a million) and YOUNGER as one comparison (0.5 us), and tries the
    second criterion only on what passed the first: the search follows the folder's size
    five times less steeply (bench target 2). ``now``: the clock (tests).
    """
    if not client.has_capability("WITHIN"):
        return ["SINCE", since]
    now = now if now is not None else dt.datetime.now(dt.UTC)
    start = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
    seconds = math.ceil((now - start + YOUNGER_MARGIN).total_seconds())
    return ["YOUNGER", max(seconds, 1), "SINCE", since]


def sync_folder(
    client: IMAPClient,
    folder: str,
    role: FolderRole,
    cursor: FolderCursor | None,
    *,
    since: dt.date,
    pending_uids: Iterable[int] = (),
    batch_size: int = 500,
    on_batch: Callable[[Sequence[FetchedMessage]], None] | None = None,
) -> FolderSync:
    """Read what is new in `folder` since `cursor` (read-only; see the module doc).

    ``on_batch`` is given each batch of new messages of a batched fetch as soon as it is
    read, while the server is already answering the next one: the first sync parses
    mail there (`Store.prepare`) instead of waiting for the server. Every message is
    also in the returned `FolderSync`.
    """
    uidvalidity, uidnext, modseq = _select_info(client, folder)
    items = _fetch_items(client)
    reset = cursor is None or cursor.uidvalidity != uidvalidity

    if reset:
        uids = client.search(backfill_criteria(client, since))
        new = _fetch_new(client, [int(u) for u in uids], batch_size, items, on_batch)
        last = max([0, *(int(u) for u in uids)])
        if uidnext is not None:
            last = max(last, uidnext - 1)
        return FolderSync(
            folder=folder,
            role=role,
            cursor=FolderCursor(uidvalidity, last, modseq),
            new_messages=tuple(new),
            reset=True,
        )

    assert cursor is not None
    last = cursor.last_uid
    new: list[FetchedMessage] = []
    # No shortcut on UIDNEXT here (that is `folder_changed`'s job): the FETCH is cheap when
    # nothing is new, and UIDNEXT is advisory on some servers.
    # Without UIDNEXT the number of new messages is unknown: list them first, so that no
    # answer holds more than a batch (`imapguard.Limits` is sized from the batch).
    expected = (uidnext - last - 1) if uidnext is not None else batch_size + 1
    if expected > batch_size:  # a long outage: list the UIDs, then fetch in batches
        uids = [int(u) for u in client.search(["UID", f"{last + 1}:*"]) if int(u) > last]
        new = _fetch_new(client, uids, batch_size, items, on_batch)
    else:
        answer = _uid_fetch(client, f"{last + 1}:*", items)
        for uid in sorted(answer):
            if uid > last:  # "n:*" also returns the last message when n > every UID
                msg = _to_message(uid, answer[uid])
                if msg is not None:
                    new.append(msg)
    new_last = max([last, *(m.uid for m in new)])
    if uidnext is not None:
        new_last = max(new_last, uidnext - 1)

    pending = sorted({int(u) for u in pending_uids if 0 < int(u) <= last})
    flag_updates: list[tuple[int, frozenset[str]]] = []
    vanished: list[int] = []
    if pending:
        msgset = _msgset(pending)
        if modseq is not None and cursor.highestmodseq is not None:
            if modseq != cursor.highestmodseq:
                answer = _flags_by_batch(
                    client, pending, batch_size, [f"CHANGEDSINCE {cursor.highestmodseq}"]
                )
                flag_updates = _flag_list(answer, pending)
                present = {int(u) for u in client.search(["UID", msgset])}
                vanished = [u for u in pending if u not in present]
        else:
            answer = _flags_by_batch(client, pending, batch_size)
            flag_updates = _flag_list(answer, pending)
            vanished = [u for u in pending if u not in answer]

    return FolderSync(
        folder=folder,
        role=role,
        cursor=FolderCursor(uidvalidity, new_last, modseq),
        new_messages=tuple(new),
        flag_updates=tuple(flag_updates),
        reset=False,
        vanished=tuple(vanished),
    )


def _flags_by_batch(
    client: IMAPClient,
    uids: Sequence[int],
    batch_size: int,
    modifiers: Sequence[str] | None = None,
) -> dict[int, dict[bytes, Any]]:
    """``UID FETCH (UID FLAGS)`` of `uids`, a batch at a time (one answer, one batch)."""
    size = max(1, batch_size)
    out: dict[int, dict[bytes, Any]] = {}
    for i in range(0, len(uids), size):
        out.update(_uid_fetch(client, _msgset(uids[i : i + size]), ["UID", "FLAGS"], modifiers))
    return out


def _flag_list(
    answer: Mapping[int, Mapping[bytes, Any]], pending: Sequence[int]
) -> list[tuple[int, frozenset[str]]]:
    wanted = set(pending)
    out = []
    for uid in sorted(answer):
        if uid in wanted and b"FLAGS" in answer[uid]:
            try:
                out.append((int(uid), _flags(answer[uid][b"FLAGS"])))
            except Exception as exc:
                log.warning("fetch_item_malformed", uid=uid, error=_describe(exc))
    return out


def folder_status(client: IMAPClient, folder: str) -> dict[str, int]:
    """STATUS (UIDNEXT UIDVALIDITY [HIGHESTMODSEQ]) as {"uidnext": ..., ...}."""
    what = ["UIDNEXT", "UIDVALIDITY"]
    if client.has_capability("CONDSTORE"):
        what.append("HIGHESTMODSEQ")
    raw = client.folder_status(folder, what)
    return {_decode(k).lower(): int(v) for k, v in raw.items()}


def folder_changed(
    client: IMAPClient,
    folder: str,
    cursor: FolderCursor | None,
    *,
    has_pending: bool | Callable[[], bool] = False,
) -> bool:
    """One STATUS round trip: could `sync_folder` find anything new?

    New mail shows as UIDNEXT moving, a reset as UIDVALIDITY changing, flag changes as
    HIGHESTMODSEQ moving (CONDSTORE). Only without a HIGHESTMODSEQ on both sides (no
    CONDSTORE, or a cursor from before it) are flag changes invisible to STATUS; then a
    folder with pending messages always counts as changed (`has_pending` may be a
    callable: it is only asked then). Not for the selected folder (RFC 3501 discourages
    STATUS on it): the watcher EXAMINEs that one instead.
    """
    if cursor is None:
        return True
    st = folder_status(client, folder)
    return _state_changed(
        cursor,
        uidvalidity=st.get("uidvalidity"),
        uidnext=st.get("uidnext"),
        modseq=st.get("highestmodseq"),
        has_pending=has_pending,
    )


def _state_changed(
    cursor: FolderCursor | None,
    *,
    uidvalidity: int | None,
    uidnext: int | None,
    modseq: int | None,
    has_pending: bool | Callable[[], bool],
) -> bool:
    """The decision of `folder_changed`, from STATUS or EXAMINE values."""
    if cursor is None or uidvalidity != cursor.uidvalidity:
        return True
    if uidnext is None or uidnext > cursor.last_uid + 1:
        return True
    if modseq is not None and cursor.highestmodseq is not None:
        return modseq != cursor.highestmodseq
    return bool(has_pending() if callable(has_pending) else has_pending)


# =========================================================================== body (issue 8)
#
# The one place a body is read: the first text part of an acknowledgement, for the
# promise keeper. Read-only like the rest: EXAMINE, then BODYSTRUCTURE and
# ``BODY.PEEK[<part>]<0.limit>`` (PEEK: \Seen is never set), at most `limit` bytes.

BODY_LIMIT = 16 * 1024


def _text_parts(structure: Any, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(part number, subtype, charset, transfer encoding) of the text parts, in order;
    attachments and attached messages are not descended into."""
    out: list[tuple[str, str, str, str]] = []
    if getattr(structure, "is_multipart", False):
        for i, part in enumerate(structure[0], 1):
            out += _text_parts(part, f"{prefix}{i}.")
        return out
    try:
        ctype, subtype = _decode(structure[0]).lower(), _decode(structure[1]).lower()
    except (IndexError, TypeError):
        return out
    if ctype != "text" or subtype not in ("plain", "html"):
        return out
    params = structure[2] if isinstance(structure[2], (list, tuple)) else ()
    pairs = dict(zip(params[::2], params[1::2], strict=False))
    charset = next((_decode(v) for k, v in pairs.items() if _decode(k).lower() == "charset"),
                   "utf-8")  # fmt: skip
    encoding = _decode(structure[5]).lower() if len(structure) > 5 and structure[5] else "7bit"
    # Extension data of a text part: [8] md5, [9] disposition ("attachment", params).
    disposition = structure[9] if len(structure) > 9 else None
    if (
        isinstance(disposition, (list, tuple))
        and disposition
        and disposition[0]
        and _decode(disposition[0]).lower() == "attachment"
    ):
        return out
    out.append((prefix + "1" if not prefix else prefix.rstrip("."), subtype, charset, encoding))
    return out


def _decode_part(raw: bytes, charset: str, encoding: str) -> str:
    import binascii
    import codecs
    import quopri

    if encoding == "base64":
        compact = b"".join(raw.split())
        compact = compact[: len(compact) - len(compact) % 4]  # cut at `limit`: whole quanta
        try:
            raw = binascii.a2b_base64(compact)
        except binascii.Error:
            return ""
    elif encoding == "quoted-printable":
        raw = quopri.decodestring(raw)
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    return raw.decode(charset, "replace")


def _html_text(text: str) -> str:
    import html
    import re

    text = re.sub(r"(?is)<(script|style|head)\b.*?</\1\s*>", " ", text)
    text = re.sub(r"(?is)<blockquote\b.*?</blockquote\s*>", "\n", text)  # quoted history
    text = re.sub(r"(?i)<br\s*/?>|</(p|div|li|tr|h\d)\s*>", "\n", text)
    return html.unescape(re.sub(r"(?s)<[^>]*>", "", text))


def fetch_first_text_part(
    client: IMAPClient,
    folder: str,
    uid: int,
    limit: int = BODY_LIMIT,
    *,
    uidvalidity: int | None = None,
) -> str | None:
    """The first text part of message `uid` (text/plain, else text/html as plain text),
    decoded (transfer encoding and charset), at most `limit` bytes of it; read-only.

    None when the message is gone, `uidvalidity` no longer matches, or it has no text
    part. Raises the connection errors of imapclient (the caller reconnects or retries).
    """
    info = client.select_folder(folder, readonly=True)
    if uidvalidity is not None and int(info.get(b"UIDVALIDITY", -1)) != uidvalidity:
        return None
    answer = _uid_fetch(client, str(int(uid)), ["UID", "BODYSTRUCTURE"]).get(int(uid))
    if not answer or b"BODYSTRUCTURE" not in answer:
        return None
    parts = _text_parts(answer[b"BODYSTRUCTURE"])
    if not parts:
        return None
    spec, subtype, charset, encoding = next((p for p in parts if p[1] == "plain"), parts[0])
    data = _uid_fetch(client, str(int(uid)), ["UID", f"BODY.PEEK[{spec}]<0.{int(limit)}>"])
    raw = None
    for key, value in (data.get(int(uid)) or {}).items():
        if isinstance(key, bytes) and key.upper().startswith(b"BODY["):
            raw = value
    if raw is None:
        return None
    raw = raw if isinstance(raw, bytes) else str(raw).encode()
    text = _decode_part(raw[:limit], charset, encoding)
    return _html_text(text) if subtype == "html" else text


# =========================================================================== watcher


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class _Recheck:
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


class _Waker:
    """A flag that ``poll()`` can wait on together with a socket (a self-pipe).

    `set` (any thread) raises the flag and writes one byte to a socket pair; the watcher
    polls the IMAP socket and `fileno` at once, so a stop or recheck ends an IDLE wait at
    once instead of at the next tick of a timer. `wait` is an `Event.wait` for the paths
    without a socket. The pair exists between `open` and `close` (the watcher thread's
    lifetime); `set` before or after that only raises the flag.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flag = False
        self._r: socket.socket | None = None
        self._w: socket.socket | None = None

    def open(self) -> None:
        with self._lock:
            if self._r is None:
                self._r, self._w = socket.socketpair()
                self._r.setblocking(False)
                self._w.setblocking(False)
                if self._flag:
                    self._poke()

    def close(self) -> None:
        with self._lock:
            for s in (self._r, self._w):
                if s is not None:
                    s.close()
            self._r = self._w = None

    def _poke(self) -> None:
        if self._w is not None:
            with contextlib.suppress(OSError):  # full (a wake-up is pending anyway)
                self._w.send(b"\0")

    def set(self) -> None:
        with self._lock:
            if not self._flag:
                self._flag = True
                self._poke()

    def clear(self) -> None:
        with self._lock:
            self._flag = False
            if self._r is not None:
                with contextlib.suppress(OSError):
                    while self._r.recv(4096):
                        pass

    def is_set(self) -> bool:
        return self._flag

    def fileno(self) -> int:
        r = self._r
        return r.fileno() if r is not None else -1

    def wait(self, timeout: float) -> bool:
        if not self._flag:
            fd = self.fileno()
            if fd < 0:
                time.sleep(max(0.0, timeout))
            else:
                _wait_readable([fd], timeout)
        return self._flag


class MailboxWatcher(threading.Thread):
    """Watches one mailbox: sync, IDLE/poll, recheck on demand, reconnect on faults.

    Calls `emit` (from this thread) with `FoldersDiscovered`, `FolderSyncEvent` (one per
    folder step, in order) and `HealthEvent` (on each state change). `get_cursors` is
    read at every (re)connect and merged with the cursors this watcher already emitted;
    `get_pending_uids(folder)` is asked before every sync of that folder.

    With IDLE, what one poll interval costs when nothing changed is ``DONE``, one
    ``STATUS`` per folder other than the IDLE folder (usually just the sent folder) and
    ``IDLE`` again: no EXAMINE, FETCH or NOOP. The IDLE folder itself is never
    STATUS-polled (IDLE reports its EXISTS / EXPUNGE / FLAGS changes, and RFC 3501
    discourages STATUS on the selected mailbox); it is synced when IDLE (or an untagged
    response to another command) reports a change, re-checked with one EXAMINE on every
    `recheck` (before each nudge), and re-checked the same way every `idle_safety_polls`
    polls (default 30: half an hour at the default 60 s poll, adding 1/30 of a command per
    poll) as a safety net for servers that do not report every flag change during IDLE.
    It stays selected across polls: EXAMINE is sent again only when another folder was
    selected in between or after the IDLE folder itself was synced (its fetches may have
    swallowed an unsolicited flag update; the EXAMINE's UIDNEXT / HIGHESTMODSEQ show it).
    The wait itself is one ``poll()`` on the IMAP socket and a wake-up socket pair
    (`stop`, `recheck`): an idle watcher does not wake up until the server says something
    or the next poll is due.
    """

    def __init__(
        self,
        mb: MailboxConfig,
        sync: SyncConfig,
        get_cursors: Callable[[], Mapping[str, FolderCursor]],
        get_pending_uids: Callable[[str], Iterable[int]],
        emit: Callable[[WatcherEvent], None],
        *,
        resolve: Resolver | None = None,
        clock: Callable[[], dt.datetime] = _now,
        backoff_initial: float = 2.0,
        backoff_max: float = 300.0,
        auth_backoff_initial: float = 60.0,
        auth_backoff_max: float = 1800.0,
        idle_renew: float = IDLE_RENEW_SECONDS,
        idle_safety_polls: int = IDLE_SAFETY_POLLS,
    ) -> None:
        super().__init__(name=f"imap-{mb.name}", daemon=True)
        self.mb = mb
        self.sync_config = sync
        self._get_cursors = get_cursors
        self._get_pending = get_pending_uids
        self._emit = emit
        self._resolve = resolve
        self._clock = clock
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.auth_backoff_initial = auth_backoff_initial
        self.auth_backoff_max = auth_backoff_max
        self.idle_renew = idle_renew
        self.idle_safety_polls = max(1, int(idle_safety_polls))
        self._stop_event = threading.Event()
        self._wake = _Waker()
        self._lock = threading.Lock()
        self._rechecks: list[_Recheck] = []
        self._cursors: dict[str, FolderCursor] = {}
        self._client: IMAPClient | None = None
        self.inbox_folders: tuple[str, ...] = ()
        self.sent_folders: tuple[str, ...] = ()
        self._unavailable: set[str] = set()
        # Connection state: the folder our EXAMINE selected last (None: none / unknown),
        # whether what the server reported for it since is all accounted for (then IDLE
        # can start again without a new EXAMINE), and the folder IDLE watches.
        self._selected: str | None = None
        self._verified: str | None = None
        self._idle_folder: str | None = None
        self._polls = 0
        self.health = MailboxHealth("connecting", clock())
        self._log = log.bind(mailbox=mb.name)

    # ------------------------------------------------------------------ public API
    def stop(self, timeout: float = 10.0) -> None:
        """Leave IDLE, log out and end the thread (bounded by `timeout`)."""
        self._stop_event.set()
        self._wake.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
            if self.is_alive():  # stuck in a socket call: cut the connection
                client = self._client
                if client is not None:
                    _shutdown(client)
                self.join(2.0)

    def recheck(self, timeout: float = 30.0) -> bool:
        """Sync the sent folders and inbox flags now; True once their events were emitted.

        False when the mailbox is not connected or the sync did not finish in time.
        """
        if self._stop_event.is_set() or not self.is_alive() or self.health.state != "up":
            return False
        req = _Recheck()
        with self._lock:
            self._rechecks.append(req)
        self._wake.set()
        if not req.done.wait(timeout):
            with self._lock:
                if req in self._rechecks:
                    self._rechecks.remove(req)
            return False
        return req.ok

    @property
    def cursors(self) -> dict[str, FolderCursor]:
        return dict(self._cursors)

    # ------------------------------------------------------------------ health
    def _set_health(
        self, state: HealthState, error: str | None = None, synced: bool = False
    ) -> None:
        """Record the state; log + emit only when the state itself changes."""
        old = self.health
        now = self._clock()
        last_sync = now if synced else old.last_sync
        if old.state == state:  # another attempt / sync tick: no log line, no event
            self.health = replace(old, last_error=error or old.last_error, last_sync=last_sync)
            return
        new = MailboxHealth(state, now, error, last_sync)
        self.health = new
        if state == "up":
            self._log.info("mailbox_up", host=self.mb.host, previous=old.state)
        elif state == "auth_failed":
            self._log.error("mailbox_auth_failed", error=error)
        elif state == "backoff":
            self._log.warning("mailbox_down", error=error)
        elif state == "stopped":
            self._log.info("mailbox_stopped")
        self._safe_emit(HealthEvent(self.mb.name, new))

    def _safe_emit(self, event: WatcherEvent) -> None:
        self._emit(event)

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        failures = 0
        auth_failures = 0
        self._wake.open()
        try:
            while not self._stop_event.is_set():
                try:
                    self._session()
                    failures = auth_failures = 0
                except AuthError as exc:
                    self._drop_client()
                    auth_failures += 1
                    self._set_health("auth_failed", str(exc))
                    self._fail_rechecks()
                    self._sleep(self._delay(auth_failures, self.auth_backoff_initial,
                                            self.auth_backoff_max))  # fmt: skip
                except (ImapError, *_CONNECTION_ERRORS) as exc:
                    error = failure_text(self._client, exc)
                    self._drop_client()
                    if self._stop_event.is_set():
                        break
                    failures += 1
                    self._set_health("backoff", error)
                    self._fail_rechecks()
                    self._sleep(self._delay(failures, self.backoff_initial, self.backoff_max))
                except Exception as exc:  # a bug: log it, keep the mailbox watched
                    self._drop_client()
                    if self._stop_event.is_set():
                        break
                    failures += 1
                    self._log.exception("watcher_error")
                    self._set_health("backoff", _describe(exc))
                    self._fail_rechecks()
                    self._sleep(self._delay(failures, self.backoff_initial, self.backoff_max))
        finally:
            self._drop_client(logout_first=True)
            self._fail_rechecks()
            self._set_health("stopped")
            self._wake.close()

    def _delay(self, n: int, initial: float, cap: float) -> float:
        base = min(cap, initial * (2 ** min(n - 1, 20)))
        return base * random.uniform(0.5, 1.0)  # "equal jitter": never 0, never above cap

    def _sleep(self, seconds: float) -> None:
        self._stop_event.wait(seconds)

    def _drop_client(self, logout_first: bool = False) -> None:
        client, self._client = self._client, None
        self._selected = self._verified = None
        if client is None:
            return
        if logout_first:
            logout(client)
        else:
            _shutdown(client)

    def _fail_rechecks(self) -> None:
        with self._lock:
            reqs, self._rechecks = self._rechecks, []
        for r in reqs:
            r.ok = False
            r.done.set()

    def _take_rechecks(self) -> list[_Recheck]:
        # Clear first: a request that arrives after the take raises the flag again.
        self._wake.clear()
        with self._lock:
            reqs, self._rechecks = self._rechecks, []
        return reqs

    # ------------------------------------------------------------------ one session
    def _session(self) -> None:
        # No "connecting" state per retry: backoff/auth_failed stay until the mailbox is up.
        self._selected = self._verified = None
        limits = imapguard.Limits.for_sync(self.sync_config, self.idle_renew)
        self._client = client = connect(self.mb, resolve=self._resolve, limits=limits)
        _enable_condstore(client)
        inbox, sent = discover_folders(client, self.mb.folders)
        if (tuple(inbox), tuple(sent)) != (self.inbox_folders, self.sent_folders):
            self.inbox_folders, self.sent_folders = tuple(inbox), tuple(sent)
            self._safe_emit(FoldersDiscovered(self.mb.name, self.inbox_folders, self.sent_folders))
        stored = dict(self._get_cursors() or {})
        stored.update(self._cursors)
        self._cursors = stored
        use_idle = bool(self.sync_config.idle) and client.has_capability("IDLE") and inbox
        self._idle_folder = inbox[0] if use_idle else None
        self._sync_all(self._all_folders(), only_changed=False)
        self._set_health("up", None, synced=True)

        poll = max(0.05, self.sync_config.poll_interval.total_seconds())
        next_poll = time.monotonic() + poll
        while not self._stop_event.is_set():
            if use_idle:
                next_poll = self._idle_round(client, inbox[0], next_poll, poll)
            else:
                self._wake.wait(max(0.0, next_poll - time.monotonic()))
                if self._stop_event.is_set():
                    break
                reqs = self._take_rechecks()
                if reqs:
                    self._do_recheck(reqs)
                if time.monotonic() >= next_poll:
                    self._sync_all(self._all_folders(), only_changed=True)
                    self._set_health("up", None, synced=True)
                    next_poll = time.monotonic() + poll
        logout(client)
        self._client = None

    def _all_folders(self) -> list[tuple[str, FolderRole]]:
        return watched_folders(self.inbox_folders, self.sent_folders)

    def _polled_folders(self) -> list[tuple[str, FolderRole]]:
        """Every folder, the IDLE folder last (its EXAMINE leaves it selected for IDLE)."""
        folders = self._all_folders()
        return [f for f in folders if f[0] != self._idle_folder] + [
            f for f in folders if f[0] == self._idle_folder
        ]

    def _idle_round(self, client: IMAPClient, folder: str, next_poll: float, poll: float) -> float:
        """IDLE on `folder` until something needs doing; do it; return the next poll time.

        `folder` is EXAMINEd first only when it is not the selected, verified folder
        (see the class docstring); otherwise the untagged responses the server sent during
        our other commands (EXISTS, EXPUNGE, FETCH for the selected folder) tell whether
        it changed meanwhile.
        """
        if self._verified == folder:
            dirty = _take_unsolicited(client)
        else:
            dirty = self._examine_changed(client, folder, has_pending=False)
        if not dirty:
            dirty = self._idle_wait(client, next_poll)
        if self._stop_event.is_set():
            return next_poll
        if dirty:
            self._sync_all([(folder, "inbox")], only_changed=False)
            self._set_health("up", None, synced=True)
        reqs = self._take_rechecks()
        if reqs:
            self._do_recheck(reqs, synced=(folder,) if dirty else ())
        if time.monotonic() >= next_poll:
            self._polls += 1
            folders = [f for f in self._polled_folders() if f[0] != folder]
            if self._polls % self.idle_safety_polls == 0:
                folders.append((folder, "inbox"))  # the slow safety re-check (one EXAMINE)
            self._sync_all(folders, only_changed=True)
            self._set_health("up", None, synced=True)
            next_poll = time.monotonic() + poll
        return next_poll

    def _examine_changed(
        self, client: IMAPClient, folder: str, *, has_pending: bool | Callable[[], bool]
    ) -> bool:
        """EXAMINE `folder` (it stays selected): could `sync_folder` find anything new?

        Like `folder_changed`, from the EXAMINE response instead of STATUS. Marks the
        folder verified when nothing changed.
        """
        self._selected = self._verified = None
        info = client.select_folder(folder, readonly=True)
        self._selected = folder
        _take_unsolicited(client)  # the EXAMINE's own EXISTS / RECENT
        modseq = info.get(b"HIGHESTMODSEQ") if client.has_capability("CONDSTORE") else None
        try:
            changed = _state_changed(
                self._cursors.get(folder),
                uidvalidity=int(info[b"UIDVALIDITY"]),
                uidnext=int(info[b"UIDNEXT"]) if info.get(b"UIDNEXT") is not None else None,
                modseq=int(modseq) if modseq is not None else None,
                has_pending=has_pending,
            )
        except (KeyError, TypeError, ValueError):
            changed = True
        if not changed:
            self._verified = folder
        return changed

    def _idle_wait(self, client: IMAPClient, next_poll: float) -> bool:
        """IDLE until a change, a request, the next poll or the renewal; True on a change.

        Blocks in one ``poll()`` on the IMAP socket and the wake-up pair; no timer ticks.
        """
        client.idle()
        started = time.monotonic()
        deadline = min(next_poll, started + self.idle_renew)
        changed = False
        strikes = 0
        while True:  # an exception here means a dead connection: no DONE, reconnect
            self._wake.clear()  # then look at what it was raised for
            now = time.monotonic()
            if self._stop_event.is_set() or self._rechecks or now >= deadline:
                break
            responses, strikes = _idle_check(client, deadline - now, strikes, self._wake)
            for resp in responses:
                if _is_bye(resp):
                    raise ImapError(f"{self.mb.host}: server closed the connection (BYE)")
                if _is_change(resp):
                    changed = True
            if changed:
                break
        with _bounded(client, 10.0):
            _text, more = client.idle_done()
        return changed or any(_is_change(r) for r in more or ())

    def _do_recheck(self, reqs: list[_Recheck], synced: Sequence[str] = ()) -> None:
        try:
            folders = [f for f in self._polled_folders() if f[0] not in synced]
            self._sync_all(folders, only_changed=True)
            self._set_health("up", None, synced=True)
        except BaseException:
            for r in reqs:
                r.ok = False
                r.done.set()
            raise
        for r in reqs:
            r.ok = True
            r.done.set()

    def _sync_all(self, folders: Sequence[tuple[str, FolderRole]], *, only_changed: bool) -> None:
        """Sync `folders` in order; with `only_changed`, skip those that cannot have changed.

        That check is STATUS, except for the selected folder and the IDLE folder: EXAMINE
        (no STATUS on the selected mailbox, RFC 3501 6.3.10; the IDLE folder stays selected
        for the IDLE that follows).
        """
        client = self._client
        assert client is not None
        since = (self._clock() - self.sync_config.backfill).date()
        for folder, role in folders:
            if self._stop_event.is_set():
                return
            cursor = self._cursors.get(folder)
            pending: set[int] | None = None

            def has_pending(folder: str = folder) -> bool:
                nonlocal pending
                pending = set(self._get_pending(folder) or ())
                return bool(pending)

            try:
                if only_changed:
                    # With HIGHESTMODSEQ the check needs no pending UIDs (a store read).
                    if folder in (self._selected, self._idle_folder):
                        changed = self._examine_changed(client, folder, has_pending=has_pending)
                    else:
                        changed = folder_changed(client, folder, cursor, has_pending=has_pending)
                    if not changed:
                        continue
                if pending is None:
                    has_pending()
                assert pending is not None
                self._selected = self._verified = None
                result = sync_folder(
                    client, folder, role, cursor, since=since, pending_uids=pending,
                    batch_size=self.sync_config.batch_size,
                )  # fmt: skip
                self._selected = folder
            except imap_exc.IMAPClientAbortError:
                raise
            except imap_exc.IMAPClientError as exc:
                # NO/BAD for this folder (deleted, renamed, no rights): skip it, keep the rest.
                if folder not in self._unavailable:
                    self._unavailable.add(folder)
                    self._log.warning("folder_unavailable", folder=folder, error=_describe(exc))
                continue
            if folder in self._unavailable:
                self._unavailable.discard(folder)
                self._log.info("folder_available", folder=folder)
            # Emit first: if the consumer fails, the cursor stays and the step is redone.
            self._safe_emit(FolderSyncEvent(self.mb.name, result))
            self._cursors[folder] = result.cursor


def _enable_condstore(client: IMAPClient) -> None:
    """``ENABLE CONDSTORE`` (RFC 7162) where offered: once per connection.

    Without it Dovecot leaves HIGHESTMODSEQ out of EXAMINE until some other command
    enabled CONDSTORE, so the first cursors had none and every folder with pending
    messages looked changed at the next poll.
    """
    if not (client.has_capability("CONDSTORE") and client.has_capability("ENABLE")):
        return
    with contextlib.suppress(imap_exc.IMAPClientError):
        client.enable("CONDSTORE")


_UNSOLICITED = ("EXISTS", "EXPUNGE", "FETCH", "VANISHED")


def _take_unsolicited(client: IMAPClient) -> bool:
    """Drop what imaplib kept of untagged EXISTS / EXPUNGE / FETCH / VANISHED responses
    (news about the selected folder sent along with other commands); True if any."""
    untagged = client._imap.untagged_responses
    found = False
    for key in _UNSOLICITED:
        if untagged.pop(key, None):
            found = True
    return found


class _bounded:
    """Temporarily cap the socket timeout of `client` (e.g. for IDLE DONE)."""

    def __init__(self, client: IMAPClient, seconds: float) -> None:
        self.client = client
        self.seconds = seconds

    def __enter__(self) -> None:
        with contextlib.suppress(Exception):
            self.client.socket().settimeout(self.seconds)

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.client._set_read_timeout()


def _wait_readable(fds: Sequence[int], timeout: float | None) -> set[int]:
    """The subset of `fds` readable (or at EOF / in error) within `timeout` seconds.

    ``poll()``, not ``select()``: a daemon with hundreds of mailboxes has descriptors
    above FD_SETSIZE (1024).
    """
    if hasattr(select, "poll"):
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN | select.POLLPRI)
        ms = None if timeout is None else max(0, math.ceil(timeout * 1000))
        while True:
            try:
                return {fd for fd, _ in poller.poll(ms)}
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
    return set(select.select(list(fds), [], [], timeout)[0])  # pragma: no cover


def _buffered(client: IMAPClient) -> bool:
    """Has data already been read off the socket and not yet consumed?

    ``poll()`` cannot see it: bytes imaplib's buffered reader took in with an earlier
    line (for example an EXISTS that came in the same segment as ``+ idling``) and, on
    TLS, decrypted bytes the SSL object holds (``pending()``).
    """
    sock = client.socket()
    if isinstance(sock, ssl.SSLSocket) and sock.pending() > 0:
        return True
    peek = getattr(getattr(client._imap, "file", None), "peek", None)
    if peek is None:
        return False
    old = sock.gettimeout()
    try:
        sock.settimeout(0.0)  # peek reads the socket only when the buffer is empty
        return bool(peek(1))
    except (OSError, ValueError):  # nothing there (SSLWantReadError), or closed
        return False
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(old)


def _read_responses(client: IMAPClient) -> list[Any]:
    """The untagged responses that can be read without blocking (`idle_check`'s loop
    without its ``poll()``, which would miss `_buffered` data)."""
    sock = client.socket()
    old = sock.gettimeout()
    sock.settimeout(0.0)
    out: list[Any] = []
    try:
        while True:
            try:
                line = client._imap._get_line()
            except imap_exc.IMAPClientAbortError as exc:
                # imaplib says "EOF" for "nothing to read" on a non-blocking socket
                if "EOF" in str(exc):
                    break
                raise
            except OSError:  # would block (incl. ssl.SSLWantReadError)
                break
            out.append(_parse_untagged_response(line))
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(old)
    return out


def _idle_check(
    client: IMAPClient, timeout: float, strikes: int, wake: _Waker | None = None
) -> tuple[list[Any], int]:
    """Wait up to `timeout` for IDLE responses (or for `wake`); read them.

    imapclient swallows EOF while reading IDLE responses (it cannot tell it from "no more
    data" on its non-blocking socket), so a server that goes away without BYE would leave
    us polling a dead socket forever. A socket that polls readable but yields no response
    twice in a row is treated as closed. A wake-up returns ``[]`` with `strikes` unchanged.
    """
    if not _buffered(client):
        sock_fd = client.socket().fileno()
        fds = [sock_fd]
        if wake is not None and wake.fileno() >= 0:
            fds.append(wake.fileno())
        ready = _wait_readable(fds, timeout)
        if sock_fd not in ready:
            return [], (strikes if ready else 0)
    responses = _read_responses(client)
    if responses:
        return responses, 0
    if strikes + 1 >= 2:
        raise ImapError("connection closed by the server during IDLE")
    return [], strikes + 1


def _is_bye(resp: Any) -> bool:
    return isinstance(resp, tuple) and len(resp) >= 1 and resp[0] == b"BYE"


def _is_change(resp: Any) -> bool:
    """EXISTS / EXPUNGE / FETCH (flag change) / RECENT in an IDLE response."""
    if not isinstance(resp, tuple) or len(resp) < 2:
        return False
    kind = resp[1]
    return isinstance(kind, bytes) and kind.upper() in (b"EXISTS", b"EXPUNGE", b"FETCH", b"RECENT")


__all__ = [
    "SENT_FOLDER_NAMES",
    "AuthError",
    "FetchedMessage",
    "FolderCursor",
    "FolderSync",
    "FolderSyncEvent",
    "FoldersDiscovered",
    "HealthEvent",
    "ImapError",
    "MailboxHealth",
    "MailboxWatcher",
    "WatcherEvent",
    "connect",
    "discover_folders",
    "folder_changed",
    "folder_status",
    "logout",
    "sync_folder",
    "watched_folders",
]
