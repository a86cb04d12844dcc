"""Which mailboxes this process watches, and whether it leads: one node, or several.

With SQLite (`SoloCluster`) there is one node: it watches every mailbox and leads; no
tables, threads or queries are added. With PostgreSQL, ``ackwatch run --node NAME`` on
several machines with the same config and database share the work (`DbCluster`):

- Every node renews, every ``cluster.renew``, a heartbeat row (`nodes`) and the leases
  of its mailboxes (`mailbox_leases`, valid for ``cluster.lease``). The live nodes are
  those with a heartbeat younger than a lease. Each node computes the same spread of the
  mailboxes over the live nodes (`core.spreading.spread`: at most ceil(M/N) each, the
  current holders kept), claims the free or expired leases of its share (one
  conditional upsert each: two nodes never both win one), releases what is beyond its
  share (its watcher stopped first, the lease deleted after) and starts a watcher for
  each lease won. A node joining or leaving is re-spread at the next round.
- One node leads (`leadership`, the same kind of lease, with an epoch bumped at each new
  term): only the leader evaluates, plans, keeps promises, queues digests and sends.
  Every node stores its own mailboxes' syncs and health. A send is fenced: the statement
  that marks an outbox row as being sent checks, by the database's clock, that this node
  still leads in the term it holds (`Store.outbox_fence`); a node that lost the lead can
  never begin one. A leader that dies after the SMTP server accepted a mail and before
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
- The re-check before a send: the leader re-checks the sent folders of the mailboxes it
  watches itself and asks the holder of each other one (a `recheck_requests` row and
  ``NOTIFY ackwatch_recheck``); the holder re-checks with its watchers, stores what they
  brought, and answers. The leader never opens a second IMAP session on a mailbox.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import structlog

from ackwatch.config import Config
from ackwatch.core.spreading import spread
from ackwatch.daemon.watchers import RECHECK_TIMEOUT, Recheck, Watchers
from ackwatch.store import ClusterView, Store

log = structlog.get_logger(__name__)

MAIL_CHANNEL = "ackwatch_mail"
RECHECK_CHANNEL = "ackwatch_recheck"  # payload: the node asked
RETRY_SECONDS = 0.5  # a failed round is tried again this soon, until the deadline
WAKE_MARGIN = 0.2  # a round meant to follow an expiry comes this long after it
FORGET_NODES_AFTER = 24 * 3600.0  # a node silent this long leaves `status --nodes`


class MailStored:
    """Put on the core's queue when another node stored mail (``NOTIFY``)."""


class ClusterChanged:
    """Put on the core's queue when this node began or stopped leading."""


class RecheckAsked:
    """Put on the core's queue when the leader asks this node to re-check mailboxes."""


