"""The one place a body is read: the first text part of an acknowledgement, for the
promise keeper (never called with ``promise.enabled: false``).

Read-only like the rest: EXAMINE, then BODYSTRUCTURE and ``BODY.PEEK[<part>]<0.limit>``
(PEEK: ``\\Seen`` is never set), at most `limit` bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ackwatch.mail.connection import decode
from ackwatch.mail.uidfetch import uid_fetch

if TYPE_CHECKING:
    from imapclient import IMAPClient

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
        ctype, subtype = decode(structure[0]).lower(), decode(structure[1]).lower()
    except (IndexError, TypeError):
        return out
    if ctype != "text" or subtype not in ("plain", "html"):
        return out
    params = structure[2] if isinstance(structure[2], (list, tuple)) else ()
    pairs = dict(zip(params[::2], params[1::2], strict=False))
    charset = next((decode(v) for k, v in pairs.items() if decode(k).lower() == "charset"),
                   "utf-8")  # fmt: skip
    encoding = decode(structure[5]).lower() if len(structure) > 5 and structure[5] else "7bit"
    # Extension data of a text part: [8] md5, [9] disposition ("attachment", params).
    disposition = structure[9] if len(structure) > 9 else None
    if (
        isinstance(disposition, (list, tuple))
        and disposition
        and disposition[0]
        and decode(disposition[0]).lower() == "attachment"
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
    answer = uid_fetch(client, str(int(uid)), ["UID", "BODYSTRUCTURE"]).get(int(uid))
    if not answer or b"BODYSTRUCTURE" not in answer:
        return None
    parts = _text_parts(answer[b"BODYSTRUCTURE"])
    if not parts:
        return None
    spec, subtype, charset, encoding = next((p for p in parts if p[1] == "plain"), parts[0])
    data = uid_fetch(client, str(int(uid)), ["UID", f"BODY.PEEK[{spec}]<0.{int(limit)}>"])
    raw = None
    for key, value in (data.get(int(uid)) or {}).items():
        if isinstance(key, bytes) and key.upper().startswith(b"BODY["):
            raw = value
    if raw is None:
        return None
    raw = raw if isinstance(raw, bytes) else str(raw).encode()
    text = _decode_part(raw[:limit], charset, encoding)
    return _html_text(text) if subtype == "html" else text



__all__ = ["BODY_LIMIT", "fetch_first_text_part"]
