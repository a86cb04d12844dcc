"""One of several nodes (`daemon.cluster.DbCluster`), its rounds run by the test: on a
SQLite state (the leases behave alike on both backends: tests/store/test_leases.py),
with recording watchers and a clock the test moves.

The leases, heartbeats and the leadership run on the database's clock, which the test
cannot stop: a test that relies on one of them staying valid between two of its
statements uses `LONG_LEASES`, and a time it expects from that clock is bounded by
readings of the same clock (`db_clock`), never by a fixed window that a loaded machine
overruns."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from structlog.testing import capture_logs

from ackwatch.config import ClusterConfig
from ackwatch.daemon.cluster import ClusterChanged, DbCluster, NodeNameTaken
from ackwatch.daemon.roundpace import WAKE_MARGIN
from ackwatch.store import NotLeading
from ackwatch.store.database import Database
from ackwatch.store.sqlite import SqliteStore
from configfactory import OFFICE, make_config, make_mailbox

CONFIG = make_config(
    mailboxes=tuple(make_mailbox(n) for n in ("mb0", "mb1", "mb2", "mb3")),
    cluster=ClusterConfig(lease=dt.timedelta(seconds=3), renew=dt.timedelta(seconds=1)),
)

# Leases long enough that no pause of a loaded machine between two statements lets one
# run out by the database's clock; the expiries a test sets are then seconds away too.
LONG_LEASES = dataclasses.replace(
    CONFIG, cluster=ClusterConfig(lease=dt.timedelta(seconds=30), renew=dt.timedelta(seconds=10)))

SQLITE_CLOCK = Database.CLOCK  # the database's clock, in SQL


def db_clock(store) -> float:
    """The database's clock now, read on ``store``'s connection."""
    return float(store._store._conn.execute(f"SELECT {SQLITE_CLOCK}").fetchone()[0])


def after_expiry(pause: float, expires_in: float, ran: float) -> bool:
    """Is ``pause`` (from a round's view) `WAKE_MARGIN` after an expiry ``expires_in``
    seconds from a reading of the database's clock, the view read within ``ran`` seconds
    of that reading? With a millisecond of slack: SQLite's clock has milliseconds, and
    seconds since the epoch computed from its Julian days are off by some microseconds."""
    end = expires_in + WAKE_MARGIN
    return end - ran - 0.001 <= pause <= end + 0.001


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

    def stop(self, names=None, *, grace=2.0) -> None:
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
    n1.start(LONG_LEASES, background=False)
    n2, _, w2, _ = make_node("n2", clock)
    n2.start(LONG_LEASES, background=False)  # n1 holds them all: nothing free yet
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
    n1.start(LONG_LEASES, background=False)
    with s1._store._write() as c:  # n1's leases and term ran out while it was away
        c.execute("UPDATE mailbox_leases SET expires_at = 0")
        c.execute("UPDATE leadership SET expires_at = 0")
        c.execute("UPDATE nodes SET heartbeat_at = 0")
    n2, _, w2, _ = make_node("n2", clock)
    n2.start(LONG_LEASES, background=False)
    assert w2.running == {"mb0", "mb1", "mb2", "mb3"} and n2.is_leader()
    assert n1.try_round()
    assert w1.running == set()  # lost to n2: stopped, never watched twice
    assert not n1.is_leader()


def test_a_second_live_process_under_the_same_name_is_refused_and_the_first_keeps_going(
        make_node):
    clock = Clock()
    first, _, w1, _ = make_node("n1", clock)
    first.start(LONG_LEASES, background=False)
    twin, _, w2, woken = make_node("n1", clock)  # a copied unit: the same --node
    twin.start(LONG_LEASES, background=False)
    assert twin.name_taken is None and w2.running == set()  # the holder may be dead: wait
    assert first.try_round()  # ... but it renews
    assert not twin.try_round()
    assert twin.name_taken is not None and "'n1'" in twin.name_taken
    assert isinstance(woken[-1], NodeNameTaken)
    assert w2.running == set() and not twin.is_leader()
    twin.stop()  # gives up nothing of the first one's
    assert first.try_round()
    assert first.is_leader() and len(w1.running) == 4 and first.name_taken is None


def test_a_node_whose_name_was_taken_while_it_was_away_stops_watching_and_leading(
        make_node):
    clock = Clock()
    node, store, watchers, woken = make_node("n1", clock)
    node.start(CONFIG, background=False)
    # Away past its deadline, and meanwhile a second process took the name "n1".
    assert store.heartbeat("n1", instance="a-copy", starting=True, stale_after=-1) is None
    assert not node.try_round()
    assert node.name_taken is not None
    assert watchers.running == set() and not node.is_leader()
    assert isinstance(woken[-1], NodeNameTaken)


# ---------------------------------------------------------------- the queueing is fenced


def _client_mail(received: dt.datetime):
    from ackwatch.mail.sync import FolderCursor, FolderSync, FolderSyncEvent
    from ackwatch.mail.uidfetch import FetchedMessage

    raw = ("Message-ID: <order-7@client7.example>\r\n"
           "From: \"Client 7\" <buyer@client7.example>\r\n"
           f"To: Office <{OFFICE}>\r\nSubject: Order 7: delivery date?\r\n"
           "Date: Mon, 23 Nov 2026 09:00:00 +0100\r\n\r\nWhen?\r\n").encode()
    return FolderSyncEvent("office", FolderSync(
        "INBOX", "inbox", FolderCursor(1, 1),
        new_messages=(FetchedMessage(1, received, frozenset(), raw),)))


def test_a_leader_paused_before_queueing_queues_nothing_the_next_leader_queues(
        tmp_path, monkeypatch):
    """n1 leads, plans a nudge, and is paused right before queueing it (here: in its
    pre-send re-check) while its term runs out and n2 takes over and queues the nudge.
    n1 resumes: its write is refused, so the nudge is queued once, one Message-ID."""
    from ackwatch.daemon import service
    from ackwatch.daemon.watchers import Recheck

    monday = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    clock = [monday]
    config = make_config(state_dir=tmp_path, cluster=ClusterConfig(
        lease=dt.timedelta(seconds=60), renew=dt.timedelta(seconds=20)))
    stores: list[SqliteStore] = []

    def node(name: str) -> service.Daemon:
        store = SqliteStore.open(tmp_path / "state")
        stores.append(store)
        monkeypatch.setattr(service, "_cluster", lambda config, store, watchers, post, node, metrics:
                            DbCluster(node, RecordingWatchers([]), open_store=lambda: store,
                                      fence_store=store, wake=post))
        d = service.Daemon(config, store, node=name, now=lambda: clock[0],
                           reload=lambda: config, send=lambda msg, cfg: None)
        d.recheck = lambda mailboxes: Recheck(frozenset(mailboxes), frozenset())
        d.cluster.start(config, background=False)  # type: ignore[call-arg]
        return d

    try:
        n1, n2 = node("n1"), node("n2")
        assert n1.cluster.is_leader() and not n2.cluster.is_leader()
        n1.apply_event(_client_mail(monday))
        n1.step()
        clock[0] = monday + dt.timedelta(hours=3)  # its nudge is due

        def paused_recheck(mailboxes):
            with stores[0]._write() as c:  # n1's term ran out while it was paused
                c.execute("UPDATE leadership SET expires_at = 0")
            assert n2.cluster.try_round() and n2.cluster.is_leader()  # type: ignore[attr-defined]
            n2.step()  # the new leader queues (and sends) the nudge
            return Recheck(frozenset(mailboxes), frozenset())

        n1.recheck = paused_recheck
        with pytest.raises(NotLeading):  # the core loop logs it and waits (`Daemon.run`)
            n1.step()
        rows = stores[0]._conn.execute("SELECT kind, message_id FROM outbox").fetchall()
        assert [r[0] for r in rows] == ["nudge"]  # n2's, alone
        assert n1.cluster.try_round() and not n1.cluster.is_leader()  # type: ignore[attr-defined]
    finally:
        for s in stores:
            s.close()


def _two_nodes(make_node, clock: Clock):
    """Nodes n1 and n2 started on `LONG_LEASES` (no round yet): n1, its store, its
    watchers, and n2."""
    n1, s1, w1, _ = make_node("n1", clock)
    n1.start(LONG_LEASES, background=False)
    n2, _, _, _ = make_node("n2", clock)
    n2.start(LONG_LEASES, background=False)
    return n1, s1, w1, n2


def test_a_node_rounds_again_just_after_a_silent_peers_heartbeat_is_a_lease_old(make_node):
    """Not up to a renewal later: the dead node's mailboxes are taken at lease time."""
    clock = Clock()
    n1, s1, _, _ = _two_nodes(make_node, clock)
    assert n1.try_round()
    assert n1.next_round() == 10.0  # a renewal: n2 is alive
    set_at = db_clock(s1)
    with s1._store._write() as c:  # n2 went silent 25 s ago: stale 5 s after set_at
        c.execute(f"UPDATE nodes SET heartbeat_at = {set_at} - 25 WHERE name = 'n2'")
    assert n1.try_round()
    ran = db_clock(s1) - set_at  # the round's view was read within these seconds
    assert ran < 5.0  # else n2 was stale already: this test then proves nothing
    assert after_expiry(n1.next_round(), 5.0, ran)  # its heartbeat's end, not a renewal


def test_a_node_rounds_again_as_soon_as_a_lease_of_its_share_runs_out(make_node):
    clock = Clock()
    n1, s1, w1, n2 = _two_nodes(make_node, clock)
    assert n1.try_round() and n2.try_round()
    set_at = db_clock(s1)
    with s1._store._write() as c:  # n2 silent for a lease; its leases end 5 s after set_at
        c.execute(f"UPDATE nodes SET heartbeat_at = {set_at} - 60 WHERE name = 'n2'")
        c.execute(f"UPDATE mailbox_leases SET expires_at = {set_at} + 5 WHERE node = 'n2'")
        c.execute(f"UPDATE leadership SET expires_at = {set_at} + 5")
    assert n1.try_round()
    ran = db_clock(s1) - set_at
    assert ran < 5.0  # else the leases had run out already: nothing to wait for
    assert len(w1.running) == 2  # n2's two are in n1's share, not claimable yet
    assert after_expiry(n1.next_round(), 5.0, ran)  # not a renewal


def _slowed(store, clock: Clock, seconds: list[float]) -> None:
    """Each claim takes the next of ``seconds`` on ``clock`` (a busy node's round)."""
    claim = store.claim_leases

    def slow_claim(node, mailboxes, lease):
        clock.t += seconds.pop(0) if seconds else 0.0
        return claim(node, mailboxes, lease)

    store.claim_leases = slow_claim


def _wait(clock: Clock, seconds: float) -> None:
    """The round thread waits ``seconds`` (after a round that moved the clock itself)."""
    clock.t += seconds


def test_rounds_come_a_renewal_after_the_last_one_began_not_after_it_ended(make_node):
    clock = Clock()
    node, store, _, _ = make_node("n1", clock)
    node.start(CONFIG, background=False)
    _slowed(store, clock, [0.3])
    assert node.round_and_pause() == pytest.approx(0.7)  # renew 1 s - the round's 0.3 s


def test_a_slow_round_followed_by_a_normal_one_keeps_the_leases(make_node):
    """Lease 3 s, renew 1 s: the deadline is a round's start + 2 s. A round of 1.5 s
    ends within it; were the next one a renewal after that end (2.5 s after the slow
    round began), the node would give its mailboxes up before it came."""
    clock = Clock()
    node, store, watchers, _ = make_node("n1", clock)
    node.start(CONFIG, background=False)
    _slowed(store, clock, [0.0, 1.5, 0.0, 0.0])
    for _ in range(4):
        _wait(clock, node.round_and_pause())
        assert not node.enforce_deadline()
    assert watchers.running == {"mb0", "mb1", "mb2", "mb3"} and node.is_leader()


def test_a_round_that_overran_its_renewal_is_followed_at_once(make_node):
    clock = Clock()
    node, store, watchers, _ = make_node("n1", clock)
    node.start(CONFIG, background=False)
    _slowed(store, clock, [1.2, 1.2, 1.2])  # each longer than the renewal (1 s)
    for _ in range(3):
        assert node.round_and_pause() == 0.0
        assert not node.enforce_deadline()
    assert len(watchers.running) == 4 and node.is_leader()
    store.cut = True  # a round that failed is tried again half a second later
    assert node.round_and_pause() == 0.5


def test_a_slow_round_is_logged_at_most_once_a_minute_with_the_others_counted(make_node):
    clock = Clock()
    node, store, _, _ = make_node("n1", clock)
    node.start(CONFIG, background=False)
    _slowed(store, clock, [0.6, 0.6, 0.4, 0.6, 0.6])  # over half the renewal, but 0.4
    with capture_logs() as logs:
        for _ in range(3):
            _wait(clock, node.round_and_pause())
        clock.t += 60.0
        for _ in range(2):
            _wait(clock, node.round_and_pause())
    slow = [e for e in logs if e["event"] == "cluster_round_slow"]
    assert [(e["seconds"], e["others"], e["log_level"]) for e in slow] == [
        (0.6, 0, "warning"), (0.6, 1, "warning")]
    assert slow[0]["renew"] == 1.0 and slow[0]["phases"]["claim"] == 0.6
    assert list(slow[0]["phases"]) == ["heartbeat", "view", "claim", "lead"]


def test_a_rounds_statements_do_not_grow_with_the_mailboxes_it_holds(make_node):
    """One claim statement for all the leases, not one per mailbox: a busy node's round
    waits for few round trips (with 100 mailboxes: 9 statements instead of 112)."""
    node, store, _, _ = make_node("n1", Clock())
    node.start(CONFIG, background=False)  # alone: it holds them all
    many = dataclasses.replace(
        CONFIG, mailboxes=tuple(make_mailbox(f"m{i:03d}") for i in range(100)))
    counts = []
    for config in (CONFIG, many):
        node.reload(CONFIG, config)
        assert node.try_round() and len(node.held()) == len(config.mailboxes)
        statements: list[str] = []
        store._store._conn.set_trace_callback(statements.append)
        assert node.try_round()
        store._store._conn.set_trace_callback(None)
        counts.append(len(statements))
    assert counts[0] == counts[1] <= 9


def test_each_round_is_observed_for_the_metrics(tmp_path):
    clock, seen = Clock(), []
    store = SqliteStore.open(tmp_path / "state")
    try:
        node = DbCluster("n1", RecordingWatchers([]), open_store=lambda: store,
                         fence_store=store, wake=lambda e: None, monotonic=clock,
                         observe_round=seen.append)
        node.start(CONFIG, background=False)
        _slowed(store, clock, [0.25])
        node.round_and_pause()
    finally:
        store.close()
    assert seen == [0.25]


def test_a_round_meant_to_follow_an_expiry_is_timed_from_the_view_it_read(make_node):
    """The expiry is in the view's time: a slow heartbeat before the view must not
    bring the next round before the lease it waits for has run out."""
    clock = Clock()
    n1, s1, _, n2 = _two_nodes(make_node, clock)
    assert n1.try_round() and n2.try_round()
    set_at = db_clock(s1)
    with s1._store._write() as c:  # n2 silent for a lease; its leases end 5 s after set_at
        c.execute(f"UPDATE nodes SET heartbeat_at = {set_at} - 60 WHERE name = 'n2'")
        c.execute(f"UPDATE mailbox_leases SET expires_at = {set_at} + 5 WHERE node = 'n2'")
    heartbeat = s1.heartbeat

    def slow_heartbeat(*args, **kwargs):
        clock.t += 3.0
        return heartbeat(*args, **kwargs)

    s1.heartbeat = slow_heartbeat
    pause = n1.round_and_pause()
    ran = db_clock(s1) - set_at
    assert ran < 3.0  # else the two timings below overlap
    # The view, read 3 s into the round, says 5 s: the next round 5 s after the view
    # (+ WAKE_MARGIN); counted from the round's start it would be 3 s sooner.
    assert after_expiry(pause, 5.0, ran)
