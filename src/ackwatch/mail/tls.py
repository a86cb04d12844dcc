"""The one TLS policy of ackwatch's IMAP and SMTP connections.

Certificate chain and host name are always verified (``verify_mode`` CERT_REQUIRED,
``check_hostname``); ``ca_file`` replaces the system store for a private CA; nothing
older than TLS 1.2 is accepted, whatever the Python or OpenSSL defaults allow.
"""

from __future__ import annotations

import ssl
from pathlib import Path

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


def client_context(ca_file: Path | str | None = None) -> ssl.SSLContext:
    """A client context for a server named by host name (raises `OSError` /
    `ssl.SSLError` when `ca_file` cannot be loaded)."""
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    ctx.minimum_version = MINIMUM_VERSION
    return ctx


__all__ = ["MINIMUM_VERSION", "client_context"]
