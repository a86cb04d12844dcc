"""Several nodes in a hostile world: a node cut off from the database, PostgreSQL
restarted under them, a stop while the database hangs. Real ``ackwatch run --node``
processes, one Dovecot, one PostgreSQL, one SMTP sink; a node's database connections go
through the fault proxy (`tests.faults.proxy`) where the test cuts it off. A 3 s lease
renewed every second."""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from tests.faults.proxy import FaultProxy
from tests.support.daemon import client_mail, mails, times_mentioned
from tests.support.nodes import LEASE_SECONDS, cluster_view, held_by, nodes_config, open_sessions
from tests.support.waiting import wait_for

from ackwatch.config import load_config
from ackwatch.store import open_store

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]


def through(proxy: FaultProxy, cfg: Path, postgres, name: str) -> Path:
    """A copy of ``cfg`` whose database connections go through ``proxy``."""
    proxied = cfg.with_name(name)
    proxied.write_text(cfg.read_text().replace(f"{postgres.host}:{postgres.port}/",
                                               f"{proxy.host}:{proxy.port}/"))
    proxied.chmod(0o600)
    return proxied


def wait_spread(cfg: Path, nodes: list[str], mailboxes: int, timeout: float = 30):
    """The view once every mailbox is held, by ``nodes`` only, M/N each (+-1), and one
    of them leads."""
    def even():
        view = cluster_view(cfg)
        counts = [held_by(view)[n] for n in nodes]
        if (len(view.leases) == mailboxes and sum(counts) == mailboxes
                and max(counts) - min(counts) <= 1 and view.leader in nodes):
            return view
        return None
    return wait_for(even, timeout, f"the mailboxes spread over {nodes}", step=0.2)


class SessionSampler:
    """Samples the Dovecot sessions of ``users`` in a thread of its own, every 0.1 s,
    for the whole ``with``: ``most`` is the most sessions any one user ever had.

    The test's own mail goes in through `append`, which the sampler never samples
    across: an APPEND is an IMAP session of that user too."""

    def __init__(self, dovecot, users: list[str]) -> None:
        self._dovecot, self._users = dovecot, users
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.most: dict[str, int] = {}

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                sessions = open_sessions(self._dovecot, self._users)
            for user, n in sessions.items():
                self.most[user] = max(self.most.get(user, 0), n)

    def append(self, user: str, raw: bytes) -> None:
        """Put ``raw`` into ``user``'s INBOX, and wait for Dovecot to log that session's
        end before sampling again."""
        with self._lock:
            before = open_sessions(self._dovecot, [user])[user]
            self._dovecot.append(user, "INBOX", raw, internaldate=dt.datetime.now(dt.UTC))
            end = time.monotonic() + 5
            while open_sessions(self._dovecot, [user])[user] > before and time.monotonic() < end:
                time.sleep(0.01)

    def __enter__(self) -> SessionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def after(event: dict, instant: dt.datetime) -> bool:
    return dt.datetime.fromisoformat(event["timestamp"]) > instant


def assert_sent_once_each(sink, cfg: Path, mids: list[str]) -> None:
    """Each of ``mids`` nudged exactly once; no Message-ID twice in the sink or the
    outbox, and the outbox holds exactly what the sink got."""
    assert {m: times_mentioned(sink, m) for m in mids} == {m: 1 for m in mids}
    sent = Counter(str(m["Message-ID"]) for m in mails(sink))
    assert set(sent.values()) == {1}, sent
    state = open_store(Path("/nonexistent"), readonly=True, database=load_config(cfg).database)
    try:
        outbox = Counter(r[0] for r in state._conn.execute(  # type: ignore[attr-defined]
            "SELECT message_id FROM outbox WHERE state <> 'cancelled'"))
    finally:
        state.close()
    assert outbox == sent


