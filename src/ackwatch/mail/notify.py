"""IMAP NOTIFY (RFC 5465): one connection told of changes in folders it has not selected.

The watcher IDLEs on the inbox; with NOTIFY the server also reports, during that IDLE (and
along with any other command), a ``STATUS`` response when mail is added to, removed from
or re-flagged in the other watched folders (the sent folder), so a reply is seen within a
round trip instead of at the next poll. Dovecot offers it (``NOTIFY`` capability, with its
mailbox list index); Gmail, Microsoft 365 and pymap do not.

What is asked (RFC 5465 section 5 and its errata: every event list parenthesized)::

    NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))
               (mailboxes ("Sent" ...) (MessageNew MessageExpunge FlagChange))

``selected-delayed``: news about the selected folder as IDLE gives it (EXISTS, FETCH),
expunges held until the client can take them. ``mailboxes``: the watched folders other
than the IDLE folder, which is re-checked with EXAMINE whenever it was not the selected
one. NOTIFY only asks for news; it changes no flag and selects nothing. Everything the
server sends for it passes the connection's `imapguard` bounds like any response.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from imapclient import exceptions as imap_exc

if TYPE_CHECKING:
    from imapclient import IMAPClient

EVENTS = b"(MessageNew MessageExpunge FlagChange)"
EVENTS_NO_FLAGS = b"(MessageNew MessageExpunge)"  # a server refusing FlagChange (BADEVENT)


def offered(client: IMAPClient) -> bool:
    return bool(client.has_capability("NOTIFY"))


def notify_set(client: IMAPClient, folders: Sequence[str]) -> bool:
    """Ask for news about ``folders`` (not selected) and the selected folder; True if the
    server agreed. A server that refuses FlagChange is asked again without it (a flag
    change in the sent folder acknowledges nothing); any other refusal is False."""
    names = [_as_bytes(client._normalise_folder(f)) for f in folders]  # quoted, UTF-7
    mailboxes = b"(" + b" ".join(names) + b")"
    for events in (EVENTS, EVENTS_NO_FLAGS):
        args = [b"SET", b"(selected-delayed " + events + b")"]
        if folders:
            args.append(b"(mailboxes " + mailboxes + b" " + events + b")")
        try:
            typ, _data = client._raw_command(b"NOTIFY", args, uid=False)
        except imap_exc.IMAPClientAbortError:
            raise
        except imap_exc.IMAPClientError:
            continue
        if typ == "OK":
            return True
    return False


class Notified:
    """NOTIFY on one watcher's connection: whether the server agreed (`on`), and whether
    news about another folder came since it was last taken (`heard`, `take`)."""

    def __init__(self) -> None:
        self.on = False
        self._news = False

    def start(self, client: IMAPClient, folders: Sequence[str], logger: Any) -> None:
        """NOTIFY SET for `folders` where offered (logged when refused: the poll goes on)."""
        self.on = self._news = False
        if offered(client):
            self.on = notify_set(client, folders)
            if not self.on:
                logger.info("imap_notify_refused", fallback="poll")

    def heard(self) -> None:
        self._news = self.on  # without NOTIFY, news of another folder waits for the poll

    def take(self, client: IMAPClient) -> bool:
        """Any news since the last take: heard during IDLE, or kept by imaplib from the
        responses to other commands (dropped: the check that follows covers it)."""
        news = self._news or (self.on and take_notified(client))
        self._news = False
        return news


def _as_bytes(name: str | bytes) -> bytes:
    return name if isinstance(name, bytes) else name.encode("ascii")


def take_notified(client: IMAPClient) -> bool:
    """Drop what imaplib kept of untagged STATUS responses (NOTIFY's news about a folder
    other than the selected one, sent along with other commands); True if any."""
    return bool(client._imap.untagged_responses.pop("STATUS", None))


def is_notification(resp: Any) -> bool:
    """A ``* STATUS`` response read during IDLE: news about another folder."""
    return isinstance(resp, tuple) and len(resp) >= 1 and resp[0] == b"STATUS"


__all__ = ["EVENTS", "Notified", "is_notification", "notify_set", "offered", "take_notified"]
