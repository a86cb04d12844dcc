"""Several nodes sharing the mailboxes (`daemon.cluster`): the nodes' heartbeats, the
mailbox leases, the leadership with its epoch, the fence on the outbox, and the leader's
requests to re-check a mailbox another node watches.

Every time is the database's clock (`SqlDatabase.CLOCK`, seconds since the epoch), so
the nodes' own clocks never decide who holds what. Each claim is one conditional
statement (an insert, or an update of a lease that has expired or is the claimer's own),
so two nodes can never both win the same mailbox or the same term. The tables are
ephemeral: `migrate-state` does not copy them, a node that starts writes its own rows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ackwatch.store.database import CHUNK, chunked
from ackwatch.store.records import ClusterView, NameHolder, NodeRecord, NotLeading, Term

if TYPE_CHECKING:
    from ackwatch.store.tables import SqlDatabase


class QueueFence:
    """The term every write that queues mail is fenced by (`Store.fence_queueing`),
    handed to the table groups that queue mail (`outbox.Outbox`, `asks.Asks`).

    The send is fenced by `Leases.outbox_fence`; this fences the queueing: a leader
    paused between its leadership check and the write would otherwise queue an item
    the next leader queues too, two mails with two Message-IDs."""

    def __init__(self, db: SqlDatabase):
        self._db = db
        self._term: Term | None = None

    def fence_queueing(self, term: Term | None) -> None:
        self._term = term

    def check(self, c: Any) -> None:
        """Within the caller's write transaction: `NotLeading` (the transaction then
        stores nothing) unless the term's node still leads in it by the database's
        clock. No term: one node, nothing to check."""
        term = self._term
        if term is None:
            return
        row = c.execute(
            "SELECT 1 FROM leadership WHERE id = 1 AND node = ? AND epoch = ?"
            f" AND expires_at > {self._db.CLOCK}",
            (term.node, term.epoch),
        ).fetchone()
        if row is None:
            raise NotLeading(f"node {term.node} no longer leads in epoch {term.epoch}:"
                             " nothing queued")


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


class Leases:
    """The nodes, mailbox_leases and leadership tables, and `outbox.epoch`."""

    def __init__(self, db: SqlDatabase):
        self._db = db
        self._now = db.CLOCK

    def heartbeat(self, node: str, *, instance: str = "", starting: bool = False,
                  stale_after: float | None = None) -> NameHolder | None:
        """Say that ``node``, run by the process ``instance``, is alive (``starting``:
        and that it has just started). The name is ``instance``'s if it was already, if
        nobody had it, or (``stale_after``) if its holder has not said it was alive for
        that many seconds; else nothing is written and the holder is returned. A process
        that takes a name ends that name's term as leader: its own term, if it leads,
        begins with a new epoch."""
        now = self._now
        with self._db.write() as c:
            row = c.execute(
                "INSERT INTO nodes (name, instance, started_at, heartbeat_at)"
                f" VALUES (?, ?, {now}, {now})"
                " ON CONFLICT(name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,"
                " instance = excluded.instance"
                + (", started_at = excluded.started_at" if starting else "")
                + " WHERE nodes.instance = excluded.instance"
                + (f" OR nodes.heartbeat_at <= {now} - ?" if stale_after is not None else "")
                + " RETURNING name",
                (node, instance) + ((float(stale_after),) if stale_after is not None else ()),
            ).fetchone()
            if row is None:
                held = c.execute("SELECT instance, heartbeat_at FROM nodes WHERE name = ?",
                                 (node,)).fetchone()
                return NameHolder(str(held[0]), float(held[1]))
            if starting:
                c.execute("UPDATE leadership SET expires_at = 0 WHERE node = ?", (node,))
        return None

    def cluster_view(self) -> ClusterView:
        """The nodes, the live leases and the live leadership, in one read."""
        c = self._db.conn
        now = float(c.execute(f"SELECT {self._now}").fetchone()[0])
        nodes = tuple(
            NodeRecord(r[0], _utc(r[1]), _utc(r[2]), max(0.0, now - r[2]))
            for r in c.execute(
                "SELECT name, started_at, heartbeat_at FROM nodes ORDER BY name"
            ).fetchall()
        )
        rows = c.execute(
            "SELECT mailbox, node, expires_at FROM mailbox_leases WHERE expires_at > ?"
            " ORDER BY mailbox", (now,),
        ).fetchall()
        lead = c.execute(
            "SELECT node, epoch FROM leadership WHERE id = 1 AND expires_at > ?", (now,)
        ).fetchone()
        return ClusterView(
            nodes=nodes,
            leases={r[0]: r[1] for r in rows},
            expires_in={r[0]: float(r[2]) - now for r in rows},
            leader=lead[0] if lead else None,
            epoch=int(lead[1]) if lead else 0,
        )

    def claim_leases(self, node: str, mailboxes: Iterable[str], seconds: float) -> set[str]:
        """Take or renew, for ``seconds``, the leases of ``mailboxes`` that are free,
        expired or ``node``'s own; returns the ones ``node`` now holds. A lease another
        node holds and has not let expire is left alone.

        One conditional upsert per `CHUNK` mailboxes, each a transaction of its own
        (`write_one`): a round that renews a node's hundred leases is one round trip,
        not a hundred (each one a wait for the interpreter on a busy node), and holds
        no lease's row lock past its statement. Each lease stands alone, so a claim cut
        off between two chunks leaves valid leases (renewed at the next round, or left
        to expire)."""
        names = sorted(set(mailboxes))
        held: set[str] = set()
        for start in range(0, len(names), CHUNK):
            chunk = names[start:start + CHUNK]
            rows = self._db.write_one(
                "INSERT INTO mailbox_leases (mailbox, node, expires_at) VALUES "
                + ", ".join([f"(?, ?, {self._now} + ?)"] * len(chunk))
                + " ON CONFLICT(mailbox) DO UPDATE SET node = excluded.node,"
                " expires_at = excluded.expires_at"
                " WHERE mailbox_leases.node = excluded.node"
                f" OR mailbox_leases.expires_at <= {self._now}"
                " RETURNING mailbox",
                [v for m in chunk for v in (m, node, float(seconds))],
            )
            held.update(r[0] for r in rows)
        return held

    def release_leases(self, node: str, mailboxes: Iterable[str] | None = None) -> None:
        """Give up ``node``'s leases of ``mailboxes`` (None: all of them), one
        ``DELETE`` per `CHUNK` mailboxes. Its watchers of them must have stopped first."""
        with self._db.write() as c:
            if mailboxes is None:
                c.execute("DELETE FROM mailbox_leases WHERE node = ?", (node,))
                return
            for _ in chunked(c, "DELETE FROM mailbox_leases WHERE node = ? AND mailbox IN ({})",
                             (node,), sorted(set(mailboxes))):
                pass

    def take_leadership(self, node: str, seconds: float) -> int | None:
        """Lead (or go on leading) for ``seconds``: the term's epoch, or None when another
        node leads and its term has not expired. A node that takes over, or renews a term
        that had expired, gets a new epoch: whatever it did in an older one is fenced.
        One statement, a transaction of its own (`write_one`): every node's round
        touches this one row, and a busy node must not hold its lock while it waits to
        send COMMIT."""
        now = self._now
        rows = self._db.write_one(
            "INSERT INTO leadership (id, node, epoch, expires_at)"
            f" VALUES (1, ?, 1, {now} + ?)"
            " ON CONFLICT(id) DO UPDATE SET node = excluded.node,"
            " expires_at = excluded.expires_at,"
            " epoch = CASE WHEN leadership.node = excluded.node"
            f" AND leadership.expires_at > {now}"
            " THEN leadership.epoch ELSE leadership.epoch + 1 END"
            f" WHERE leadership.node = excluded.node OR leadership.expires_at <= {now}"
            " RETURNING epoch",
            (node, float(seconds)),
        )
        return int(rows[0][0]) if rows else None

    def leave(self, node: str, *, instance: str = "") -> None:
        """``node`` stops: its leases, its leadership and its row go, so that the others
        take over at their next round instead of after the lease time. Nothing happens
        when another process (``instance``) holds the name now."""
        with self._db.write() as c:
            held = c.execute("SELECT instance FROM nodes WHERE name = ?", (node,)).fetchone()
            if held is not None and held[0] != instance:
                return
            c.execute("DELETE FROM mailbox_leases WHERE node = ?", (node,))
            c.execute("UPDATE leadership SET expires_at = 0 WHERE node = ?", (node,))
            c.execute("DELETE FROM nodes WHERE name = ?", (node,))

    def forget_nodes(self, older_than: float) -> None:
        """Delete the rows of nodes silent for more than ``older_than`` seconds (killed,
        never back), so that `status --nodes` does not list them for ever."""
        with self._db.write() as c:
            c.execute(f"DELETE FROM nodes WHERE heartbeat_at < {self._now} - ?",
                      (float(older_than),))

    def outbox_fence(self, outbox_id: int, node: str, epoch: int) -> bool:
        """Mark an outbox row as being sent in term ``epoch``, if ``node`` still leads in
        that term (by the database's clock) and the row is still pending: one statement,
        so a node that lost the leadership can never begin a send. True: go ahead."""
        with self._db.write() as c:
            cur = c.execute(
                "UPDATE outbox SET epoch = ? WHERE id = ? AND state = 'pending'"
                " AND EXISTS (SELECT 1 FROM leadership WHERE id = 1 AND node = ?"
                f" AND epoch = ? AND expires_at > {self._now})",
                (epoch, outbox_id, node, epoch),
            )
            return cur.rowcount == 1

    def ask_recheck(self, node: str, mailboxes: Iterable[str]) -> int:
        """Ask ``node`` to re-check the sent folders of ``mailboxes`` (it watches them);
        the request's id."""
        with self._db.write() as c:
            row = c.execute(
                "INSERT INTO recheck_requests (node, mailboxes, asked_at)"
                f" VALUES (?, ?, {self._now}) RETURNING id",
                (node, json.dumps(sorted(set(mailboxes)))),
            ).fetchone()
        return int(row[0])

    def recheck_requests(self, node: str) -> dict[int, list[str]]:
        """The requests to ``node`` not answered yet: id -> mailboxes."""
        rows = self._db.conn.execute(
            "SELECT id, mailboxes FROM recheck_requests WHERE node = ? AND done IS NULL"
            " ORDER BY id", (node,),
        ).fetchall()
        return {int(r[0]): json.loads(r[1]) for r in rows}

    def answer_recheck(self, request: int, done: Iterable[str], failed: Iterable[str]) -> None:
        with self._db.write() as c:
            c.execute("UPDATE recheck_requests SET done = ?, failed = ? WHERE id = ?",
                      (json.dumps(sorted(done)), json.dumps(sorted(failed)), request))

    def recheck_answers(
        self, requests: Iterable[int]
    ) -> Mapping[int, tuple[frozenset[str], frozenset[str]]]:
        """The answered ones of ``requests``: id -> (re-checked, could not be)."""
        ids = sorted(set(requests))
        rows = self._db.rows_in(
            "SELECT id, done, failed FROM recheck_requests WHERE done IS NOT NULL"
            " AND id IN ({})", (), ids,
        ) if ids else ()
        return {int(r[0]): (frozenset(json.loads(r[1])), frozenset(json.loads(r[2])))
                for r in rows}

    def forget_rechecks(self, requests: Iterable[int]) -> None:
        """The leader is done with these requests (answered or given up on)."""
        with self._db.write() as c:
            c.executemany("DELETE FROM recheck_requests WHERE id = ?",
                          [(r,) for r in sorted(set(requests))])
