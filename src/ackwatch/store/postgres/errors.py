"""Which PostgreSQL errors are an outage to ride out, and which must stop ackwatch.

An outage (`records.StoreUnavailable`): the connection was lost (a server restart, a
failover, a network blip), the server is shutting down or starting up, or cannot take
another connection yet. The transaction it cut stored nothing, and the same work can be
done again on a new connection.

Everything else stops the daemon as before (`records.StoreError`): authentication
failed, permission denied, a database that does not exist, a certificate that does not
verify, the server's disk full, a schema newer than this ackwatch.
"""

from __future__ import annotations

from typing import Any

import psycopg

# SQLSTATEs of a lost or refused connection: class 08 (connection exception), and the
# server ending sessions or not taking them yet (admin_shutdown, crash_shutdown,
# cannot_connect_now), or out of connection slots while the others reconnect.
OUTAGE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# A writer on a server that became a standby (a failover in progress): connect again
# until the primary is back (the writer's connection asks for a read-write server).
READ_ONLY_TRANSACTION = "25006"

# A connection that could not be made carries no SQLSTATE (psycopg gives libpq's text):
# these say the configuration or the server's rules refuse us, whatever the moment.
REFUSED_FOR_GOOD = (
    "authentication failed",
    "no pg_hba.conf entry",
    "does not exist",
    "permission denied",
    "no password supplied",
    "password is required",
    "certificate",  # does not verify, does not match the host name, CA file missing
    "does not support ssl",
    "ssl is not enabled",
    "sslmode",
    "invalid connection option",
)


def lost_connection(exc: psycopg.Error, conn: Any, *, writer: bool) -> bool:
    """Whether ``exc``, raised on the open connection ``conn``, is an outage."""
    if conn is not None and (conn.broken or conn.closed):
        return True
    state = exc.sqlstate or ""
    if state.startswith("08") or state in OUTAGE_SQLSTATES:
        return True
    return writer and state == READ_ONLY_TRANSACTION


def connect_failure_is_outage(exc: psycopg.Error) -> bool:
    """Whether a failed connect is an outage (refused, timed out, the server starting
    or shutting down, a standby), not a refusal that will stand (`REFUSED_FOR_GOOD`)."""
    state = exc.sqlstate or ""
    if state.startswith("28") or state in ("42501", "3D000"):
        return False
    text = str(exc).lower()
    return not any(marker in text for marker in REFUSED_FOR_GOOD)
