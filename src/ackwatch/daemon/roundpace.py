"""When a node's cluster rounds come (`cluster.DbCluster`), and what a slow one tells the
operator.

A node's deadline is the start of its last successful round plus ``cluster.lease`` minus
``cluster.renew`` (10 s with the defaults); past it the node stops watching and leading.
Rounds therefore keep a fixed cadence: each begins a renewal after the previous one
*began* (`next_round_at`), never two at once, and one that overran its slot is followed
at once. One slow round then costs nothing as long as it ends within its renewal; were
each round scheduled a renewal after the previous one *ended*, two rounds in a row would
have to fit in one renewal.

A round longer than half a renewal is the warning that a node is close to giving its
mailboxes up: `SlowRounds` logs ``cluster_round_slow`` (its seconds, the round thread's
own CPU seconds and each phase's seconds), at most once a minute with the count of the
slow rounds not logged since.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import structlog

from ackwatch.store import ClusterView

log = structlog.get_logger(__name__)

RETRY_SECONDS = 0.5  # a failed round is tried again this soon, until the deadline
WAKE_MARGIN = 0.2  # a round meant to follow an expiry comes this long after it
SLOW_LOG_EVERY = 60.0  # seconds between two `cluster_round_slow` lines


def next_round_in(view: ClusterView, node: str, live: Iterable[str], *, lease: float,
                  renew: float, wanted: Iterable[str]) -> float:
    """Seconds from a round's view to the next round: a renewal, or just after the first
    of these runs out, if it comes sooner: another node's heartbeat, a lease of this
    node's share that it could not claim yet, and the term of a leader that is no
    longer live.

    So a dead node's mailboxes and lead are taken by the first round after its
    heartbeat is a lease old, not up to a renewal later: with the default 15 s lease
    renewed every 5 s, a takeover took up to lease + renew and the round's own time
    (bench target 8c: 20.1 s of a 20 s limit)."""
    ends = [lease - n.age for n in view.nodes if n.name != node]
    ends += [view.expires_in[m] for m in wanted if m in view.expires_in]
    if view.leader is not None and view.leader not in set(live):
        ends.append(0.0)  # its term ends with its last round (no expiry in the view)
    soon = [e for e in ends if 0.0 <= e < renew]
    return min(renew, min(soon) + WAKE_MARGIN) if soon else renew


def next_round_at(began: float, viewed: float, *, renew: float, sooner: float) -> float:
    """The monotonic time of the next round after one that ``began`` and read its view
    at ``viewed``: a renewal after it began, or ``sooner`` (`next_round_in`) after its
    view, whichever comes first. It may be past already: the next round then starts at
    once."""
    return min(began + renew, viewed + sooner)


@dataclass(frozen=True)
class RoundTiming:
    """How long one round took: wall seconds, the round thread's own CPU seconds (the
    rest is waiting: for the database, or for the interpreter's lock held by the other
    threads), and the wall seconds of each phase in order."""

    seconds: float
    cpu_seconds: float
    phases: Mapping[str, float] = field(default_factory=dict)


class SlowRounds:
    """``cluster_round_slow`` for a round longer than half the renewal, at most once per
    `SLOW_LOG_EVERY` seconds (of ``monotonic``), with ``others``: the slow rounds not
    logged since the last line."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._logged_at: float | None = None
        self._unlogged = 0

    def note(self, timing: RoundTiming, *, renew: float) -> bool:
        """Look at one round's timing; True if it was logged."""
        if timing.seconds <= renew / 2:
            return False
        now = self._monotonic()
        if self._logged_at is not None and now - self._logged_at < SLOW_LOG_EVERY:
            self._unlogged += 1
            return False
        others, self._unlogged, self._logged_at = self._unlogged, 0, now
        log.warning(
            "cluster_round_slow", seconds=round(timing.seconds, 3),
            cpu_seconds=round(timing.cpu_seconds, 3), renew=renew,
            phases={k: round(v, 3) for k, v in timing.phases.items()}, others=others,
        )
        return True


class RoundPace:
    """One node's rounds, timed: `begin`, a `phase` as each part ends, `schedule` the
    next, then `end` says how long to wait for it (and notes a slow round).
    ``observe``: each round's seconds (the metric `ackwatch_cluster_round_seconds`)."""

    def __init__(self, monotonic: Callable[[], float],
                 observe: Callable[[float], None] | None = None) -> None:
        self._monotonic = monotonic
        self._observe = observe
        self._slow = SlowRounds(monotonic)
        self._began = 0.0
        self._cpu = 0.0
        self._phases: dict[str, float] = {}
        self._next_at: float | None = None

    @property
    def began(self) -> float:
        """The monotonic start of the round under way (or of the last one)."""
        return self._began

    def begin(self) -> float:
        """A round begins: its monotonic start."""
        self._began = self._monotonic()
        self._cpu = time.thread_time()
        self._phases = {}
        self._next_at = None
        return self._began

    def phase(self, name: str) -> float:
        """A part of the round ended (its seconds kept); the monotonic time now."""
        now = self._monotonic()
        self._phases[name] = now - self._began - sum(self._phases.values())
        return now

    def schedule(self, viewed: float, *, renew: float, sooner: float) -> None:
        """The round succeeded: the next one is due at `next_round_at`."""
        self._next_at = next_round_at(self._began, viewed, renew=renew, sooner=sooner)

    def next_round(self) -> float | None:
        """Seconds from the start of the last round to the next; None after a round
        that failed."""
        return None if self._next_at is None else self._next_at - self._began

    def end(self, *, renew: float) -> float:
        """The round ended: its timing observed and, if slow, logged; the seconds to
        wait before the next (none if it is due already; `RETRY_SECONDS` after a round
        that failed)."""
        now = self._monotonic()
        timing = RoundTiming(now - self._began, time.thread_time() - self._cpu,
                             dict(self._phases))
        if self._observe is not None:
            self._observe(timing.seconds)
        self._slow.note(timing, renew=renew)
        if self._next_at is None:
            return RETRY_SECONDS
        return max(0.0, self._next_at - now)
