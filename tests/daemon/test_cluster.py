"""One of several nodes (`daemon.cluster.DbCluster`), its rounds run by the test: on a
SQLite state (the leases behave alike on both backends: tests/store/test_leases.py),
with recording watchers and a clock the test moves."""

from __future__ import annotations

import datetime as dt

import pytest

from ackwatch.config import ClusterConfig
from ackwatch.daemon.cluster import ClusterChanged, DbCluster
from ackwatch.store.database import Database
from ackwatch.store.sqlite import SqliteStore
from configfactory import make_config, make_mailbox

CONFIG = make_config(
    mailboxes=tuple(make_mailbox(n) for n in ("mb0", "mb1", "mb2", "mb3")),
    cluster=ClusterConfig(lease=dt.timedelta(seconds=3), renew=dt.timedelta(seconds=1)),
)

SQLITE_CLOCK = Database.CLOCK  # the database's clock, in SQL


class RecordingWatchers:
    """Watchers that only say what was started and stopped, in order (with the log)."""

    def __init__(self, log: list[tuple[str, str]]) -> None:
        self.running: set[str] = set()
        self.log = log

    def __contains__(self, name: object) -> bool:
        return name in self.running

    def start(self, mailboxes, sync) -> None:
        for mb in mailboxes:
            self.running.add(mb.name)
            self.log.append(("start", mb.name))

    def stop(self, names=None) -> None:
        for name in list(self.running if names is None else names):
            self.running.discard(name)
            self.log.append(("stop", name))


class FailingStore:
    """A store that can be cut off; records the leases it releases."""

    def __init__(self, store: SqliteStore, log: list[tuple[str, str]]) -> None:
        self._store = store
        self.log = log
        self.cut = False

    def __getattr__(self, name: str):
        if self.cut:
            raise OSError("the database is unreachable")
        return getattr(self._store, name)

    def release_leases(self, node, mailboxes=None) -> None:
        if self.cut:
            raise OSError("the database is unreachable")
        self.log.extend(("release", m) for m in sorted(mailboxes or ()))
        self._store.release_leases(node, mailboxes)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def make_node(tmp_path):
    opened: list[SqliteStore] = []

    def make(name: str, clock: Clock):
        log: list[tuple[str, str]] = []
        raw = SqliteStore.open(tmp_path / "state")
        opened.append(raw)
        store = FailingStore(raw, log)
        watchers = RecordingWatchers(log)
        woken: list[object] = []
        node = DbCluster(name, watchers, open_store=lambda: store, fence_store=store,  # type: ignore[arg-type]
                         wake=woken.append, monotonic=clock)
        return node, store, watchers, woken

    yield make
    for s in opened:
        s.close()


def test_the_first_node_watches_every_mailbox_and_leads(make_node):
    node, _, watchers, woken = make_node("n1", Clock())
    node.start(CONFIG, background=False)
    assert watchers.running == {"mb0", "mb1", "mb2", "mb3"}
    assert node.is_leader()
    assert any(isinstance(e, ClusterChanged) for e in woken)


def test_a_node_gives_up_what_is_beyond_its_share_stopping_its_watchers_first(make_node):
    clock = Clock()
    n1, s1, w1, _ = make_node("n1", clock)
    n1.start(CONFIG, background=False)
    n2, _, w2, _ = make_node("n2", clock)
    n2.start(CONFIG, background=False)  # n1 holds them all: nothing free yet
    assert w2.running == set()
    s1.log.clear()
    assert n1.try_round()
    given_up = {m for action, m in s1.log if action == "release"}
    assert len(given_up) == 2 and len(w1.running) == 2
    for m in given_up:  # its watcher stopped before its lease was released
        assert s1.log.index(("stop", m)) < s1.log.index(("release", m))
    assert n2.try_round()
    assert w2.running == given_up
    assert n1.is_leader() and not n2.is_leader()


def test_a_node_that_cannot_renew_stops_watching_and_leading_before_its_lease_expires(
        make_node):
    clock = Clock()
    node, store, watchers, woken = make_node("n1", clock)
    node.start(CONFIG, background=False)  # renewed at t; the leases run to t + 3 s
    store.cut = True
    clock.t += 1.5
    assert not node.try_round()
    assert not node.enforce_deadline()  # t + 1.5: still within lease - renew
    assert watchers.running and node.is_leader()
    clock.t += 0.5  # t + 2 s: one renewal before the leases can expire
    assert not node.is_leader()  # the core stops sending at once
    assert node.enforce_deadline()
    assert watchers.running == set()
    assert not node.fence(1)
    assert isinstance(woken[-1], ClusterChanged)


def test_a_node_back_after_its_leases_expired_takes_only_what_is_free(make_node):
    clock = Clock()
    n1, s1, w1, _ = make_node("n1", clock)
    n1.start(CONFIG, background=False)
    with s1._store._write() as c:  # n1's leases and term ran out while it was away
        c.execute("UPDATE mailbox_leases SET expires_at = 0")
        c.execute("UPDATE leadership SET expires_at = 0")
        c.execute("UPDATE nodes SET heartbeat_at = 0")
    n2, _, w2, _ = make_node("n2", clock)
    n2.start(CONFIG, background=False)
    assert w2.running == {"mb0", "mb1", "mb2", "mb3"} and n2.is_leader()
    assert n1.try_round()
    assert w1.running == set()  # lost to n2: stopped, never watched twice
    assert not n1.is_leader()


def test_a_node_rounds_again_just_after_a_silent_peers_heartbeat_is_a_lease_old(make_node):
    """Not up to a renewal later: the dead node's mailboxes are taken at lease time."""
    clock = Clock()
    n1, s1, _, _ = make_node("n1", clock)
    n1.start(CONFIG, background=False)
    n2, _, _, _ = make_node("n2", clock)
    n2.start(CONFIG, background=False)
    assert n1.try_round()
    assert n1.next_round() == 1.0  # a renewal: n2 is alive
    now = SQLITE_CLOCK
    with s1._store._write() as c:  # n2 went silent 2.5 s ago: stale 0.5 s from now
        c.execute(f"UPDATE nodes SET heartbeat_at = {now} - 2.5 WHERE name = 'n2'")
    assert n1.try_round()
    assert 0.6 <= n1.next_round() <= 0.75  # its heartbeat's end + WAKE_MARGIN


def test_a_node_rounds_again_as_soon_as_a_lease_of_its_share_runs_out(make_node):
    clock = Clock()
    n1, s1, w1, _ = make_node("n1", clock)
    n1.start(CONFIG, background=False)
    n2, _, _, _ = make_node("n2", clock)
    n2.start(CONFIG, background=False)
    assert n1.try_round() and n2.try_round()
    now = SQLITE_CLOCK
    with s1._store._write() as c:  # n2 silent for a lease; its leases end in 0.3 s
        c.execute(f"UPDATE nodes SET heartbeat_at = {now} - 10 WHERE name = 'n2'")
        c.execute(f"UPDATE mailbox_leases SET expires_at = {now} + 0.3 WHERE node = 'n2'")
        c.execute(f"UPDATE leadership SET expires_at = {now} + 0.3")
    assert n1.try_round()
    assert len(w1.running) == 2  # n2's two are in n1's share, not claimable yet
    assert 0.2 <= n1.next_round() <= 0.55
