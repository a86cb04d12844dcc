"""SMTP AUTH with credentials that are not ASCII.

smtplib encodes the AUTH exchange as ASCII: a password with one non-ASCII character
fails every mail with a UnicodeEncodeError, whose text names that character and its
position. AUTH PLAIN (RFC 4616) carries UTF-8, so with such credentials ackwatch sends
AUTH PLAIN itself; a server that does not offer PLAIN gets no attempt at all
(`CredentialsUnusable`, which names where the secret comes from, never the secret).
ASCII credentials go through smtplib's own `login` (CRAM-MD5, PLAIN or LOGIN, as before).
"""

from __future__ import annotations

import base64
import smtplib

__all__ = ["CredentialsUnusable", "login", "mechanisms", "oauth2_login", "oauth2_mechanism"]


class CredentialsUnusable(Exception):
    """The server offers no way to send these credentials. The text is safe to log."""


def mechanisms(conn: smtplib.SMTP) -> tuple[str, ...]:
    """The AUTH mechanisms the server announced in its EHLO answer (upper case)."""
    return tuple(conn.esmtp_features.get("auth", "").upper().split())


def login(conn: smtplib.SMTP, username: str, password: str, *, source: str) -> None:
    """Authenticate on an open, EHLO'd connection.

    ``source`` describes where the password comes from (`secrets.describe`), for the
    error when the server cannot take it. Raises smtplib's exceptions as its own login
    does (`SMTPAuthenticationError` on a refusal, `SMTPNotSupportedError` without AUTH).
    """
    if username.isascii() and password.isascii():
        try:
            conn.login(username, password)
        finally:
            # smtplib keeps it on the connection object (typeshed: always a str)
            conn.password = None  # type: ignore[assignment]
        return
    if not conn.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    offered = mechanisms(conn)
    if "PLAIN" not in offered:
        raise CredentialsUnusable(
            f"the SMTP credentials ({source}) contain non-ASCII characters, which only "
            f"AUTH PLAIN carries (RFC 4616, UTF-8); the server offers "
            f"{' '.join(offered) or 'no mechanism'}: use an ASCII password or enable PLAIN"
        )
    token = base64.b64encode(
        b"\0" + username.encode("utf-8") + b"\0" + password.encode("utf-8")
    ).decode("ascii")
    code, answer = conn.docmd("AUTH", f"PLAIN {token}")
    if code == 334:  # a server that wants the response on a line of its own
        code, answer = conn.docmd(token)
    if code not in (235, 503):  # 503: already authenticated
        raise smtplib.SMTPAuthenticationError(code, answer)


def oauth2_mechanism(conn: smtplib.SMTP) -> str | None:
    """OAUTHBEARER (RFC 7628) where offered, else XOAUTH2; None for neither."""
    offered = mechanisms(conn)
    return next((m for m in ("OAUTHBEARER", "XOAUTH2") if m in offered), None)


def oauth2_login(conn: smtplib.SMTP, username: str, token: str, mechanism: str) -> None:
    """AUTH XOAUTH2 or OAUTHBEARER with an access token, the initial response on the AUTH
    line. A refusal may come as a 334 challenge carrying the error (JSON): the exchange is
    ended as each mechanism says (an empty line; ``%x01`` for OAUTHBEARER), and the
    server's final answer raised as `SMTPAuthenticationError`."""
    if mechanism == "OAUTHBEARER":
        identity = username.replace("=", "=3D").replace(",", "=2C")
        raw = f"n,a={identity},\x01auth=Bearer {token}\x01\x01"
        end = base64.b64encode(b"\x01").decode("ascii")
    else:
        raw = f"user={username}\x01auth=Bearer {token}\x01\x01"
        end = ""
    response = base64.b64encode(raw.encode("utf-8")).decode("ascii")
    code, answer = conn.docmd("AUTH", f"{mechanism} {response}")
    if code == 334:
        code, answer = conn.docmd(end)
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, answer)
