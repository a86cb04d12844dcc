"""Pausing the cyclic garbage collector around a burst of allocations.

The process's collector is the shell's to switch, never the pure core's: the daemon
pauses it around a sync, an evaluation or a threading of a large component, and
``ackwatch report`` around its whole run.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator


class _GcPause:
    """The pauses in progress, in any thread: the collector runs again when the last ends."""

    lock = threading.Lock()
    depth = 0
    resume = False  # whether the collector was enabled when the first pause began


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
    only to promote them all; in the oldest generation they are still collected, should
    any of them ever form a cycle, by the next full collection.
    """
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
