"""``ackwatch run --once`` and ``backfill`` write the state and watch the mailboxes
without a lease: beside running nodes on the same PostgreSQL state they refuse, exit 75
(EX_TEMPFAIL), naming the nodes; once the nodes have stopped they run."""

from __future__ import annotations

import datetime as dt

import pytest
from tests.support.nodes import cluster_view, nodes_config
from tests.support.run_once import ackwatch as command
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]


def test_run_once_and_backfill_refuse_with_75_while_nodes_hold_leases(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    cfg, _ = nodes_config(tmp_path, dovecot, postgres_server, mailboxes=2,
                          smtp_port=sink.port)
    nodes = [ackwatch(cfg, args=("--node", n)) for n in ("n1", "n2")]
    wait_for(lambda: len(cluster_view(cfg).leases) == 2, 20, "both mailboxes held", step=0.2)
    since = (dt.date.today() - dt.timedelta(days=7)).isoformat()
    for args in (("run", "--once"), ("backfill", "--since", since)):
        done = command(*args, "-c", str(cfg))
        assert done.returncode == 75, done.stderr
        assert "2 nodes running on this state (n1, n2;" in done.stderr
        assert "stop them first" in done.stderr
    assert all(d.alive() for d in nodes)

    for d in nodes:
        assert d.stop() == 0
    assert cluster_view(cfg).leases == {}
    done = command("run", "--once", "-c", str(cfg))
    assert done.returncode == 0, done.stderr
