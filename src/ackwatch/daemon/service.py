"""The daemon: watchers feed a single writer that keeps the state and sends what is due.

    IMAP watchers (one thread per mailbox) --events--> Daemon (this module, one thread)
                                                         store <- evaluate <- messages
                                                         plan (nudges) -> outbox -> SMTP

The core loop sleeps until the next due action or the next watcher event (no fixed
tick), so a nudge due at 14:32:10 goes out at 14:32:10. Right before queueing a mail it
asks the watchers of the mailboxes concerned to re-check their sent folders, so that a
reply sent a minute ago cancels the nudge.

`Daemon` composes the parts: `watchers` (the IMAP side), `cluster` (which mailboxes this
node watches and whether it leads: every one and always with SQLite), `evaluation`
(items from mail), `nudges` (what is due), `keeper` (promises), `delivery` (the outbox),
`digests`, `outage` (a state database lost for now), `systemd` and `signals`. `once`
runs a single pass without watchers. A node that does not lead only stores its
mailboxes' syncs and health.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from email.message import EmailMessage
from typing import TYPE_CHECKING

import structlog

from ackwatch.config import Config, load_config
from ackwatch.core import item_rules as sla
from ackwatch.core.message import Message
from ackwatch.daemon import digests, nudges
from ackwatch.daemon.cluster import (
    MAIL_CHANNEL,
    RECHECK_CHANNEL,
    Cluster,
    ClusterChanged,
    DbCluster,
    MailStored,
    NodeNameTaken,
    RecheckAsked,
    SoloCluster,
)
from ackwatch.daemon.delivery import Delivery
from ackwatch.daemon.evaluation import Evaluator, observe_acks
from ackwatch.daemon.eventqueue import EventQueue
from ackwatch.daemon.keeper import PromiseKeeper
from ackwatch.daemon.metrics import Metrics
from ackwatch.daemon.outage import DatabaseOutage, give_up_after
from ackwatch.daemon.publishing import Publisher
from ackwatch.daemon.signals import Wake
from ackwatch.daemon.systemd import NOTIFY_WAIT_SECONDS, Systemd
from ackwatch.daemon.watchers import Recheck, Watchers, store_folder_sync
from ackwatch.gcpause import gc_paused
from ackwatch.mail import smtp
from ackwatch.mail.sync import FolderSyncEvent
from ackwatch.mail.watcher import HealthEvent
from ackwatch.store import NotLeading, Store, StoredCopy, StoreError, StoreUnavailable

if TYPE_CHECKING:
    from ackwatch.web.server import WebBoard

log = structlog.get_logger(__name__)

Now = Callable[[], dt.datetime]
MAX_SLEEP = 30.0
STEP_RETRY_SECONDS = 5.0  # wake at least this often (watchdog, clock jumps)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _send_smtp(msg: EmailMessage, config: Config) -> None:
    if config.smtp is None:  # not reached: no mail renders without an smtp section
        raise ValueError("no smtp section in the config")
    smtp.send(msg, config.smtp)


class Daemon:
    """The core loop and the single writer of the state; the promise keeper's host."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        now: Now = utcnow,
        send: Callable[[EmailMessage, Config], None] | None = None,
        reload: Callable[[], Config] | None = None,
        node: str | None = None,
    ):
        """``node`` (``run --node``) with PostgreSQL: one of several (`cluster`)."""
        self.config = config
        self.store = store
        self.now = now
        self._send = send or _send_smtp
        self._reload_config = reload or (lambda: load_config(self.config.path))
        self.events = EventQueue()
        self.watchers = Watchers(store, self.events.put)
        self.metrics = Metrics()
        self.cluster: Cluster = _cluster(config, store, self.watchers, self.events.put, node,
                                         self.metrics)
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._systemd = Systemd.from_env()
        self.board: WebBoard | None = None  # `web.listen`: started by `run`
        self.evaluation = Evaluator(
            store, lambda: self.config, now,
            progress=self._systemd.feed_watchdog, evaluated=self._evaluated,
        )  # fmt: skip
        self.nudging = nudges.NudgeStep(self)
        self._recheck_asked = False  # the leader asked this node to re-check mailboxes
        self.promises = PromiseKeeper(self)  # reads acknowledgements, reminds
        self.delivery = Delivery(
            store, lambda: self.config, now,
            send=lambda msg, cfg: self._send(msg, cfg),  # `_send` may be swapped in tests
            metrics=self.metrics, promise_mail=self.promises.prepare,
            fence=self.cluster.fence,
        )  # fmt: skip
        self.publisher = Publisher(store, lambda: self.config, now, self.evaluation,
                                   self.delivery, self.metrics)  # fmt: skip
        self.outage = DatabaseOutage(
            store, give_up_after=lambda: give_up_after(self.config), stop=self._stop,
            heartbeat=self._systemd.feed_watchdog, up=self.metrics.set_database_up,
            status=lambda text: self._systemd.notify(f"STATUS={text}"),
        )  # fmt: skip

    # ------------------------------------------------------------------ lifecycle

    def request_stop(self) -> None:
        self._stop.set()
        self.events.put(Wake())

    def request_reload(self) -> None:
        self._reload.set()
        self.events.put(Wake())

    def run(self) -> None:
        """The core loop, until `request_stop`."""
        self.cluster.start(self.config)
        self.promises.start()  # its body reader thread (`run --once` reads inline)
        if self.config.metrics.listen:
            try:
                self.metrics.serve(self.config.metrics.listen)
                log.info("metrics_listening", listen=self.config.metrics.listen)
            except OSError as exc:  # a taken port must not stop the nudges
                log.error("metrics_listen_failed", listen=self.config.metrics.listen,
                          error=exc.strerror or str(exc))
        if self.config.web.listen:
            self.board = _serve_board(self.store, lambda: self.config, self.now,
                                      self.config.web.listen)
        self._systemd.notify("READY=1", wait=NOTIFY_WAIT_SECONDS)
        log.info("daemon_started", mailboxes=len(self.config.mailboxes))
        try:
            while not self._stop.is_set():
                try:
                    next_due = self.step()
                except StoreUnavailable as lost:  # PostgreSQL restarting: wait, do it again
                    if self.outage.ride_out(lost):
                        self._after_outage()
                    next_due = None if self._stop.is_set() else self.now()
                except NotLeading as fenced:  # lost the lead within the step: queued nothing
                    log.warning("queueing_fenced", reason=str(fenced))
                    next_due = None
                except StoreError:
                    raise  # disk full, read-only state dir: exit non-zero, never limp on
                except Exception as exc:  # one bad step must not take the daemon down
                    log.exception("step_failed", error=type(exc).__name__)
                    next_due = self.now() + dt.timedelta(seconds=STEP_RETRY_SECONDS)
                self._systemd.feed_watchdog()
                self._wait(next_due)
        finally:
            log.info("daemon_stopping")
            self._systemd.notify("STOPPING=1", wait=NOTIFY_WAIT_SECONDS)
            # The body reader and the watchers stop side by side: SIGTERM to exit stays
            # within systemd's stop timeout even when both wait on a stalled server.
            keeper = threading.Thread(target=self.promises.stop, name="stop-keeper",
                                      daemon=True)
            keeper.start()
            self.cluster.stop()
            keeper.join(1.0)
            self.metrics.close()
            if self.board is not None:
                self.board.close()

    def _after_outage(self) -> None:
        """The step that met the lost database stored nothing, but the step's earlier
        work may have been cut between its commits, and a commit whose answer was lost
        may have been stored: evaluate again, and recount every item and promise once
        (the counts otherwise follow what each evaluation reported)."""
        self.evaluation.changed_everything()
        self.promises.mark_dirty(None)

    def step(self, *, report: bool = True) -> dt.datetime | None:
        """Apply pending events, re-evaluate if needed, send what is due; next due time.
        ``report``: then publish the metrics and the status (systemd's, the board's);
        `run --once` reads none of them (it ends after its one step).

        A step costs what changed and what is due, not what waits: the evaluation reads
        the threads of the new mail; planning reads the items with an action due (an
        index range, `nudges.plan`); delivery the items of the mail it sends; the counts
        of the metrics and the status line are kept by the keys each evaluation touched
        (`PendingBook`). No step reads every pending item, but the first and one after an
        evaluation of everything (a config change).
        """
        if self._reload.is_set():
            self._reload.clear()
            self._apply_reload()
        leads = self.cluster.is_leader()
        self.metrics.set_node(self.cluster.node, leader=leads, held=len(self.cluster.held()))
        if not leads:  # another node evaluates and sends
            self.drain_events()
            if self._recheck_asked:  # what the leader asked of this node's mailboxes
                self._recheck_asked = False
                self.cluster.answer_rechecks(drain=self.drain_events, stop=self._stop,
                                             heartbeat=self._systemd.feed_watchdog)
            self._systemd.notify(f"STATUS=following, mailboxes held {len(self.cluster.held())}")
            return None
        # Everything this step queues is queued in the term it began in, or not at all.
        self.store.fence_queueing(self.cluster.term())
        self.refresh_if_changed()
        next_due = self.run_due()
        promise_due = self.promises.run_due()
        digest_due = self.run_digests()
        outbox_due = self.process_outbox()
        if report:
            self.publisher.publish_metrics()
            if self.board is not None:
                self.board.changed()
            self._systemd.notify(f"STATUS={self.publisher.status_line(next_due)}")
        candidates = [t for t in (next_due, promise_due, digest_due, outbox_due) if t is not None]
        return min(candidates) if candidates else None

    def _wait(self, next_due: dt.datetime | None) -> None:
        if self._stop.is_set():  # asked by the step itself: its `Wake` is applied already
            return
        timeout = MAX_SLEEP
        if next_due is not None:
            timeout = max(0.0, min(timeout, (next_due - self.now()).total_seconds()))
        if self._systemd.watchdog_interval:
            timeout = min(timeout, self._systemd.watchdog_interval)
        self.events.wait(timeout)  # the step that follows at once applies it first

    def _apply_reload(self) -> None:
        try:
            new = self._reload_config()
        except Exception as exc:  # ConfigError or unreadable file: keep the old config
            log.error("config_reload_failed", error=str(exc).splitlines()[0], kept="old config")
            return
        old = {mb.name: mb for mb in self.config.mailboxes}
        added = [mb for mb in new.mailboxes if old.get(mb.name) != mb]
        self.cluster.reload(self.config, new)
        self.config = new
        self.evaluation.dirty = True
        log.info("config_reloaded", mailboxes=len(new.mailboxes), restarted=len(added))

    # ------------------------------------------------------------------ events → state

    def post(self, event: object) -> None:
        """Put ``event`` on the core's queue (from any thread)."""
        self.events.put(event)

    def drain_events(self) -> int:
        """Apply the events waiting, in order (`EventQueue.drain`); how many."""
        return self.events.drain(self.apply_event)

    def apply_event(self, event: object) -> None:
        now = self.now()
        if isinstance(event, FolderSyncEvent):
            s = event.sync
            with gc_paused():  # parses every new copy: see `gcpause.gc_paused`
                added = store_folder_sync(
                    self.store, self.evaluation.parsed, self.config, event.mailbox, s, now
                )
            if not self.cluster.is_leader():
                self.evaluation.parsed.forget()  # kept for an evaluation made elsewhere
            if added or s.flag_updates or s.reset:
                self.evaluation.dirty = True
                self.cluster.mail_stored()
                log.info(
                    "folder_synced",
                    mailbox=event.mailbox,
                    folder=s.folder,
                    new=added,
                    flag_changes=len(s.flag_updates),
                )
        elif isinstance(event, HealthEvent):
            h = event.health
            self.store.set_health(event.mailbox, h.state, since=h.since, last_error=h.last_error)
        elif isinstance(event, NodeNameTaken):
            self.request_stop()  # `run` exits 78 with `cluster.name_taken`
        elif isinstance(event, RecheckAsked):
            self._recheck_asked = True  # answered by the step
        elif isinstance(event, MailStored):
            self.evaluation.dirty = True  # another node stored mail (evaluated if leading)
        elif isinstance(event, ClusterChanged):
            if self.cluster.is_leader():  # what was evaluated elsewhere: read it afresh
                self.evaluation.begin_anew()
                self.promises.mark_dirty(None)
                self.nudging.forget_held()
            log.info("cluster_role", leader=self.cluster.is_leader(),
                     mailboxes=len(self.cluster.held()))
        elif self.promises.handles(event):
            self.promises.apply(event)

    def reevaluate(self, history_since: dt.datetime | None = None) -> None:
        """Bring the stored items up to date with the stored mail (`Evaluator.reevaluate`)."""
        self.evaluation.reevaluate(history_since)

    def refresh_if_changed(self) -> bool:
        """Apply the events waiting, re-evaluate if they changed the mail; True if so."""
        self.drain_events()
        if not self.evaluation.dirty:
            return False
        self.reevaluate()
        return True

    def _evaluated(self, acknowledged: Sequence[sla.Item], keys: set[str] | None) -> None:
        self.promises.mark_dirty(keys)
        if acknowledged:
            observe_acks(self.metrics, acknowledged, self.config)

    def messages_of_accounts(self, accounts: Iterable[str], now: dt.datetime) -> list[Message]:
        """What ``accounts``, their backups and managers sent within the out-of-office
        look-back (`Evaluator.messages_of_accounts`)."""
        return self.evaluation.messages_of_accounts(accounts, now)

    def parse_copies(self, copies: Iterable[StoredCopy]) -> list[Message]:
        """Stored copies parsed through the evaluation's kept and recent parses."""
        return self.evaluation.parsed.messages(copies)

    # ------------------------------------------------------------------ actions

    def recheck(self, mailboxes: Iterable[str]) -> Recheck:
        """Re-check the mailboxes' sent folders now (`Watchers.recheck`; those another
        node watches, by that node: `Cluster.recheck`); true if any did."""
        checked = self.cluster.recheck(mailboxes, stop=self._stop,
                                       heartbeat=self._systemd.feed_watchdog)
        if checked.done - self.cluster.held():
            self.evaluation.dirty = True  # stored by another node: its NOTIFY may lag
        return checked

    def run_due(self) -> dt.datetime | None:
        """Queue the nudges and escalations due now (`nudges.NudgeStep.run_due`); next
        due time."""
        return self.nudging.run_due()

    def run_digests(self) -> dt.datetime | None:
        """Queue each manager's weekly digest once it is due; next digest time."""
        return digests.queue_due(self.store, self.config, self.now())

    def process_outbox(self) -> dt.datetime | None:
        """Send queued mail (`Delivery.process_outbox`); next retry time."""
        return self.delivery.process_outbox()


