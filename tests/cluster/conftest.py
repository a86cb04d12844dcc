"""Several ``ackwatch run --node`` processes sharing one PostgreSQL state and one Dovecot
(`tests.support.nodes`), with the fault tests' servers and processes."""

from __future__ import annotations

from tests.servers.fixtures import (  # noqa: F401 - fixtures
    dovecot_server,
    postgres_server,
    restartable_postgres,
)
from tests.support.daemon import ackwatch, dovecot, sink  # noqa: F401 - fixtures
