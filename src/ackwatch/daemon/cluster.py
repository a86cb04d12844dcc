"""Which mailboxes this process watches, and whether it leads: one node, or several.

With SQLite (`SoloCluster`) there is one node: it watches every mailbox and leads; no
tables, threads or queries are added. With PostgreSQL, ``ackwatch run --node NAME`` on
several machines with the same config and database share the work (`DbCluster`):

- Every node renews, every ``cluster.renew``, a heartbeat row (`nodes`) and the leases
  of its mailboxes (`mailbox_leases`, valid for ``cluster.lease``). The live nodes are
  those with a heartbeat younger than a lease. Each node computes the same spread of the
  mailboxes over the live nodes (`core.spreading.spread`: at most ceil(M/N) each, the
  current holders kept), claims the free or expired leases of its share and renews
  its own (one conditional upsert for all of them: two nodes never both win one, and
  a busy node's round is a few round trips), releases what is beyond its
  share (its watcher stopped first, the lease deleted after) and starts a watcher for
  each lease won. A node joining or leaving is re-spread at the next round.
- One node leads (`leadership`, the same kind of lease, with an epoch bumped at each new
  term): only the leader evaluates, plans, keeps promises, queues digests and sends.
  Every node stores its own mailboxes' syncs and health. A send is fenced: the statement
  that marks an outbox row as being sent checks, by the database's clock, that this node
  still leads in the term it holds (`Store.outbox_fence`); a node that lost the lead can
  never begin one. Queueing is fenced the same way: each step the leader runs queues
  mail only in the term it began in (`Store.fence_queueing`), so a leader paused
  between its check and the write queues nothing the next leader queues too. A leader
  that dies after the SMTP server accepted a mail and before
  marking it sent leaves the row pending: the next leader sends it again, with the same
  Message-ID (the one duplicate a crash may cost, as with one node).
- A node that stored mail sends ``NOTIFY ackwatch_mail``; every node LISTENs on a
  connection of its own and wakes its core loop, which evaluates when it leads. The
  leader also looks at the dirty marks at every round, in case a notification was lost.
- Times: the leases' and the leadership's expiry are the database's clock, never a
  node's. Each node also keeps a local monotonic deadline: the start of its last
  successful round plus the lease, minus one renewal. Past it (the database unreachable,
  the process paused) it stops its watchers and stops leading, before any lease it
  held can expire and be taken by another node, so a mailbox is never watched twice.
  Rounds start a renewal after the previous one started (`roundpace`), so a node that
  is only busy has a whole renewal for each round; a slow one is logged.
- A node's name is held by one process at a time: each process draws a random
  ``instance`` id at start and writes it with its heartbeat. A process that finds its
  name held by another one waits until that holder's heartbeat is older than a lease
  minus a renewal (a process killed a moment ago: by then, alive or not, it watches and
  leads nothing) and takes the name over; if the holder renews meanwhile, two live
  processes share the name (a copied unit, two machines with the same host name): it
  refuses to run (`NodeNameTaken`, ``node_name_taken`` in the log, exit 78). A process
  whose name another one took while it was away (paused, cut off) stops the same way.
- The re-check before a send: the leader re-checks the sent folders of the mailboxes it
  watches itself and asks the holder of each other one (a `recheck_requests` row and
  ``NOTIFY ackwatch_recheck``); the holder re-checks with its watchers, stores what they
  brought, and answers. The leader never opens a second IMAP session on a mailbox.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import structlog

from ackwatch.config import Config, MailboxConfig, SyncConfig
from ackwatch.core.spreading import spread
from ackwatch.daemon.noderecheck import RECHECK_CHANNEL, answer_rechecks, recheck_across_nodes
from ackwatch.daemon.roundpace import RoundPace, next_round_in
from ackwatch.daemon.watchers import Recheck, Watchers
from ackwatch.store import NameHolder, Store, Term

log = structlog.get_logger(__name__)

MAIL_CHANNEL = "ackwatch_mail"
FORGET_NODES_AFTER = 24 * 3600.0  # a node silent this long leaves `status --nodes`
# The cluster's part of a stop (SIGTERM to exit within 10 s: README): its threads
# joined, then the lock waited for, this long each; the watchers' stop (about 3 s at
# most: `Watchers.stop` with a 1 s grace); giving up the leases.
JOIN_SECONDS = 1.0
LEAVE_SECONDS = 1.0
STOP_SECONDS = 2 * JOIN_SECONDS + 3.0 + LEAVE_SECONDS


class MailStored:
    """Put on the core's queue when another node stored mail (``NOTIFY``)."""


