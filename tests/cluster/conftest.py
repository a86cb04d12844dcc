"""Several ``ackwatch run --node`` processes sharing one PostgreSQL state and one Dovecot
(`tests.support.nodes`), with the fault tests' servers and processes."""

from __future__ import annotations

from tests.servers.fixtures import dovecot_server, postgres_server  # noqa: F401 - fixtures
from tests.support.daemon import ackwatch, dovecot, sink  # noqa: F401 - fixtures