def test_a_node_cut_off_from_the_database_stops_the_others_take_over_it_rejoins(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    cfg, users = nodes_config(tmp_path, dovecot, postgres_server, mailboxes=4,
                              smtp_port=sink.port, window="20s", nudge_before="10s",
                              batch_window="0s")
    with FaultProxy((postgres_server.host, postgres_server.port)) as proxy:
        cut_cfg = through(proxy, cfg, postgres_server, "cut.yaml")
        cut = ackwatch(cut_cfg, args=("--node", "cut"))
        cut.wait_event("leader_elected")  # the node cut off leads: the harder case
        other = ackwatch(cfg, args=("--node", "other"))
        view = wait_spread(cfg, ["cut", "other"], 4)
        assert view.leader == "cut"
        wait_for(lambda: all(v == 1 for v in open_sessions(dovecot, users).values()), 20,
                 "one IMAP session per mailbox", step=0.2)
        orphaned = sorted(m for m, n in view.leases.items() if n == "cut")
        # Mail that came before: the cut node has evaluated it, its nudge is due later.
        before = "<before-cut@acme.example>"
        dovecot.append(users[int(orphaned[0].removeprefix("mb"))], "INBOX",
                       client_mail("Before the cut", before), internaldate=dt.datetime.now(dt.UTC))
        cut.wait_event("items_updated")

        sampler = SessionSampler(dovecot, users).__enter__()
        proxy.stall()  # a blackhole: connections stay open, nothing goes through
        cut_at = dt.datetime.now(dt.UTC)
        t0 = time.monotonic()
        # Mail arrives in a mailbox it watched, while it is cut off.
        during = "<during-cut@acme.example>"
        sampler.append(users[int(orphaned[-1].removeprefix("mb"))],
                       client_mail("While it was cut off", during))
        (expiring,) = cut.wait_event("cluster_lease_expiring", timeout=LEASE_SECONDS + 2)
        assert dt.datetime.fromisoformat(expiring["timestamp"]) <= cut_at + dt.timedelta(
            seconds=LEASE_SECONDS)

        def taken_over():
            v = cluster_view(cfg)
            return v if v.leader == "other" and held_by(v)["other"] == 4 else None
        wait_for(taken_over, LEASE_SECONDS + 5, "the other node taking over", step=0.1)
        assert time.monotonic() - t0 <= LEASE_SECONDS + 5
        wait_for(lambda: all(v == 1 for v in open_sessions(dovecot, users).values()), 10,
                 "every mailbox watched again, once", step=0.2)
        wait_for(lambda: times_mentioned(sink, during) >= 1 and times_mentioned(sink, before)
                 >= 1, 30, "the nudges, by the node that took over", step=0.2)
        assert cut.alive(), cut.tail()
        stopped_at = cut_at + dt.timedelta(seconds=LEASE_SECONDS)
        assert not [e for e in cut.events("mail_sent") if after(e, stopped_at)]
        assert not [e for e in cut.events("mailbox_up") if after(e, cut_at)]

        proxy.resume()  # back: it rejoins and gets its share again
        back = time.monotonic()
        wait_spread(cfg, ["cut", "other"], 4, timeout=LEASE_SECONDS + 10)
        assert time.monotonic() - back <= LEASE_SECONDS + 10
        wait_for(lambda: all(v == 1 for v in open_sessions(dovecot, users).values()), 10,
                 "one IMAP session per mailbox again", step=0.2)
        time.sleep(2.0)  # a duplicate would come now
        sampler.__exit__()
        assert sampler.most == {u: 1 for u in users}, "a mailbox watched twice"
        assert cut.alive() and other.alive(), cut.tail()
        assert_sent_once_each(sink, cfg, [before, during])


def listening_sessions(postgres, cfg: Path) -> int:
    """The sessions LISTENing on the state database now (one per live node)."""
    dbname = load_config(cfg).database.dbname  # type: ignore[union-attr]
    with postgres.connect_admin() as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'idle'"
            " AND query LIKE 'LISTEN %%'", (dbname,)).fetchone()[0]


