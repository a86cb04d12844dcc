"""The fast paths of the evaluation core give exactly what the plain code gives.

Memos (subjects, per-config address answers, casefolded flags), the merge of copies,
the frozen-set thread nodes and the paused garbage collector are checked against the
straightforward implementations they replaced (kept here as oracles).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ackwatch.config import Agency, IgnoreRules
from ackwatch.core import classify as cls_mod
from ackwatch.core import item_rules as sla
from ackwatch.core import subjects as subjects_mod
from ackwatch.core import threads
from ackwatch.core.message import Message
from ackwatch.core.message_ids import thread_index_depth, thread_index_root
from ackwatch.gcpause import gc_paused
from configfactory import make_account, make_client, make_config, make_mailbox
from mailfactory import mail

CONFIG = make_config()
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)

# --------------------------------------------------------------------------- subjects

_subject_parts = st.sampled_from(
    ["Re:", "RE :", "Fwd:", "AW:", "Odp:", "[acme-team]", "[Ticket #12]", "(fwd)", "*** EXTERNAL ***",
     "Отв:", "回复：", "Quote", "hi", "ab", "a1", "  ", "\t", "Ｒｅ:", "x", "?!", "Wycena"]
)
_subjects = st.one_of(
    st.text(max_size=30),
    st.lists(_subject_parts, max_size=6).map(" ".join),
)


def _trivial_oracle(normalized: str) -> bool:
    if normalized in subjects_mod.TRIVIAL_SUBJECTS:
        return True
    return sum(1 for c in normalized if c.isalnum()) < subjects_mod.MIN_SUBJECT_CHARS


@settings(max_examples=400, deadline=None)
@given(_subjects)
def test_memoized_subject_functions_match_the_plain_ones(subject):
    for _ in range(2):  # a miss, then a hit
        normalized = subjects_mod.normalize_subject(subject)
        assert subjects_mod.is_trivial_subject(normalized) == _trivial_oracle(normalized)
        assert subjects_mod.is_trivial_subject(subject) == _trivial_oracle(subject)
        assert subjects_mod.has_reply_prefix(subject) == subjects_mod.has_reply_prefix.__wrapped__(subject)
        expected = None if _trivial_oracle(normalized) else normalized
        assert subjects_mod.linking_subject(subject) == expected
        assert subjects_mod.linking_subject.__wrapped__(subject) == expected


# --------------------------------------------------------------------------- thread nodes


@dataclasses.dataclass
class _OracleNode:
    received: dt.datetime
    ids: set[str]
    ti_roots: set[str]
    gm_threads: set[tuple[str, int]]
    subjects: set[str]
    participants: set[str]
    replyish: bool


def _is_noise_oracle(address: str, noise: frozenset[str]) -> bool:
    if address in noise:
        return True
    domain = address.rpartition("@")[2]
    while domain:
        if domain in noise or "@" + domain in noise:
            return True
        _, _, domain = domain.partition(".")
    return False


def _nodes_oracle(messages: Iterable[Message], noise: frozenset[str]) -> dict[str, _OracleNode]:
    nodes: dict[str, _OracleNode] = {}
    for m in messages:
        node = nodes.get(m.key)
        if node is None:
            node = nodes[m.key] = _OracleNode(m.received, set(), set(), set(), set(), set(), False)
        node.received = min(node.received, m.received)
        node.ids.update(i for i in (*m.in_reply_to, *m.references) if i != m.key)
        root = thread_index_root(m.thread_index)
        if root is not None:
            node.ti_roots.add(root)
        if m.gm_thrid is not None:
            node.gm_threads.add((m.mailbox, m.gm_thrid))
        subject = subjects_mod.normalize_subject(m.subject)
        if not _trivial_oracle(subject):
            node.subjects.add(subject)
        for a in (m.sender, *m.reply_to, *m.to, *m.cc):
            if a.address and not _is_noise_oracle(a.address, noise):
                node.participants.add(a.address)
        if (
            m.in_reply_to
            or m.references
            or subjects_mod.has_reply_prefix.__wrapped__(m.subject)
            or thread_index_depth(m.thread_index) > 0
        ):
            node.replyish = True
    return nodes


def _link_values_oracle(copies: Iterable[Message], noise: frozenset[str]) -> frozenset[str]:
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
        subject = subjects_mod.normalize_subject(m.subject)
        if not _trivial_oracle(subject):
            subjects.add(subject)
        participants.update(
            a.address for a in (m.sender, *m.reply_to, *m.to, *m.cc)
            if a.address and not _is_noise_oracle(a.address, noise)
        )
    values.update(f"sp:{s} {p}" for s in subjects for p in participants)
    return frozenset(values)


_PEOPLE = ["Jan <jan@acme.example>", "marta@globex.example", "anna@agency.example",
           "x@sub.agency.example", "designer@freelance.example"]
_THREAD_INDEX = [None, "", "AQHZ1x2yAAECAwQFBgcICQoLDA0ODw==", "AQHZ1x2yAAECAwQFBgcICQoLDA0ODwABAgME",
                 "!!notbase64", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="]
_mail_spec = st.tuples(
    st.sampled_from(["<a@x>", "<b@x>", "<c@x>", None]),  # message id (None: hashed key)
    st.lists(st.sampled_from(["<a@x>", "<b@x>", "<p@x>", "junk"]), max_size=3),  # references
    st.sampled_from([None, "<a@x>", "<q@x>"]),  # in-reply-to
    _subjects,
    st.sampled_from(_PEOPLE),  # sender
    st.lists(st.sampled_from(_PEOPLE), max_size=3),  # to
    st.lists(st.sampled_from(_PEOPLE), max_size=2),  # cc
    st.sampled_from([None, 1, 2]),  # X-GM-THRID
    st.sampled_from(_THREAD_INDEX),
    st.integers(min_value=0, max_value=60 * 24),  # hours after T0
    st.sampled_from(["anna", "piotr"]),  # mailbox
)


def _mails(specs: Sequence[tuple]) -> list[Message]:
    out = []
    for uid, (mid, refs, irt, subject, sender, to, cc, thrid, ti, hours, mailbox) in enumerate(
        specs, 1
    ):
        out.append(
            mail(
                message_id=mid, references=refs, in_reply_to=irt, subject=subject, from_=sender,
                to=", ".join(to) or None, cc=", ".join(cc) or None, gm_thrid=thrid,
                headers={"Thread-Index": ti} if ti is not None else None,
                received=T0 + dt.timedelta(hours=hours), mailbox=mailbox, uid=uid,
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(_mail_spec, max_size=8), st.sampled_from([frozenset(), cls_mod.agency_identities(CONFIG)]))
def test_thread_nodes_and_link_values_match_the_plain_ones(specs, noise):
    messages = _mails(specs)
    nodes = threads._nodes(messages, noise)
    expected = _nodes_oracle(messages, noise)
    assert nodes.keys() == expected.keys()
    for key, node in nodes.items():
        want = expected[key]
        assert (node.key, node.received, node.replyish) == (key, want.received, want.replyish)
        for field in ("ids", "ti_roots", "gm_threads", "subjects", "participants"):
            assert set(getattr(node, field)) == getattr(want, field), field
    by_key: dict[str, list[Message]] = {}
    for m in messages:
        by_key.setdefault(m.key, []).append(m)
    for copies in by_key.values():
        assert threads.link_values(copies, noise) == _link_values_oracle(copies, noise)


def _assign_threads_oracle(messages: Sequence[Message], noise: frozenset[str]) -> dict[str, str]:
    """`threads.assign_threads` as it was: every fallback recomputes the unlinked keys."""
    window = dt.timedelta(days=30)
    nodes = threads._nodes(messages, noise)
    uf = threads._UnionFind()
    for key in sorted(nodes):
        uf.find(key)
        for ref in sorted(nodes[key].ids):
            uf.union(key, ref)

    def unlinked() -> list[str]:
        sizes: dict[str, int] = {}
        for key in nodes:
            sizes[uf.find(key)] = sizes.get(uf.find(key), 0) + 1
        return sorted(key for key in nodes if sizes[uf.find(key)] == 1)

    for groups_of in ("ti_roots", "gm_threads"):
        edges = []
        for key in unlinked():
            members = {c.key: c for c in nodes.values()
                       if set(getattr(c, groups_of)) & set(getattr(nodes[key], groups_of))}
            target = threads._nearest(nodes[key], members.values())
            if target is not None:
                edges.append((key, target.key))
        for a, b in edges:
            uf.union(a, b)
    edges = []
    for key in unlinked():
        node = nodes[key]
        if not node.replyish:
            continue
        pairs = {(s, p) for s in node.subjects for p in node.participants}
        low, high = threads._shift(node.received, -window), threads._shift(node.received, window)
        candidates = {
            c.key: c for c in nodes.values()
            if pairs & {(s, p) for s in c.subjects for p in c.participants}
            and low <= c.received <= high
        }
        target = threads._nearest(node, candidates.values())
        if target is not None:
            edges.append((key, target.key))
    for a, b in edges:
        uf.union(a, b)
    first: dict[str, tuple[dt.datetime, str]] = {}
    for key, node in nodes.items():
        candidate = (node.received, key)
        root = uf.find(key)
        if root not in first or candidate < first[root]:
            first[root] = candidate
    return {key: first[uf.find(key)][1] for key in nodes}


# Few subjects and people: fallbacks that meet (a key linked by one, then offered by another).
_tangle_spec = st.tuples(
    st.sampled_from(["<a@x>", "<b@x>", "<c@x>", None]),
    st.lists(st.sampled_from(["<a@x>", "<p@x>"]), max_size=1),
    st.sampled_from([None, "<q@x>"]),
    st.sampled_from(["Quote", "Re: Quote", "Fwd: Quote", "hi"]),
    st.sampled_from(_PEOPLE[:3]),
    st.lists(st.sampled_from(_PEOPLE[:3]), max_size=1),
    st.just([]),
    st.sampled_from([None, 1, 2]),
    st.sampled_from(_THREAD_INDEX[:4]),
    st.integers(min_value=0, max_value=40 * 24),
    st.sampled_from(["anna", "piotr"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_mail_spec, _tangle_spec), max_size=10),
       st.sampled_from([frozenset(), cls_mod.agency_identities(CONFIG)]))
def test_assign_threads_matches_recomputing_the_unlinked_keys(specs, noise):
    messages = _mails(specs)
    assert threads.assign_threads(messages, agency_addresses=noise) == (
        _assign_threads_oracle(messages, noise)
    )


def test_a_key_linked_by_one_fallback_is_not_offered_to_the_next():
    jan, marta = "jan@acme.example", "marta@globex.example"
    quote = mail(from_=jan, subject="Quote", received=T0)
    invoice = mail(from_=marta, subject="Invoice", received=T0)
    # Linked to each other by X-GM-THRID: the subject fallback must leave them alone.
    a = mail(from_=jan, subject="Re: Quote", gm_thrid=7, mailbox="piotr",
             received=T0 + dt.timedelta(hours=10))
    b = mail(from_=marta, subject="Re: Invoice", gm_thrid=7, mailbox="piotr",
             received=T0 + dt.timedelta(hours=20))
    messages = [quote, invoice, a, b]
    result = threads.assign_threads(messages)
    assert result == _assign_threads_oracle(messages, frozenset())
    assert result[a.key] == result[b.key] == a.key
    assert result[quote.key] == quote.key and result[invoice.key] == invoice.key


@pytest.mark.parametrize("noise", [frozenset(), frozenset({"agency.example", "x@y.example"})])
def test_is_noise_matches_the_plain_one(noise):
    for address in ("a@agency.example", "a@sub.agency.example", "x@y.example", "z@y.example",
                    "a@agency.example.evil", "", "@agency.example", "nobody"):
        assert threads._is_noise(address, noise) == _is_noise_oracle(address, noise)
        assert threads._noise_filter(noise)(address) == _is_noise_oracle(address, noise)


# --------------------------------------------------------------------------- flags

_flag_names = st.sampled_from(["\\Answered", "\\answered", "\\ANSWERED", "\\Seen", "$Ackwatch-Done",
                               "$ackwatch-done", "$ACKWATCH-DONE", "ß", "SS", "ss", "\\Recent"])


def _has_flag_oracle(flags: Iterable[str], flag: str) -> bool:
    if flag in flags:
        return True
    wanted = flag.casefold()
    return any(f.casefold() == wanted for f in flags)


@settings(max_examples=400, deadline=None)
@given(st.frozensets(_flag_names, max_size=5), _flag_names)
def test_has_flag_matches_the_casefold_scan(flags, flag):
    m = mail(received=T0)
    for variant in (flags, set(flags), tuple(flags)):  # frozenset: memoized; others: scanned
        copy = dataclasses.replace(m, flags=variant)
        assert sla._has_flag(copy, flag) == _has_flag_oracle(flags, flag)


def _merge_oracle(copies: Sequence[Message], config) -> sla._Merged:
    """The merge rule written plainly: the first copy in `_copy_order` with the earliest
    receipt, the united flags and the earliest (clamped) flag times."""

    def flag_time(flag: str, attr: str) -> dt.datetime | None:
        times = []
        for c in copies:
            if _has_flag_oracle(c.flags, flag):
                seen = getattr(c, attr)
                times.append(c.received if seen is None else max(seen, c.received))
        return min(times) if times else None

    rep = sorted(copies, key=sla._copy_order)[0]
    received = min(c.received for c in copies)
    answered_at = flag_time(sla.ANSWERED, "answered_at")
    dismissed_at = flag_time(config.dismiss_keyword, "dismissed_at")
    flags = rep.flags if len(copies) == 1 else frozenset().union(*(c.flags for c in copies))
    merged = dataclasses.replace(
        rep, received=received, flags=flags, answered_at=answered_at, dismissed_at=dismissed_at
    )
    order = {mb.name: i for i, mb in enumerate(config.mailboxes)}
    names = sorted({c.mailbox for c in copies}, key=lambda n: (order.get(n, len(order)), n))
    return sla._Merged(merged, tuple(names))


_times = st.one_of(st.none(), st.integers(min_value=-3, max_value=3).map(
    lambda h: T0 + dt.timedelta(hours=h)))
_copy_spec = st.tuples(
    st.frozensets(_flag_names, max_size=4), _times, _times,
    st.integers(min_value=-2, max_value=2), st.sampled_from(["anna", "piotr", "office", "gone"]),
    st.sampled_from(["inbox", "sent"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_copy_spec, min_size=1, max_size=3))
def test_merge_follows_the_plain_rule(specs):
    base = mail(message_id="<m@acme.example>", received=T0)
    copies = [
        dataclasses.replace(
            base, flags=flags, answered_at=answered, dismissed_at=dismissed,
            received=T0 + dt.timedelta(hours=hours), mailbox=mailbox, role=role, uid=uid,
        )
        for uid, (flags, answered, dismissed, hours, mailbox, role) in enumerate(specs, 1)
    ]
    assert sla._merge(copies, CONFIG) == _merge_oracle(copies, CONFIG)


# --------------------------------------------------------------------------- per-config memo

_ADDRESSES = [
    "jan@acme.example", "JAN@ACME.EXAMPLE", " jan@acme.example ", "ceo@mail.example",
    "x@sub.acme.example", "bob@initech.co", "anna@agency.example", "a@sub.agency.example",
    "designer@freelance.example", "office@agency.example", "noreply@acme.example",
    "alerts@notifications.example", "kasia@agency.example", "forms@agency.example",
    "nobody", "", "@acme.example", "someone@agency.example.", "x@sklep-kwiatowy.example",
]


@pytest.mark.parametrize("address", _ADDRESSES)
def test_per_config_answers_match_the_plain_functions(address):
    for _ in range(2):  # a miss, then a hit
        assert cls_mod.is_agency_address(address, CONFIG) == (
            cls_mod.is_agency_address.__wrapped__(address, CONFIG)
        )
        assert cls_mod.match_client(address, CONFIG) == (
            cls_mod.match_client.__wrapped__(address, CONFIG)
        )
        assert cls_mod._ignored_sender(address, CONFIG) == (
            cls_mod._ignored_sender.__wrapped__(address, CONFIG)
        )


def test_answers_do_not_leak_across_configs():
    address = "jan@acme.example"
    for round_ in range(50):  # dead configs' ids get reused: the memo must notice
        agency = round_ % 2 == 0
        config = make_config(
            agency=Agency(domains=("acme.example",) if agency else ("agency.example",)),
            clients=(make_client("Acme", "acme.example"),) if not agency else (),
            ignore=IgnoreRules(senders=("jan@*",) if round_ % 3 == 0 else ()),
        )
        assert cls_mod.is_agency_address(address, config) is agency
        assert (cls_mod.match_client(address, config) is None) is agency
        assert cls_mod._ignored_sender(address, config) is (round_ % 3 == 0)
        del config
        gc.collect()


def test_classification_repeats_for_the_same_message():
    messages = [
        mail(from_="Jan <jan@acme.example>", received=T0),
        mail(from_="anna@agency.example", to="jan@acme.example", received=T0),
        mail(from_="noreply@acme.example", received=T0),
        mail(from_="forms@agency.example", reply_to="lead@new.example", received=T0),
        mail(from_="someone@else.example", received=T0, folder="Sent", role="sent"),
    ]
    for m in messages:
        first = cls_mod.classify(m, CONFIG)
        assert cls_mod.classify(m, CONFIG) == first
        assert cls_mod.is_acknowledgement_candidate(m, CONFIG) == (
            first.kind == "agency" and cls_mod.addressed_outside(m, CONFIG)
        )


# --------------------------------------------------------------------------- responsibility


def test_lookup_answers_like_the_config():
    config = make_config(
        accounts=(make_account("anna@agency.example", "Anna"), make_account("", "nobody")),
        mailboxes=(make_mailbox("anna"), make_mailbox("dup", owner="kasia@agency.example"),
                   make_mailbox("dup", owner="anna@agency.example"),
                   make_mailbox("blank", username="")),
    )
    lookup = sla._Lookup.of(config)
    for email in ("anna@agency.example", "ANNA@agency.example", "", None, "kasia@agency.example"):
        assert lookup.is_account(email) == (config.account(email) is not None)
    for name in ("anna", "dup", "blank", "missing"):
        assert lookup.mailboxes.get(name) == config.mailbox(name)
    m = mail(to="Kasia <kasia@agency.example>", received=T0)
    for names in (("dup",), ("blank", "dup"), ("missing",), ("blank",), ()):
        assert sla._responsible(m, names, None, config, lookup) == (
            sla._responsible(m, names, None, config)
        )


# --------------------------------------------------------------------------- gc


def test_the_core_never_switches_the_garbage_collector():
    """The process's collector is the shell's (`ackwatch.gcpause`), not a pure rule's."""
    import ast
    from pathlib import Path

    core = Path(sla.__file__).parent
    importers = sorted(
        path.name
        for path in core.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if (isinstance(node, ast.Import) and any(a.name == "gc" for a in node.names))
        or (isinstance(node, ast.ImportFrom) and node.module == "gc")
    )
    assert importers == []