def _serve_board(store: Store, config: Callable[[], Config], now: Now,
                 listen: str) -> WebBoard | None:
    """The board on ``listen`` (`web.listen`); None when the port is taken."""
    from ackwatch.web.server import WebBoard

    board = WebBoard(store, config, now)
    try:
        port = board.serve(listen)
    except OSError as exc:  # a taken port must not stop the nudges
        log.error("web_listen_failed", listen=listen, error=exc.strerror or str(exc))
        return None
    log.info("web_listening", listen=listen, port=port)
    return board


def _cluster(config: Config, store: Store, watchers: Watchers,
             post: Callable[[object], None], node: str | None, metrics: Metrics) -> Cluster:
    """One of several nodes with a PostgreSQL state and a node name; else the only one."""
    database = config.database
    if node is None or database is None:
        return SoloCluster(node or "", watchers)
    from ackwatch.store import open_store

    def listen(heard: Callable[[str, str], None], stop: threading.Event) -> None:
        from ackwatch.credentials import resolve_secret
        from ackwatch.store.postgres.listen import listen as pg_listen

        password = resolve_secret(database.password) if database.password else None
        pg_listen(database, password, (MAIL_CHANNEL, RECHECK_CHANNEL), heard, stop)

    def open_round_store() -> Store:
        # A round cut off mid-transaction must not hold the leases' and the leadership's
        # row locks from the other nodes past half a renewal (theirs then still fits).
        round_store = open_store(config.state_dir, database=database)
        try:
            round_store.end_idle_transactions_after(config.cluster.renew.total_seconds() / 2)
        except BaseException:
            round_store.close()
            raise
        return round_store

    return DbCluster(node, watchers, fence_store=store, wake=post, listen=listen,
                     open_store=open_round_store,
                     observe_round=functools.partial(metrics.observe_round, node))
