"""Pausing the collector (`ackwatch.gcpause`): what a pause moves to the oldest generation
is still collected."""

from __future__ import annotations

import gc
import weakref

from ackwatch import gcpause
from ackwatch.gcpause import gc_paused


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_cyclic_garbage_moved_by_a_pause_is_collected_within_the_interval(monkeypatch):
    """A cycle dropped between pauses (a composed mail's header classes) is moved to the
    oldest generation by the next pause's end, where CPython's own full collections
    hardly ever come; a pause ending `FULL_COLLECTION_AFTER` after that move collects it."""
    clock = [1000.0]
    monkeypatch.setattr(gcpause.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(gcpause._GcPause, "moved_at", None)
    assert gc.isenabled()
    node = Node()
    gone = weakref.ref(node)
    del node
    with gc_paused():
        pass  # moves the cycle to the oldest generation
    clock[0] += gcpause.FULL_COLLECTION_AFTER - 1
    with gc_paused():
        pass
    assert gone() is not None, "not yet: within the interval"
    clock[0] += 1
    with gc_paused():
        pass
    assert gone() is None
