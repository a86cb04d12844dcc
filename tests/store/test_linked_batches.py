"""Finding the threads anew a batch of link components at a time gives what doing it all
at once gives.

A first start on a large state (or after `backfill`, or a change of what threading
depends on) evaluates every stored mail with its threads found anew. Above
`evaluation.AT_ONCE_COPIES` copies the daemon does it a batch of whole link components at a
time (`Store.linked_batches`, `threads.component_batches`), so memory follows the batch
(bench target 6). These tests store the same random mail in two states, evaluate one at
once and the other in batches as small as one key, and expect the same tables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from array import array
from collections.abc import Iterator
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from tests.support.random_mail import JAN, MAIL_SPEC, T0, fetched

from ackwatch.core.threads import component_batches, is_noise_link
from ackwatch.daemon import evaluation
from ackwatch.daemon.service import Daemon
from ackwatch.mail.sync import FolderCursor, FolderSync, FolderSyncEvent
from ackwatch.mail.uidfetch import FetchedMessage
from ackwatch.store.sqlite import SqliteStore as Store
from configfactory import make_config

NOW = T0 + dt.timedelta(days=41)


# ----------------------------------------------------------------- component_batches


def _components(n: int, edges: list[tuple[int, int]]) -> list[set[int]]:
    """The reference: components by repeated flooding."""
    neighbours: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen: set[int] = set()
    out = []
    for start in range(n):
        if start in seen:
            continue
        component, todo = set(), [start]
        while todo:
            x = todo.pop()
            if x not in component:
                component.add(x)
                todo.extend(neighbours[x] - component)
        seen |= component
        out.append(component)
    return out


@st.composite
def _graphs(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]], int]:
    n = draw(st.integers(min_value=0, max_value=60))
    ids = st.integers(min_value=0, max_value=max(n - 1, 0))
    edges = draw(st.lists(st.tuples(ids, ids), max_size=80)) if n else []
    return n, edges, draw(st.integers(min_value=1, max_value=20))


@settings(max_examples=300, deadline=None)
@given(_graphs())
def test_batches_hold_whole_components_and_every_id_once(graph):
    n, edges, max_size = graph
    batches = component_batches(n, iter(edges), max_size)
    flat = [x for b in batches for x in b]
    assert sorted(flat) == list(range(n))
    batch_of = {x: i for i, b in enumerate(batches) for x in b}
    for component in _components(n, edges):
        assert len({batch_of[x] for x in component}) == 1
    for b in batches:
        assert list(b) == sorted(b)
        parts = [c for c in _components(n, edges) if c <= set(b)]
        assert len(b) <= max_size or len(parts) == 1  # only a lone big component is larger
    assert [b[0] for b in batches] == sorted(b[0] for b in batches)


def test_batches_fill_up_to_the_limit():
    batches = component_batches(7, iter([(0, 1), (2, 3), (4, 5)]), 4)
    assert batches == [array("q", [0, 1, 2, 3]), array("q", [4, 5, 6])]


def test_a_subject_link_through_an_agency_address_is_noise():
    noise = frozenset({"agency.example"})
    assert is_noise_link("sp:quote for the spring campaign anna@agency.example", noise)
    assert not is_noise_link("sp:quote for the spring campaign jan@acme.example", noise)
    assert not is_noise_link("id:<anna@agency.example>", noise)


# ----------------------------------------------------------------- the daemon, both ways


def _sync(d: Daemon, mailbox: str, folder: str, messages: list[FetchedMessage],
          *, uidvalidity: int = 1, reset: bool = False) -> None:
    d.apply_event(FolderSyncEvent(mailbox, FolderSync(
        folder, "sent" if folder == "Sent" else "inbox",
        FolderCursor(uidvalidity, max((m.uid for m in messages), default=0)),
        new_messages=tuple(messages), reset=reset,
    )))


@contextlib.contextmanager
def _batched(keys: int) -> Iterator[None]:
    saved = evaluation.AT_ONCE_COPIES, evaluation.LINKED_BATCH_KEYS
    evaluation.AT_ONCE_COPIES, evaluation.LINKED_BATCH_KEYS = -1, keys  # even an empty window
    try:
        yield
    finally:
        evaluation.AT_ONCE_COPIES, evaluation.LINKED_BATCH_KEYS = saved


def _tables(store: Store) -> dict[str, list[tuple]]:
    c = store._conn
    return {
        "items": [tuple(r) for r in c.execute("SELECT * FROM items ORDER BY key")],
        "members": [tuple(r) for r in c.execute("SELECT * FROM item_members ORDER BY 1, 2")],
        "threads": [tuple(r) for r in c.execute("SELECT * FROM threads ORDER BY key")],
        "dirty": [tuple(r) for r in c.execute("SELECT * FROM dirty")],
        "meta": [tuple(r) for r in c.execute(
            "SELECT * FROM meta WHERE name IN ('evaluated_with', 'threaded_with') ORDER BY 1")],
    }


def _forget_threads(d: Daemon) -> None:
    """What a change of the threading config (or a backfill) leads to."""
    with d.store._write() as c:
        c.execute("DELETE FROM meta WHERE name IN ('evaluated_with', 'threaded_with')")


@settings(max_examples=120, deadline=None)
@given(
    st.lists(MAIL_SPEC, min_size=1, max_size=18),
    st.sets(st.integers(min_value=0, max_value=17)),
    st.integers(min_value=1, max_value=4),
)
def test_threads_found_in_batches_of_components_give_the_items_found_at_once(
    specs, gone, batch_keys
):
    mails = [fetched(spec, uid) for uid, spec in enumerate(specs, start=1)]
    with tempfile.TemporaryDirectory() as tmp:
        config = make_config(state_dir=Path(tmp))  # one config: one evaluation fingerprint
        daemons = [Daemon(config, Store.open(Path(tmp) / name), now=lambda: NOW,
                          reload=lambda: config) for name in ("at_once", "batched")]
        at_once, batched = daemons
        try:
            for d in daemons:
                for mailbox in ("anna", "piotr"):
                    for folder in ("INBOX", "Sent"):
                        _sync(d, mailbox, folder,
                              [m for mb, f, m in mails if (mb, f) == (mailbox, folder)])
            at_once.reevaluate()
            with _batched(batch_keys):
                batched.reevaluate()
            assert _tables(batched.store) == _tables(at_once.store)

            # Some mail goes (a UIDVALIDITY change of anna's INBOX), then threads anew.
            kept = [m for i, (mb, f, m) in enumerate(mails)
                    if (mb, f) == ("anna", "INBOX") and i not in gone]
            for d in daemons:
                _sync(d, "anna", "INBOX", kept, uidvalidity=2, reset=True)
                _forget_threads(d)
            at_once.reevaluate()
            with _batched(batch_keys), capture_logs() as logs:
                batched.reevaluate()
            assert [e["event"] for e in logs if e["event"].startswith("evaluated_by")] == [
                "evaluated_by_components"]
            assert _tables(batched.store) == _tables(at_once.store)
        finally:
            for d in daemons:
                d.store.close()


def test_a_small_window_is_evaluated_at_once(tmp_path, open_state):
    config = make_config(state_dir=tmp_path)
    d = Daemon(config, open_state(), now=lambda: NOW, reload=lambda: config)
    _sync(d, "anna", "INBOX", [fetched(("auto", [], "Quote", JAN, 5, None, (), "anna"), 1)[2]])
    with capture_logs() as logs:
        d.reevaluate()
    assert [e["full"] for e in logs if e["event"] == "evaluated"] == [True]
    assert not any(e["event"] == "evaluated_by_components" for e in logs)
    d.store.close()


def test_a_component_larger_than_a_batch_is_threaded_first_then_evaluated_by_threads(
    tmp_path, open_state
):
    """Two fresh mails from Jan with one subject share a link value (one component) but
    start two threads: with one key a batch, each thread is a batch of its own."""
    config = make_config(state_dir=tmp_path)
    d = Daemon(config, open_state(), now=lambda: NOW, reload=lambda: config)
    _sync(d, "anna", "INBOX", [
        fetched(("<q1@x>", [], "Quote", JAN, 5, None, (), "anna"), 1)[2],
        fetched(("<q2@x>", [], "Quote", JAN, 50, None, (), "anna"), 2)[2],
    ])
    with _batched(1), capture_logs() as logs:
        d.reevaluate()
    (done,) = [e for e in logs if e["event"] == "evaluated_by_components"]
    assert (done["batches"], done["threaded_first"]) == (2, 1)
    assert [e["keys"] for e in logs if e["event"] == "evaluated"] == [1, 1]
    assert sorted(r.key for r in d.store.pending_items()) == ["<q1@x>", "<q2@x>"]
    d.store.close()