@pytest.mark.parametrize("enabled", [True, False])
def test_gc_paused_restores_the_collector(enabled):
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        with gc_paused():
            assert not gc.isenabled()
            with gc_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), gc_paused():
            raise RuntimeError("boom")
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_gc_paused_in_two_threads_resumes_the_collector_when_the_last_pause_ends():
    """A sync's reader thread may end its pause while the main thread is in its own."""
    import threading

    was = gc.isenabled()
    entered, leave = threading.Event(), threading.Event()

    def reader() -> None:
        with gc_paused():
            entered.set()
            leave.wait(5)

    try:
        gc.enable()
        t = threading.Thread(target=reader)
        t.start()
        entered.wait(5)
        with gc_paused():
            leave.set()
            t.join(5)
            assert not gc.isenabled()  # the reader's pause ended, the main thread's did not
        assert gc.isenabled()
    finally:
        gc.enable() if was else gc.disable()


def test_gc_paused_moves_what_the_burst_left_to_the_oldest_generation_unscanned():
    was = gc.isenabled()
    try:
        gc.enable()
        gc.collect()
        with gc_paused():
            kept = [[i] for i in range(50_000)]  # tracked objects, no cycles
        assert gc.get_count()[0] < 1_000  # not waiting in generation 0 for a scan
        assert gc.get_freeze_count() == 0
        assert any(o is kept[-1] for o in gc.get_objects(generation=2))
    finally:
        gc.enable() if was else gc.disable()


def test_gc_paused_still_lets_a_full_collection_free_cycles_made_in_the_burst():
    import weakref

    class Node:
        pass

    was = gc.isenabled()
    try:
        gc.enable()
        with gc_paused():
            a, b = Node(), Node()
            a.other, b.other = b, a
            ref = weakref.ref(a)
            del a, b
        assert ref() is not None  # a cycle: reference counting cannot free it
        gc.collect()
        assert ref() is None
    finally:
        gc.enable() if was else gc.disable()
