"""kill -9 at random moments of a busy daemon (seeded), then a clean run to the end.

Afterwards: every client mail is exactly one item, every unanswered one got its nudge,
no answered one got any, at most one duplicate mail per crash, no mail left in the
outbox, and the database's integrity check says ok. On SQLite and on PostgreSQL. The 5-round variant always runs; the
50-round one is ``slow`` (ACKWATCH_SLOW=1).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import time
from collections import Counter

import pytest
from tests.faults.daemon_config import write_config
from tests.servers.postgres import database_yaml
from tests.support.daemon import (
    ANNA,
    client_mail,
    item_ids,
    mails,
    reply_mail,
    started,
    times_mentioned,
)
from tests.support.waiting import wait_for

from ackwatch.config import load_config
from ackwatch.store import open_store

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]


def crash_rounds(dovecot, tmp_path, sink, ackwatch, *, rounds: int, seed: int,
                 database: str = "") -> None:
    """``database``: a config's ``database`` section (the state in PostgreSQL)."""
    rng = random.Random(seed)
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=sink.port,
                       window="6s", nudge_before="3s", batch_window="0s",
                       max_per_hour=10_000, imap_timeout=5)
    cfg.write_text(cfg.read_text() + database)
    # The first start completes: what arrives later is live mail, never "history".
    d = started(ackwatch, cfg)
    unanswered: list[str] = []
    answered: list[str] = []
    kills = 0
    t_end = time.monotonic() + 60 + rounds * 6
    for r in range(rounds):
        assert time.monotonic() < t_end, f"round {r}: the loop is too slow"
        if not d.alive():
            d = ackwatch(cfg)  # not waited for: the next kill may land during start-up
        for k in range(rng.randint(1, 2)):
            mid = f"<crash-{seed}-{r}-{k}@acme.example>"
            now = dt.datetime.now(dt.UTC)
            dovecot.append(user, "INBOX", client_mail(f"Busy {r}/{k}", mid),
                           internaldate=now - dt.timedelta(seconds=2))
            if rng.random() < 0.3:
                dovecot.append(user, "Sent", reply_mail(mid, f"Busy {r}/{k}"),
                               internaldate=now - dt.timedelta(seconds=1))
                answered.append(mid)
            else:
                unanswered.append(mid)
        sink.delay = rng.choice([0.0, 0.0, 0.3])  # widen the SMTP window sometimes
        if rng.random() < 0.25:
            # Kill right as the server accepts a mail, before the daemon hears "250".
            victim = d.pid
            sink.messages.on_append = lambda _m, pid=victim: _kill(pid)
            _died_within(d, 5.0)  # no mail due within 5 s: killed below instead
            sink.messages.on_append = None
        time.sleep(rng.uniform(0.05, 2.5))
        if d.alive():
            d.kill9()
        else:
            d.proc.wait(5)
        kills += 1
    sink.delay = 0.0

    d = started(ackwatch, cfg)
    wait_for(lambda: all(times_mentioned(sink, m) >= 1 for m in unanswered), 60,
             "a nudge for every unanswered mail", step=0.2)
    time.sleep(2.0)
    assert d.stop() == 0

    counts = {m: times_mentioned(sink, m) for m in unanswered + answered}
    assert all(counts[m] >= 1 for m in unanswered), counts  # no nudge lost
    assert all(counts[m] == 0 for m in answered), {m: counts[m] for m in answered}
    ids = Counter(str(m["Message-ID"]) for m in mails(sink))
    duplicates = sum(n - 1 for n in ids.values())
    assert duplicates <= kills, (duplicates, kills)
    # A duplicate is a re-sent outbox record (same Message-ID), so it may mention several
    # items again; across *distinct* mails every unanswered item is nudged exactly once.
    distinct = {str(m["Message-ID"]): m for m in mails(sink, "nudge")}.values()
    mentions = Counter(k for m in distinct for k in item_ids(m))
    assert all(mentions[m] == 1 for m in unanswered), mentions

    state = open_store(tmp_path / "state", readonly=True, database=load_config(cfg).database)
    try:
        assert state.integrity_check() == "ok"  # type: ignore[attr-defined]
        rows = [(i.message_id, i.state, i.nudge_done) for i in state.items()]
        assert state.outbox_pending() == []
    finally:
        state.close()
    per_mid = Counter(r[0] for r in rows)
    assert sorted(per_mid) == sorted(unanswered + answered)
    assert set(per_mid.values()) == {1}, per_mid  # every item exactly once
    states = {r[0]: (r[1], r[2]) for r in rows}
    assert all(states[m] == ("acknowledged", None) for m in answered), states
    assert all(states[m][1] == "sent" for m in unanswered), states


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _died_within(d, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not d.alive():
            return True
        time.sleep(0.05)
    return False


def test_kill_9_five_rounds(dovecot, tmp_path, sink, ackwatch):
    crash_rounds(dovecot, tmp_path, sink, ackwatch, rounds=5, seed=20260611)


def test_kill_9_five_rounds_on_postgresql(dovecot, tmp_path, sink, ackwatch, postgres_server):
    crash_rounds(dovecot, tmp_path, sink, ackwatch, rounds=5, seed=20260611,
                 database=database_yaml(postgres_server))


@pytest.mark.slow
def test_kill_9_fifty_rounds(dovecot, tmp_path, sink, ackwatch):
    seed = int(os.environ.get("ACKWATCH_CRASH_SEED", "424242"))
    crash_rounds(dovecot, tmp_path, sink, ackwatch, rounds=50, seed=seed)
