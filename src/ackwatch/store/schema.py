"""The schema of the state database: numbered migrations, the version in ``PRAGMA
user_version``. A writable open applies the missing steps, each in one transaction; a
migration, once released, is never edited (a change is a migration of its own)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ackwatch.store.records import StoreError

if TYPE_CHECKING:
    from ackwatch.store.database import Database
    from ackwatch.store.tables import SqlDatabase

# A stored time (`forms.iso`: ISO 8601 in UTC with microseconds,
# "2026-11-16T09:50:00.123456+00:00") as integer microseconds since the epoch, in SQL: exact
# (whole seconds from strftime, the six digits added), what `(t - epoch) //
# timedelta(microseconds=1)` gives in Python. Migration 5's generated columns are made of
# these two: they are part of schema 5 (a change means a migration of its own, not an edit
# here).
EPOCH_US_SQL = ("CAST(strftime('%s', substr({0}, 1, 19)) AS INTEGER) * 1000000"
                " + CAST(substr({0}, 21, 6) AS INTEGER)")
ACK_US_SQL = (
    "CASE WHEN ack_at IS NOT NULL AND ack_at != '' THEN " + EPOCH_US_SQL.format("ack_at") + " END"
)

# The columns of `items` up to schema 4 (migration 5 copies them).
_ITEMS_V4 = (
    "key, thread, message_id, client_address, client, subject, received, mailboxes, account,"
    " policy, clock, deadline, nudge_at, escalate_at, state, ack_key, ack_at, ack_kind,"
    " ack_by, follow_ups, first_seen, nudge_done, escalation_done, nudge_outbox,"
    " escalation_outbox"
)

# The items table's columns as migration 1 made them (migration 5 rebuilds the table).
_ITEMS_V1_COLUMNS = """
        key TEXT PRIMARY KEY,
        thread TEXT NOT NULL,
        message_id TEXT,
        client_address TEXT NOT NULL,
        client TEXT,
        subject TEXT NOT NULL,
        received TEXT NOT NULL,
        mailboxes TEXT NOT NULL,
        account TEXT,
        policy TEXT NOT NULL,
        clock TEXT NOT NULL,
        deadline TEXT NOT NULL,
        nudge_at TEXT NOT NULL,
        escalate_at TEXT,
        state TEXT NOT NULL,
        ack_key TEXT,
        ack_at TEXT,
        ack_kind TEXT,
        ack_by TEXT,
        follow_ups INTEGER NOT NULL DEFAULT 0,
        first_seen TEXT NOT NULL,
        nudge_done TEXT,
        escalation_done TEXT,
        nudge_outbox INTEGER,
        escalation_outbox INTEGER"""

# The keys of pending items' mail: each item's first message and its follow-ups.
PENDING_KEYS_SQL = (
    "SELECT key FROM items WHERE state = 'pending'"
    " UNION SELECT im.member_key FROM item_members im"
    " JOIN items i ON i.key = im.item_key WHERE i.state = 'pending'"
)

MIGRATIONS: tuple[str, ...] = (
    # 1: the initial schema
    """
    CREATE TABLE folders (
        mailbox TEXT NOT NULL,
        folder TEXT NOT NULL,
        role TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        last_uid INTEGER NOT NULL,
        highestmodseq INTEGER,
        synced_at TEXT NOT NULL,
        PRIMARY KEY (mailbox, folder)
    );
    CREATE TABLE messages (
        mailbox TEXT NOT NULL,
        folder TEXT NOT NULL,
        uid INTEGER NOT NULL,
        uidvalidity INTEGER NOT NULL,
        role TEXT NOT NULL,
        key TEXT NOT NULL,
        received TEXT NOT NULL,
        flags TEXT NOT NULL,
        answered_at TEXT,
        dismissed_at TEXT,
        gm_thrid INTEGER,
        headers BLOB NOT NULL,
        initial INTEGER NOT NULL DEFAULT 0,
        first_seen TEXT NOT NULL,
        PRIMARY KEY (mailbox, folder, uid)
    );
    CREATE INDEX messages_key ON messages (key);
    CREATE INDEX messages_received ON messages (received);
    CREATE TABLE items (""" + _ITEMS_V1_COLUMNS + """
    );
    CREATE INDEX items_state ON items (state);
    CREATE INDEX items_received ON items (received);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        recipient TEXT NOT NULL,
        cc TEXT NOT NULL,
        account TEXT,
        item_keys TEXT NOT NULL,
        message_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        sent_at TEXT
    );
    CREATE INDEX outbox_state ON outbox (state, next_attempt_at);
    CREATE INDEX outbox_recipient ON outbox (recipient, created_at);
    CREATE TABLE health (
        mailbox TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        since TEXT NOT NULL,
        last_error TEXT,
        last_sync TEXT
    );
    CREATE TABLE meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: promises. Of a body, only the promise's sentence is ever stored.
    """
    CREATE TABLE promises (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source_key TEXT NOT NULL UNIQUE,
        thread TEXT NOT NULL,
        item_key TEXT NOT NULL,
        account TEXT,
        client TEXT,
        client_address TEXT NOT NULL,
        subject TEXT NOT NULL,
        made_at TEXT NOT NULL,
        promised TEXT NOT NULL,
        remind_at TEXT,
        sentence TEXT NOT NULL,
        state TEXT NOT NULL,
        follow_key TEXT,
        settled_at TEXT,
        reminder_done TEXT,
        reminder_outbox INTEGER,
        overdue_done TEXT,
        overdue_outbox INTEGER,
        first_seen TEXT NOT NULL
    );
    CREATE INDEX promises_state ON promises (state);
    CREATE INDEX promises_made ON promises (made_at);
    CREATE TABLE promise_reads (
        key TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT,
        read_at TEXT NOT NULL
    );
    """,
    # 3: the follow-up messages of items, so their flags (\\Answered, the dismissal
    # keyword) are re-fetched too, not only the first message's.
    """
    CREATE TABLE item_members (
        item_key TEXT NOT NULL,
        member_key TEXT NOT NULL,
        PRIMARY KEY (item_key, member_key)
    );
    CREATE INDEX item_members_member ON item_members (member_key);
    """,
    # 4: re-evaluating only what new mail touches. `links`: every stored
    # mail's `threads.link_values` (no noise); `threads`: the thread of each key at its
    # last evaluation; `dirty`: keys stored, changed or removed since; `senders`: who sent
    # what when (an account's own mail tells whether it is away).
    # Mail stored before gets its links from `links.Links.build_links` (resumable, in batches).
    """
    CREATE TABLE links (
        link TEXT NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (link, key)
    ) WITHOUT ROWID;
    CREATE TABLE threads (
        key TEXT PRIMARY KEY,
        thread TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX threads_thread ON threads (thread);
    CREATE TABLE dirty (
        key TEXT PRIMARY KEY
    ) WITHOUT ROWID;
    CREATE TABLE senders (
        sender TEXT NOT NULL,
        received TEXT NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (sender, received, key)
    ) WITHOUT ROWID;
    INSERT INTO meta (name, value)
        SELECT 'links_after_rowid', '0' WHERE EXISTS (SELECT 1 FROM messages);
    """,
    # 5: an item's times also as integer microseconds since the epoch (`ackwatch report`
    # over a year reads them instead of parsing a million ISO strings twice). Generated STORED columns: SQLite computes them on every write, so no writer
    # changes and no way for them to disagree with the text; STORED (not VIRTUAL) so that
    # reading them costs nothing. SQLite cannot add a STORED column to a table, so `items`
    # is rebuilt, rowids kept (ties of received time stay in the order they had).
    """
    CREATE TABLE items_v5 (""" + _ITEMS_V1_COLUMNS + """,
        received_us INTEGER GENERATED ALWAYS AS (""" + EPOCH_US_SQL.format("received") + """) STORED,
        deadline_us INTEGER GENERATED ALWAYS AS (""" + EPOCH_US_SQL.format("deadline") + """) STORED,
        ack_us INTEGER GENERATED ALWAYS AS (""" + ACK_US_SQL + """) STORED
    );
    INSERT INTO items_v5 (rowid, """ + _ITEMS_V4 + """)
        SELECT rowid, """ + _ITEMS_V4 + """ FROM items ORDER BY rowid;
    DROP TABLE items;
    ALTER TABLE items_v5 RENAME TO items;
    CREATE INDEX items_state ON items (state);
    CREATE INDEX items_received ON items (received);
    """,
    # 6: whether a copy's header bytes hold Authentication-Results and Received (fetched
    # since ackwatch asks for them). A copy stored before keeps the trust it had
    # (`Message.legacy_fetch`); adding a column with a constant default rewrites nothing.
    """
    ALTER TABLE messages ADD COLUMN trace_headers INTEGER NOT NULL DEFAULT 0;
    """,
    # 7: whether an acknowledgement said by when. `promise_reads.text_read`: 1 when the
    # reply's text was read (its state then says whether it named a date), 0 when no copy
    # had a text part; NULL for reads recorded before (counted "not read": a "none" then
    # also stood for a text never read). `date_asks`: the "say by when" note of an item
    # (at most one): queued, sent, failed, cancelled, or skipped (a date followed).
    # `items_ack_key`: the report finds the items of the reads (a few) instead of joining
    # every item of a year to the reads.
    """
    ALTER TABLE promise_reads ADD COLUMN text_read INTEGER;
    CREATE INDEX items_ack_key ON items (ack_key);
    CREATE TABLE date_asks (
        item_key TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        outbox INTEGER,
        decided_at TEXT NOT NULL
    );
    CREATE INDEX date_asks_outbox ON date_asks (outbox);
    """,
    # 8: what the daemon asks at every step, answered from indexes rather than by reading
    # every pending item: the actions due by an instant, the next one after it, the
    # oldest pending item; and the outbox's last hour for the hourly cap.
    """
    CREATE INDEX items_nudge_due ON items (state, nudge_done, nudge_at);
    CREATE INDEX items_escalation_due ON items (state, escalation_done, escalate_at);
    CREATE INDEX items_state_received ON items (state, received);
    CREATE INDEX outbox_created ON outbox (created_at);
    """,
    # 9: which stored copies are of pending items' mail (`messages.pending`, kept by the
    # writers of items and copies), so that a folder sync reads its pending UIDs from a
    # partial index instead of building the set of every pending item's keys.
    """
    ALTER TABLE messages ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
    UPDATE messages SET pending = 1 WHERE key IN (""" + PENDING_KEYS_SQL + """);
    CREATE INDEX messages_pending ON messages (mailbox, folder, uid) WHERE pending = 1;
    """,
    # 10: several nodes sharing the mailboxes (`daemon.cluster`). `nodes`: who is alive
    # (the heartbeat); `mailbox_leases`: which node watches which mailbox, until when;
    # `leadership`: the one node that evaluates and sends, its epoch bumped at every new
    # term; `outbox.epoch`: the term that last began to send a row (the fence);
    # `recheck_requests`: the leader asking a mailbox's holder to re-check its sent
    # folders before a send (the mailboxes and the answer as JSON lists). Times
    # are seconds since the epoch by the database's clock (`CLOCK`), never a node's.
    # `dirty.seq`: which marking a dirty mark is, so that an evaluation deletes only the
    # marks it read (another node may mark a key again meanwhile). SQLite cannot add a
    # column with a non-constant default: `dirty` is rebuilt.
    """
    CREATE TABLE nodes (
        name TEXT PRIMARY KEY,
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL
    );
    CREATE TABLE mailbox_leases (
        mailbox TEXT PRIMARY KEY,
        node TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX mailbox_leases_node ON mailbox_leases (node);
    CREATE TABLE leadership (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        node TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        expires_at REAL NOT NULL
    );
    ALTER TABLE outbox ADD COLUMN epoch INTEGER;
    CREATE TABLE recheck_requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        node TEXT NOT NULL,
        mailboxes TEXT NOT NULL,
        asked_at REAL NOT NULL,
        done TEXT,
        failed TEXT
    );
    CREATE INDEX recheck_requests_node ON recheck_requests (node);
    CREATE TABLE dirty_v10 (
        key TEXT PRIMARY KEY,
        seq INTEGER NOT NULL DEFAULT (random())
    ) WITHOUT ROWID;
    INSERT INTO dirty_v10 (key) SELECT key FROM dirty;
    DROP TABLE dirty;
    ALTER TABLE dirty_v10 RENAME TO dirty;
    """,
    # 11: which process holds a node's name (`nodes.instance`, random at each start), so
    # that a second process started under the same name is refused instead of believing
    # it holds the first one's leases. '' for rows written before.
    """
    ALTER TABLE nodes ADD COLUMN instance TEXT NOT NULL DEFAULT '';
    """,
    # 12: what the promise keeper asks at every update, answered from indexes rather
    # than by reading every tracked promise: the reminders due by an instant, the open
    # promises whose instant passed, the promises a message follows up, the reads to
    # try again.
    """
    CREATE INDEX promises_reminder_due ON promises (state, reminder_done, remind_at);
    CREATE INDEX promises_state_promised ON promises (state, promised);
    CREATE INDEX promises_follow ON promises (follow_key);
    CREATE INDEX promise_reads_state ON promise_reads (state);
    """,
    # 13: the pending markers as rows of their own (`pending_copies`: a copy of a
    # pending item's mail, keyed as the copy is, with its message key for marking by
    # key) in place of `messages.pending`: marking 13k copies at a first evaluation
    # writes 13k short rows instead of rewriting each copy with its header bytes and
    # indexes; a folder's pending UIDs are a range of the primary key.
    """
    CREATE TABLE pending_copies (
        mailbox TEXT NOT NULL,
        folder TEXT NOT NULL,
        uid INTEGER NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (mailbox, folder, uid)
    ) WITHOUT ROWID;
    CREATE INDEX pending_copies_key ON pending_copies (key);
    INSERT INTO pending_copies (mailbox, folder, uid, key)
        SELECT mailbox, folder, uid, key FROM messages WHERE pending = 1;
    DROP INDEX messages_pending;
    ALTER TABLE messages DROP COLUMN pending;
    """,
    # 14: whom each outbox mail reaches (To and every Cc, lower-cased, once a mail), so
    # that the hourly cap reads the last hour of the few people a plan concerns from an
    # index instead of parsing every mail of the hour; filled from the outbox here, then
    # by every insert into it.
    """
    CREATE TABLE outbox_reach (
        address TEXT NOT NULL,
        created_at TEXT NOT NULL,
        outbox INTEGER NOT NULL,
        PRIMARY KEY (address, created_at, outbox)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO outbox_reach (address, created_at, outbox)
        SELECT lower(recipient), created_at, id FROM outbox
        UNION SELECT lower(j.value), o.created_at, o.id FROM outbox o, json_each(o.cc) j;
    """,
    # 15: the mails sent by kind (the metrics read them after every send), kept by the
    # writers of the outbox's state instead of counted over the whole outbox.
    """
    CREATE TABLE sent_counts (
        kind TEXT PRIMARY KEY,
        sent INTEGER NOT NULL
    );
    INSERT INTO sent_counts (kind, sent)
        SELECT kind, COUNT(*) FROM outbox WHERE state = 'sent' GROUP BY kind;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: Database) -> None:
    """Bring the database to `SCHEMA_VERSION`, one transaction a step; refuse a newer one."""
    version = db.user_version()
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{db.path}: schema version {version} is newer than this ackwatch "
            f"({SCHEMA_VERSION}); refusing to touch it"
        )
    for number in range(version, SCHEMA_VERSION):
        with db.write() as c:
            for statement in MIGRATIONS[number].split(";"):
                if statement.strip():
                    c.execute(statement)
            c.execute(f"PRAGMA user_version = {number + 1}")


def has_us_columns(db: SqlDatabase) -> bool:
    """Whether `items` has schema 5's microsecond columns (a read-only open of an
    older state is not migrated)."""
    return db.user_version() >= 5
