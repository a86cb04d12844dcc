"""Several real ``ackwatch run --node`` processes on one PostgreSQL state: their config,
the lease rows and the Dovecot sessions that say who watches what."""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from pathlib import Path

from tests.faults.daemon_config import write_config
from tests.servers.dovecot import DovecotServer
from tests.servers.postgres import PostgresServer, database_yaml
from tests.support.daemon import ANNA

from ackwatch.config import load_config
from ackwatch.store import ClusterView, open_store

LEASE_SECONDS = 3.0  # short, so that a takeover fits in a test


def nodes_config(tmp_path: Path, dovecot: DovecotServer, postgres: PostgresServer, *,
                 mailboxes: int, smtp_port: int, lease: float = LEASE_SECONDS,
                 renew: float = 1.0, **kw: object) -> tuple[Path, list[str]]:
    """A config with ``mailboxes`` Dovecot users (all Anna's), its state in a new
    PostgreSQL database, a 3 s lease renewed every second; the users' names."""
    users = [dovecot.add_user() for _ in range(mailboxes)]
    cfg = write_config(tmp_path, dovecot, {f"mb{i}": (u, ANNA) for i, u in enumerate(users)},
                       smtp_port=smtp_port, **kw)  # type: ignore[arg-type]
    cfg.write_text(cfg.read_text() + database_yaml(postgres) + textwrap.dedent(f"""\
        cluster:
          lease: {lease:g}s
          renew: {renew:g}s
        """))
    return cfg, users


def cluster_view(cfg: Path) -> ClusterView:
    """The nodes, live leases and leader as the database has them now (none before the
    first node created the tables)."""
    store = open_store(Path("/nonexistent"), readonly=True, database=load_config(cfg).database)
    try:
        return store.cluster_view()
    except store.errors:
        return ClusterView((), {}, {}, None, 0)
    finally:
        store.close()


def held_by(view: ClusterView) -> Counter[str]:
    """How many mailboxes each node holds."""
    return Counter(view.leases.values())


def open_sessions(dovecot: DovecotServer, users: list[str]) -> dict[str, int]:
    """IMAP sessions open now per user, from Dovecot's log: logins minus ends."""
    text = dovecot.log_text()
    logins = Counter(re.findall(r"Login: user=<([^>]+)>", text))
    ends = Counter(re.findall(r"imap\(([^)]+)\)<[^>]*><[^>]*>: (?:Info: )?(?:Logged out|Disconnected)",
                              text))
    return {u: logins[u] - ends[u] for u in users}
