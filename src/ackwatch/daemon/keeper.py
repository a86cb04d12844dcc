"""Promise keeper, shell half (issue 8): read acknowledgements, record promises, remind.

Who reads bodies, and when
--------------------------
The daemon's core (single writer) decides which messages to read: the acknowledging
message of every item acknowledged by a reply that ackwatch saw arrive live (not in a
first-start history import) within `READ_HORIZON`, and the first follow-up of a promise
(to tell "kept" from "moved"). A `BodyReader` thread does the reading: it opens its own
short-lived connection to the mailbox holding a copy (`imap.connect`; the sender's Sent
copy first), EXAMINEs the folder and fetches ``BODY.PEEK[<first text part>]<0.16384>``
(`imap.fetch_first_text_part`), runs `promise.find_promise` on the text right there and
hands back only the promise (instant + sentence) as an event; the text is dropped. The
watchers are untouched (one IDLE connection each), so a mailbox never has more than two
connections: its watcher's and, while a read is under way, the reader's. In
``ackwatch run --once`` (no threads) the same reads run inline after the sync.

With ``promise.enabled: false`` nothing here runs: no body is ever read, nothing sent.

Crash safety: a read and the promise it found are recorded in one transaction
(`Store.record_promise_read`); a read cut short by a crash is simply done again. A
reminder is recorded in the outbox and its promises marked in one transaction before it
is sent, like nudges. Reads that fail (mailbox down) are retried with backoff, at most
`MAX_READ_ATTEMPTS` times.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Literal, Protocol

import structlog

from ackwatch.config import CalendarConfig, Config
from ackwatch.core import classify, hourlycap
from ackwatch.core import item_rules as sla
from ackwatch.core import promise_rules as promises
from ackwatch.core.message import Message
from ackwatch.core.threads import assign_threads
from ackwatch.mail import imap, notify
from ackwatch.store.sqlite import NewPromise, PromiseRecord, Store

if TYPE_CHECKING:
    from ackwatch.core.promise_text import Promise
    from ackwatch.store.sqlite import OutboxRecord

log = structlog.get_logger(__name__)

READ_HORIZON = dt.timedelta(days=2)  # acknowledgements first seen longer ago are not read
TRACK_HORIZON = dt.timedelta(days=30)  # settled promises are re-assessed this long
MAX_READ_ATTEMPTS = 6
READ_RETRY_START = dt.timedelta(seconds=30)
READ_RETRY_CAP = dt.timedelta(minutes=30)
NOTICE_KINDS = promises.NOTICE_KINDS


@dataclass(frozen=True)
class ReadRequest:
    key: str  # the message to read
    copies: tuple[tuple[str, str, int, int], ...]  # (mailbox, folder, uid, uidvalidity)
    sent: dt.datetime  # its received time: the reference instant of the promise
    account: str | None  # who wrote it (an account), else the item's account
    language: str | None
    calendar: CalendarConfig
    attempts: int  # earlier failed attempts
    thread: str
    item_key: str
    client: str | None
    client_address: str
    subject: str


@dataclass(frozen=True)
class BodyRead:
    """A read's outcome (reader thread -> core): never the text, only the promise."""

    request: ReadRequest
    outcome: Literal["promise", "none", "retry"]
    promise: Promise | None = None
    error: str | None = None


def read_bodies(
    config: Config,
    requests: Sequence[ReadRequest],
    *,
    connect: Callable[..., object] = imap.connect,
) -> list[BodyRead]:
    """Read the first text part of each request's message (one connection per mailbox
    for the whole batch, logged out at the end) and look for a promise in it."""
    clients: dict[str, object] = {}
    broken: dict[str, str] = {}
    out: list[BodyRead] = []
    try:
        for req in requests:
            error: str | None = None
            result: BodyRead | None = None
            for mailbox, folder, uid, uidvalidity in req.copies:
                mb = config.mailbox(mailbox)
                if mb is None:
                    continue
                if mailbox in broken:
                    error = broken[mailbox]
                    continue
                try:
                    client = clients.get(mailbox)
                    if client is None:
                        client = clients[mailbox] = connect(mb)
                    text = imap.fetch_first_text_part(
                        client,
                        folder,
                        uid,
                        uidvalidity=uidvalidity,  # type: ignore[arg-type]
                    )
                except Exception as exc:  # connection or protocol failure: retry later
                    error = (
                        str(exc)[:200] if isinstance(exc, imap.ImapError) else type(exc).__name__
                    )
                    broken[mailbox] = error
                    dead = clients.pop(mailbox, None)
                    if dead is not None:
                        imap._shutdown(dead)  # type: ignore[arg-type]
                    continue
                if text is None:  # gone, UIDVALIDITY changed, or no text part
                    continue
                from ackwatch.core.promise_text import (
                    find_promise,  # 43 patterns: compiled only when used
                )

                found = find_promise(
                    text, sent=req.sent, calendar=req.calendar, language_hint=req.language
                )
                del text
                result = BodyRead(req, "promise" if found else "none", found)
                break
            if result is None:
                result = BodyRead(req, "retry", None, error) if error else BodyRead(req, "none")
            out.append(result)
    finally:
        for client in clients.values():
            imap.logout(client)  # type: ignore[arg-type]
    return out