class ClusterChanged:
    """Put on the core's queue when this node began or stopped leading."""


class RecheckAsked:
    """Put on the core's queue when the leader asks this node to re-check mailboxes."""


class NodeNameTaken:
    """Put on the core's queue when another live process holds this node's name: the
    daemon stops and exits 78 (`Cluster.name_taken` says why)."""


class _NameBusy(Exception):
    """This process's name is held by a process that may be dead: wait and see."""


class _NameClash(Exception):
    """Another live process (``holder``, its instance) holds this process's name."""

    def __init__(self, holder: str, why: str) -> None:
        super().__init__(why)
        self.holder = holder


class Cluster(Protocol):
    """What the core loop asks of the node it runs on."""

    node: str
    name_taken: str | None  # set when this process must stop: another one has its name

    def start(self, config: Config) -> None:
        """Begin watching this node's mailboxes (and leading, if it is the one)."""

    def stop(self) -> None:
        """Stop every watcher; give up the leases and the leadership."""

    def reload(self, old: Config, new: Config) -> None:
        """The config changed: restart the watchers whose mailbox changed."""

    def is_leader(self) -> bool: ...

    def fence(self, outbox_id: int) -> bool:
        """May this node begin sending that outbox row now?"""

    def term(self) -> Term | None:
        """The term this node's queueing is fenced by (`Store.fence_queueing`); None:
        unfenced (the only node)."""

    def mail_stored(self) -> None:
        """This node stored mail: tell the leader."""

    def held(self) -> frozenset[str]:
        """The mailboxes this node watches."""

    def recheck(self, mailboxes: Iterable[str], *, stop: threading.Event,
                heartbeat: Callable[[], None]) -> Recheck:
        """Re-check the sent folders of ``mailboxes`` before a send: this node's own
        with its watchers (`Watchers.recheck`), the others' by their holders."""

    def answer_rechecks(self, *, drain: Callable[[], object], stop: threading.Event,
                        heartbeat: Callable[[], None]) -> None:
        """Re-check what the leader asked of this node's mailboxes, ``drain`` the core's
        queue (storing what the re-check brought), then answer: the answer means
        "stored"."""


class SoloCluster:
    """One node (SQLite, or PostgreSQL without ``--node``): every mailbox, always the
    leader, no fence beyond the outbox's own."""

    name_taken: str | None = None

    def __init__(self, node: str, watchers: Watchers) -> None:
        self.node = node
        self._watchers = watchers
        self._held: frozenset[str] = frozenset()

    def start(self, config: Config) -> None:
        self._watchers.start(config.mailboxes, config.sync)
        self._held = frozenset(mb.name for mb in config.mailboxes)

    def stop(self) -> None:
        self._watchers.stop()

    def reload(self, old: Config, new: Config) -> None:
        before = {mb.name: mb for mb in old.mailboxes}
        fresh = {mb.name: mb for mb in new.mailboxes}
        gone = [n for n in before if n not in fresh or fresh[n] != before[n]]
        added = [fresh[n] for n in fresh if n not in before or fresh[n] != before[n]]
        self._watchers.stop([n for n in gone if n in self._watchers])
        self._watchers.start(added, new.sync)
        self._held = frozenset(fresh)

    def is_leader(self) -> bool:
        return True

    def fence(self, outbox_id: int) -> bool:
        return True

    def term(self) -> Term | None:
        return None

    def mail_stored(self) -> None:
        return None

    def held(self) -> frozenset[str]:
        return self._held

    def recheck(self, mailboxes: Iterable[str], *, stop: threading.Event,
                heartbeat: Callable[[], None]) -> Recheck:
        return self._watchers.recheck(mailboxes, stop=stop, heartbeat=heartbeat)

    def answer_rechecks(self, *, drain: Callable[[], object], stop: threading.Event,
                        heartbeat: Callable[[], None]) -> None:
        return None  # nobody else asks


class HeldMailboxes:
    """The mailboxes whose leases this node holds (``names``), each watched here: a
    name is added once its watcher is started and removed once it is stopped, so a
    lease given up after `let_go` is never still watched."""

    def __init__(self, watchers: Watchers) -> None:
        self._watchers = watchers
        self.names: set[str] = set()

    def take(self, mailboxes: Sequence[MailboxConfig], sync: SyncConfig) -> None:
        self._watchers.start(mailboxes, sync)
        self.names |= {mb.name for mb in mailboxes}

    def let_go(self, names: Iterable[str] | None = None, *, grace: float = 2.0) -> None:
        """Stop the watchers of ``names`` (None: all held; ``grace``: `Watchers.stop`)."""
        gone = set(self.names if names is None else names)
        self._watchers.stop([n for n in gone if n in self._watchers], grace=grace)
        self.names -= gone


