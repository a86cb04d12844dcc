"""The interface every test IMAP server offers (Dovecot, pymap), and the admin helpers.

A test server is a real IMAP server process on 127.0.0.1 with plain-password users
(``secret-<user>`` unless told otherwise). Everything a test does *to* a mailbox (append,
set flags, recreate folders) goes through a separate, read-write admin IMAP connection
logged in as that user, never through the code under test, so that ackwatch's own
connection stays read-only. `flags_snapshot` uses EXAMINE + ``FETCH (FLAGS)`` so that
taking it changes nothing (no \\Seen, no \\Recent claimed).

Per-test isolation: `add_user` creates a fresh user at any time (both servers re-read
their user list on every login), so tests need no cleanup.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import re
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

HOST = "127.0.0.1"
DEFAULT_USERS = ("anna", "piotr", "office")

_APPENDUID = re.compile(rb"APPENDUID\s+(\d+)\s+(\d+)", re.IGNORECASE)
_user_counter = itertools.count(1)


class ServerStartError(RuntimeError):
    """The server process did not come up; the message carries the tail of its log."""


def default_password(user: str) -> str:
    return f"secret-{user}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_greeting(host: str, port: int, deadline: float, alive=lambda: True) -> None:
    """Block until the port accepts a connection and sends an IMAP ``* OK`` greeting."""
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise ServerStartError("server process exited during start-up")
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.settimeout(2)
                data = s.recv(512)
                if data.startswith(b"* OK") or data.startswith(b"* PREAUTH"):
                    return
                last = RuntimeError(f"unexpected greeting {data[:80]!r}")
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise ServerStartError(f"no IMAP greeting on {host}:{port}: {last}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ImapTestServer(ABC):
    """A running IMAP server on loopback with helpers used by the integration tests."""

    kind: str  # "dovecot" | "pymap"
    host: str = HOST
    port: int
    # What the server offers, so that tests can state expectations per server.
    has_condstore: bool
    has_special_use: bool
    has_idle: bool
    has_keywords: bool  # custom keywords such as $Ackwatch-Done can be stored

    def __init__(self) -> None:
        self.passwords: dict[str, str] = {}

    # ------------------------------------------------------------------ lifecycle
    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    def restart(self) -> None:
        """Stop and start again on the same port with the same data."""
        self.stop()
        self.start()

    @abstractmethod
    def is_running(self) -> bool: ...

    def __enter__(self) -> ImapTestServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ users
    @abstractmethod
    def _write_users(self) -> None:
        """Persist `self.passwords` where the server reads it on every login."""

    def add_user(self, name: str | None = None, password: str | None = None) -> str:
        """Create a user (a fresh unique one when `name` is None); return its name.

        The user gets an INBOX and a "Sent" folder.
        """
        if name is None:
            name = f"u{next(_user_counter):04d}x{os.getpid()}"
        self.passwords[name] = password if password is not None else default_password(name)
        self._write_users()
        self._ensure_sent(name)
        return name

    def _ensure_sent(self, user: str) -> None:
        with self.admin(user) as c:
            if not c.folder_exists("Sent"):
                c.create_folder("Sent")

    def password(self, user: str) -> str:
        return self.passwords[user]

    # ------------------------------------------------------------------ admin helpers
    def _login(self, client: IMAPClient, user: str, password: str) -> None:
        if password.isascii():
            client.login(user, password)
        else:  # LOGIN is ASCII only (imaplib); RFC 4616 PLAIN carries UTF-8
            client.plain_login(user, password)

    @contextlib.contextmanager
    def admin(self, user: str) -> Iterator[IMAPClient]:
        """A read-write IMAP connection logged in as `user` (never used by ackwatch)."""
        client = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        try:
            self._login(client, user, self.passwords[user])
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def append(
        self,
        user: str,
        folder: str,
        raw: bytes,
        flags: Iterable[str] = (),
        internaldate: dt.datetime | None = None,
    ) -> int:
        """APPEND a message; returns its UID (from UIDPLUS APPENDUID)."""
        with self.admin(user) as c:
            resp = c.append(folder, raw, flags=tuple(flags), msg_time=internaldate)
            m = _APPENDUID.search(resp if isinstance(resp, bytes) else str(resp).encode())
            if m:
                return int(m.group(2))
            c.select_folder(folder, readonly=True)  # pragma: no cover - no UIDPLUS
            return max(c.search("ALL"))

    def set_flags(self, user: str, folder: str, uid: int, flags: Iterable[str]) -> None:
        """Replace the flags of one message (STORE FLAGS), as a mail program would."""
        with self.admin(user) as c:
            c.select_folder(folder)
            c.set_flags([uid], [f.encode() if isinstance(f, str) else f for f in flags])
            c.close_folder()

    def add_flags(self, user: str, folder: str, uid: int, flags: Iterable[str]) -> None:
        with self.admin(user) as c:
            c.select_folder(folder)
            c.add_flags([uid], [f.encode() if isinstance(f, str) else f for f in flags])
            c.close_folder()

    def expunge(self, user: str, folder: str, uid: int) -> None:
        with self.admin(user) as c:
            c.select_folder(folder)
            c.add_flags([uid], [b"\\Deleted"])
            c.uid_expunge([uid]) if c.has_capability("UIDPLUS") else c.expunge()
            c.close_folder()

    def flags_snapshot(self, user: str) -> dict[tuple[str, int], frozenset[str]]:
        """Flags of every message in every folder, taken read-only.

        EXAMINE neither claims \\Recent nor sets \\Seen, so the snapshot itself changes
        nothing; \\Recent is part of the snapshot (a SELECT by anyone would clear it).
        """
        out: dict[tuple[str, int], frozenset[str]] = {}
        with self.admin(user) as c:
            for _attrs, _delim, name in c.list_folders():
                info = c.select_folder(name, readonly=True)
                if not info.get(b"EXISTS"):
                    continue
                # imapclient's fetch() cannot take "1:*" (it filters by int(uid)): SEARCH first.
                uids = c.search("ALL")
                if not uids:
                    continue
                for uid, data in c.fetch(uids, ["FLAGS"]).items():
                    flags = frozenset(
                        f.decode() if isinstance(f, bytes) else str(f)
                        for f in data.get(b"FLAGS", ())
                    )
                    out[(name, uid)] = flags
        return out

    def uidvalidity(self, user: str, folder: str) -> int:
        with self.admin(user) as c:
            return int(c.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def create_folder(self, user: str, name: str, special_use: str | None = None) -> None:
        """CREATE a folder. `special_use` (e.g. "\\\\Sent") needs server support."""
        if special_use is not None:
            self._create_special(user, name, special_use)
            return
        with self.admin(user) as c:
            c.create_folder(name)

    def _create_special(self, user: str, name: str, special_use: str) -> None:
        raise NotImplementedError(f"{self.kind} cannot create {special_use} folders")

    def recreate_folder(self, user: str, folder: str, *, keep_messages: bool = True) -> int:
        """DELETE + CREATE a folder so that its UIDVALIDITY changes; returns the new one.

        With `keep_messages`, the messages are appended again (new UIDs, same content,
        flags and INTERNALDATE), as after a server migration.
        """
        if folder.upper() == "INBOX":
            raise ValueError("INBOX cannot be deleted; recreate another folder")
        saved: list[tuple[bytes, tuple[bytes, ...], dt.datetime]] = []
        with self.admin(user) as c:
            old = int(c.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])
            if keep_messages:
                c.select_folder(folder, readonly=True)
                uids = c.search("ALL")
                if uids:
                    c.normalise_times = False
                    data = c.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"])
                    for uid in sorted(data):
                        d = data[uid]
                        flags = tuple(f for f in d[b"FLAGS"] if f != b"\\Recent")
                        saved.append((d[b"BODY[]"], flags, d[b"INTERNALDATE"]))
                # Leave the folder before deleting it (pymap refuses CLOSE after EXAMINE).
                c.select_folder("INBOX", readonly=True)
            _delete_and_create(c, folder)
            for raw, flags, when in saved:
                c.append(folder, raw, flags=flags, msg_time=when)
            new = int(c.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])
        if new == old:  # pragma: no cover - would make the test meaningless
            raise AssertionError(f"{self.kind}: UIDVALIDITY of {folder} did not change")
        return new

    # ------------------------------------------------------------------ diagnostics
    def log_text(self) -> str:
        """The server's log so far ("" when it keeps none)."""
        return ""