class BodyReader(threading.Thread):
    """Reads bodies off the core thread; results go to ``emit`` (the daemon's queue)."""

    def __init__(self, get_config: Callable[[], Config], emit: Callable[[object], None]):
        super().__init__(name="promise-reader", daemon=True)
        self._get_config = get_config
        self._emit = emit
        self._requests: queue.SimpleQueue[ReadRequest | None] = queue.SimpleQueue()
        self._stop_event = threading.Event()

    def submit(self, requests: Iterable[ReadRequest]) -> None:
        for r in requests:
            self._requests.put(r)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_event.set()
        self._requests.put(None)
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    def run(self) -> None:
        while not self._stop_event.is_set():
            first = self._requests.get()
            if first is None or self._stop_event.is_set():
                continue
            batch = [first]
            while True:
                try:
                    more = self._requests.get_nowait()
                except queue.Empty:
                    break
                if more is not None:
                    batch.append(more)
            try:
                results = read_bodies(self._get_config(), batch)
            except Exception as exc:  # a bug: report every request as failed, keep going
                log.exception("promise_read_error")
                results = [BodyRead(r, "retry", None, type(exc).__name__) for r in batch]
            for result in results:
                self._emit(result)


class KeeperHost(Protocol):
    """What the promise keeper needs of the daemon that runs it (`service.Daemon`)."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> Store: ...

    def now(self) -> dt.datetime: ...

    def post(self, event: object) -> None:
        """Put ``event`` on the core's queue (from any thread); it comes back to `apply`."""

    def recheck(self, mailboxes: Iterable[str]) -> bool:
        """Re-check the mailboxes' sent folders now; True if any did."""

    def refresh_if_changed(self) -> bool:
        """Apply the events waiting, re-evaluate if they changed the mail; True if so."""

    def messages_of_accounts(self, accounts: Iterable[str], now: dt.datetime) -> list[Message]:
        """What ``accounts``, their backups and managers sent lately (who is away)."""