class Cluster(Protocol):
    """What the core loop asks of the node it runs on."""

    node: str

    def start(self, config: Config) -> None:
        """Begin watching this node's mailboxes (and leading, if it is the one)."""

    def stop(self) -> None:
        """Stop every watcher; give up the leases and the leadership."""

    def reload(self, old: Config, new: Config) -> None:
        """The config changed: restart the watchers whose mailbox changed."""

    def is_leader(self) -> bool: ...

    def fence(self, outbox_id: int) -> bool:
        """May this node begin sending that outbox row now?"""

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
    ) -> None:
        self.node = node
        self._watchers = watchers
        self._open_store = open_store
        self._fence_store = fence_store
        self._wake = wake
        self._listen = listen
        self._monotonic = monotonic
        self._config: Config | None = None
        self._store: Store | None = None
        self._lock = threading.RLock()  # the watchers started and stopped, the lead
        self._held: set[str] = set()
        self._epoch: int | None = None
        self._valid_until = 0.0  # monotonic; nothing held or led after it
        self._stop = threading.Event()
        self._changed = threading.Event()  # the deadline moved or a stop was asked
        self._threads: list[threading.Thread] = []
        self._restart: set[str] = set()  # mailboxes whose config changed (reload)
        self._next_round: float | None = None  # seconds, from the last round's view

    # ------------------------------------------------------------------ the core's side

    def start(self, config: Config, *, background: bool = True) -> None:
        """The first round now; then the rounds, the deadline and the listening in
        threads of their own (``background=False``: none, for a test that runs the
        rounds itself)."""
        self._config = config
        self.try_round(starting=True)
        if not background:
            return
        targets = [("cluster", self._rounds), ("cluster-deadline", self._deadline_watch)]
        if self._listen is not None:
            targets.append(("cluster-listen", self._listening))
        for name, target in targets:
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        for t in self._threads:
            t.join(5.0)
        with self._lock:
            self._watchers.stop([n for n in self._held if n in self._watchers])
            self._held.clear()
            self._epoch = None
        # Only on a working connection: a database that is away must not hold up the
        # exit (its leases expire instead, and the others take over after the lease).
        store, self._store = self._store, None
        if store is None:
            return
        try:
            store.leave(self.node)
        except Exception as exc:
            log.warning("cluster_leave_failed", error=type(exc).__name__)
        with contextlib.suppress(Exception):
            store.close()

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

    def mail_stored(self) -> None:
        if not self.is_leader():
            self._fence_store.notify(MAIL_CHANNEL)

    def held(self) -> frozenset[str]:
        return frozenset(self._held)

    def recheck(self, mailboxes: Iterable[str], *, stop: threading.Event,
                heartbeat: Callable[[], None]) -> Recheck:
        """This node's mailboxes re-checked here; each other holder asked with a request
        row and a NOTIFY, answered once its watchers re-checked and its store has what
        they brought. A holder that does not answer within `RECHECK_TIMEOUT` counts as
        failed (`dispatch.hold_unchecked` then waits for it, up to the grace). A mailbox
        nobody watches is in neither set, as a mailbox without a watcher on one node."""
        deadline = self._monotonic() + RECHECK_TIMEOUT
        names = set(mailboxes)
        mine = names & self._held
        store = self._fence_store
        others: dict[str, set[str]] = {}
        if names - mine:
            leases = store.cluster_view().leases
            for name in sorted(names - mine):
                holder = leases.get(name)
                if holder is not None and holder != self.node:
                    others.setdefault(holder, set()).add(name)
        asked = {store.ask_recheck(holder, ms): ms for holder, ms in others.items()}
        for holder in others:
            store.notify(RECHECK_CHANNEL, holder)
        result = self._watchers.recheck(mine, stop=stop, heartbeat=heartbeat)
        answers: dict[int, tuple[frozenset[str], frozenset[str]]] = {}
        while asked.keys() - answers.keys() and not stop.is_set():
            answers.update(store.recheck_answers(asked.keys() - answers.keys()))
            if self._monotonic() >= deadline or not asked.keys() - answers.keys():
                break
            heartbeat()
            time.sleep(0.05)
        if asked:
            store.forget_rechecks(asked)
        done, failed = set(result.done), set(result.failed)
        for request, ms in asked.items():
            got = answers[request][0] if request in answers else frozenset()
            done |= got & ms
            failed |= ms - got
        if others:
            log.info("recheck_asked", nodes=sorted(others),
                     answered=sum(1 for r in asked if r in answers))
        return Recheck(frozenset(done), frozenset(failed))

    def answer_rechecks(self, *, drain: Callable[[], object], stop: threading.Event,
                        heartbeat: Callable[[], None]) -> None:
        store = self._fence_store
        for request, mailboxes in store.recheck_requests(self.node).items():
            checked = self._watchers.recheck(mailboxes, stop=stop, heartbeat=heartbeat)
            drain()
            store.answer_recheck(request, checked.done, checked.failed)

    # ------------------------------------------------------------------ the rounds

    def _rounds(self) -> None:
        while not self._stop.is_set():
            ok = self.try_round()
            assert self._config is not None
            renew = self._config.cluster.renew.total_seconds()
            pause = min(renew, self._next_round or renew) if ok else RETRY_SECONDS
            self._stop.wait(pause)

    def try_round(self, *, starting: bool = False) -> bool:
        """One round (the round thread calls it; so may a test); False if it failed."""
        try:
            self._round(starting=starting)
            return True
        except Exception as exc:  # the database away: retried until the deadline
            log.warning("cluster_round_failed", error=type(exc).__name__,
                        detail=str(exc).splitlines()[0][:200] if str(exc) else "")
            if self._store is not None:
                with contextlib.suppress(Exception):  # a broken connection: dropped anyway
                    self._store.close()
                self._store = None
            return False

    def _round(self, *, starting: bool = False) -> None:
        config = self._config
        assert config is not None
        lease = config.cluster.lease.total_seconds()
        began = self._monotonic()
        if self._store is None:
            self._store = self._open_store()
        store = self._store
        store.heartbeat(self.node, starting=starting)
        view = store.cluster_view()
        names = [mb.name for mb in config.mailboxes]
        live = {*view.live_nodes(max_age=lease), self.node}
        share = spread(names, live, view.leases).get(self.node, frozenset())
        with self._lock:
            restart, self._restart = self._restart, set()
        # Stop first, release after: a mailbox is never watched by two nodes.
        self._stop_watching((self._held - share) | (restart & self._held), store)
        claimed = store.claim_leases(self.node, share, lease)
        epoch = store.take_leadership(self.node, lease)
        self._next_round = next_round_in(view, self.node, live, lease=lease,
                                         renew=config.cluster.renew.total_seconds(),
                                         wanted=share - claimed)
        valid_until = began + lease - config.cluster.renew.total_seconds()
        if self._monotonic() >= valid_until:  # the round itself took too long
            raise TimeoutError("cluster round slower than the lease allows")
        with self._lock:
            if self._stop.is_set():
                return
            self._valid_until = valid_until
            lost = self._held - claimed  # taken over while this node was away
            if lost:
                self._watchers.stop([n for n in lost if n in self._watchers])
                self._held -= lost
                log.warning("mailboxes_lost", mailboxes=sorted(lost))
            new = claimed - self._held
            if new:
                by_name = {mb.name: mb for mb in config.mailboxes}
                self._watchers.start([by_name[n] for n in sorted(new)], config.sync)
                self._held |= new
                log.info("mailboxes_taken", mailboxes=sorted(new), held=len(self._held))
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

    def _stop_watching(self, names: set[str], store: Store) -> None:
        if not names:
            return
        with self._lock:
            self._watchers.stop([n for n in names if n in self._watchers])
            self._held -= names
        store.release_leases(self.node, names)
        log.info("mailboxes_released", mailboxes=sorted(names), held=len(self._held))

    def next_round(self) -> float | None:
        """Seconds from the last round to the next (`next_round_in`)."""
        return self._next_round

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
            if not self._held and self._epoch is None:
                return False
            log.error("cluster_lease_expiring", mailboxes=len(self._held),
                      leader=self._epoch is not None, reason="no successful renewal")
            self._watchers.stop([n for n in self._held if n in self._watchers])
            self._held.clear()
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

    def _listening(self) -> None:
        assert self._listen is not None
        while not self._stop.is_set():
            try:
                self._listen(self._heard, self._stop)
            except Exception as exc:  # reconnect after a pause
                log.warning("cluster_listen_failed", error=type(exc).__name__)
                self._stop.wait(1.0)


def next_round_in(view: ClusterView, node: str, live: Iterable[str], *, lease: float,
                  renew: float, wanted: Iterable[str]) -> float:
    """Seconds from a round to the next: a renewal, or just after the first of these
    runs out, if it comes sooner: another node's heartbeat, a lease of this node's share
    that it could not claim yet, and the term of a leader that is no longer live.

    So a dead node's mailboxes and lead are taken by the first round after its
    heartbeat is a lease old, not up to a renewal later: with the default 15 s lease
    renewed every 5 s, a takeover took up to lease + renew and the round's own time
    (bench target 8c: 20.1 s of a 20 s limit)."""
    ends = [lease - n.age for n in view.nodes if n.name != node]
    ends += [view.expires_in[m] for m in wanted if m in view.expires_in]
    if view.leader is not None and view.leader not in set(live):
        ends.append(0.0)  # its term ends with its last round (no expiry in the view)
    soon = [e for e in ends if 0.0 <= e < renew]
    return min(renew, min(soon) + WAKE_MARGIN) if soon else renew
