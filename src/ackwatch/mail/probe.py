"""What ``ackwatch check-mailboxes`` finds out about one mailbox: log in as the daemon
would, note the capabilities that matter, the folders ackwatch would watch and why, and
how many messages the backfill window holds. Read-only, like every connection ackwatch
makes (EXAMINE and SEARCH only), and one connection per mailbox.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ackwatch.mail import connection
from ackwatch.mail.folders import discover_folders

if TYPE_CHECKING:
    from imapclient import IMAPClient

    from ackwatch.config import MailboxConfig

Failure = Literal["unreachable", "refused", "no_sent_folder"]
CAPABILITIES = ("IDLE", "CONDSTORE", "SPECIAL-USE")


@dataclass(frozen=True)
class MailboxProbe:
    """One mailbox's answer; ``problem`` is one plain sentence of what to do."""

    name: str
    host: str
    failure: Failure | None = None
    problem: str | None = None
    mechanism: str | None = None
    capabilities: tuple[str, ...] = ()
    inbox: tuple[str, ...] = ()
    sent: tuple[str, ...] = ()
    sent_reason: str | None = None
    folders: tuple[str, ...] = ()
    backfill_messages: int | None = None


def probe_mailbox(mb: MailboxConfig, since: dt.date) -> MailboxProbe:
    where = f"{mb.host}:{mb.port}"
    try:
        client = connection.connect(mb)
    except connection.AuthError as exc:
        return MailboxProbe(mb.name, where, "refused", _refused_sentence(mb, str(exc)))
    except connection.ImapError as exc:
        return MailboxProbe(mb.name, where, "unreachable",
                            f"cannot reach {where}: {exc}; check host, port, security and "
                            "the firewall")
    try:
        return _examine(client, mb, where, since)
    except connection.CONNECTION_ERRORS as exc:
        return MailboxProbe(mb.name, where, "unreachable",
                            f"{where} failed after the login: {connection.describe(exc)}")
    finally:
        connection.logout(client)


def _examine(client: IMAPClient, mb: MailboxConfig, where: str, since: dt.date
             ) -> MailboxProbe:
    capabilities = tuple(c for c in CAPABILITIES if client.has_capability(c))
    listed = client.list_folders()
    names = tuple(connection.decode(name) for _, _, name in listed)
    flagged = {connection.decode(name) for attrs, _, name in listed
               if any(connection.decode(a).lower() == "\\sent" for a in attrs or ())}
    inbox, sent = discover_folders(client, mb.folders)
    if mb.folders.sent != "auto":
        reason = "as configured in folders.sent"
    elif sent and set(sent) <= flagged:
        reason = "found by SPECIAL-USE \\Sent"
    else:
        reason = "found by its name: no folder has SPECIAL-USE \\Sent"
    missing = [f for f in (*inbox, *sent) if f not in names]
    base = MailboxProbe(mb.name, where, mechanism=_mechanism(client, mb),
                        capabilities=capabilities, inbox=tuple(inbox), sent=tuple(sent),
                        sent_reason=reason, folders=names)
    if not sent or missing:
        what = (f"the folder(s) {', '.join(missing)} do not exist" if missing else
                "no sent folder found (none has SPECIAL-USE \\Sent, none has a usual name)")
        return _replace(base, failure="no_sent_folder",
                        problem=f"{what}: the server has {', '.join(names) or 'no folders'}; "
                                "set folders.inbox / folders.sent to the right names")
    count = 0
    for folder in inbox:
        client.select_folder(folder, readonly=True)  # EXAMINE
        count += len(client.search(["SINCE", since]))
    return _replace(base, backfill_messages=count)


def _replace(probe: MailboxProbe, **changes: object) -> MailboxProbe:
    import dataclasses

    return dataclasses.replace(probe, **changes)  # type: ignore[arg-type]


def _mechanism(client: IMAPClient, mb: MailboxConfig) -> str:
    if mb.oauth2 is not None:
        used = getattr(client, "ackwatch_mechanism", "XOAUTH2/OAUTHBEARER")
        return f"{used} (oauth2 application {mb.oauth2.name})"
    if mb.oauth2_token is not None:
        return "XOAUTH2 (oauth2_token_command)"
    ascii_only = mb.username.isascii()
    return "LOGIN" if ascii_only else "AUTHENTICATE PLAIN"


def _refused_sentence(mb: MailboxConfig, error: str) -> str:
    if mb.oauth2 is not None:
        return f"the login of {mb.username} was refused: {error}"
    source = (mb.password or mb.oauth2_token)
    where = source.describe() if source is not None else "no secret configured"
    return (f"the login of {mb.username} was refused ({error}): check the user name and "
            f"the password in {where}")