class PromiseKeeper:
    """The daemon's promise keeper: called from the core thread only (single writer)."""

    def __init__(self, host: KeeperHost):
        self.host = host
        self._reader: BodyReader | None = None
        self._inflight: set[str] = set()
        self._dirty = True
        self._next_check: dt.datetime | None = None
        self._due: list[promises.Due] = []
        self._thread_of: dict[str, str] = {}

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

    def mark_dirty(self) -> None:
        self._dirty = True

    @staticmethod
    def handles(event: object) -> bool:
        return isinstance(event, BodyRead)

    # ------------------------------------------------------------------ reads

    def apply(self, event: BodyRead) -> None:
        """Record a read (and the promise it found), from the core thread."""
        req = event.request
        self._inflight.discard(req.key)
        self._dirty = True
        now = self.host.now()
        store = self.host.store
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
                req.sent, p.promised, self.config.promise.remind_before, req.calendar
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

    def _request(
        self,
        key: str,
        *,
        attempts: int,
        item: dict[str, object],
        fallback_account: str | None,
        sent_by: _SentBy,
    ) -> ReadRequest | None:
        seen = sent_by.get(key)
        if seen is None:
            return None
        sent, sender = seen
        copies = tuple(self.host.store.message_copies(key))
        if not copies:
            return None
        account = sender if self.config.account(sender) is not None else fallback_account
        acc = self.config.account(account)
        return ReadRequest(
            key=key,
            copies=copies,
            sent=sent,
            account=account,
            language=acc.language if acc is not None else None,
            calendar=promises.account_calendar(self.config, account),
            attempts=attempts,
            thread=str(item["thread"]),
            item_key=str(item["item_key"]),
            client=item["client"],  # type: ignore[arg-type]
            client_address=str(item["client_address"]),
            subject=str(item["subject"]),
        )

    # ------------------------------------------------------------------ decisions

    def update(self, now: dt.datetime, *, inline_reads: bool | None = None) -> None:
        """Re-assess promises, record their states, and start the reads that are due."""
        if not self.enabled:
            return
        store = self.host.store
        self._dirty = False
        sent_by = _SentBy(store)
        wanted: dict[str, ReadRequest] = {}
        retry_times: list[dt.datetime] = []

        # 1. Acknowledgements not read yet.
        for row in store.promise_read_candidates(now - READ_HORIZON):
            key = str(row["ack_key"])
            next_at = row["next_attempt_at"]
            if key in self._inflight or key in wanted:
                continue
            if isinstance(next_at, dt.datetime) and next_at > now:
                retry_times.append(next_at)
                continue
            item = {
                "thread": row["thread"],
                "item_key": row["key"],
                "client": row["client"],
                "client_address": row["client_address"],
                "subject": row["subject"],
            }
            req = self._request(
                key,
                attempts=int(row["attempts"] or 0),
                item=item,
                fallback_account=row["account"],
                sent_by=sent_by,
            )  # type: ignore[arg-type]
            if req is not None:
                wanted[key] = req

        # 2. Promises: their follow-ups, states and notices.
        tracked = store.promises_to_track(now - TRACK_HORIZON)
        assessed: list[tuple[promises.Recorded, promises.Assessment]] = []
        if tracked:
            later_of = self._later_messages(tracked)
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
                assessed.append((view, a))
                key = a.follow_key
                if a.read_needed and key and key not in self._inflight and key not in wanted:
                    state = reads.get(key)
                    if state is not None and state[2] is not None and state[2] > now:
                        retry_times.append(state[2])
                        continue
                    item = {
                        "thread": rec.thread,
                        "item_key": rec.item_key,
                        "client": rec.client,
                        "client_address": rec.client_address,
                        "subject": rec.subject,
                    }
                    req = self._request(
                        key,
                        attempts=state[1] if state else 0,
                        item=item,
                        fallback_account=rec.account,
                        sent_by=sent_by,
                    )
                    if req is not None:
                        wanted[key] = req
            if changes:
                store.update_promises(changes)
        due, skips, next_break = promises.notices_due(assessed, now)
        for kind in NOTICE_KINDS:
            ids = [s.promise_id for s in skips if s.kind == kind]
            if ids:
                store.mark_promises(kind, ids, "skipped")
        self._due = due
        self._next_check = min(
            [t for t in (next_break, *retry_times) if t is not None], default=None
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

    def _later_messages(self, tracked: Sequence[PromiseRecord]) -> dict[int, list[promises.Later]]:
        """Per promise: the agency messages of its thread that reach the client."""
        config = self.config
        sources = {p.source_key for p in tracked}
        store = self.host.store
        messages = store.load_messages(keys=store.thread_keys(sources) | sources)
        threads = assign_threads(
            messages,
            subject_window=config.thread_subject_window,
            agency_addresses=classify.agency_identities(config),
        )
        wanted_threads = {threads.get(p.source_key) for p in tracked} - {None}
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
        return {p.id: by_thread.get(threads.get(p.source_key, ""), []) for p in tracked}

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
        if p.actions and self.host.recheck(self._mailboxes_concerned(p.actions)):
            self.host.refresh_if_changed()
            now = self.host.now()
            self.update(now)
            p = self._plan(now)
        store = self.host.store
        for kind in NOTICE_KINDS:
            ids = [s.promise_id for s in p.skips if s.kind == kind]
            if ids:
                store.mark_promises(kind, ids, "skipped")
                log.warning("action_skipped", kind=kind, reason=p.skips[0].reason)
        for action in p.actions:
            store.enqueue_promises(
                kind=action.kind,
                recipient=action.to,
                cc=action.cc,
                account=action.account,
                promise_ids=action.promise_ids,
                message_id=notify.make_message_id(notify.message_id_domain(self.config)),
                now=now,
            )
            log.info(
                "action_queued", kind=action.kind, to=action.to, promises=len(action.promise_ids)
            )
        if p.actions:
            self._dirty = True  # the queued ones are no longer due
        times = [t for t in (p.next_due, self._next_check) if t is not None]
        return min(times) if times else None

    def _plan(self, now: dt.datetime) -> promises.Plan:
        if not self._due:
            return promises.Plan((), (), None)
        config = self.config
        accounts = {d.account for d in self._due if d.account}
        messages = self.host.messages_of_accounts(accounts, now)
        recipients = {a: sla.recipient_for(a, config, now, messages) for a in accounts}

        def manager_of(account: str) -> str | None:
            acc = config.account(account)
            return acc.manager if acc is not None else None

        sent = self.host.store.reached_since(now - hourlycap.HOUR)  # To or Cc
        return promises.plan(
            self._due,
            now=now,
            recipient_of=lambda a: recipients.get(a, a),
            manager_of=manager_of,
            batch_window=config.notify.batch_window,
            max_per_hour=config.notify.max_per_hour,
            sent_last_hour=sent,
        )

    def _mailboxes_concerned(self, actions: Sequence[promises.Action]) -> set[str]:
        ids = {i for a in actions for i in a.promise_ids}
        names: set[str] = set()
        for rec in self.host.store.promises_to_track(self.host.now() - TRACK_HORIZON):
            if rec.id in ids:
                names.update(c[0] for c in self.host.store.message_copies(rec.source_key))
                names.update(
                    mb.name
                    for mb in self.config.mailboxes
                    if mb.owner_address == (rec.account or "")
                )
        return names

    def prepare(self, record: OutboxRecord, now: dt.datetime) -> EmailMessage | None:
        """The mail for a queued promise notice, or None when it was cancelled (nothing
        left to say: delivered or settled meanwhile) or failed to render (recorded)."""
        store = self.host.store
        members = store.promises_of_outbox(record.id)
        if record.kind == "promise":
            live = [p for p in members if p.reminder_outbox == record.id and p.state == "open"]
        else:
            live = [
                p
                for p in members
                if p.overdue_outbox == record.id and p.state == "broken" and p.follow_key is None
            ]
        if not live or not self.enabled:
            store.outbox_close(record.id, "cancelled")
            store.mark_promises(record.kind, [p.id for p in members], "cancelled")
            log.info(
                "action_cancelled",
                kind=record.kind,
                to=record.recipient,
                reason="settled meanwhile" if self.enabled else "promise.enabled is false",
            )
            return None
        try:
            return render_notice(self.config, record, live, now)
        except Exception as exc:  # a broken template override: fail this mail, loudly
            store.outbox_close(record.id, "failed", error=f"render: {type(exc).__name__}")
            log.error(
                "mail_render_failed",
                kind=record.kind,
                to=record.recipient,
                error=type(exc).__name__,
                detail=str(exc)[:200],
            )
            return None


def _read_state(state: tuple[str, int, dt.datetime | None] | None) -> bool | None:
    if state is None or state[0] == "retry":
        return None
    return state[0] == "promise"


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


def render_notice(
    config: Config, record: OutboxRecord, members: Iterable[PromiseRecord], now: dt.datetime
) -> EmailMessage:
    """A promise reminder / overdue notice, in the recipient's language and timezone (a
    manager who is not an account gets the language of the account it is about)."""
    if config.smtp is None:
        raise ValueError("no smtp section in the config")
    recipient = config.account(record.recipient)
    about = config.account(record.account)
    calendar = config.calendar_for_account(record.recipient) if recipient else None

    def name_of(address: str | None) -> str | None:
        acc = config.account(address)
        return acc.name if acc and acc.name else address

    lines = tuple(
        notify.NoticeLine(
            client=p.client or p.client_address,
            client_address=p.client_address,
            subject=p.subject,
            received=p.made_at,
            deadline=p.promised,
            account=name_of(p.account),
            sentence=p.sentence,
        )
        for p in members
    )
    who = recipient or about
    notice = notify.Notice(
        kind=record.kind,  # type: ignore[arg-type]
        to=record.recipient,
        cc=tuple(record.cc),
        lines=lines,
        now=now,
        language=who.language if who else "en",
        timezone=calendar.timezone if calendar else config.timezone,
        recipient_name=recipient.name if recipient else None,
        account=record.account,
        account_name=name_of(record.account),
    )
    return notify.render(
        notice,
        smtp_from=config.smtp.from_address,
        templates_dir=config.notify.templates_dir,
        message_id=record.message_id,
    )



class _SentBy:
    """Key -> (first received, sender) of stored mail, read from the store on demand."""

    def __init__(self, store: Store):
        self._store = store
        self._known: dict[str, tuple[dt.datetime, str] | None] = {}

    def get(self, key: str) -> tuple[dt.datetime, str] | None:
        if key not in self._known:
            copies = self._store.load_messages(keys=[key])
            first = min(copies, key=lambda m: m.received, default=None)
            self._known[key] = None if first is None else (first.received, first.sender.address)
        return self._known[key]
