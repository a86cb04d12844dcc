"""The pre-send re-check across nodes: the leader re-checks the sent folders of the
mailboxes it watches itself and asks each other holder for theirs (a request row and a
NOTIFY on `RECHECK_CHANNEL`); a holder re-checks with its watchers, stores what they
brought and answers. Never a second IMAP session on a mailbox from the leader."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from ackwatch.daemon.watchers import RECHECK_TIMEOUT, Recheck, Watchers
from ackwatch.store import Store

log = structlog.get_logger(__name__)

RECHECK_CHANNEL = "ackwatch_recheck"  # payload: the node asked


def recheck_across_nodes(
    store: Store, watchers: Watchers, node: str, names: set[str], held: frozenset[str], *,
    stop: threading.Event, heartbeat: Callable[[], None],
    monotonic: Callable[[], float] = time.monotonic,
) -> Recheck:
    """``node``'s own mailboxes (``held``) re-checked here; each other holder asked with
    a request row and a NOTIFY, answered once its watchers re-checked and its store has
    what they brought. A holder that does not answer within `RECHECK_TIMEOUT` counts as
    failed (`dispatch.hold_unchecked` then waits for it, up to the grace). A mailbox
    nobody watches is in neither set, as a mailbox without a watcher on one node."""
    deadline = monotonic() + RECHECK_TIMEOUT
    mine = names & held
    others: dict[str, set[str]] = {}
    if names - mine:
        leases = store.cluster_view().leases
        for name in sorted(names - mine):
            holder = leases.get(name)
            if holder is not None and holder != node:
                others.setdefault(holder, set()).add(name)
    asked = {store.ask_recheck(holder, ms): ms for holder, ms in others.items()}
    for holder in others:
        store.notify(RECHECK_CHANNEL, holder)
    result = watchers.recheck(mine, stop=stop, heartbeat=heartbeat)
    answers: dict[int, tuple[frozenset[str], frozenset[str]]] = {}
    while asked.keys() - answers.keys() and not stop.is_set():
        answers.update(store.recheck_answers(asked.keys() - answers.keys()))
        if monotonic() >= deadline or not asked.keys() - answers.keys():
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


def answer_rechecks(store: Store, watchers: Watchers, node: str, *,
                    drain: Callable[[], object], stop: threading.Event,
                    heartbeat: Callable[[], None]) -> None:
    """Answer what the leader asked of ``node``: re-check, store (``drain``), answer."""
    for request, mailboxes in store.recheck_requests(node).items():
        checked = watchers.recheck(mailboxes, stop=stop, heartbeat=heartbeat)
        drain()
        store.answer_recheck(request, checked.done, checked.failed)
