"""Which folders of a mailbox are watched: the configured inbox folders and the sent
folders, found by SPECIAL-USE ``\\Sent`` or by their common names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ackwatch.mail.connection import decode

if TYPE_CHECKING:
    from imapclient import IMAPClient

    from ackwatch.config import Folders
    from ackwatch.core.message import FolderRole

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
        decode(name)
        for attrs, _delim, name in listed
        if any(decode(a).lower() == "\\sent" for a in attrs or ())
    ]
    if by_flag:
        return inbox, _unique(f for f in by_flag if f not in inbox)
    names: dict[str, str] = {}
    for _attrs, delim, name in listed:
        name = decode(name)
        names.setdefault(name.casefold(), name)
        if delim:
            leaf = name.rsplit(decode(delim), 1)[-1]
            names.setdefault(leaf.casefold(), name)
    found = []
    for candidate in SENT_FOLDER_NAMES:
        real = names.get(candidate.casefold())
        if real is not None and real not in inbox:
            found.append(real)
    return inbox, _unique(found)


def watched_folders(client: IMAPClient, folders: Folders) -> list[tuple[str, FolderRole]]:
    """(folder, role) of every folder of the mailbox to sync (`discover_folders`): the
    inbox folders, then the sent folders that are not also inbox folders."""
    inbox, sent = discover_folders(client, folders)
    return [(f, "inbox") for f in inbox] + [(f, "sent") for f in sent if f not in inbox]


def _unique(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i in items:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


__all__ = ["SENT_FOLDER_NAMES", "discover_folders", "watched_folders"]
