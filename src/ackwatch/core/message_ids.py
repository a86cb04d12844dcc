"""Message ids, References and Outlook's Thread-Index: what threads mail together.

Message ids keep their local part verbatim (it is case-sensitive and Gmail/Outlook ids
are base64-like, so lower-casing it would merge distinct ids) and lower-case the domain
part (case-insensitive, and the only part gateways are known to re-case). Whitespace
inside ``<...>`` (folding artefacts) is removed. The same `normalize_message_id` is used
for Message-ID, In-Reply-To and References, which is what makes them comparable.
"""

from __future__ import annotations

import base64
import binascii
import re

MAX_REFERENCES = 100  # the most recent ids of References are kept

_ANGLE_ID = re.compile(r"<([^<>]*)>")
_BARE_ID = re.compile(r"[^\s<>,;\"()]+@[^\s<>,;\"()]+")
_ID_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")  # controls, space and DEL: never in an id
_WS = re.compile(r"\s+")


def normalize_message_id(value: str) -> str | None:
    """``<Local@Domain.Example>`` -> ``<Local@domain.example>``; None when it is no id.

    Accepts the id with or without angle brackets; whitespace inside is dropped (folding);
    requires exactly one addr-spec-like ``local@domain`` with both parts non-empty.
    """
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    value = _WS.sub("", value)
    if not value or "<" in value or ">" in value or len(value) > 998:
        return None
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain:
        return None
    if _ID_FORBIDDEN.search(value):
        return None
    return f"<{local}@{domain.lower()}>"


def extract_message_ids(value: str, *, limit: int | None = MAX_REFERENCES) -> tuple[str, ...]:
    """Every message id found in a References / In-Reply-To value, normalized.

    Bracketed ``<...>`` tokens are taken; comments, phrases and junk tokens are dropped.
    Only when no bracketed token exists are bare ``local@domain`` tokens accepted. Order is
    kept, duplicates are dropped, and with `limit` only the last (most recent) ids remain.
    """
    tokens = _ANGLE_ID.findall(value)
    if not tokens:
        tokens = _BARE_ID.findall(value)
    seen: set[str] = set()
    ids: list[str] = []
    for tok in tokens:
        mid = normalize_message_id(tok)
        if mid is not None and mid not in seen:
            seen.add(mid)
            ids.append(mid)
    if limit is not None and len(ids) > limit:
        ids = ids[-limit:]
    return tuple(ids)


def thread_index_root(value: str | None) -> str | None:
    """The conversation part of an Outlook Thread-Index, as hex; None when unusable.

    A Thread-Index is base64 of a 22-byte header (FILETIME + conversation GUID) followed by
    one 5-byte block per reply; every message of one Outlook conversation shares the header.
    """
    if not value:
        return None
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", value)
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        raw = base64.b64decode(cleaned)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 22 or not any(raw[:22]):
        return None
    return raw[:22].hex()


def thread_index_depth(value: str | None) -> int:
    """How many replies deep an Outlook Thread-Index is (0 for a conversation start)."""
    if not value:
        return 0
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", value)
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        raw = base64.b64decode(cleaned)
    except (binascii.Error, ValueError):
        return 0
    return max(0, (len(raw) - 22) // 5)


def thread_ids(
    value: str | None,
    limit: int,
    own_ids: set[str],
    message_id: str | None,
    defects: set[str],
) -> tuple[str, ...]:
    """In-Reply-To / References ids, without the mail's own id and its participants.

    `own_ids` are the participants' addresses as ids (``<address>``, lower-cased).
    """
    if not value:
        return ()
    ids = list(extract_message_ids(value, limit=None))
    if not ids:
        defects.add("junk-reference")  # text, "<>", bare words: nothing usable
        return ()
    # A mailer that puts an address where an id belongs would link unrelated mail.
    if message_id in ids or not own_ids.isdisjoint(map(str.lower, ids)):
        defects.add("junk-reference")
        ids = [i for i in ids if i.lower() not in own_ids and i != message_id]
    if len(ids) > limit:
        defects.add("too-many-references")
        ids = ids[-limit:]
    return tuple(ids)
