"""The daemon: watchers feed a single writer that keeps the state and sends what is due.

    IMAP watchers (one thread per mailbox) --events--> Daemon (this module, one thread)
                                                         store <- evaluate (sla) <- messages
                                                         plan (scheduler) -> outbox -> SMTP

The core loop sleeps until the next due action or the next watcher event (no fixed
tick), so a nudge due at 14:32:10 goes out at 14:32:10. Right before queueing a mail it
asks the watchers of the mailboxes concerned to re-check their sent folders, so that a
reply sent a minute ago cancels the nudge.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import os
import queue
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from email.message import EmailMessage

import structlog

from ackwatch.config import Config, MailboxConfig, load_config
from ackwatch.core import classify, hourlycap
from ackwatch.core import dispatch as scheduler
from ackwatch.core import item_rules as sla
from ackwatch.core.message import Message
from ackwatch.core.threads import assign_threads, gc_paused, link_values
from ackwatch.daemon.metrics import Metrics, Snapshot
from ackwatch.mail import imap, imapguard, notify
from ackwatch.store.sqlite import ItemRecord, OutboxRecord, Store, StoreError

log = structlog.get_logger(__name__)

Now = Callable[[], dt.datetime]
MESSAGE_HISTORY = dt.timedelta(days=60)
EVALUATION_VERSION = 1  # raise when a change of the rules must re-evaluate stored items
THREAD_BATCH = 2000  # threads per batch when everything is evaluated again
AT_ONCE_COPIES = 50_000  # up to this many copies in the window, threads found all at once
LINKED_BATCH_KEYS = 10_000  # keys per batch when threads are found anew in a larger window
RECHECK_TIMEOUT = 20.0
WATCHER_STOP_SECONDS = 6.0  # SIGTERM to exit stays within 10 s
RECHECK_SLICE = 2.0  # a stop is noticed within this; a slow sync still fits in it
MAX_SLEEP = 30.0
NOTIFY_WAIT_SECONDS = 1.0  # READY=1 and STOPPING=1 wait this long for a busy systemd
STEP_RETRY_SECONDS = 5.0  # wake at least this often (watchdog, clock jumps)
SEND_BACKOFF_CAP = dt.timedelta(minutes=30)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Wake:
    """Sentinel put on the event queue to wake the core loop (signals)."""


class _Systemd:
    """sd_notify, a no-op outside systemd, that never holds up the core loop.

    The notification socket is a datagram socket: when its reader (systemd) does not keep
    up, the kernel's queue for it (``net.unix.max_dgram_qlen``, often 10 datagrams) fills
    and a blocking send waits until it reads again. sdnotify's socket is blocking, so a
    busy or hung PID 1 would stop the core loop, and with it the nudges and even the exit
    on SIGTERM (seen: a daemon stuck on STOPPING=1 for over 30 s while its reader did not
    read). So the routine lines (STATUS=, WATCHDOG=1) are dropped when the queue is full:
    a ping systemd cannot read is one it would not have seen anyway. READY=1 and
    STOPPING=1 wait up to `NOTIFY_WAIT_SECONDS`. A run of drops is logged once, when it
    starts, and counted when it ends."""

    def __init__(self, sock: socket.socket | None = None,
                 watchdog_interval: float | None = None) -> None:
        self.socket = sock
        self.watchdog_interval = watchdog_interval
        self.dropped = 0

    @classmethod
    def from_env(cls) -> _Systemd:
        if not os.environ.get("NOTIFY_SOCKET"):
            return cls()
        import sdnotify

        usec = os.environ.get("WATCHDOG_USEC")
        interval = int(usec) / 2e6 if usec and usec.isdigit() else None
        # sdnotify connects (an abstract "@" address included); the sends are ours.
        return cls(sdnotify.SystemdNotifier().socket, interval)

    def notify(self, line: str, *, wait: float = 0.0) -> bool:
        """Send ``line``, waiting at most ``wait`` seconds for room; True if it was sent."""
        if self.socket is None:
            return False
        try:
            self.socket.settimeout(wait)  # 0: non-blocking
            self.socket.send(line.encode())
        except OSError as exc:  # BlockingIOError, TimeoutError: the queue is full
            if not self.dropped:
                log.warning("systemd_notify_dropped", notification=line.partition("=")[0],
                            error=type(exc).__name__)
            self.dropped += 1
            return False
        if self.dropped:
            log.info("systemd_notify_resumed", dropped=self.dropped)
            self.dropped = 0
        return True


class Daemon:
    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        now: Now = utcnow,
        send: Callable[[EmailMessage, Config], None] | None = None,
        reload: Callable[[], Config] | None = None,
    ):
        self.config = config
        self.store = store
        self.now = now
        self._send = send or (lambda msg, cfg: notify.send(msg, cfg.smtp))
        self._reload_config = reload or (lambda: load_config(self.config.path))
        # SimpleQueue: `put` is reentrant, so the signal handlers (which run on the core
        # thread, possibly inside a `get` of this very queue) cannot deadlock on it.
        self.events: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.watchers: dict[str, imap.MailboxWatcher] = {}
        self._dirty = True
        self._mail_of_accounts: dict[str, list[Message]] = {}  # see messages_of_accounts
        # (config, evaluation_fingerprint, threading_fingerprint): hashing the config
        # costs ~3 ms with 200 mailboxes, and `reevaluate` runs after every change.
        self._fingerprints: tuple[Config | None, str, str] = (None, "", "")
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._systemd = _Systemd.from_env()
        self._last_watchdog = 0.0
        # Set when the SMTP server refused TLS or our credentials: no mail is tried
        # before this instant (see `process_outbox`).
        self._smtp_held_until: dt.datetime | None = None
        self.metrics = Metrics()
        from ackwatch.daemon.keeper import PromiseKeeper  # issue 8: reads acknowledgements, reminds

        self.promises = PromiseKeeper(self)

    # ------------------------------------------------------------------ lifecycle

    def start_watchers(self, mailboxes: Iterable[MailboxConfig] | None = None) -> None:
        for mb in mailboxes if mailboxes is not None else self.config.mailboxes:
            watcher = imap.MailboxWatcher(
                mb,
                self.config.sync,
                get_cursors=lambda name=mb.name: self._cursors(name),
                get_pending_uids=lambda folder, name=mb.name: self.store_pending_uids(name, folder),
                emit=self.events.put,
            )
            self.watchers[mb.name] = watcher
            watcher.start()

    def stop_watchers(self, names: Iterable[str] | None = None) -> None:
        names = list(self.watchers) if names is None else list(names)
        # All at once and briefly: a watcher stuck on a stalled server has its connection
        # cut by stop(); SIGTERM must end the process well within systemd's stop timeout.
        stoppers = [
            threading.Thread(target=self.watchers[name].stop, kwargs={"timeout": 2.0},
                             name=f"stop-{name}", daemon=True)
            for name in names
        ]
        for t in stoppers:
            t.start()
        deadline = time.monotonic() + WATCHER_STOP_SECONDS
        for t in stoppers:
            t.join(max(0.0, deadline - time.monotonic()))
        for name in names:
            self.watchers.pop(name)

    def request_stop(self) -> None:
        self._stop.set()
        self.events.put(_Wake())

    def request_reload(self) -> None:
        self._reload.set()
        self.events.put(_Wake())

    def wake_on_signals(self) -> Callable[[], None]:
        """Make every signal wake the core loop at once; returns the undo.

        Python runs a signal's handler in the main thread only, and only when that thread
        runs Python code. The kernel may deliver SIGTERM or SIGHUP to any thread (a
        watcher's, when the main one already has a signal pending), and then the main
        thread, asleep on the event queue, would run the handler only when its wait ends:
        up to `MAX_SLEEP` later (seen: a reload not applied within 20 s; a stop past
        systemd's 15 s). CPython writes each signal to the wake-up fd whatever the thread;
        a small thread reading it puts a `_Wake` on the queue, the main thread returns to
        Python code and runs the handler before it looks at its flags again. Call from
        the main thread, after installing the handlers."""
        import signal

        reader, writer = socket.socketpair()
        writer.setblocking(False)
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

        def wake() -> None:
            with reader:
                while True:
                    try:
                        if not reader.recv(64):
                            return  # `undo` closed the writer
                    except OSError:
                        return
                    self.events.put(_Wake())

        threading.Thread(target=wake, name="ackwatch-signals", daemon=True).start()

        def undo() -> None:
            signal.set_wakeup_fd(previous)
            writer.close()  # the reading thread sees the end of file, closes its side, ends

        return undo

    def run(self) -> None:
        """The core loop, until `request_stop`."""
        self.start_watchers()
        self.promises.start()  # its body reader thread (`run --once` reads inline)
        if self.config.metrics.listen:
            try:
                self.metrics.serve(self.config.metrics.listen)
                log.info("metrics_listening", listen=self.config.metrics.listen)
            except OSError as exc:  # a taken port must not stop the nudges
                log.error("metrics_listen_failed", listen=self.config.metrics.listen,
                          error=exc.strerror or str(exc))
        self._systemd.notify("READY=1", wait=NOTIFY_WAIT_SECONDS)
        log.info("daemon_started", mailboxes=len(self.config.mailboxes))
        try:
            while not self._stop.is_set():
                try:
                    next_due = self.step()
                except StoreError:
                    raise  # disk full, read-only state dir: exit non-zero, never limp on
                except Exception as exc:  # one bad step must not take the daemon down
                    log.exception("step_failed", error=type(exc).__name__)
                    next_due = self.now() + dt.timedelta(seconds=STEP_RETRY_SECONDS)
                self._feed_watchdog()
                self._wait(next_due)
        finally:
            log.info("daemon_stopping")
            self._systemd.notify("STOPPING=1", wait=NOTIFY_WAIT_SECONDS)
            # The body reader and the watchers stop side by side: SIGTERM to exit stays
            # within systemd's stop timeout even when both wait on a stalled server.
            keeper = threading.Thread(target=self.promises.stop, name="stop-keeper",
                                      daemon=True)
            keeper.start()
            self.stop_watchers()
            keeper.join(1.0)
            self.metrics.close()

    def step(self) -> dt.datetime | None:
        """Apply pending events, re-evaluate if needed, send what is due; next due time."""
        if self._reload.is_set():
            self._reload.clear()
            self._apply_reload()
        self.drain_events()
        if self._dirty:
            self.reevaluate()
        next_due = self.run_due()
        promise_due = self.promises.run_due()
        digest_due = self.run_digests()
        outbox_due = self.process_outbox()
        self.publish_metrics()
        self._systemd.notify(f"STATUS={self.status_line(next_due)}")
        candidates = [t for t in (next_due, promise_due, digest_due, outbox_due) if t is not None]
        return min(candidates) if candidates else None

    def _wait(self, next_due: dt.datetime | None) -> None:
        timeout = MAX_SLEEP
        if next_due is not None:
            timeout = max(0.0, min(timeout, (next_due - self.now()).total_seconds()))
        if self._systemd.watchdog_interval:
            timeout = min(timeout, self._systemd.watchdog_interval)
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        # Apply it now rather than putting it back: re-queueing would move it behind
        # later events of the same watcher and could apply an older cursor last.
        self.apply_event(event)

    def _feed_watchdog(self) -> None:
        interval = self._systemd.watchdog_interval
        if interval and time.monotonic() - self._last_watchdog >= interval * 0.9:
            self._systemd.notify("WATCHDOG=1")
            self._last_watchdog = time.monotonic()

    # ------------------------------------------------------------------ config reload

    def _apply_reload(self) -> None:
        try:
            new = self._reload_config()
        except Exception as exc:  # ConfigError or unreadable file: keep the old config
            log.error("config_reload_failed", error=str(exc).splitlines()[0], kept="old config")
            return
        old = {mb.name: mb for mb in self.config.mailboxes}
        fresh = {mb.name: mb for mb in new.mailboxes}
        gone = [n for n in old if n not in fresh or fresh[n] != old[n]]
        added = [fresh[n] for n in fresh if n not in old or fresh[n] != old[n]]
        self.stop_watchers([n for n in gone if n in self.watchers])
        self.config = new
        self.start_watchers(added)
        self._dirty = True
        log.info("config_reloaded", mailboxes=len(new.mailboxes), restarted=len(added))

    # ------------------------------------------------------------------ events → state

    def _cursors(self, mailbox: str) -> dict[str, imap.FolderCursor]:
        # Called from watcher threads: read through a private read-only connection.
        with _reader(self.store) as reader:
            return {
                folder: imap.FolderCursor(c.uidvalidity, c.last_uid, c.highestmodseq)
                for folder, c in reader.cursors(mailbox).items()
            }

    def store_pending_uids(self, mailbox: str, folder: str) -> set[int]:
        with _reader(self.store) as reader:
            return reader.pending_uids(mailbox, folder)

    def drain_events(self) -> int:
        handled = 0
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return handled
            handled += 1
            self.apply_event(event)

    def apply_event(self, event: object) -> None:
        now = self.now()
        if isinstance(event, imap.FolderSyncEvent):
            s = event.sync
            with gc_paused():  # parses every new copy: see `threads.gc_paused`
                added = self._apply_folder_sync(event.mailbox, s, now)
            if added or s.flag_updates or s.reset:
                self._dirty = True
                log.info(
                    "folder_synced",
                    mailbox=event.mailbox,
                    folder=s.folder,
                    new=added,
                    flag_changes=len(s.flag_updates),
                )
        elif isinstance(event, imap.HealthEvent):
            h = event.health
            self.store.set_health(event.mailbox, h.state, since=h.since, last_error=h.last_error)
        elif self.promises.handles(event):
            self.promises.apply(event)  # type: ignore[arg-type]

    def _apply_folder_sync(self, mailbox: str, s: imap.FolderSync, now: dt.datetime) -> int:
        return self.store.apply_folder_sync(
            mailbox=mailbox,
            folder=s.folder,
            role=s.role,
            uidvalidity=s.cursor.uidvalidity,
            last_uid=s.cursor.last_uid,
            highestmodseq=s.cursor.highestmodseq,
            new_messages=s.new_messages,
            flag_updates=s.flag_updates,
            reset=s.reset,
            initial=s.reset,
            dismiss_keyword=self.config.dismiss_keyword,
            now=now,
            # Never evaluated (no threads yet): the next evaluation is a full one, and
            # one that is killed before it is followed by a full one too.
            mark_dirty=self.store.get_meta("threaded_with") is not None,
        )

    def reevaluate(self, history_since: dt.datetime | None = None) -> None:
        """Bring the stored items up to date with the stored mail.

        - Usually only the threads that mail stored or changed since the last evaluation
          can touch are evaluated (`_scope`): the rest of the history is neither loaded
          nor parsed, so memory and time follow the new mail, not the size of the state
          (bench targets 1 and 6).
        - When the config (or ackwatch, or the holiday tables) changed since the last
          evaluation, every item is evaluated again: thread by thread, a batch of threads
          at a time, when what threading depends on (the agency's addresses, the subject
          window) is unchanged; with the threads found anew otherwise, after a history
          import (`backfill`) and on the first start (`_evaluate_anew`: at once for a
          small window, a batch of link components at a time for a large one).
        """
        now = self.now()
        since = now - MESSAGE_HISTORY
        if history_since is not None:
            since = min(since, history_since)
        oldest = self.store.oldest_pending_received()
        if oldest is not None:
            since = min(since, oldest - self.config.thread_subject_window)
        if self.store.links_pending():  # the first start after an upgrade
            log.info("links_building", reason="state from an older ackwatch")
            linked = self.store.build_links(progress=lambda _done: self._feed_watchdog())
            log.info("links_built", messages=linked)
        if self._fingerprints[0] is not self.config:  # a new config (start, SIGHUP)
            self._fingerprints = (
                self.config, evaluation_fingerprint(self.config),
                threading_fingerprint(self.config),
            )
        _, fingerprint, threading = self._fingerprints
        done = {"evaluated_with": fingerprint, "threaded_with": threading}
        if history_since is None and self.store.get_meta("evaluated_with") == fingerprint:
            scope = self._scope()
            if scope:
                self._evaluate(since, now, scope)
        elif history_since is None and self.store.get_meta("threaded_with") == threading:
            self._evaluate_by_threads(since, now, done)
        else:
            self._evaluate_anew(since, now, done)
        self._dirty = False

    def _evaluate(
        self,
        since: dt.datetime,
        now: dt.datetime,
        scope: set[str] | None,
        done: Mapping[str, str] | None = None,
        *,
        part_of_all: bool = False,
    ) -> None:
        """Evaluate the stored mail of ``scope`` (whole threads; None: everything) received
        at or after ``since``, and store the outcome (with ``done`` recorded in meta).
        ``part_of_all``: ``scope`` is a batch of an evaluation of everything."""
        with gc_paused():  # loads, evaluates and stores up to all the mail: see there
            messages = self.store.load_messages(since, keys=scope)
            initial = self.store.initial_keys(scope, since=since)
            items, threads = sla.evaluate_threads(messages, self.config)
            lookback = now - self.config.notify.out_of_office_lookback
            seed = (scope is None or part_of_all) and lookback >= since
            recent = [m for m in messages if m.received >= lookback] if seed else []
            del messages
            new, acked = self.store.sync_items(
                items, now=now, initial_keys=initial, scope=scope, threads=threads,
                meta=done or {},
            )
            if seed:
                self._keep_mail_of_accounts(recent)
            del recent
        log.debug("evaluated", full=scope is None, keys=len(threads), items=len(items))
        self.promises.mark_dirty()
        if acked:
            acked_keys = set(acked)
            self._observe_acks([i for i in items if i.key in acked_keys])
        if new or acked:
            log.info("items_updated", new=len(new), acknowledged=len(acked))

    def _evaluate_anew(
        self, since: dt.datetime, now: dt.datetime, done: Mapping[str, str]
    ) -> None:
        """Every item evaluated again, with the threads found anew (the first start, a
        change of what threading depends on, `backfill`).

        A window of up to `AT_ONCE_COPIES` copies is evaluated at once (a first sync: the
        quickest). A larger one (a year kept open by an old unanswered mail, a backfill) is
        evaluated a batch of whole link components at a time (`Store.linked_batches`), so
        that memory follows the batch and not the history (bench target 6, the first
        start: 715 MB at 1.3M copies at once). A thread never spans two components, so
        the items are the same. A component larger than a batch (recurring subjects with
        the same people chain a lot of mail together) is threaded first, from its mail
        read a few hundred keys at a time, then evaluated a batch of its threads at a
        time (`_thread_batches`). Killed halfway, the next start does it all again
        (``done`` is recorded at the end only)."""
        if self.store.copies_since(since) <= AT_ONCE_COPIES:
            self._evaluate(since, now, None, done)
            return
        noise = classify.agency_identities(self.config)
        batches = threaded = 0
        for keys in self.store.linked_batches(since, noise, LINKED_BATCH_KEYS):
            parts = [keys] if len(keys) <= LINKED_BATCH_KEYS else self._thread_batches(since, keys)
            threaded += len(keys) > LINKED_BATCH_KEYS
            for part in parts:
                self._evaluate(since, now, part, part_of_all=True)
                self._feed_watchdog()
                batches += 1
        self.store.end_linked_batches(done)
        log.info("evaluated_by_components", batches=batches, threaded_first=threaded)

    def _thread_batches(self, since: dt.datetime, keys: set[str]) -> list[set[str]]:
        """``keys`` (whole threads) as batches of whole threads of up to `LINKED_BATCH_KEYS`
        keys (a thread larger than that is a batch of its own). The threads are found
        as `sla.evaluate_threads` finds them, from nodes only: each mail is dropped once
        its node is made. Evaluating a set of whole threads threads them the same way
        again (see `sla.evaluate_threads`)."""
        thread_of = assign_threads(
            self.store.iter_messages(since, sorted(keys)),
            subject_window=self.config.thread_subject_window,
            agency_addresses=classify.agency_identities(self.config),
        )
        members: dict[str, list[str]] = {}
        for key, thread in thread_of.items():
            members.setdefault(thread, []).append(key)
        del thread_of
        batches: list[set[str]] = []
        batch: set[str] = set()
        for thread in sorted(members):
            found = members[thread]
            if batch and len(batch) + len(found) > LINKED_BATCH_KEYS:
                batches.append(batch)
                batch = set()
            batch.update(found)
        if batch:
            batches.append(batch)
        return batches

    def _evaluate_by_threads(
        self, since: dt.datetime, now: dt.datetime, done: Mapping[str, str]
    ) -> None:
        """Every item evaluated again, a batch of whole threads at a time (the threads as
        last evaluated: the config change left threading as it was). Mail not evaluated
        yet goes first, since it can join or split threads. Killed halfway, the next start
        does it all again (``done`` is recorded with the last batch only)."""
        scope = self._scope()
        if scope:
            self._evaluate(since, now, scope)
        threads = self.store.threads_since(since)
        batches = [threads[i : i + THREAD_BATCH] for i in range(0, len(threads), THREAD_BATCH)]
        for n, batch in enumerate(batches, start=1):
            keys = self.store.thread_members(batch)
            self._evaluate(since, now, keys, done if n == len(batches) else None)
            self._feed_watchdog()
        if not batches:
            self.store.set_meta_many(done)
        log.info("evaluated_by_threads", threads=len(threads), batches=len(batches))

    def _away_addresses(self, accounts: Iterable[str]) -> set[str]:
        """``accounts`` with their backups and managers: whose absence `recipient_for`
        may look at."""
        addresses: set[str] = set()
        for address in accounts:
            acc = self.config.account(address)
            addresses.add(address.lower())
            if acc is not None:
                addresses.update(a.lower() for a in (acc.backup, acc.manager) if a)
        return addresses

    def _keep_mail_of_accounts(self, recent: Sequence[Message]) -> None:
        """Seed the `messages_of_accounts` cache from a full evaluation's messages:
        ``recent``, every copy it loaded received within the out-of-office look-back. The
        first start would otherwise parse the accounts' sent mail a second time at the
        first `_plan`. Only what that `_plan` asks for is kept: mail sent by the accounts
        of the pending items, their backups and their managers."""
        senders = self._away_addresses(r.account for r in self._pending() if r.account)
        cache = self._mail_of_accounts
        kept: dict[str, list[Message]] = {}
        for m in recent:
            if m.sender.address in senders and m.key not in cache:
                kept.setdefault(m.key, []).append(m)
        cache.update(kept)

    def messages_of_accounts(self, accounts: Iterable[str], now: dt.datetime) -> list[Message]:
        """The stored mail `sla.recipient_for` needs to tell who of ``accounts`` (and their
        backups and managers) is away at ``now``: what they sent within the out-of-office
        look-back."""
        addresses = self._away_addresses(accounts)
        if not addresses:
            return []
        since = now - self.config.notify.out_of_office_lookback
        keys = self.store.keys_from(addresses, since)
        cache = self._mail_of_accounts  # parsed once: `_plan` asks at every step
        for key in [k for k in cache if k not in keys]:
            del cache[key]
        missing = keys - cache.keys()
        for m in self.store.load_messages(since, keys=missing) if missing else ():
            cache.setdefault(m.key, []).append(m)
        return [m for k in keys for m in cache.get(k, ())]

    def _scope(self) -> set[str]:
        """The keys to evaluate after a change: whole threads (as last evaluated) of the
        changed keys and of every stored mail sharing a thread link with them
        (`threads.link_values`), which is what any new link can join or split."""
        dirty = self.store.dirty_keys()
        if not dirty:
            return set()
        noise = classify.agency_identities(self.config)
        copies: dict[str, list[Message]] = {}
        for m in self.store.load_messages(keys=dirty):
            copies.setdefault(m.key, []).append(m)
        links: set[str] = set()
        for group in copies.values():
            links |= link_values(group, noise)
        related = self.store.keys_linked(links) | dirty
        return self.store.thread_keys(related) | related

    def _observe_acks(self, items: Sequence[sla.Item]) -> None:
        """Feed the time-to-acknowledge histogram (on each item's policy clock)."""
        from ackwatch.reporting.report import (
            time_to_acknowledge,  # the report module, only when needed
        )

        for item in items:
            if item.ack is None:
                continue
            d = item.deadlines
            elapsed = time_to_acknowledge(item.received, item.ack.at, d.policy, d.clock, self.config)
            self.metrics.observe_ack(d.clock, elapsed.total_seconds())

    def publish_metrics(self) -> None:
        now = self.now()
        pending: dict[str, int] = {}
        overdue: dict[str, int] = {}
        for r in self._pending():
            account = r.account or "-"
            pending[account] = pending.get(account, 0) + 1
            if r.deadline <= now:
                overdue[account] = overdue.get(account, 0) + 1
        health = self.store.health()
        self.metrics.publish(Snapshot(
            pending=pending,
            overdue=overdue,
            sent=self.store.sent_counts(),
            mailbox_up={h.mailbox: h.state == "up" for h in health},
            last_sync={h.mailbox: h.last_sync.timestamp() for h in health if h.last_sync},
        ))

    # ------------------------------------------------------------------ weekly digest

    def run_digests(self) -> dt.datetime | None:
        """Queue each manager's weekly digest once it is due; next digest time."""
        config = self.config
        if not config.digest.enabled or config.smtp is None:
            return None
        from ackwatch.reporting import digest  # with the report module: only when digests are on

        now = self.now()
        first = self.store.get_meta("first_started")
        if first is None:
            self.store.set_meta("first_started", now.isoformat())
            first = now.isoformat()
        started = dt.datetime.fromisoformat(first)
        for manager in digest.managers(config):
            due = digest.due_instant(config, manager, now)
            # Not when it is days late, nor for a week before this installation existed.
            if now - due > digest.CATCH_UP or started >= due:
                continue
            queued = self.store.enqueue_once(
                once_key=digest.week_key(config, manager, due),
                kind="digest",
                recipient=manager,
                message_id=notify.make_message_id(notify.message_id_domain(config)),
                now=now,
            )
            if queued is not None:
                log.info("action_queued", kind="digest", to=manager)
        return digest.next_due(config, now)

    def _render_digest(self, record: OutboxRecord, now: dt.datetime) -> EmailMessage:
        from ackwatch.reporting import digest

        config = self.config
        manager = record.recipient
        team = digest.managers(config).get(manager, ())
        this_since, this_until = digest.period(config, manager, record.created_at, 1)
        before_since, _ = digest.period(config, manager, record.created_at, 2)
        rows = self.store.report_rows(before_since, this_until)
        this_week = digest.team_report(config, rows, team, since=this_since, until=this_until,
                                       now=now)
        week_before = digest.team_report(config, rows, team, since=before_since,
                                         until=this_since, now=now)
        assert config.smtp is not None
        return digest.render(config, manager, this_week, week_before,
                             smtp_from=config.smtp.from_address, message_id=record.message_id)

    # ------------------------------------------------------------------ actions

    def _pending(self) -> list[ItemRecord]:
        return self.store.pending_items()

    def _plan(self, now: dt.datetime) -> scheduler.Plan:
        records = self._pending()
        views = [
            scheduler.Pending(
                r.key, r.account, r.nudge_at, r.escalate_at,
                r.nudge_done is not None, r.escalation_done is not None,
            )
            for r in records
        ]
        accounts = {r.account for r in records if r.account}
        messages = self.messages_of_accounts(accounts, now)
        recipients = {acc: sla.recipient_for(acc, self.config, now, messages) for acc in accounts}
        return scheduler.plan(
            views, config=self.config, now=now,
            recipient_of=lambda acc: recipients.get(acc, acc),
            sent_last_hour=self.store.reached_since(now - hourlycap.HOUR),
        )

    def run_due(self) -> dt.datetime | None:
        now = self.now()
        p = self._plan(now)
        for skip in p.skips:
            self.store.mark_items_done(skip.kind, [skip.key], "skipped")
            log.warning("action_skipped", kind=skip.kind, reason=skip.reason)
        if not p.actions:
            return p.next_due
        # Re-check the sent folders concerned right now; replies made a minute ago count.
        by_key = {r.key: r for r in self._pending()}
        mailboxes = self._mailboxes_concerned(p.actions, by_key)
        self._recheck(mailboxes)
        # Apply whatever the re-check brought, even a partial one (a slow server).
        self.drain_events()
        if self._dirty:
            self.reevaluate()
            now = self.now()
            p = self._plan(now)
        for action in p.actions:
            self.store.enqueue(
                kind=action.kind,
                recipient=action.to,
                cc=action.cc,
                account=action.account,
                nudge_keys=action.nudge_keys,
                escalation_keys=action.escalation_keys,
                message_id=notify.make_message_id(notify.message_id_domain(self.config)),
                now=now,
            )
            log.info("action_queued", kind=action.kind, to=action.to, items=len(action.item_keys))
        return p.next_due

    def _mailboxes_concerned(
        self, actions: Sequence[scheduler.Action], items: dict[str, ItemRecord]
    ) -> set[str]:
        names: set[str] = set()
        for action in actions:
            for key in action.item_keys:
                rec = items.get(key)
                if rec is None:
                    continue
                names.update(rec.mailboxes)
                names.update(
                    mb.name for mb in self.config.mailboxes if mb.owner_address == rec.account
                )
        return names

    def _recheck(self, mailboxes: Iterable[str]) -> bool:
        """Re-check the given mailboxes' sent folders now, all at once; True if any did.

        The mailboxes are re-checked in parallel (one short-lived thread each), so fifty
        accounts due in the same minute cost one round of IMAP latency, not fifty. The
        core thread keeps feeding the watchdog while it waits: a stalled server must not
        starve it.
        """
        watchers = [(n, w) for n in sorted(mailboxes) if (w := self.watchers.get(n)) is not None]
        if not watchers:
            return False
        deadline = time.monotonic() + RECHECK_TIMEOUT
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=min(32, len(watchers)), thread_name_prefix="recheck"
        )
        try:
            futures = [pool.submit(self._recheck_one, n, w, deadline) for n, w in watchers]
            pending = set(futures)
            while pending and not self._stop.is_set():
                self._feed_watchdog()
                _, pending = concurrent.futures.wait(pending, timeout=0.5)
            return any(f.result() for f in futures if f.done() and not f.cancelled())
        finally:
            # On SIGTERM do not wait for a stalled server: the workers notice the stop
            # within one slice.
            pool.shutdown(wait=not self._stop.is_set(), cancel_futures=True)

    def _recheck_one(self, name: str, watcher: imap.MailboxWatcher, deadline: float) -> bool:
        # A watcher that has not finished its first connection (the daemon just started,
        # or a reload restarted it) has not seen the replies made while it was not
        # watching: wait for that first sync (bounded) instead of sending blind. A mailbox
        # that is down (backoff, auth_failed) is not waited for.
        try:
            while (
                watcher.health.state == "connecting"
                and watcher.is_alive()
                and not self._stop.is_set()
                and time.monotonic() < deadline
            ):
                time.sleep(0.05)
            while True:  # in short slices, so that a stop is noticed promptly
                left = deadline - time.monotonic()
                if watcher.recheck(timeout=min(RECHECK_SLICE, max(left, 0.1))):
                    return True
                if left <= RECHECK_SLICE or watcher.health.state != "up" or self._stop.is_set():
                    return False
        except Exception as exc:  # a failing mailbox never blocks the nudge
            log.warning("recheck_failed", mailbox=name, error=type(exc).__name__)
            return False

    def process_outbox(self) -> dt.datetime | None:
        """Send queued mail; retry temporary failures with backoff. Next retry time.

        A TLS or credentials failure is the server's (or ops'), not the mail's: the rest
        of the pass is held back with it until the same retry time, so that ten queued
        mails cost one refused login per round, not ten (mail servers lock out an account
        after a few refused logins in a row).
        """
        now = self.now()
        held = self._smtp_held_until
        if held is not None:
            if now < held and held <= now + SEND_BACKOFF_CAP * 1.2:
                return held
            self._smtp_held_until = held = None  # its time came (or the clock went back)
        due = self.store.outbox_due(now)
        # A retry time further ahead than any backoff could set means the wall clock was
        # turned back: try now rather than wait for the clock to catch up.
        due_ids = {o.id for o in due}
        due += [
            o for o in self.store.outbox_pending()
            if o.id not in due_ids and o.next_attempt_at > now + self._max_backoff(o.attempts)
        ]
        for tried, record in enumerate(due, 1):
            self._deliver(record, now)
            if self._smtp_held_until is not None:
                log.warning("outbox_held", until=self._smtp_held_until.isoformat(),
                            mails_waiting=len(due) - tried)
                break
        pending = self.store.outbox_pending()
        next_try = min((o.next_attempt_at for o in pending), default=None)
        if self._smtp_held_until is not None and next_try is not None:
            return max(next_try, self._smtp_held_until)
        return next_try

    def _deliver(self, record: OutboxRecord, now: dt.datetime) -> None:
        if record.kind == "digest":
            try:
                message = self._render_digest(record, now)
            except Exception as exc:
                self.store.outbox_close(record.id, "failed", error=f"render: {type(exc).__name__}")
                log.error("mail_render_failed", kind="digest", to=record.recipient,
                          error=type(exc).__name__)
                return
            self._transmit(record, message, now)
            return
        if record.kind in ("promise", "promise-overdue"):  # issue 8: see keeper.py
            promise_mail = self.promises.prepare(record, now)
            if promise_mail is not None:
                self._transmit(record, promise_mail, now)
            return
        items = {r.key: r for r in self._pending()}
        nudge_keys = [k for k in record.nudge_keys if k in items]
        escalation_keys = [k for k in record.escalation_keys if k in items]
        if not nudge_keys and not escalation_keys:
            self.store.outbox_close(record.id, "cancelled")  # its items too
            log.info("action_cancelled", kind=record.kind, to=record.recipient,
                     reason="acknowledged meanwhile")
            return
        if len(nudge_keys) < len(record.nudge_keys) or len(escalation_keys) < len(
            record.escalation_keys
        ):
            self.store.outbox_update_items(record.id, nudge_keys, escalation_keys)
        lines = [items[k] for k in dict.fromkeys(nudge_keys + escalation_keys)]
        try:
            message = notify.render_outbox(self.config, record, lines, now)
        except Exception as exc:  # a broken template override: fail this mail, loudly
            self.store.outbox_close(record.id, "failed", error=f"render: {type(exc).__name__}")
            log.error("mail_render_failed", kind=record.kind, to=record.recipient,
                      error=type(exc).__name__, detail=str(exc)[:200])
            return
        self._transmit(record, message, now)

    def _transmit(self, record: OutboxRecord, message: EmailMessage, now: dt.datetime) -> None:
        """Hand one mail to SMTP; mark it sent, or schedule a retry, or fail it (5xx)."""
        try:
            self._send(message, self.config)
        except notify.PermanentSendError as exc:
            self.store.outbox_close(record.id, "failed", error=str(exc))
            log.error("mail_failed", kind=record.kind, to=record.recipient, error=str(exc))
            return
        except Exception as exc:  # temporary: SMTP down, 4xx, timeouts, TLS, credentials
            if isinstance(exc, notify.SendError) and exc.tls_failure:
                self.metrics.count_tls_failure(str(exc.failure))
            delay = self._backoff(record.attempts) * random.uniform(0.8, 1.2)
            self.store.outbox_retry(record.id, error=str(exc), next_attempt_at=now + delay)
            if isinstance(exc, notify.SendError) and exc.failure is not None:
                self._smtp_held_until = now + delay  # TLS or credentials: the server's
            if record.attempts == 0:
                log.warning("mail_deferred", kind=record.kind, to=record.recipient,
                            error=str(exc), retry_in=int(delay.total_seconds()))
            return
        self.store.outbox_sent(record.id, self.now())

    def _backoff(self, attempts: int) -> dt.timedelta:
        """Delay before the next try after `attempts` failed ones (before jitter)."""
        start = self.config.notify.retry_initial
        return min(SEND_BACKOFF_CAP, start * (2 ** min(attempts, 10)))

    def _max_backoff(self, attempts: int) -> dt.timedelta:
        """The furthest ahead a retry can be after `attempts` tries (jitter included)."""
        if attempts <= 0:
            return dt.timedelta(seconds=1)  # queued for "now": never in the future
        return self._backoff(attempts - 1) * 1.2 + dt.timedelta(seconds=1)

    # ------------------------------------------------------------------ status

    def status_line(self, next_due: dt.datetime | None) -> str:
        health = self.store.health()
        up = sum(1 for h in health if h.state == "up")
        pending = len(self._pending())
        nxt = next_due.astimezone(dt.UTC).strftime("%H:%M:%SZ") if next_due else "none"
        return f"mailboxes up {up}/{len(self.config.mailboxes)}, pending {pending}, next action {nxt}"


def sync_once(daemon: Daemon) -> tuple[list[str], list[str]]:
    """Sync every mailbox once, in turn (``ackwatch run --once``): (reached, failed).

    Each mailbox is independent: one that cannot be reached is logged and recorded in
    the health table, and the others are still synced.

    A mailbox's first watched folder (its inbox) is read on the connection `_each_mailbox`
    opened, the others at the same time on a second one (the two connections a mailbox
    may use; there is no IDLE here): the server searches and sends the sent folder while
    the inbox is parsed. When the second connection cannot be opened, the other folders
    are read on the first one after the inbox.
    """
    config = daemon.config

    def sync(
        mb: MailboxConfig,
        client: imap.IMAPClient,
        folders: list[tuple[str, imap.FolderRole]],
        now: dt.datetime,
    ) -> Iterator[Callable[[], None]]:
        cursors = daemon._cursors(mb.name)
        since = (now - config.sync.backfill).date()

        def read(c: imap.IMAPClient, folder: str, role: imap.FolderRole) -> Callable[[], None]:
            def prepare(batch: Sequence[imap.FetchedMessage]) -> None:
                daemon.store.prepare(mb.name, folder, role, batch)

            with gc_paused():  # fetches and parses the folder's new mail: see there
                result = imap.sync_folder(
                    c, folder, role, cursors.get(folder), since=since,
                    pending_uids=daemon.store_pending_uids(mb.name, folder),
                    batch_size=config.sync.batch_size, on_batch=prepare,
                )
            event = imap.FolderSyncEvent(mb.name, result)
            return lambda: daemon.apply_event(event)

        def read_others() -> list[Callable[[], None]] | None:
            try:
                second = imap.connect(
                    mb, limits=imapguard.Limits.for_sync(config.sync),
                    deadline=imapguard.session_deadline(client),
                )  # fmt: skip
            except imap.ImapError as exc:
                log.info("second_connection_refused", mailbox=mb.name, error=str(exc))
                return None
            try:
                return [read(second, folder, role) for folder, role in folders[1:]]
            finally:
                imap.logout(second)

        if len(folders) < 2:
            yield from (read(client, folder, role) for folder, role in folders)
            return
        with concurrent.futures.ThreadPoolExecutor(2, "ackwatch-sync-folder") as pool:
            first = pool.submit(read, client, *folders[0])
            others = pool.submit(read_others)
            for done in concurrent.futures.as_completed((first, others)):
                if done is first:  # each folder is written as soon as it is read
                    yield first.result()
                elif (steps := others.result()) is not None:
                    yield from steps
        if others.result() is None:
            yield from (read(client, folder, role) for folder, role in folders[1:])

    return _each_mailbox(
        daemon, sync, failed_event="mailbox_sync_failed", record_health=True,
        mailbox_seconds=config.sync.mailbox_deadline.total_seconds(),
    )  # fmt: skip


def backfill(daemon: Daemon, since: dt.date) -> tuple[list[str], list[str], int]:
    """Import history back to ``since`` from every mailbox, silently: (reached, failed, new).

    Mail older than what the sync has seen is fetched (read-only, header fields only) and
    stored as history: items whose nudge or escalation time has passed get none, but
    their real time to acknowledge is recorded, so the report covers that period. The
    folders' sync cursors are left as they are.
    """
    config = daemon.config
    added = 0

    def fetch(
        mb: MailboxConfig,
        client: imap.IMAPClient,
        folders: list[tuple[str, imap.FolderRole]],
        now: dt.datetime,
    ) -> Iterator[Callable[[], None]]:
        for folder, role in folders:
            result = imap.sync_folder(
                client, folder, role, None, since=since, batch_size=config.sync.batch_size
            )

            def store(folder: str = folder, role: str = role, result=result) -> None:
                nonlocal added
                keep = daemon.store.cursors(mb.name).get(folder)
                cursor = result.cursor
                if keep is not None and keep.uidvalidity == cursor.uidvalidity:
                    cursor = imap.FolderCursor(keep.uidvalidity, keep.last_uid, keep.highestmodseq)
                added += daemon.store.apply_folder_sync(
                    mailbox=mb.name, folder=folder, role=role,
                    uidvalidity=cursor.uidvalidity, last_uid=cursor.last_uid,
                    highestmodseq=cursor.highestmodseq,
                    new_messages=result.new_messages,
                    flag_updates=(), reset=False, initial=True,
                    dismiss_keyword=config.dismiss_keyword, now=now,
                )

            yield store

    reached, failed = _each_mailbox(
        daemon, fetch, failed_event="mailbox_backfill_failed", record_health=False
    )
    daemon.reevaluate(history_since=dt.datetime.combine(since, dt.time(0), tzinfo=dt.UTC))
    log.info("backfill_done", mailboxes=len(reached), new=added)
    return reached, failed, added


MailboxWork = Callable[
    [MailboxConfig, imap.IMAPClient, list[tuple[str, imap.FolderRole]], dt.datetime],
    Iterator[Callable[[], None]],
]
_SYNC_AHEAD = 2  # folder results the IMAP thread may read ahead of the writer


def _each_mailbox(
    daemon: Daemon,
    work: MailboxWork,
    *,
    failed_event: str,
    record_health: bool,
    mailbox_seconds: float | None = None,
) -> tuple[list[str], list[str]]:
    """Connect to every mailbox in turn, discover its folders and run
    ``work(mailbox, client, watched folders, now)``: (reached, failed).

    ``work`` reads from the server and yields what is to be written, a step per folder;
    the steps run here, on the calling thread (the single writer), while a reader thread
    goes on with the next folder or mailbox: the store's work (SQLite, which releases
    the GIL) overlaps the server's and the parse of what comes next, as the daemon's
    watchers overlap the core. At most `_SYNC_AHEAD` steps wait at once.

    Each mailbox is independent: one that cannot be reached (``mailbox_unreachable``) or
    whose work raises, reading or writing (``failed_event``), is logged, and the others
    still get their turn. ``record_health``: also record each mailbox's outcome in the
    health table. ``mailbox_seconds``: each mailbox's connections end this long after the
    first was opened (`imapguard`: ``imap_command_deadline``), and it counts as failed.
    The reader thread never ends with an uncaught exception: whatever fails is logged as
    an event and charged to its mailbox, and the next mailboxes are still read.
    """
    steps: queue.Queue[tuple[str, MailboxConfig, dt.datetime, object] | None] = queue.Queue(
        maxsize=_SYNC_AHEAD
    )
    given_up: set[str] = set()  # mailboxes whose writing failed: read no further
    stop = threading.Event()  # the writer has stopped (an error of its own): read no more

    def put(entry: tuple[str, MailboxConfig, dt.datetime, object] | None) -> bool:
        while not stop.is_set():
            try:
                steps.put(entry, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    limits = imapguard.Limits.for_sync(daemon.config.sync)

    def read_one(mb: MailboxConfig) -> None:
        now = daemon.now()
        deadline = None if mailbox_seconds is None else time.monotonic() + mailbox_seconds
        try:
            client = imap.connect(mb, limits=limits, deadline=deadline)
        except imap.ImapError as exc:
            put(("unreachable", mb, now, exc))
            return
        except Exception as exc:  # a fault of ours: this mailbox only, and never its text
            log.error("mailbox_connect_error", mailbox=mb.name, error=type(exc).__name__)
            put(("unreachable", mb, now, imap.ImapError(f"connect failed: {type(exc).__name__}")))
            return
        try:
            folders = imap.watched_folders(*imap.discover_folders(client, mb.folders))
            for step in work(mb, client, folders, now):
                if not put(("step", mb, now, step)) or mb.name in given_up:
                    break
            else:
                put(("done", mb, now, None))
        except Exception as exc:  # a failing mailbox never stops the others
            ended = imapguard.failure(client)
            put(("failed", mb, now, imap.ImapError(str(ended)) if ended is not None else exc))
        finally:
            imap.logout(client)

    def read_all() -> None:
        try:
            for mb in daemon.config.mailboxes:
                if stop.is_set():
                    return
                try:
                    read_one(mb)
                except Exception as exc:  # pragma: no cover - read_one charges its mailbox
                    log.error("sync_reader_error", mailbox=mb.name, error=type(exc).__name__)
        finally:
            put(None)

    reader = threading.Thread(target=read_all, name="ackwatch-sync", daemon=True)
    reader.start()
    reached: list[str] = []
    failed: list[str] = []
    try:
        while (entry := steps.get()) is not None:
            kind, mb, now, value = entry
            if mb.name in given_up:
                continue
            if kind == "step":
                try:
                    value()  # type: ignore[operator]
                except Exception as exc:
                    given_up.add(mb.name)
                    kind, value = "failed", exc
            if kind == "unreachable":
                if record_health:
                    state = "auth_failed" if isinstance(value, imap.AuthError) else "backoff"
                    daemon.store.set_health(mb.name, state, since=now, last_error=str(value))
                log.error("mailbox_unreachable", mailbox=mb.name, error=str(value))
                failed.append(mb.name)
            elif kind == "failed":
                error = str(value) if isinstance(value, imap.ImapError) else type(value).__name__
                if record_health:
                    daemon.store.set_health(mb.name, "backoff", since=now, last_error=error)
                log.error(failed_event, mailbox=mb.name, error=error)
                failed.append(mb.name)
            elif kind == "done":
                if record_health:
                    daemon.store.set_health(mb.name, "up", since=now, last_error=None)
                reached.append(mb.name)
    finally:
        stop.set()  # the reader, if still reading, ends at its next step
    reader.join()
    return reached, failed


class _reader:
    """A short-lived read-only connection for watcher threads (the writer is the core)."""

    def __init__(self, store: Store):
        self._store = store
        self._reader: Store | None = None

    def __enter__(self) -> Store:
        self._reader = Store.open(self._store.path.parent, readonly=True)
        return self._reader

    def __exit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.close()


def evaluation_fingerprint(config: Config) -> str:
    """What the stored items were evaluated with: the config's values, this ackwatch and
    the holiday tables when a calendar names a country. A change means every item is
    evaluated again (once). (Without a country the holidays package is not imported at
    all: 20 ms of every start.)"""
    import hashlib
    import json

    from ackwatch import __version__

    tables = None
    if any(c.holidays for c in config.calendars.values()):
        import holidays

        tables = holidays.__version__
    text = json.dumps(
        [EVALUATION_VERSION, __version__, tables, _canonical(config)], sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()


def threading_fingerprint(config: Config) -> str:
    """What the stored threads were found with (`threads.assign_threads`' inputs from the
    config: the agency's addresses, the subject window) and this ackwatch."""
    import hashlib
    import json

    from ackwatch import __version__

    text = json.dumps([
        EVALUATION_VERSION, __version__, sorted(classify.agency_identities(config)),
        config.thread_subject_window.total_seconds(),
    ])
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(value: object) -> object:
    """A JSON value for a config value, the same in every process (sets sorted)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return sorted([str(k), _canonical(v)] for k, v in value.items())
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
