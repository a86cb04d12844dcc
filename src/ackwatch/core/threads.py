"""Threads across every watched mailbox and folder (DESIGN.md "Thread").

Pure: `assign_threads` maps each message key to a thread id; independent of the order
in which messages are given.

How messages are linked, in order (each fallback only for messages still *unlinked*, i.e.
alone among the seen messages after the previous steps):

1. Message-ID / In-Reply-To / References: union-find over ids, including ids of mail never
   seen, so two replies to an unseen parent join. Loops, self-references and reused ids are
   harmless (union-find is iterative; nothing recurses).
2. Outlook Thread-Index: same conversation root (`message_ids.thread_index_root`).
3. Gmail X-GM-THRID, per watched mailbox (thread ids are per Gmail account).
4. Normalized subject + at least one shared participant (From/To/Cc/Reply-To, minus the
   agency-wide `agency_addresses`), within `subject_window`. Only a message that looks like
   a reply or forward (prefix such as "Re:", or In-Reply-To/References to unseen mail, or a
   Thread-Index deeper than the root) starts such a link, so two fresh mails that merely
   share a subject stay apart. Trivial subjects (`subjects.is_trivial_subject`) never link.

Each fallback attaches an unlinked message to its *nearest* match (earlier ones first, then
by time distance, then key), computed from the whole input before any union is applied:
edges are a function of the set of messages, so the result does not depend on their order.

The thread id is the key of the component's earliest message (by received time, then key):
order-independent, and stable while a conversation grows by later replies.
"""

from __future__ import annotations

import bisect
import datetime as dt
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TypeVar

from ackwatch.core.message import Message
from ackwatch.core.message_ids import thread_index_depth, thread_index_root
from ackwatch.core.subjects import has_reply_prefix, linking_subject

_T = TypeVar("_T")

# --------------------------------------------------------------------------- union-find


