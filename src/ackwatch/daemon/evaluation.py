"""Evaluation: the stored items kept up to date with the stored mail.

After each change only the threads the changed mail can touch are evaluated; when the
config (or ackwatch, or the holiday tables) changed, everything is, once, in batches.
The fingerprints in the state's meta table tell which.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence

import structlog

from ackwatch.config import Config
from ackwatch.core import classify
from ackwatch.core import item_rules as sla
from ackwatch.core.message import Message
from ackwatch.core.threads import assign_threads, link_values
from ackwatch.daemon.accountmail import AccountMail
from ackwatch.daemon.metrics import Metrics
from ackwatch.daemon.parsedmail import ParsedMail, link_stored
from ackwatch.gcpause import gc_paused
from ackwatch.store import Marks, Store

log = structlog.get_logger(__name__)

MESSAGE_HISTORY = dt.timedelta(days=60)
EVALUATION_VERSION = 1  # raise when a change of the rules must re-evaluate stored items
THREAD_BATCH = 2000  # threads per batch when everything is evaluated again
AT_ONCE_COPIES = 50_000  # up to this many copies in the window, threads found all at once
LINKED_BATCH_KEYS = 10_000  # keys per batch when threads are found anew in a larger window


class Evaluator:
    """Brings the stored items up to date with the stored mail, on the core thread.

    ``dirty``: mail was stored or changed since the last evaluation. ``evaluations``:
    how many `reevaluate` calls ended (items read before the last one may be stale).
    ``progress`` is called between batches of a long evaluation (the watchdog);
    ``evaluated`` after each evaluation, with the items it found acknowledged and the
    keys it evaluated (whole threads; None: everything)."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], Config],
        now: Callable[[], dt.datetime],
        *,
        progress: Callable[[], None],
        evaluated: Callable[[Sequence[sla.Item], set[str] | None], None],
    ) -> None:
        self.store = store
        self._config = config
        self._now = now
        self._progress = progress
        self._evaluated = evaluated
        self.dirty = True
        self.evaluations = 0
        self.parsed = ParsedMail()  # the parses of the copies this process stored
        self.account_mail = AccountMail(self.parsed.messages)
        # (config, evaluation_fingerprint, threading_fingerprint): hashing the config
        # costs ~3 ms with 200 mailboxes, and `reevaluate` runs after every change.
        self._fingerprints: tuple[Config | None, str, str] = (None, "", "")
        self._changed: set[str] | None = None  # see take_changes; None: everything

    def changed_everything(self) -> None:
        """Evaluate again, and count every item as possibly changed: after work that may
        have stored more than this process knows (a commit whose answer the lost
        database never gave)."""
        self.dirty = True
        self._changed = None

    def begin_anew(self) -> None:
        """Forget what this process knows of the items (another node evaluated them
        meanwhile): evaluate the dirty marks next, count every item again, parse again."""
        self.changed_everything()
        self.parsed.forget()
        self.account_mail.clear()

    def take_changes(self) -> set[str] | None:
        """The keys whose items the evaluations since the last call may have changed
        (None: any item, as at the start); the next call starts afresh."""
        changed, self._changed = self._changed, set()
        return changed

    @property
    def config(self) -> Config:
        return self._config()

    def reevaluate(self, history_since: dt.datetime | None = None) -> None:
        """Bring the stored items up to date with the stored mail.

        - Usually only the threads that mail stored or changed since the last evaluation
          can touch are evaluated (`_scope`): the rest of the history is neither loaded
          nor parsed, so memory and time follow the new mail, not the size of the state.
        - When the config (or ackwatch, or the holiday tables) changed since the last
          evaluation, every item is evaluated again: thread by thread, a batch of threads
          at a time, when what threading depends on (the agency's addresses, the subject
          window) is unchanged; with the threads found anew otherwise, after a history
          import (`backfill`) and on the first start (`_evaluate_anew`: at once for a
          small window, a batch of link components at a time for a large one).
        """
        now = self._now()
        since = now - MESSAGE_HISTORY
        if history_since is not None:
            since = min(since, history_since)
        oldest = self.store.oldest_pending_received()
        if oldest is not None:
            since = min(since, oldest - self.config.thread_subject_window)
        if self.store.links_pending():  # the first start after an upgrade
            log.info("links_building", reason="state from an older ackwatch")
            linked = self.store.build_links(
                functools.partial(link_stored, self.store),
                progress=lambda _done: self._progress(),
            )
            log.info("links_built", messages=linked)
        if self._fingerprints[0] is not self.config:  # a new config (start, SIGHUP)
            self._fingerprints = (
                self.config, evaluation_fingerprint(self.config),
                threading_fingerprint(self.config),
            )
        _, fingerprint, threading = self._fingerprints
        done = {"evaluated_with": fingerprint, "threaded_with": threading}
        # The marks are read before any mail is loaded; only these end with this
        # evaluation (a key marked again meanwhile, by another node, is evaluated again
        # next time). An evaluation of everything keeps them in the database: it needs
        # them only to end them, and a first start has a million.
        if history_since is None and self.store.get_meta("evaluated_with") == fingerprint:
            marks = self.store.dirty_marks()
            scope = self._scope(marks)
            if scope:
                self._evaluate(since, now, scope, marks=marks)
                if self._changed is not None:
                    self._changed |= scope
        elif history_since is None and self.store.get_meta("threaded_with") == threading:
            self._evaluate_by_threads(since, now, done, self.store.dirty_marks())
            self._changed = None
        else:
            self._evaluate_anew(since, now, done, self.store.keep_marks())
            self._changed = None
        self.dirty = False
        self.evaluations += 1

    def _evaluate(
        self,
        since: dt.datetime,
        now: dt.datetime,
        scope: set[str] | None,
        done: Mapping[str, str] | None = None,
        *,
        marks: Marks,
    ) -> None:
        """Evaluate the stored mail of ``scope`` (whole threads; None: everything) received
        at or after ``since``, and store the outcome (with ``done`` recorded in meta, and
        the dirty ``marks`` ended)."""
        with gc_paused():  # loads, evaluates and stores up to all the mail: see there
            messages = self.parsed.load(self.store, since, scope)
            if scope is None:
                self.parsed.forget()  # what a full load did not return is out of the window
            initial = self.store.initial_keys(scope, since=since)
            items, threads = sla.evaluate_threads(messages, self.config)
            del messages
            new, acked = self.store.sync_items(
                items, now=now, initial_keys=initial, scope=scope, threads=threads,
                meta=done or {}, marks=marks,
            )
        log.debug("evaluated", full=scope is None, keys=len(threads), items=len(items))
        acked_keys = set(acked)
        self._evaluated([i for i in items if i.key in acked_keys] if acked else [], scope)
        if new or acked:
            log.info("items_updated", new=len(new), acknowledged=len(acked))

    def _evaluate_anew(
        self, since: dt.datetime, now: dt.datetime, done: Mapping[str, str], marks: Marks
    ) -> None:
        """Every item evaluated again, with the threads found anew (the first start, a
        change of what threading depends on, `backfill`).

        A window of up to `AT_ONCE_COPIES` copies is evaluated at once (a first sync: the
        quickest). A larger one (a year kept open by an old unanswered mail, a backfill) is
        evaluated a batch of whole link components at a time (`Store.linked_batches`), so
        that memory follows the batch and not the history. A thread never spans two
        components, so the items are the same. A component larger than a batch
        (recurring subjects with the same people chain a lot of mail together) is
        threaded first, from its mail read a few hundred keys at a time, then evaluated
        a batch of its threads at a time (`_thread_batches`). Killed halfway, the next start does it all again
        (``done`` is recorded at the end only)."""
        if self.store.copies_since(since) <= AT_ONCE_COPIES:
            self._evaluate(since, now, None, done, marks=marks)
            return
        noise = classify.agency_identities(self.config)
        batches = threaded = 0
        for keys in self.store.linked_batches(since, noise, LINKED_BATCH_KEYS):
            parts = [keys] if len(keys) <= LINKED_BATCH_KEYS else self._thread_batches(since, keys)
            threaded += len(keys) > LINKED_BATCH_KEYS
            for part in parts:
                self._evaluate(since, now, part, marks={})
                self._progress()
                batches += 1
        self.store.end_linked_batches(done, marks)
        self.parsed.forget()  # as after a full load: what no batch returned is out of it
        log.info("evaluated_by_components", batches=batches, threaded_first=threaded)

    def _thread_batches(self, since: dt.datetime, keys: set[str]) -> list[set[str]]:
        """``keys`` (whole threads) as batches of whole threads of up to `LINKED_BATCH_KEYS`
        keys (a thread larger than that is a batch of its own). The threads are found
        as `sla.evaluate_threads` finds them, from nodes only: each mail is dropped once
        its node is made. Evaluating a set of whole threads threads them the same way
        again (see `sla.evaluate_threads`)."""
        with gc_paused():
            thread_of = assign_threads(
                self.parsed.each_message(self.store.iter_copies(since, sorted(keys))),
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
        self, since: dt.datetime, now: dt.datetime, done: Mapping[str, str],
        marks: Mapping[str, int],
    ) -> None:
        """Every item evaluated again, a batch of whole threads at a time (the threads as
        last evaluated: the config change left threading as it was). Mail not evaluated
        yet goes first, since it can join or split threads. Killed halfway, the next start
        does it all again (``done`` is recorded with the last batch only)."""
        scope = self._scope(marks)
        if scope:
            self._evaluate(since, now, scope, marks=marks)
        threads = self.store.threads_since(since)
        batches = [threads[i : i + THREAD_BATCH] for i in range(0, len(threads), THREAD_BATCH)]
        for n, batch in enumerate(batches, start=1):
            keys = self.store.thread_members(batch)
            self._evaluate(since, now, keys, done if n == len(batches) else None, marks={})
            self._progress()
        if not batches:
            self.store.set_meta_many(done)
        log.info("evaluated_by_threads", threads=len(threads), batches=len(batches))

    def messages_of_accounts(self, accounts: Iterable[str], now: dt.datetime) -> list[Message]:
        """What ``accounts`` (and their backups, managers and mentors) sent within the
        out-of-office look-back (`AccountMail.of_accounts`)."""
        return self.account_mail.of_accounts(self.store, self.config, accounts, now)

    def _scope(self, marks: Mapping[str, int]) -> set[str]:
        """The keys to evaluate after a change: whole threads (as last evaluated) of the
        changed keys and of every stored mail sharing a thread link with them
        (`threads.link_values`), which is what any new link can join or split."""
        dirty = set(marks)
        if not dirty:
            return set()
        noise = classify.agency_identities(self.config)
        copies: dict[str, list[Message]] = {}
        for m in self.parsed.messages(self.store.load_copies(keys=dirty)):
            copies.setdefault(m.key, []).append(m)
        links: set[str] = set()
        for group in copies.values():
            links |= link_values(group, noise)
        related = self.store.keys_linked(links) | dirty
        return self.store.thread_keys(related) | related



def observe_acks(metrics: Metrics, items: Sequence[sla.Item], config: Config) -> None:
    """Feed the time-to-acknowledge histogram (on each item's policy clock)."""
    from ackwatch.reporting.ack_time import time_to_acknowledge  # only when needed

    for item in items:
        if item.ack is None:
            continue
        d = item.deadlines
        elapsed = time_to_acknowledge(item.received, item.ack.at, d.policy, d.clock, config)
        metrics.observe_ack(d.clock, elapsed.total_seconds())


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
