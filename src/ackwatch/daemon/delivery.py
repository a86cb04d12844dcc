"""Delivery: the outbox sent over SMTP, with retries and backoff.

Every mail is recorded in the outbox (with the items or promises it is about) before it
is sent. A temporary failure is retried with exponential backoff and jitter; a permanent
one (5xx) fails the mail. A nudge whose items were all acknowledged meanwhile is
cancelled rather than sent. A mail the SMTP server accepted while the state database
could not be reached (`StoreUnavailable`) is remembered as sent and recorded so once the
database is back, before anything else: it is never sent twice by the same process.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping
from email.message import EmailMessage

import structlog

from ackwatch.config import Config
from ackwatch.daemon import digests
from ackwatch.daemon.metrics import Metrics
from ackwatch.mail import compose, smtp
from ackwatch.store import ItemRecord, OutboxRecord, Store

log = structlog.get_logger(__name__)

SEND_BACKOFF_CAP = dt.timedelta(minutes=30)

Send = Callable[[EmailMessage, Config], None]
PromiseMail = Callable[[OutboxRecord, dt.datetime], EmailMessage | None]


class Delivery:
    """Sends what the outbox holds, from the core thread. ``send`` hands a mail to SMTP;
    ``promise_mail`` gives the mail of a queued promise notice or "say by when" note
    (None: cancelled or
    failed, and recorded so)."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], Config],
        now: Callable[[], dt.datetime],
        *,
        send: Send,
        metrics: Metrics,
        promise_mail: PromiseMail,
        fence: Callable[[int], bool] = lambda _outbox_id: True,
    ) -> None:
        self.store = store
        self._config = config
        self._now = now
        self._send = send
        self._metrics = metrics
        self._promise_mail = promise_mail
        # Several nodes: may this node begin sending that row (`cluster.Cluster.fence`)?
        self._fence = fence
        self._fenced = False
        # Set when the SMTP server refused TLS or our credentials: no mail is tried
        # before this instant (see `process_outbox`).
        self._held_until: dt.datetime | None = None
        self.sent = 0  # mails accepted so far (the metrics read the counts again after one)
        # Accepted by SMTP, not yet recorded as sent (the database was lost meanwhile):
        # outbox id -> when it was accepted.
        self._unrecorded: dict[int, dt.datetime] = {}

    @property
    def config(self) -> Config:
        return self._config()

    def process_outbox(self) -> dt.datetime | None:
        """Send queued mail; retry temporary failures with backoff. Next retry time.

        The items of the mail due are read once, as stored now (a nudge whose items are
        all answered is cancelled, one with some answered is shrunk to the rest); only
        those, so that a pass costs what is due, not what waits. Sending writes only the
        items' nudge and escalation marks, which this does not read, so one read serves
        the whole pass.

        A TLS or credentials failure is the server's (or ops'), not the mail's: the rest
        of the pass is held back with it until the same retry time, so that ten queued
        mails cost one refused login per round, not ten (mail servers lock out an account
        after a few refused logins in a row).
        """
        self._record_sent()
        now = self._now()
        held = self._held_until
        if held is not None:
            if now < held <= now + SEND_BACKOFF_CAP * 1.2:
                return held
            self._held_until = None  # its time came (or the clock went back)
        due = self.store.outbox_due(now)
        # A retry time further ahead than any backoff could set means the wall clock was
        # turned back: try now rather than wait for the clock to catch up.
        due_ids = {o.id for o in due}
        due += [
            o for o in self.store.outbox_pending()
            if o.id not in due_ids and o.next_attempt_at > now + self._max_backoff(o.attempts)
        ]
        keys = {k for o in due for k in (*o.nudge_keys, *o.escalation_keys)}
        items = {r.key: r for r in self.store.pending_items(keys)} if keys else {}
        self._fenced = False
        for tried, record in enumerate(due, 1):
            self._deliver(record, now, items)
            if self._fenced:
                log.warning("outbox_fenced", reason="not the leader any more",
                            mails_waiting=len(due) - tried + 1)
                return None
            if self._held_until is not None:
                log.warning("outbox_held", until=self._held_until.isoformat(),
                            mails_waiting=len(due) - tried)
                break
        queued = self.store.outbox_pending()
        next_try = min((o.next_attempt_at for o in queued), default=None)
        if self._held_until is not None and next_try is not None:
            return max(next_try, self._held_until)
        return next_try

    def _deliver(
        self, record: OutboxRecord, now: dt.datetime, items: Mapping[str, ItemRecord]
    ) -> None:
        """Send one queued mail; ``items``: the pending items by key."""
        if record.kind == "digest":
            try:
                message = digests.render(self.store, self.config, record, now)
            except Exception as exc:
                self._metrics.count_send_failure("failed")
                self.store.outbox_close(record.id, "failed", error=f"render: {type(exc).__name__}")
                log.error("mail_render_failed", kind="digest", to=record.recipient,
                          error=type(exc).__name__)
                return
            self._transmit(record, message, now)
            return
        if record.kind in ("promise", "promise-overdue", "ask-date"):
            promise_mail = self._promise_mail(record, now)
            if promise_mail is not None:
                self._transmit(record, promise_mail, now)
            return
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
            message = compose.render_outbox(self.config, record, lines, now)
        except Exception as exc:  # a broken template override: fail this mail, loudly
            self._metrics.count_send_failure("failed")
            self.store.outbox_close(record.id, "failed", error=f"render: {type(exc).__name__}")
            log.error("mail_render_failed", kind=record.kind, to=record.recipient,
                      error=type(exc).__name__, detail=str(exc)[:200])
            return
        self._transmit(record, message, now)

    def _transmit(self, record: OutboxRecord, message: EmailMessage, now: dt.datetime) -> None:
        """Hand one mail to SMTP; mark it sent, or schedule a retry, or fail it (5xx).
        Not begun when the fence says this node no longer leads."""
        if not self._fence(record.id):
            self._fenced = True
            return
        try:
            self._send(message, self.config)
        except smtp.PermanentSendError as exc:
            self._metrics.count_send_failure("failed")
            self.store.outbox_close(record.id, "failed", error=str(exc))
            log.error("mail_failed", kind=record.kind, to=record.recipient, error=str(exc))
            return
        except Exception as exc:  # temporary: SMTP down, 4xx, timeouts, TLS, credentials
            if isinstance(exc, smtp.SendError) and exc.tls_failure:
                self._metrics.count_tls_failure(str(exc.failure))
            self._metrics.count_send_failure("retried")
            delay = self._backoff(record.attempts) * random.uniform(0.8, 1.2)
            self.store.outbox_retry(record.id, error=str(exc), next_attempt_at=now + delay)
            if isinstance(exc, smtp.SendError) and exc.failure is not None:
                self._held_until = now + delay  # TLS or credentials: the server's
            if record.attempts == 0:
                log.warning("mail_deferred", kind=record.kind, to=record.recipient,
                            error=str(exc), retry_in=int(delay.total_seconds()))
            return
        self.sent += 1
        self._unrecorded[record.id] = self._now()
        self._record_sent()

    def _record_sent(self) -> None:
        """Record the mails SMTP accepted as sent (`StoreUnavailable`: they stay to be
        recorded by the next pass, and no pass sends them again before that)."""
        for outbox_id, sent_at in list(self._unrecorded.items()):
            self.store.outbox_sent(outbox_id, sent_at)
            del self._unrecorded[outbox_id]

    def _backoff(self, attempts: int) -> dt.timedelta:
        """Delay before the next try after `attempts` failed ones (before jitter)."""
        start = self.config.notify.retry_initial
        return min(SEND_BACKOFF_CAP, start * (2 ** min(attempts, 10)))

    def _max_backoff(self, attempts: int) -> dt.timedelta:
        """The furthest ahead a retry can be after `attempts` tries (jitter included)."""
        if attempts <= 0:
            return dt.timedelta(seconds=1)  # queued for "now": never in the future
        return self._backoff(attempts - 1) * 1.2 + dt.timedelta(seconds=1)
