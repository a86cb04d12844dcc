"""Promise keeper, shell half: read acknowledgements, record promises, remind.

Which bodies are read, and when: the core (single writer) asks for the acknowledging
message of every item acknowledged by a reply that ackwatch saw arrive live (not in a
first-start history import) within `READ_HORIZON`, and for the first follow-up of a
promise (to tell "kept" from "moved"). `bodyreader` reads them, off the core thread in
the daemon, inline in ``ackwatch run --once`` (after the sync).

With ``promise.enabled: false`` nothing here runs: no body is ever read, nothing sent.

Crash safety: a read and the promise it found are recorded in one transaction
(`Store.record_promise_read`); a read cut short by a crash is simply done again. A
reminder is recorded in the outbox and its promises marked in one transaction before it
is sent, like nudges (`notices` renders it). Reads that fail (mailbox down) are retried
with backoff, at most `MAX_READ_ATTEMPTS` times.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from email.message import EmailMessage
from typing import TYPE_CHECKING, Protocol, TypeGuard

import structlog

from ackwatch.config import Config
from ackwatch.core import classify, date_asks, hourlycap
from ackwatch.core import item_rules as sla
from ackwatch.core import promise_rules as promises
from ackwatch.core.message import Message
from ackwatch.core.threads import assign_threads
from ackwatch.daemon.asking import DateAsks
from ackwatch.daemon.bodyreader import BodyRead, BodyReader, read_bodies
from ackwatch.daemon.notices import ask_mail, notice_mail
from ackwatch.daemon.nudges import SkipLog, cap_people, log_copies_left_out
from ackwatch.daemon.parsedmail import messages_of
from ackwatch.daemon.promisereads import Parse, WantedReads
from ackwatch.gcpause import gc_paused
from ackwatch.mail import compose
from ackwatch.store import NewPromise, PromiseRecord, Store, StoredCopy

if TYPE_CHECKING:
    from ackwatch.daemon.watchers import Recheck
    from ackwatch.store import OutboxRecord

log = structlog.get_logger(__name__)

READ_HORIZON = dt.timedelta(days=2)  # acknowledgements first seen longer ago are not read
TRACK_HORIZON = dt.timedelta(days=30)  # settled promises are re-assessed this long
MAX_READ_ATTEMPTS = 6
READ_RETRY_START = dt.timedelta(seconds=30)
READ_RETRY_CAP = dt.timedelta(minutes=30)
NOTICE_KINDS = promises.NOTICE_KINDS


class KeeperHost(Protocol):
    """What the promise keeper needs of the daemon that runs it (`service.Daemon`)."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> Store: ...

    def now(self) -> dt.datetime: ...

    def post(self, event: object) -> None:
        """Put ``event`` on the core's queue (from any thread); it comes back to `apply`."""

    def recheck(self, mailboxes: Iterable[str]) -> Recheck:
        """Re-check the mailboxes' sent folders now; true if any did."""

    def refresh_if_changed(self) -> bool:
        """Apply the events waiting, re-evaluate if they changed the mail; True if so."""

    def messages_of_accounts(self, accounts: Iterable[str], now: dt.datetime) -> list[Message]:
        """What ``accounts``, their backups, managers and mentors sent lately (who is
        away)."""

    def parse_copies(self, copies: Iterable[StoredCopy]) -> list[Message]:
        """The parses of stored copies, sharing the evaluation's (`ParsedMail`): the
        keeper reads the threads the step just evaluated."""


