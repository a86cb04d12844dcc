"""The watchers' reads of the state (their cursors, a folder's pending UIDs): on one
read-only connection they share, not one per sync (`daemon/watchers.py`)."""

from __future__ import annotations

import threading

from ackwatch.daemon.watchers import SharedReader, _patiently, stored_cursors, stored_pending_uids
from ackwatch.store import Store, StoreUnavailable
from ackwatch.store.sqlite import SqliteStore


def counting_reader_opens(store: SqliteStore) -> list[Store]:
    opened: list[Store] = []
    open_reader = store.open_reader

    def counted() -> Store:
        opened.append(open_reader())
        return opened[-1]

    store.open_reader = counted  # type: ignore[method-assign]
    return opened


def test_the_watchers_reads_share_one_connection_opened_at_the_first(tmp_path):
    store = SqliteStore.open(tmp_path)
    opened = counting_reader_opens(store)
    shared = SharedReader(store)
    assert opened == []

    def sync_reads(mailbox: str) -> None:
        for _ in range(20):
            assert stored_pending_uids(shared, mailbox, "INBOX") == set()
        assert stored_cursors(shared, mailbox) == {}

    readers = [threading.Thread(target=sync_reads, args=(f"mb{n}",)) for n in range(4)]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    assert len(opened) == 1
    shared.close()
    store.close()


def test_a_read_that_meets_a_lost_database_is_done_again_on_a_new_connection(tmp_path):
    store = SqliteStore.open(tmp_path)
    opened = counting_reader_opens(store)
    shared = SharedReader(store)
    used: list[Store] = []

    def read(reader: Store) -> dict:
        used.append(reader)
        if len(used) == 1:
            raise StoreUnavailable("the server is shutting down")
        return reader.cursors("anna")

    assert _patiently(shared, read) == {}
    assert len(opened) == 2 and used == opened
    shared.close()
    store.close()
