"""Re-evaluating only the threads new mail can touch gives what evaluating everything gives.

After each change the daemon (`evaluation.Evaluator.reevaluate`, `_scope`, with the store's
links, threads and dirty tables) evaluates only the whole threads (as last evaluated) of
the changed mail and of every stored mail sharing a `threads.link_values` value with it.
These tests replay random arrivals batch by batch into two real daemons, each with its own
state, through the watchers' own event values (no network): one takes each batch as it
does after new mail (`Daemon.refresh_if_changed`), the other evaluates everything after
each batch, with the threads found anew (`Daemon.reevaluate` with a history start, as
`backfill` does). The stored items and threads must be the same.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from tests.support.random_mail import ANNA, JAN, MAIL_SPEC, MARTA, T0, fetched

from ackwatch.daemon.evaluation import MESSAGE_HISTORY
from ackwatch.daemon.service import Daemon
from ackwatch.mail.sync import FolderCursor, FolderSync, FolderSyncEvent
from ackwatch.mail.uidfetch import FetchedMessage
from ackwatch.store.sqlite import SqliteStore as Store
from configfactory import make_config

NOW = T0 + dt.timedelta(days=41)  # after every arrival (at most 40 days after T0)


def _post(d: Daemon, arrivals: list[tuple[str, str, FetchedMessage]]) -> None:
    """Put the arrivals on the daemon's queue, one sync event per folder, as the
    watchers do (the folder's cursor moves past its new mail)."""
    folders: dict[tuple[str, str], list[FetchedMessage]] = {}
    for mailbox, folder, m in arrivals:
        folders.setdefault((mailbox, folder), []).append(m)
    for (mailbox, folder), messages in sorted(folders.items()):
        d.post(FolderSyncEvent(mailbox, FolderSync(
            folder, "sent" if folder == "Sent" else "inbox",
            FolderCursor(1, max(m.uid for m in messages)), new_messages=tuple(messages),
        )))


def _scoped(d: Daemon) -> None:
    """What the daemon does after new mail: apply the events, evaluate what they touch."""
    d.refresh_if_changed()


def _everything(d: Daemon) -> None:
    """Apply the events, then evaluate every stored mail with the threads found anew."""
    d.drain_events()
    d.reevaluate(history_since=NOW - MESSAGE_HISTORY)


def _tables(store: Store) -> dict[str, list[tuple]]:
    c = store._conn
    return {
        "items": [tuple(r) for r in c.execute("SELECT * FROM items ORDER BY key")],
        "members": [tuple(r) for r in c.execute("SELECT * FROM item_members ORDER BY 1, 2")],
        "threads": [tuple(r) for r in c.execute("SELECT * FROM threads ORDER BY key")],
    }


@contextlib.contextmanager
def _daemons(*names: str) -> Iterator[list[Daemon]]:
    """A daemon for each name, each with a state of its own, at `NOW`."""
    with tempfile.TemporaryDirectory() as tmp:
        config = make_config(state_dir=Path(tmp))  # one config: one evaluation fingerprint
        daemons = [Daemon(config, Store.open(Path(tmp) / name), now=lambda: NOW,
                          reload=lambda: config) for name in names]
        try:
            yield daemons
        finally:
            for d in daemons:
                d.store.close()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(MAIL_SPEC, min_size=1, max_size=4), min_size=1, max_size=6))
def test_scoped_reevaluation_finds_the_same_items_as_a_full_one(batches):
    with _daemons("scoped", "full") as (scoped, full), capture_logs() as logs:
        uid = 0
        for n, batch in enumerate(batches):
            arrivals = []
            for spec in batch:
                uid += 1
                arrivals.append(fetched(spec, uid))
            for d in (scoped, full):
                _post(d, arrivals)
            _scoped(scoped)
            _everything(full)
            assert _tables(scoped.store) == _tables(full.store), f"after batch {n + 1}"
    # Only the first evaluation of the scoped daemon was a full one (nothing evaluated
    # yet); every later one evaluated only what its batch touched.
    fulls = [e["full"] for e in logs if e["event"] == "evaluated"]
    assert fulls.count(True) == len(batches) + 1


def test_a_reply_only_loads_its_own_thread():
    with _daemons("scoped") as (d,):
        _post(d, [
            ("anna", "INBOX", fetched(("<q1@x>", [], "Quote", JAN, 0, None, (), "anna"), 1)[2]),
            ("anna", "INBOX",
             fetched(("<o1@x>", [], "Invoice", MARTA, 1, None, (), "anna"), 2)[2]),
        ])
        _scoped(d)
        answer = fetched(("<r1@x>", ["<q1@x>"], "Re: Quote", ANNA, 2, None, (), "anna"), 3)
        _post(d, [answer])
        with capture_logs() as logs:
            _scoped(d)
        (evaluated,) = [e for e in logs if e["event"] == "evaluated"]
        assert (evaluated["full"], evaluated["keys"]) == (False, 2)  # the reply, its mail
        states = {r.key: r.state for r in d.store.items()}
        assert states == {"<q1@x>": "acknowledged", "<o1@x>": "pending"}