def _delete_and_create(c: IMAPClient, folder: str, attempts: int = 5) -> None:
    """DELETE then CREATE ``folder``. Dovecot may still see the deleted Maildir folder
    for a moment while another session (the watcher under test) has it open, and answer
    the CREATE with ALREADYEXISTS: delete and create again, a few times."""
    for attempt in range(attempts):
        with contextlib.suppress(IMAPClientError) if attempt else contextlib.nullcontext():
            c.delete_folder(folder)
        try:
            c.create_folder(folder)
            return
        except IMAPClientError as exc:
            if "ALREADYEXISTS" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.2)


def make_message(
    *,
    subject: str = "Quote for the spring campaign",
    sender: str = "ceo@client.example",
    to: str = "anna@agency.example",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    date: dt.datetime | None = None,
    body: str = "Hello,\r\nplease send the quote.\r\n",
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """A small RFC 5322 message as bytes (CRLF line ends)."""
    date = date or dt.datetime.now(dt.UTC)
    mid = message_id or f"<{time.time_ns()}.{next(_user_counter)}@client.example>"
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
        f"Message-ID: {mid}",
    ]
    if in_reply_to:
        lines += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    lines += [f"{k}: {v}" for k, v in extra_headers]
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", ""]
    return ("\r\n".join(lines) + "\r\n" + body).encode("utf-8")
