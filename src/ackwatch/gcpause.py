"""Pausing the cyclic garbage collector around a burst of allocations.

The process's collector is the shell's to switch, never the pure core's: the daemon
pauses it around a sync, an evaluation or a threading of a large component, and
``ackwatch report`` around its whole run.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator

# A full collection at most this long after a pause's end first moved the young
# generations to the oldest (see `gc_paused`).
FULL_COLLECTION_AFTER = 60.0  # seconds


class _GcPause:
    """The pauses in progress, in any thread: the collector runs again when the last ends."""

    lock = threading.Lock()
    depth = 0
    resume = False  # whether the collector was enabled when the first pause began
    moved_at: float | None = None  # first move since the last full collection (monotonic)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around a burst of allocations (nests, also
    across threads: a sync's readers parse while the main thread stores).

    Threading or evaluating a mailbox builds hundreds of thousands of objects that live
    until the end and form no reference cycles; meanwhile the collector rescanned the whole
    heap several times and found nothing (up to half the evaluation time at 33k mails).
    Reference counting still frees everything as usual. The collector is enabled again
    when the last pause ends, and only if it was enabled when the first one began.

    On that exit, what the burst left alive is moved straight to the oldest generation
    (`gc.freeze` then `gc.unfreeze`: two list splices). Merely re-enabling would have the
    next allocation scan every object of the burst as young (0.2 s after a first sync),
    only to promote them all.

    The move also takes the cyclic garbage made between pauses (each composed mail's
    header classes, exceptions with their frames) out of the young generations before
    they are collected, and CPython starts a full collection only when its young
    collections have promoted a quarter of the old generation: a daemon pausing at every
    sync never did, and kept that garbage for good (about 15 kB a client mail in the
    1-hour soak, bench/README.md, issue 24). So the pause that ends at least
    `FULL_COLLECTION_AFTER` after the first move since the last full collection runs one
    (26 ms with a grown state's 54k objects: 0.04 % of a core).
    """
    full = False
    with _GcPause.lock:
        if _GcPause.depth == 0:
            _GcPause.resume = gc.isenabled()
            gc.disable()
        _GcPause.depth += 1
    try:
        yield
    finally:
        with _GcPause.lock:
            _GcPause.depth -= 1
            if _GcPause.depth == 0 and _GcPause.resume:
                gc.freeze()
                gc.unfreeze()
                gc.enable()
                now = time.monotonic()
                if _GcPause.moved_at is None:
                    _GcPause.moved_at = now
                elif now - _GcPause.moved_at >= FULL_COLLECTION_AFTER:
                    _GcPause.moved_at = None
                    full = True
        if full:
            gc.collect()