def test_postgresql_restarted_under_load_nodes_reconnect_nothing_lost_nothing_doubled(
        dovecot, tmp_path, sink, ackwatch, restartable_postgres):
    """A crash restart (``-m immediate``) while mail keeps coming into every mailbox:
    both nodes stay up (the same processes), their rounds and their LISTEN reconnect,
    every mailbox is held by one node again under one leader, and every mail, before,
    during and after, is nudged once."""
    pg = restartable_postgres
    cfg, users = nodes_config(tmp_path, dovecot, pg, mailboxes=4, smtp_port=sink.port,
                              window="16s", nudge_before="8s", batch_window="0s",
                              max_per_hour=10_000)
    nodes = {n: ackwatch(cfg, args=("--node", n)) for n in ("n1", "n2")}
    pids = {n: d.pid for n, d in nodes.items()}
    wait_spread(cfg, list(nodes), 4)
    wait_for(lambda: listening_sessions(pg, cfg) == 2, 10, "both nodes listening", step=0.2)
    mids: list[str] = []
    sampler = SessionSampler(dovecot, users)

    def arrive(name: str) -> None:
        mid = f"<{name}@acme.example>"
        sampler.append(users[len(mids) % len(users)], client_mail(name, mid))
        mids.append(mid)

    with sampler:
        for n in range(4):
            arrive(f"before-{n}")
        feeder = threading.Thread(target=lambda: [
            (arrive(f"during-{n}"), time.sleep(0.3)) for n in range(12)])
        feeder.start()
        time.sleep(0.8)
        pg.restart("immediate")
        feeder.join()
        for n in range(4):
            arrive(f"after-{n}")
        view = wait_spread(cfg, list(nodes), 4, timeout=30)
        wait_for(lambda: all(times_mentioned(sink, m) >= 1 for m in mids), 60,
                 "a nudge for every mail", step=0.2)
        time.sleep(2.0)  # a duplicate would come now
    assert sampler.most == {u: 1 for u in users}, "a mailbox watched twice"
    assert {n: d.pid for n, d in nodes.items() if d.alive()} == pids
    assert view.leader in nodes and sum(held_by(view).values()) == 4
    assert listening_sessions(pg, cfg) == 2  # the LISTEN connections came back
    assert any(d.events("cluster_round_failed") for d in nodes.values())
    assert_sent_once_each(sink, cfg, mids)


def hung_node(ackwatch, dovecot, tmp_path, sink, postgres, proxy):
    """A node alone, watching two mailboxes, its database connections through ``proxy``."""
    cfg, users = nodes_config(tmp_path, dovecot, postgres, mailboxes=2, smtp_port=sink.port)
    node = ackwatch(through(proxy, cfg, postgres, "cut.yaml"), args=("--node", "n1"))
    wait_spread(cfg, ["n1"], 2)
    node.wait_event("mailbox_up", count=2)
    return node, users


def test_sigterm_while_the_database_hangs_exits_within_10_seconds(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    """The cluster's round thread and the watchers' cursor reads are stuck on the
    blackholed database: the stop is bounded as a whole, within systemd's stop budget
    (README: 10 s); the leases are left to expire. (The core is idle here but for its
    leader's look at the dirty marks once a round: should the blackhole catch it in one,
    the stop deadline ends the process, the next test's case.)"""
    with FaultProxy((postgres_server.host, postgres_server.port)) as proxy:
        node, users = hung_node(ackwatch, dovecot, tmp_path, sink, postgres_server, proxy)
        time.sleep(1.0)  # its first evaluation done: the core idle
        proxy.stall()
        for n, user in enumerate(users):  # the watchers read their cursors: stuck too
            dovecot.append(user, "INBOX", client_mail(f"Hang {n}", f"<hang-{n}@acme.example>"),
                           internaldate=dt.datetime.now(dt.UTC))
        node.wait_event("cluster_lease_expiring", timeout=LEASE_SECONDS + 2)
        t0 = time.monotonic()
        status = node.stop(timeout=30)
        took = time.monotonic() - t0
    assert took <= 10.0, (took, node.tail())
    if status == 1:  # the core was caught in a statement: ended by the deadline
        assert node.events("stop_overdue"), node.tail()
        return
    assert status == 0, node.tail()
    (bounded,) = node.events("cluster_stop_bounded")
    assert "cluster" in bounded["stuck"] and bounded["leases"] == "left to expire"


def test_sigterm_with_the_core_stuck_on_the_hung_database_still_exits_within_10_seconds(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    """The core thread itself waits on a statement the database never answers: past
    the stop budget the process ends anyway, saying so (exit 1, ``stop_overdue``)."""
    with FaultProxy((postgres_server.host, postgres_server.port)) as proxy:
        node, _ = hung_node(ackwatch, dovecot, tmp_path, sink, postgres_server, proxy)
        proxy.stall()
        node.signal(signal.SIGHUP)  # the leader evaluates anew: a read on the hung database
        time.sleep(0.5)
        t0 = time.monotonic()
        status = node.stop(timeout=30)
        took = time.monotonic() - t0
    assert took <= 10.0, (took, node.tail())
    assert status == 1, node.tail()
    (overdue,) = node.events("stop_overdue")
    assert overdue["seconds"] == 9.0