class PromiseKeeper:
    """The daemon's promise keeper: called from the core thread only (single writer)."""

    def __init__(self, host: KeeperHost):
        self.host = host
        self._reader: BodyReader | None = None
        self._inflight: set[str] = set()
        self._dirty = True
        self._next_check: dt.datetime | None = None
        self._due: list[promises.Due] = []
        self._asks = DateAsks(
            host, functools.partial(_later_by_source, parse=host.parse_copies), READ_HORIZON
        )
        self._skip_log = SkipLog()
        # What can have changed since the last update (see `update`): everything (the
        # first update, a full evaluation), else the keys of the threads evaluated and
        # the messages whose reads were recorded.
        self._full = True
        self._changed: set[str] = set()
        self._read: set[str] = set()

    @property
    def config(self) -> Config:
        return self.host.config

    @property
    def enabled(self) -> bool:
        return bool(self.config.promise.enabled)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Read in the background from now on (the daemon; `run --once` reads inline)."""
        if self._reader is None:
            self._reader = BodyReader(lambda: self.host.config, self.host.post)
            self._reader.start()

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.stop()
            self._reader = None

    def mark_dirty(self, keys: Iterable[str] | None = None) -> None:
        """Mail was evaluated: ``keys`` (whole threads; None: any) may have changed, and
        with them the follow-ups of the promises made in those threads."""
        self._dirty = True
        if keys is None:
            self._full = True
        else:
            self._changed.update(keys)

    @staticmethod
    def handles(event: object) -> TypeGuard[BodyRead]:
        return isinstance(event, BodyRead)

    # ------------------------------------------------------------------ reads

    def apply(self, event: BodyRead) -> None:
        """Record a read (and the promise it found), from the core thread."""
        self._inflight.discard(event.request.key)
        self._dirty = True
        self._read.add(event.request.key)
        record_read(self.host.store, self.config, event, self.host.now())

    # ------------------------------------------------------------------ decisions

    def update(self, now: dt.datetime, *, inline_reads: bool | None = None) -> None:
        """Re-assess promises, record their states, and start the reads that are due.

        An update reads what can have changed since the last one, not everything
        tracked: the acknowledgements and promises of the threads evaluated since, of
        the messages read since, the reads to try again, the open promises whose instant
        has come, and those waiting for their follow-up's read (`Store.promises_touched`);
        the notices due come from an index range (`Store.promise_notices`). The first
        update, and one after a full evaluation, read every tracked promise. A promise's
        state depends on its thread's mail, its follow-up's read and the clock only, so
        the states stored are those a full re-assessment would give."""
        if not self.enabled:
            return
        store = self.host.store
        self._dirty = False
        full, self._full = self._full, False
        changed, self._changed = self._changed, set()
        read, self._read = self._read, set()
        reads_wanted = WantedReads(store, self.config, self._inflight, self.host.parse_copies)

        # 1. Acknowledgements not read yet.
        candidates = store.promise_read_candidates(
            now - READ_HORIZON, None if full else changed
        )
        for row in candidates:
            key = str(row["ack_key"])
            next_at = row["next_attempt_at"]
            if reads_wanted.asked(key):
                continue
            if isinstance(next_at, dt.datetime) and next_at > now:
                reads_wanted.retry_times.append(next_at)
                continue
            item = {
                "thread": row["thread"],
                "item_key": row["key"],
                "client": row["client"],
                "client_address": row["client_address"],
                "subject": row["subject"],
            }
            reads_wanted.want(key, attempts=int(row["attempts"] or 0), item=item,
                              fallback_account=row["account"])  # fmt: skip

        # 2. Promises: their follow-ups, states and notices.
        since = now - TRACK_HORIZON
        if full:
            tracked = store.promises_to_track(since)
        else:
            # A new promise's source is the message just read; a follow-up read may
            # turn "kept" into "moved".
            tracked = store.promises_touched(
                since, sources=changed | read, follows=read, breaking_by=now
            )
        if tracked:
            later_of = _later_messages(store, self.config, tracked, parse=self.host.parse_copies)
            reads = store.promise_reads(m.key for ms in later_of.values() for m in ms)
            changes = []
            for rec in tracked:
                later = [
                    dataclasses.replace(m, promised=_read_state(reads.get(m.key)))
                    for m in later_of.get(rec.id, ())
                ]
                view = _recorded(rec)
                a = promises.assess(view, later, now)
                if (a.state, a.follow_key, a.settled_at) != (
                    rec.state,
                    rec.follow_key,
                    rec.settled_at,
                ):
                    changes.append((rec.id, a.state, a.follow_key, a.settled_at))
                    if a.state != rec.state:
                        log.info(
                            "promise_" + a.state, id=rec.id, account=rec.account, client=rec.client
                        )
                follow = a.follow_key
                if a.read_needed and follow and not reads_wanted.asked(follow):
                    state = reads.get(follow)
                    if state is not None and state[2] is not None and state[2] > now:
                        reads_wanted.retry_times.append(state[2])
                        continue
                    item = {
                        "thread": rec.thread,
                        "item_key": rec.item_key,
                        "client": rec.client,
                        "client_address": rec.client_address,
                        "subject": rec.subject,
                    }
                    reads_wanted.want(follow, attempts=state[1] if state else 0, item=item,
                                      fallback_account=rec.account)  # fmt: skip
            if changes:
                store.update_promises(changes)
        horizon = now + self.config.notify.batch_window
        due, skips, _ = promises.notices_due(
            [(_recorded(r), _as_stored(r)) for r in store.promise_notices(horizon, since)], now
        )
        next_remind, next_break = store.next_promise_times(horizon)
        for kind in NOTICE_KINDS:
            ids = [s.promise_id for s in skips if s.kind == kind]
            if ids:
                store.mark_promises(kind, ids, "skipped")
        self._due = due
        wanted = reads_wanted.requests
        ask_times = self._asks.decide(now, wanted, self._inflight, reads_wanted.request_for())
        self._next_check = min(
            [t for t in (next_break, next_remind, *reads_wanted.retry_times, *ask_times)
             if t is not None],
            default=None,
        )

        # 3. Start the reads.
        if not wanted:
            return
        requests = list(wanted.values())
        inline = self._reader is None if inline_reads is None else inline_reads
        if not inline:
            if self._reader is not None:
                self._inflight.update(wanted)
                self._reader.submit(requests)
            return  # inline_reads=False without a reader: left for the next run
        for result in read_bodies(self.config, requests):
            self.apply(result)
        self.update(now, inline_reads=False)  # settle what the reads changed (no new reads)
        self._dirty = True  # a follow-up found meanwhile is read on the next run

    # ------------------------------------------------------------------ notices

    def run_due(self) -> dt.datetime | None:
        """Update if needed, queue the reminders and overdue notices due; next due time."""
        if not self.enabled:
            return None
        now = self.host.now()
        if self._dirty or (self._next_check is not None and now >= self._next_check):
            self.update(now)
        p = self._plan(now)
        # Re-check the folders concerned: a delivery made a minute ago settles it.
        if p.actions and self.host.recheck(_mailboxes_concerned(self.host, p.actions)):
            self.host.refresh_if_changed()
            now = self.host.now()
            self.update(now)
            p = self._plan(now)
        store = self.host.store
        account_of = {d.promise_id: d.account for d in self._due}
        for kind in NOTICE_KINDS:
            ids = [s.promise_id for s in p.skips if s.kind == kind]
            if ids:
                store.mark_promises(kind, ids, "skipped")
            by_cause: dict[tuple[str, str | None], int] = {}
            for s in p.skips:
                if s.kind == kind:
                    cause = (s.reason, account_of.get(s.promise_id))
                    by_cause[cause] = by_cause.get(cause, 0) + 1
            for (reason, account), n in by_cause.items():
                self._skip_log.report(self.config, kind, reason, account, n, unit="promises")
        for action in p.actions:
            store.enqueue_promises(
                kind=action.kind,
                recipient=action.to,
                cc=action.cc,
                account=action.account,
                promise_ids=action.promise_ids,
                message_id=compose.make_message_id(compose.message_id_domain(self.config)),
                now=now,
            )
            log.info(
                "action_queued", kind=action.kind, to=action.to, promises=len(action.promise_ids)
            )
        log_copies_left_out(p.actions)
        ask_next = self._asks.queue(now)
        if ask_next is not None and ask_next <= now:
            self._dirty = True  # some were queued: the rest is decided again
        if p.actions:
            self._dirty = True  # the queued ones are no longer due
        times = [t for t in (p.next_due, self._next_check, ask_next) if t is not None]
        return min(times) if times else None

    def _plan(self, now: dt.datetime) -> promises.Plan:
        """The notices due now (`promises.plan`). `update` keeps in ``_due`` those due by
        the batch window; before the first of them, nothing is planned (who is away,
        the last hour's mail are read only then)."""
        if not self._due:
            return promises.Plan((), (), None)
        if all(d.at > now for d in self._due):
            return promises.Plan((), (), min(d.at for d in self._due))
        config = self.config
        accounts = {d.account for d in self._due if d.account}
        messages = self.host.messages_of_accounts(accounts, now)
        recipients = {a: sla.recipient_for(a, config, now, messages) for a in accounts}
        mentors = {a: sla.mentor_copy(a, config, now, messages) for a in accounts}

        def manager_of(account: str) -> str | None:
            acc = config.account(account)
            return acc.manager if acc is not None else None

        people = cap_people(
            config, recipients=recipients, mentors=mentors,
            nudged={d.account for d in self._due if d.account and d.kind == "promise"},
            escalated={d.account for d in self._due if d.account and d.kind != "promise"},
        )
        sent = self.host.store.reached_since(now - hourlycap.HOUR, people)  # To or Cc
        return promises.plan(
            self._due,
            now=now,
            recipient_of=lambda a: recipients.get(a, a),
            manager_of=manager_of,
            mentor_of=lambda a: mentors.get(a),
            batch_window=config.notify.batch_window,
            max_per_hour=config.notify.max_per_hour,
            sent_last_hour=sent,
        )

    def prepare(self, record: OutboxRecord, now: dt.datetime) -> EmailMessage | None:
        """The mail for a queued promise notice or "say by when" note, or None
        (`notices.notice_mail`, `notices.ask_mail`)."""
        if record.kind == date_asks.KIND:
            enabled = self.enabled and bool(self.config.promise.ask_for_date)
            return ask_mail(self.host.store, self.config, record, now, enabled=enabled)
        return notice_mail(self.host.store, self.config, record, now, enabled=self.enabled)


def record_read(store: Store, config: Config, event: BodyRead, now: dt.datetime) -> None:
    """Store what a body read found: a retry later (a few, spaced out), a failure, or the
    reply's promise (or none) with its reminder time."""
    req = event.request
    if event.outcome == "retry":
        attempts = req.attempts + 1
        if attempts >= MAX_READ_ATTEMPTS:
            store.record_promise_read(
                req.key, state="failed", now=now, attempts=attempts, error=event.error
            )
            log.warning("promise_read_failed", attempts=attempts, error=event.error)
            return
        delay = min(READ_RETRY_CAP, READ_RETRY_START * (2 ** (attempts - 1)))
        store.record_promise_read(
            req.key,
            state="retry",
            now=now,
            attempts=attempts,
            next_attempt_at=now + delay,
            error=event.error,
        )
        return
    new: NewPromise | None = None
    if event.promise is not None:
        p = event.promise
        remind_at = promises.reminder_at(
            req.sent, p.promised, config.promise.remind_before, req.calendar
        )
        new = NewPromise(
            source_key=req.key,
            thread=req.thread,
            item_key=req.item_key,
            account=req.account,
            client=req.client,
            client_address=req.client_address,
            subject=req.subject,
            made_at=req.sent,
            promised=p.promised,
            remind_at=remind_at,
            sentence=p.sentence,
        )
    pid = store.record_promise_read(
        req.key,
        state="promise" if new else "none",
        now=now,
        attempts=req.attempts + 1,
        promise=new,
        text_read=event.text_read,
    )
    if pid is not None and new is not None:
        log.info(
            "promise_recorded",
            id=pid,
            account=new.account,
            client=new.client,
            promised=new.promised.isoformat(),
            remind_at=new.remind_at.isoformat() if new.remind_at else None,
        )


def _mailboxes_concerned(host: KeeperHost, actions: Sequence[promises.Action]) -> set[str]:
    """The mailboxes whose sent folders can settle these notices' promises."""
    ids = {i for a in actions for i in a.promise_ids}
    names: set[str] = set()
    for rec in host.store.promises_touched(host.now() - TRACK_HORIZON, ids=ids):
        if rec.id in ids:
            names.update(c[0] for c in host.store.message_copies(rec.source_key))
            names.update(
                mb.name for mb in host.config.mailboxes if mb.owner_address == (rec.account or "")
            )
    return names


def _later_messages(
    store: Store, config: Config, tracked: Sequence[PromiseRecord], *, parse: Parse = messages_of
) -> dict[int, list[promises.Later]]:
    """Per promise: the agency messages of its thread that reach the client."""
    by_source = _later_by_source(store, config, {p.source_key for p in tracked}, parse=parse)
    return {p.id: by_source.get(p.source_key, []) for p in tracked}


def _later_by_source(
    store: Store, config: Config, sources: set[str], *, parse: Parse = messages_of
) -> dict[str, list[promises.Later]]:
    """Per message of ``sources``: the agency messages of its thread that reach the
    client (itself included)."""
    messages = parse(store.load_copies(keys=store.thread_keys(sources) | sources))
    with gc_paused():
        threads = assign_threads(
            messages,
            subject_window=config.thread_subject_window,
            agency_addresses=classify.agency_identities(config),
        )
    wanted_threads = {threads.get(key) for key in sources} - {None}
    earliest: dict[str, dt.datetime] = {}
    candidate: dict[str, bool] = {}
    for m in messages:
        if threads.get(m.key) not in wanted_threads:
            continue
        if m.key not in candidate:
            candidate[m.key] = classify.is_acknowledgement_candidate(m, config)
        if m.key not in earliest or m.received < earliest[m.key]:
            earliest[m.key] = m.received
    by_thread: dict[str, list[promises.Later]] = {}
    for key, ok in candidate.items():
        if ok:
            by_thread.setdefault(threads[key], []).append(promises.Later(key, earliest[key]))
    return {key: by_thread.get(threads.get(key, ""), []) for key in sources}


def _read_state(state: tuple[str, int, dt.datetime | None] | None) -> bool | None:
    if state is None or state[0] == "retry":
        return None
    return state[0] == "promise"


def _as_stored(rec: PromiseRecord) -> promises.Assessment:
    """The assessment a promise's stored state records (`update` keeps it current)."""
    state: promises.State = rec.state  # type: ignore[assignment]
    return promises.Assessment(state, rec.follow_key, rec.settled_at, read_needed=False)


def _recorded(rec: PromiseRecord) -> promises.Recorded:
    return promises.Recorded(
        id=rec.id,
        source_key=rec.source_key,
        account=rec.account,
        made_at=rec.made_at,
        promised=rec.promised,
        remind_at=rec.remind_at,
        reminder_done=rec.reminder_done is not None,
        overdue_done=rec.overdue_done is not None,
    )
