"""kill -9 at random moments of busy ``ackwatch run`` processes, and the ground truth
compared once they are done: shared by the one-node loop (`tests/faults/test_crash.py`)
and the several-nodes loop (`tests/cluster/test_node_kills.py`).

Each round feeds client mail (some answered at once from the sent folder), sometimes
arms a kill for the instant the SMTP sink accepts a mail (before the sender hears
"250"), and kills. Afterwards: every client mail is exactly one item, every unanswered
one got its nudge (and escalation), no answered one got any, at most one duplicate mail
per kill (a re-sent outbox row, so the same Message-ID), no mail left in the outbox, and
the database's integrity check says ok.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tests.servers.dovecot import DovecotServer
from tests.support.daemon import Ackwatch, client_mail, item_ids, mails, reply_mail, times_mentioned
from tests.support.waiting import wait_for

from ackwatch.config import load_config
from ackwatch.store import open_store

if TYPE_CHECKING:
    from tests.servers.smtp import SmtpSink


@dataclass
class Fed:
    """The client mail fed so far, and how many processes were killed."""

    unanswered: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    kills: int = 0


def feed_round(rng: random.Random, dovecot: DovecotServer, users: Sequence[str], fed: Fed,
               tag: str) -> None:
    """One or two client mails, each into a random one of ``users``' inboxes; 30% are
    answered at once (a reply in the sent folder a second later, before any nudge)."""
    for k in range(rng.randint(1, 2)):
        user = rng.choice(list(users))
        mid = f"<crash-{tag}-{k}@acme.example>"
        now = dt.datetime.now(dt.UTC)
        dovecot.append(user, "INBOX", client_mail(f"Busy {tag}/{k}", mid),
                       internaldate=now - dt.timedelta(seconds=2))
        if rng.random() < 0.3:
            dovecot.append(user, "Sent", reply_mail(mid, f"Busy {tag}/{k}"),
                           internaldate=now - dt.timedelta(seconds=1))
            fed.answered.append(mid)
        else:
            fed.unanswered.append(mid)


def kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def died_within(d: Ackwatch, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not d.alive():
            return True
        time.sleep(0.05)
    return False


def kill_as_a_mail_is_accepted(sink: SmtpSink, d: Ackwatch, seconds: float = 5.0) -> bool:
    """Kill ``d`` right as the sink accepts a mail, before ``d`` hears "250"; False if
    no mail came within ``seconds`` (``d`` is left running)."""
    sink.messages.on_append = lambda _m, pid=d.pid: kill_pid(pid)  # type: ignore[attr-defined]
    try:
        return died_within(d, seconds)
    finally:
        sink.messages.on_append = None  # type: ignore[attr-defined]


def wait_until_all_notified(sink: SmtpSink, fed: Fed, kinds: Sequence[str],
                            timeout: float = 60.0) -> None:
    wait_for(lambda: all(times_mentioned(sink, m, kind) >= 1
                         for m in fed.unanswered for kind in kinds),
             timeout, f"every unanswered mail in a {' and an '.join(kinds)}", step=0.2)


def assert_ground_truth(sink: SmtpSink, cfg: Path, fed: Fed,
                        kinds: Sequence[str] = ("nudge",)) -> None:
    """What the sink received and what the state holds, against what was fed; call
    once every process has stopped."""
    for kind in kinds:
        counts = {m: times_mentioned(sink, m, kind) for m in fed.unanswered + fed.answered}
        assert all(counts[m] >= 1 for m in fed.unanswered), (kind, counts)  # none lost
        assert all(counts[m] == 0 for m in fed.answered), (kind, {m: counts[m]
                                                                  for m in fed.answered})
        # A duplicate is a re-sent outbox record (same Message-ID), so it may mention
        # several items again; across *distinct* mails every item is in exactly one.
        distinct = {str(m["Message-ID"]): m for m in mails(sink, kind)}.values()
        mentions = Counter(k for m in distinct for k in item_ids(m))
        assert all(mentions[m] == 1 for m in fed.unanswered), (kind, mentions)
    ids = Counter(str(m["Message-ID"]) for m in mails(sink))
    duplicates = sum(n - 1 for n in ids.values())
    assert duplicates <= fed.kills, (duplicates, fed.kills)

    state = open_store(cfg.parent / "state", readonly=True, database=load_config(cfg).database)
    try:
        assert state.integrity_check() == "ok"  # type: ignore[attr-defined]
        rows = [(i.message_id, i.state, i.nudge_done, i.escalation_done)
                for i in state.items()]
        assert state.outbox_pending() == []
    finally:
        state.close()
    per_mid = Counter(r[0] for r in rows)
    assert sorted(per_mid) == sorted(fed.unanswered + fed.answered)
    assert set(per_mid.values()) == {1}, per_mid  # every item exactly once
    states = {r[0]: r[1:] for r in rows}
    assert all(states[m] == ("acknowledged", None, None) for m in fed.answered), states
    assert all(states[m][1] == "sent" for m in fed.unanswered), states
    if "escalation" in kinds:
        assert all(states[m][2] == "sent" for m in fed.unanswered), states