class NodeName:
    """This process's hold on its node's name (see the module docstring): its random
    ``instance`` id, written with every heartbeat."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.instance = secrets.token_hex(8)
        self.held = False
        self._seen: NameHolder | None = None  # the holder found while not holding it

    def heartbeat(self, store: Store, *, stale_after: float) -> None:
        """The heartbeat, as the process that holds the name: taken at the first one,
        over a holder silent for ``stale_after`` seconds (a lease minus a renewal: past
        its own deadline). `_NameBusy` while a holder may still be alive; `_NameClash`
        once it is seen to be (it renewed), or when another process took the name while
        this one could not renew."""
        holder = store.heartbeat(self.node, instance=self.instance, starting=not self.held,
                                 stale_after=None if self.held else stale_after)
        if holder is None:
            self.held, self._seen = True, None
            return
        if self.held:
            raise _NameClash(holder.instance, f"another process took the name {self.node!r} "
                             "while this one could not renew it")
        seen, self._seen = self._seen, holder
        if seen is not None and (seen.instance != holder.instance
                                 or holder.heartbeat_at > seen.heartbeat_at):
            raise _NameClash(holder.instance, f"another live process runs as node {self.node!r}")
        if seen is None:
            log.warning("node_name_busy", instance=self.instance, holder=holder.instance,
                        waiting=round(stale_after, 1))
        raise _NameBusy


class DbCluster:
    """One of several nodes on a PostgreSQL state (see the module docstring).

    A thread of its own runs the rounds on a store connection of its own; another
    stops everything when the local deadline passes without a successful round (the
    round thread may be stuck on a dead connection); a third LISTENs. ``wake`` puts an
    event on the core's queue. ``fence_store``: the core thread's store (the fence runs
    in the core's outbox pass)."""

    def __init__(
        self,
        node: str,
        watchers: Watchers,
        *,
        open_store: Callable[[], Store],
        fence_store: Store,
        wake: Callable[[object], None],
        listen: Callable[[Callable[[str, str], None], threading.Event], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        observe_round: Callable[[float], None] | None = None,
    ) -> None:
        self.node = node
        self.name_taken: str | None = None
        self._watchers = watchers
        self._open_store = open_store
        self._fence_store = fence_store
        self._wake = wake
        self._listen = listen
        self._monotonic = monotonic
        self._config: Config | None = None
        self._store: Store | None = None
        self._lock = threading.RLock()  # the watchers started and stopped, the lead
        self._held = HeldMailboxes(watchers)
        self._epoch: int | None = None
        self._valid_until = 0.0  # monotonic; nothing held or led after it
        self._stop = threading.Event()
        self._changed = threading.Event()  # the deadline moved or a stop was asked
        self._threads: list[threading.Thread] = []
        self._restart: set[str] = set()  # mailboxes whose config changed (reload)
        self._name = NodeName(node)
        self._pace = RoundPace(monotonic, observe_round)

    # ------------------------------------------------------------------ the core's side

    def start(self, config: Config, *, background: bool = True) -> None:
        """The first round now; then the rounds, the deadline and the listening in
        threads of their own (``background=False``: none, for a test that runs the
        rounds itself)."""
        self._config = config
        self.try_round()
        if not background:
            return
        targets = [("cluster", self._rounds), ("cluster-deadline", self._deadline_watch)]
        if self._listen is not None:
            targets.append(("cluster-listen", functools.partial(
                _keep_listening, self._listen, self._heard, self._stop)))
        for name, target in targets:
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop within about `STOP_SECONDS` whatever the database does: a thread stuck
        on it is left behind (daemon threads), and the leases are given up only on a
        connection the round thread is not stuck on, for a second; else they expire."""
        self._stop.set()
        self._changed.set()
        end = time.monotonic() + JOIN_SECONDS
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if self._lock.acquire(timeout=JOIN_SECONDS):  # the deadline may be cutting them
            try:
                self._held.let_go(grace=1.0)
                self._epoch = None
            finally:
                self._lock.release()
        else:
            stuck.append("cluster-lock")
        store, self._store = self._store, None
        left = store is not None and "cluster" not in stuck
        if left:
            leaving = threading.Thread(target=_leave, args=(store, self.node, self._name.instance),
                                       name="cluster-leave", daemon=True)
            leaving.start()
            leaving.join(LEAVE_SECONDS)
            left = not leaving.is_alive()
        if stuck or not left:
            log.warning("cluster_stop_bounded", stuck=stuck,
                        leases="released" if left else "left to expire")

    def reload(self, old: Config, new: Config) -> None:
        before = {mb.name: mb for mb in old.mailboxes}
        fresh = {mb.name: mb for mb in new.mailboxes}
        with self._lock:
            self._restart |= {n for n in before if n not in fresh or fresh[n] != before[n]}
            self._config = new

    def is_leader(self) -> bool:
        return self._epoch is not None and self._monotonic() < self._valid_until

    def fence(self, outbox_id: int) -> bool:
        epoch = self._epoch
        if epoch is None or not self.is_leader():
            return False
        return self._fence_store.outbox_fence(outbox_id, self.node, epoch)

    def term(self) -> Term | None:
        """The term it leads in now; epoch 0 (refused by every fence) when it does not."""
        epoch = self._epoch
        return Term(self.node, epoch if epoch is not None and self.is_leader() else 0)

    def mail_stored(self) -> None:
        if not self.is_leader():
            self._fence_store.notify(MAIL_CHANNEL)

    def held(self) -> frozenset[str]:
        return frozenset(self._held.names)

    def recheck(self, mailboxes: Iterable[str], *, stop: threading.Event,
                heartbeat: Callable[[], None]) -> Recheck:
        """This node's mailboxes re-checked here, the others by their holders
        (`noderecheck.recheck_across_nodes`)."""
        return recheck_across_nodes(
            self._fence_store, self._watchers, self.node, set(mailboxes), self.held(),
            stop=stop, heartbeat=heartbeat, monotonic=self._monotonic,
        )  # fmt: skip

    def answer_rechecks(self, *, drain: Callable[[], object], stop: threading.Event,
                        heartbeat: Callable[[], None]) -> None:
        answer_rechecks(self._fence_store, self._watchers, self.node, drain=drain, stop=stop,
                        heartbeat=heartbeat)  # fmt: skip

    # ------------------------------------------------------------------ the rounds

    def _rounds(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self.round_and_pause())

    def round_and_pause(self) -> float:
        """One round, timed (`roundpace.RoundPace`); the seconds to wait before the
        next: until a renewal after this one began (none if it overran), sooner to
        follow an expiry (`next_round_in`), half a second after a round that failed."""
        self.try_round()
        assert self._config is not None
        return self._pace.end(renew=self._config.cluster.renew.total_seconds())

    def try_round(self) -> bool:
        """One round (the round thread calls it; so may a test); False if it failed."""
        self._pace.begin()
        try:
            self._round()
            return True
        except _NameBusy:
            return False
        except _NameClash as clash:
            self._give_up_name(clash)
            return False
        except Exception as exc:  # the database away: retried until the deadline
            log.warning("cluster_round_failed", error=type(exc).__name__,
                        detail=str(exc).splitlines()[0][:200] if str(exc) else "")
            if self._store is not None:
                with contextlib.suppress(Exception):  # a broken connection: dropped anyway
                    self._store.close()
                self._store = None
            return False

    def _round(self) -> None:
        config = self._config
        assert config is not None
        lease = config.cluster.lease.total_seconds()
        renew = config.cluster.renew.total_seconds()
        began = self._pace.began
        phase = self._pace.phase
        if self._store is None:
            self._store = self._open_store()
            phase("connect")
        store = self._store
        self._name.heartbeat(store, stale_after=lease - renew)
        phase("heartbeat")
        view = store.cluster_view()
        viewed = phase("view")
        names = [mb.name for mb in config.mailboxes]
        live = {*view.live_nodes(max_age=lease), self.node}
        share = spread(names, live, view.leases).get(self.node, frozenset())
        with self._lock:
            restart, self._restart = self._restart, set()
        # Stop first, release after: a mailbox is never watched by two nodes.
        held = self._held.names
        if self._stop_watching((held - share) | (restart & held), store):
            phase("release")
        claimed = store.claim_leases(self.node, share, lease)
        phase("claim")
        epoch = store.take_leadership(self.node, lease)
        phase("lead")
        valid_until = began + lease - renew
        if self._monotonic() >= valid_until:  # the round itself took too long
            raise TimeoutError("cluster round slower than the lease allows")
        self._pace.schedule(viewed, renew=renew, sooner=next_round_in(
            view, self.node, live, lease=lease, renew=renew, wanted=share - claimed))
        with self._lock:
            if self._stop.is_set():
                return
            self._valid_until = valid_until
            lost = self._held.names - claimed  # taken over while this node was away
            if lost:
                self._held.let_go(lost)
                log.warning("mailboxes_lost", mailboxes=sorted(lost))
            new = claimed - self._held.names
            if new:
                by_name = {mb.name: mb for mb in config.mailboxes}
                self._held.take([by_name[n] for n in sorted(new)], config.sync)
                log.info("mailboxes_taken", mailboxes=sorted(new), held=len(self._held.names))
            was, self._epoch = self._epoch, epoch
        self._changed.set()
        if was != epoch:
            if epoch is not None:
                log.info("leader_elected", epoch=epoch)
            elif was is not None:
                log.warning("leadership_lost", epoch=was)
            self._wake(ClusterChanged())
        elif epoch is not None:
            self._wake(MailStored())  # look at the dirty marks (a lost NOTIFY)
        if view.nodes and any(n.age > FORGET_NODES_AFTER for n in view.nodes):
            store.forget_nodes(FORGET_NODES_AFTER)

    def _give_up_name(self, clash: _NameClash) -> None:
        """Stop watching and leading for good, and have the daemon exit (78)."""
        with self._lock:
            self._held.let_go()
            self._epoch = None
            self._valid_until = 0.0
            self.name_taken = (f"{clash}: node names must be unique; give this one "
                               "another --node NAME")
        self._stop.set()
        self._changed.set()
        log.error("node_name_taken", instance=self._name.instance, holder=clash.holder,
                  reason=str(clash))
        self._wake(NodeNameTaken())

    def _stop_watching(self, names: set[str], store: Store) -> bool:
        """Stop the watchers of ``names`` (the round's phase "stop"), then release
        their leases; False: none."""
        if not names:
            return False
        with self._lock:
            self._held.let_go(names)
        self._pace.phase("stop")
        store.release_leases(self.node, names)
        log.info("mailboxes_released", mailboxes=sorted(names), held=len(self._held.names))
        return True

    def next_round(self) -> float | None:
        """Seconds from the start of the last round to the next; None after a round
        that failed."""
        return self._pace.next_round()

    # ------------------------------------------------------------------ the deadline

    def _deadline_watch(self) -> None:
        while not self._stop.is_set():
            self._changed.clear()
            left = self._valid_until - self._monotonic()
            if left > 0:
                self._changed.wait(min(left, 1.0))
                continue
            self.enforce_deadline()
            self._changed.wait(1.0)

    def enforce_deadline(self) -> bool:
        """Stop watching and leading when no round succeeded for a lease minus a
        renewal: before any lease this node held can expire in the database. True if
        it did (the deadline thread calls it; so may a test)."""
        with self._lock:
            if self._monotonic() < self._valid_until:
                return False
            if not self._held.names and self._epoch is None:
                return False
            log.error("cluster_lease_expiring", mailboxes=len(self._held.names),
                      leader=self._epoch is not None, reason="no successful renewal")
            # Cut at once, no time to log out: a watcher stuck on the lost database
            # (reading its cursors) must not keep its IMAP session past the lease.
            self._held.let_go(grace=0.0)
            was, self._epoch = self._epoch, None
        if was is not None:
            self._wake(ClusterChanged())
        return True

    # ------------------------------------------------------------------ notifications

    def _heard(self, channel: str, payload: str) -> None:
        if channel == MAIL_CHANNEL:
            self._wake(MailStored())
        elif channel == RECHECK_CHANNEL and payload == self.node:
            self._wake(RecheckAsked())



def _keep_listening(listen: Callable[[Callable[[str, str], None], threading.Event], None],
                    heard: Callable[[str, str], None], stop: threading.Event) -> None:
    """``LISTEN`` until ``stop``, connecting again a second after a failure."""
    while not stop.is_set():
        try:
            listen(heard, stop)
        except Exception as exc:
            log.warning("cluster_listen_failed", error=type(exc).__name__)
            stop.wait(1.0)


def _leave(store: Store, node: str, instance: str) -> None:
    """Give up ``node``'s leases and lead (`Store.leave`: unless another process
    ``instance`` holds the name now), and close the store."""
    try:
        store.leave(node, instance=instance)
    except Exception as exc:
        log.warning("cluster_leave_failed", error=type(exc).__name__)
    with contextlib.suppress(Exception):
        store.close()