class _UnionFind:
    """Iterative union-find with path halving; never recurses."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        if x not in parent:
            parent[x] = x
            return x
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # Deterministic representative; the partition does not depend on it anyway.
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra


# --------------------------------------------------------------------------- threading


_NOTHING: frozenset = frozenset()


@dataclass(slots=True)
class _Node:
    """Everything known about one key (all copies of one mail, in any mailbox).

    The sets are frozen (a key seen again gets their unions) and ``_NOTHING`` when empty:
    an evaluation holds one node per mail and most of its sets are empty; sharing one
    saves allocating tens of thousands of them.
    """

    key: str
    received: dt.datetime
    ids: tuple[str, ...]  # a tuple, 150 bytes less than a set: only ever iterated
    ti_roots: AbstractSet[str]
    gm_threads: AbstractSet[tuple[str, int]]
    subjects: AbstractSet[str]
    participants: AbstractSet[str]
    replyish: bool

    def absorb(self, other: _Node) -> None:
        """Add what another copy of the same key tells."""
        self.received = min(self.received, other.received)
        if other.ids:  # each id once: a mail copied to 200 mailboxes has 200 copies
            self.ids = tuple(dict.fromkeys((*self.ids, *other.ids)))
        self.ti_roots = self.ti_roots | other.ti_roots
        self.gm_threads = self.gm_threads | other.gm_threads
        self.subjects = self.subjects | other.subjects
        self.participants = self.participants | other.participants
        self.replyish = self.replyish or other.replyish


def _is_noise(address: str, noise: frozenset[str]) -> bool:
    if not noise:
        return False
    if address in noise:
        return True
    domain = address.rpartition("@")[2]
    while domain:
        if domain in noise or "@" + domain in noise:
            return True
        _, _, domain = domain.partition(".")
    return False


def _noise_filter(noise: frozenset[str]) -> Callable[[str], bool]:
    """`_is_noise` against ``noise``, memoized per address (for one evaluation: a few
    hundred addresses recur in tens of thousands of mails)."""
    memo: dict[str, bool] = {}

    def is_noise(address: str) -> bool:
        hit = memo.get(address)
        if hit is None:
            hit = memo[address] = _is_noise(address, noise)
        return hit

    return is_noise


def _frozen(values: Iterable[_T]) -> AbstractSet[_T]:
    found = frozenset(values)
    return found if found else _NOTHING


def _shared(values: tuple[str, ...], memo: dict[tuple[str, ...], AbstractSet[str]]) -> AbstractSet[str]:
    """``frozenset(values)``, one set for every node with the same values (a client and
    a mailbox owner write to each other under a handful of subjects: a node's subject
    and participant sets recur thousands of times, at over 200 bytes a set)."""
    found = memo.get(values)
    if found is None:
        found = memo[values] = _frozen(values)
    return found


def _node(
    m: Message, is_noise: Callable[[str], bool], memo: dict[tuple[str, ...], AbstractSet[str]]
) -> _Node:
    """What one copy tells about its key (``memo``: see `_shared`)."""
    ids: tuple[str, ...] = ()
    if m.in_reply_to or m.references:
        ids = (*m.in_reply_to, *m.references)  # a repeated id only repeats a union
        if m.key in ids:
            ids = tuple([i for i in ids if i != m.key])
    root = thread_index_root(m.thread_index) if m.thread_index else None
    subject = linking_subject(m.subject)
    return _Node(
        key=m.key,
        received=m.received,
        ids=ids,
        ti_roots=_NOTHING if root is None else frozenset((root,)),
        gm_threads=_NOTHING if m.gm_thrid is None else frozenset(((m.mailbox, m.gm_thrid),)),
        subjects=_NOTHING if subject is None else _shared((subject,), memo),
        participants=_shared(tuple([
            a.address
            for a in (m.sender, *m.reply_to, *m.to, *m.cc)
            if a.address and not is_noise(a.address)
        ]), memo),
        replyish=bool(
            m.in_reply_to
            or m.references
            or has_reply_prefix(m.subject)
            or thread_index_depth(m.thread_index) > 0
        ),
    )


def _nodes(messages: Iterable[Message], noise: frozenset[str]) -> dict[str, _Node]:
    nodes: dict[str, _Node] = {}
    is_noise = _noise_filter(noise)
    memo: dict[tuple[str, ...], AbstractSet[str]] = {}
    for m in messages:
        node = _node(m, is_noise, memo)
        seen = nodes.get(m.key)
        if seen is None:
            nodes[m.key] = node
        else:
            seen.absorb(node)
    return nodes


def link_values(copies: Iterable[Message], noise: frozenset[str] = frozenset()) -> frozenset[str]:
    """Every value by which `assign_threads` may link a mail (``copies``: its copies, all
    of one key) to another one.

    Two messages can end up in one thread only through a chain of messages sharing such
    values: "id:<id>" (its own key, and each id it refers to), "ti:<Thread-Index root>",
    "gm:<mailbox> <X-GM-THRID>", "sp:<normalized subject> <participant>" (any subject of
    any copy with any participant of any copy, as `assign_threads` sees them; participants
    in ``noise`` left out). The daemon stores them (with no noise) to re-evaluate only
    the threads new mail can touch.
    """
    values: set[str] = set()
    subjects: set[str] = set()
    participants: set[str] = set()
    for m in copies:
        values.add("id:" + m.key)
        for i in m.in_reply_to:
            values.add("id:" + i)
        for i in m.references:
            values.add("id:" + i)
        if m.thread_index:
            root = thread_index_root(m.thread_index)
            if root is not None:
                values.add("ti:" + root)
        if m.gm_thrid is not None:
            values.add(f"gm:{m.mailbox} {m.gm_thrid}")
        subject = linking_subject(m.subject)
        if subject is not None:
            subjects.add(subject)
        for a in (m.sender, *m.reply_to, *m.to, *m.cc):
            if a.address and not (noise and _is_noise(a.address, noise)):
                participants.add(a.address)
    for s in subjects:
        prefix = f"sp:{s} "
        for p in participants:
            values.add(prefix + p)
    return frozenset(values)


def is_noise_link(value: str, noise: frozenset[str]) -> bool:
    """Whether a `link_values` value made with no noise is one that ``noise`` leaves out
    (a subject with a participant in ``noise``): it cannot link two mails."""
    return value.startswith("sp:") and _is_noise(value.rpartition(" ")[2], noise)


def component_batches(
    n: int, edges: Iterable[tuple[int, int]], max_size: int
) -> list[array[int]]:
    """Split the ids ``0 .. n-1`` into batches of whole components (ids joined by a chain
    of ``edges``), each of at most ``max_size`` ids unless one component alone is larger.

    Evaluating everything a batch at a time gives what evaluating it all at once gives
    when the edges join every two mails `assign_threads` may put in one thread (shared
    `link_values`): a thread never spans two components. Ids are integers in arrays, so
    a million keys cost some 32 MB here (four arrays), not dicts of keys.
    Batches come in the order of their first id; a batch's ids in increasing order.
    """
    parent = array("q", range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            parent[rb] = ra
    root = parent  # from here on, each id's root (the smallest id of its component)
    size = array("q", bytes(8 * n))
    for x in range(n):
        r = root[x] = find(x)
        size[r] += 1
    batch_of = array("q", bytes(8 * n))  # of each root: its batch + 1
    batches: list[array[int]] = []
    fill = 0
    for x in range(n):
        r = root[x]
        b = batch_of[r]
        if not b:
            if not batches or fill + size[r] > max_size:
                batches.append(array("q"))
                fill = 0
            b = batch_of[r] = len(batches)
            fill += size[r]
        batches[b - 1].append(x)
    return batches


def _unlinked(nodes: Mapping[str, _Node], uf: _UnionFind) -> list[str]:
    """Keys alone among the seen messages (ids never seen do not count), sorted."""
    roots = {key: uf.find(key) for key in nodes}
    sizes = Counter(roots.values())
    return sorted(key for key, root in roots.items() if sizes[root] == 1)


def _union(uf: _UnionFind, edges: Iterable[tuple[str, str]], unlinked: list[str]) -> list[str]:
    """Apply a fallback's edges; the keys of ``unlinked`` still alone after them.

    Each edge starts at an unlinked key, so only the keys an edge touches can stop being
    alone: the same as recomputing `_unlinked`, without a pass over every key.
    """
    touched: set[str] = set()
    for a, b in edges:
        uf.union(a, b)
        touched.update((a, b))
    return [key for key in unlinked if key not in touched]


def _nearest(node: _Node, candidates: Iterable[_Node]) -> _Node | None:
    best: tuple[int, dt.timedelta, str] | None = None
    chosen = None
    for c in candidates:
        if c.key == node.key:
            continue
        rank = (0 if c.received <= node.received else 1, abs(c.received - node.received), c.key)
        if best is None or rank < best:
            best, chosen = rank, c
    return chosen


def _link_by_group(
    nodes: Mapping[str, _Node], uf: _UnionFind, groups_of: str, unlinked: list[str]
) -> list[str]:
    """Attach every unlinked node to its nearest node sharing a group value; the keys
    still unlinked after."""
    groups: dict[object, list[_Node]] = defaultdict(list)
    for node in nodes.values():
        for value in getattr(node, groups_of):
            groups[value].append(node)
    if not groups:
        return unlinked
    edges = []
    for key in unlinked:
        node = nodes[key]
        members = {c.key: c for v in getattr(node, groups_of) for c in groups[v]}
        target = _nearest(node, members.values())
        if target is not None:
            edges.append((key, target.key))
    return _union(uf, edges, unlinked)


def _shift(t: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """``t + delta``, saturating at the ends of the datetime range (INTERNALDATEs in year 1
    or 9999 come from broken servers and must not crash the threading)."""
    try:
        return t + delta
    except OverflowError:
        return (dt.datetime.max if delta > dt.timedelta(0) else dt.datetime.min).replace(
            tzinfo=dt.UTC
        )


def _link_by_subject(
    nodes: Mapping[str, _Node], uf: _UnionFind, window: dt.timedelta, unlinked: list[str]
) -> list[str]:
    # (subject, participant) -> nodes sorted by received time, for windowed look-ups.
    index: dict[tuple[str, str], list[tuple[dt.datetime, str]]] = defaultdict(list)
    for node in nodes.values():
        for s in node.subjects:
            for p in node.participants:
                index[(s, p)].append((node.received, node.key))
    for entries in index.values():
        entries.sort()
    edges = []
    for key in unlinked:
        node = nodes[key]
        if not node.replyish:
            continue
        candidates: dict[str, _Node] = {}
        for s in node.subjects:
            for p in node.participants:
                entries = index[(s, p)]
                lo = bisect.bisect_left(entries, (_shift(node.received, -window), ""))
                for received, other in entries[lo:]:
                    if received > _shift(node.received, window):
                        break
                    candidates[other] = nodes[other]
        target = _nearest(node, candidates.values())
        if target is not None:
            edges.append((key, target.key))
    return _union(uf, edges, unlinked)


def assign_threads(
    messages: Iterable[Message],
    *,
    subject_window: dt.timedelta = dt.timedelta(days=30),
    agency_addresses: frozenset[str] | None = None,
) -> Mapping[str, str]:
    """Message key -> thread id for every message given.

    `agency_addresses` are participants too common to prove a relation (the agency itself):
    entries with ``@`` are addresses, entries without are domains including subdomains
    (`classify.agency_identities(config)` builds it). The thread id is the key of the
    earliest message of the thread (received time, then key).
    """
    try:
        return _assign_threads(messages, subject_window, agency_addresses)
    finally:
        linking_subject.cache_clear()
        has_reply_prefix.cache_clear()


def _assign_threads(
    messages: Iterable[Message],
    subject_window: dt.timedelta,
    agency_addresses: frozenset[str] | None,
) -> Mapping[str, str]:
    noise = frozenset(a.strip().lower() for a in (agency_addresses or ()))
    nodes = _nodes(messages, noise)
    uf = _UnionFind()

    # 1. Message ids, seen or not.
    for key in sorted(nodes):
        uf.find(key)
        for ref in sorted(nodes[key].ids):
            uf.union(key, ref)
    # 2-4. Fallbacks for what the ids did not link.
    unlinked = _unlinked(nodes, uf)
    unlinked = _link_by_group(nodes, uf, "ti_roots", unlinked)
    unlinked = _link_by_group(nodes, uf, "gm_threads", unlinked)
    _link_by_subject(nodes, uf, subject_window, unlinked)

    first: dict[str, tuple[dt.datetime, str]] = {}
    roots: dict[str, str] = {}
    for key, node in nodes.items():
        root = roots[key] = uf.find(key)
        candidate = (node.received, key)
        if root not in first or candidate < first[root]:
            first[root] = candidate
    return {key: first[root][1] for key, root in roots.items()}

