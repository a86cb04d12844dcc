"""Threads across every watched mailbox and folder (DESIGN.md "Thread").

Pure: `assign_threads` maps each message key to a thread id; independent of the order
in which messages are given.

How messages are linked, in order (each fallback only for messages still *unlinked*, i.e.
alone among the seen messages after the previous steps):

1. Message-ID / In-Reply-To / References: union-find over ids, including ids of mail never
   seen, so two replies to an unseen parent join. Loops, self-references and reused ids are
   harmless (union-find is iterative; nothing recurses).
2. Outlook Thread-Index: same conversation root (`message.thread_index_root`).
3. Gmail X-GM-THRID, per watched mailbox (thread ids are per Gmail account).
4. Normalized subject + at least one shared participant (From/To/Cc/Reply-To, minus the
   agency-wide `agency_addresses`), within `subject_window`. Only a message that looks like
   a reply or forward (prefix such as "Re:", or In-Reply-To/References to unseen mail, or a
   Thread-Index deeper than the root) starts such a link, so two fresh mails that merely
   share a subject stay apart. Trivial subjects (`is_trivial_subject`) never link.

Each fallback attaches an unlinked message to its *nearest* match (earlier ones first, then
by time distance, then key), computed from the whole input before any union is applied:
edges are a function of the set of messages, so the result does not depend on their order.

The thread id is the key of the component's earliest message (by received time, then key):
order-independent, and stable while a conversation grows by later replies.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .message import Message, thread_index_depth, thread_index_root

# --------------------------------------------------------------------------- subjects

# Reply / forward prefixes (compared case-insensitively), many languages and mail programs:
# EN re fw fwd; DE aw wg antw; PL odp pd; UK відп пересл; RU отв пересл; BG отг пре
# препр; Nordic sv vs vb vl fs; NL antw doorst; FR réf tr; ES rv; IT r i rif; PT res enc;
# TR ynt ilt; CZ/SK odp pr přep; HU v tov; EL απ σχετ πρθ; ZH/JA/KO and a few more.
_PREFIX_WORDS = (
    "re",
    "ree",
    "fw",
    "fwd",
    "fwrd",
    "aw",
    "wg",
    "antw",
    "antwort",
    "odp",
    "odpowiedź",
    "pd",
    "przekaż",
    "відп",
    "відповідь",
    "пересл",
    "перес",
    "переслано",
    "пп",
    "отв",
    "ответ",
    "отг",
    "отговор",
    "пре",
    "препр",
    "препратено",
    "fs",
    "sv",
    "svar",
    "vs",
    "vb",
    "vl",
    "vs",
    "doorst",
    "réf",
    "ref",
    "tr",
    "rv",
    "r",
    "i",
    "rif",
    "res",
    "enc",
    "ynt",
    "ilt",
    "ilet",
    "pr",
    "přep",
    "fwd",
    "odg",
    "v",
    "tov",
    "απ",
    "σχετ",
    "πρθ",
    "ατθ",
    "atb",
    "ats",
    "vast",
    "edasi",
    "rs",
    "회신",
    "전달",
    "回复",
    "回覆",
    "答复",
    "转发",
    "轉寄",
    "返信",
    "転送",
    "השב",
    "הועבר",
    "رد",
    "توجيه",
    "trs",
    "wtr",
)
_PREFIX = re.compile(
    r"^(?:"
    r"(?:" + "|".join(sorted({re.escape(w) for w in _PREFIX_WORDS}, key=len, reverse=True)) + r")"
    r"(?:\s*(?:\[\d{1,4}\]|\(\d{1,4}\)|\^\d{1,4}))?\s*[:：]"
    r"|\[[^\[\]\d]{1,60}\]"  # list and gateway tags: [acme-team], [EXTERNAL], [EXT]
    r"|\((?:fwd?|fw)\)"
    r"|\*{1,3}\s*(?:external|spam|suspicious)\s*\*{1,3}"
    r")\s*",
    re.IGNORECASE,
)
_TRAILING_FWD = re.compile(r"\s*\((?:fwd?|fw)\)\s*$", re.IGNORECASE)
_REPLY_MARK = re.compile(
    r"^(?:"
    + "|".join(sorted({re.escape(w) for w in _PREFIX_WORDS}, key=len, reverse=True))
    + r")(?:\s*(?:\[\d{1,4}\]|\(\d{1,4}\)|\^\d{1,4}))?\s*[:：]",
    re.IGNORECASE,
)

# Subjects too common to thread by (compared after `normalize_subject`).
TRIVIAL_SUBJECTS = frozenset(
    {
        "",
        "hi",
        "hello",
        "hey",
        "hej",
        "witam",
        "cześć",
        "dzień dobry",
        "привіт",
        "добрий день",
        "здравствуйте",
        "hallo",
        "bonjour",
        "hola",
        "ciao",
        "test",
        "question",
        "pytanie",
        "info",
        "update",
        "fyi",
        "thanks",
        "thank you",
        "dzięki",
        "dziękuję",
        "no subject",
        "(no subject)",
        "brak tematu",
        "(brak tematu)",
        "без теми",
        "без темы",
        "kein betreff",
        "sans objet",
        "sin asunto",
        "urgent",
        "pilne",
        "document",
        "documents",
        "dokumenty",
        "scan",
        "skan",
        "invoice",
        "faktura",
        "photo",
        "photos",
        "zdjęcia",
        "attachment",
        "załącznik",
        "meeting",
        "spotkanie",
    }
)
MIN_SUBJECT_CHARS = 3  # letters or digits needed before a subject may link mail


def normalize_subject(subject: str) -> str:
    """Strip reply/forward prefixes in many languages, list tags, whitespace; casefold.

    ``"RE: AW: [acme-team] Fwd: Wycena  (fwd)"`` -> ``"wycena"``. Bracketed tags with digits
    (``[Ticket #123]``) are kept: they tell different tickets apart.
    """
    text = unicodedata.normalize("NFKC", subject or "")
    text = " ".join(text.split())
    for _ in range(200):  # bounded: each round removes at least one character
        stripped = _PREFIX.sub("", text, count=1)
        stripped = _TRAILING_FWD.sub("", stripped)
        if stripped == text:
            break
        text = stripped
    return " ".join(text.split()).casefold()


def is_trivial_subject(normalized: str) -> bool:
    """True when a normalized subject is too short or too common to link mail by."""
    if normalized in TRIVIAL_SUBJECTS:
        return True
    return sum(1 for c in normalized if c.isalnum()) < MIN_SUBJECT_CHARS


def has_reply_prefix(subject: str) -> bool:
    """Whether a subject carries a reply/forward prefix (after any leading [tags])."""
    text = " ".join(unicodedata.normalize("NFKC", subject or "").split())
    for _ in range(20):
        if _REPLY_MARK.match(text) or _TRAILING_FWD.search(text):
            return True
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            return False
        text = stripped
    return False


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


@dataclass
class _Node:
    """Everything known about one key (all copies of one mail, in any mailbox)."""

    key: str
    received: dt.datetime
    ids: set[str]
    ti_roots: set[str]
    gm_threads: set[tuple[str, int]]
    subjects: set[str]
    participants: set[str]
    replyish: bool


def _is_noise(address: str, noise: frozenset[str]) -> bool:
    if address in noise:
        return True
    domain = address.rpartition("@")[2]
    while domain:
        if domain in noise or "@" + domain in noise:
            return True
        _, _, domain = domain.partition(".")
    return False


def _nodes(messages: Iterable[Message], noise: frozenset[str]) -> dict[str, _Node]:
    nodes: dict[str, _Node] = {}
    for m in messages:
        node = nodes.get(m.key)
        if node is None:
            node = nodes[m.key] = _Node(m.key, m.received, set(), set(), set(), set(), set(), False)
        node.received = min(node.received, m.received)
        node.ids.update(i for i in (*m.in_reply_to, *m.references) if i != m.key)
        root = thread_index_root(m.thread_index)
        if root is not None:
            node.ti_roots.add(root)
        if m.gm_thrid is not None:
            node.gm_threads.add((m.mailbox, m.gm_thrid))
        subject = normalize_subject(m.subject)
        if not is_trivial_subject(subject):
            node.subjects.add(subject)
        for a in (m.sender, *m.reply_to, *m.to, *m.cc):
            if a.address and not _is_noise(a.address, noise):
                node.participants.add(a.address)
        if (
            m.in_reply_to
            or m.references
            or has_reply_prefix(m.subject)
            or thread_index_depth(m.thread_index) > 0
        ):
            node.replyish = True
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
        values.update("id:" + i for i in (*m.in_reply_to, *m.references))
        root = thread_index_root(m.thread_index)
        if root is not None:
            values.add("ti:" + root)
        if m.gm_thrid is not None:
            values.add(f"gm:{m.mailbox} {m.gm_thrid}")
        subject = normalize_subject(m.subject)
        if not is_trivial_subject(subject):
            subjects.add(subject)
        participants.update(
            a.address for a in (m.sender, *m.reply_to, *m.to, *m.cc)
            if a.address and not _is_noise(a.address, noise)
        )
    values.update(f"sp:{s} {p}" for s in subjects for p in participants)
    return frozenset(values)


def _unlinked(nodes: Mapping[str, _Node], uf: _UnionFind) -> list[str]:
    sizes: dict[str, int] = defaultdict(int)
    for key in nodes:
        sizes[uf.find(key)] += 1
    return sorted(key for key in nodes if sizes[uf.find(key)] == 1)


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


def _link_by_group(nodes: Mapping[str, _Node], uf: _UnionFind, groups_of: str) -> None:
    """Attach every unlinked node to its nearest node sharing a group value."""
    groups: dict[object, list[_Node]] = defaultdict(list)
    for node in nodes.values():
        for value in getattr(node, groups_of):
            groups[value].append(node)
    edges = []
    for key in _unlinked(nodes, uf):
        node = nodes[key]
        members = {c.key: c for v in getattr(node, groups_of) for c in groups[v]}
        target = _nearest(node, members.values())
        if target is not None:
            edges.append((key, target.key))
    for a, b in edges:
        uf.union(a, b)


def _shift(t: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """``t + delta``, saturating at the ends of the datetime range (INTERNALDATEs in year 1
    or 9999 come from broken servers and must not crash the threading)."""
    try:
        return t + delta
    except OverflowError:
        return (dt.datetime.max if delta > dt.timedelta(0) else dt.datetime.min).replace(
            tzinfo=dt.UTC
        )


def _link_by_subject(nodes: Mapping[str, _Node], uf: _UnionFind, window: dt.timedelta) -> None:
    # (subject, participant) -> nodes sorted by received time, for windowed look-ups.
    index: dict[tuple[str, str], list[tuple[dt.datetime, str]]] = defaultdict(list)
    for node in nodes.values():
        for s in node.subjects:
            for p in node.participants:
                index[(s, p)].append((node.received, node.key))
    for entries in index.values():
        entries.sort()
    edges = []
    for key in _unlinked(nodes, uf):
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
    for a, b in edges:
        uf.union(a, b)


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
    noise = frozenset(a.strip().lower() for a in (agency_addresses or ()))
    nodes = _nodes(messages, noise)
    uf = _UnionFind()

    # 1. Message ids, seen or not.
    for key in sorted(nodes):
        uf.find(key)
        for ref in sorted(nodes[key].ids):
            uf.union(key, ref)
    # 2-4. Fallbacks for what the ids did not link.
    _link_by_group(nodes, uf, "ti_roots")
    _link_by_group(nodes, uf, "gm_threads")
    _link_by_subject(nodes, uf, subject_window)

    first: dict[str, tuple[dt.datetime, str]] = {}
    for key, node in nodes.items():
        root = uf.find(key)
        candidate = (node.received, key)
        if root not in first or candidate < first[root]:
            first[root] = candidate
    return {key: first[uf.find(key)][1] for key in nodes}
