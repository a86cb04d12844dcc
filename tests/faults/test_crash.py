"""kill -9 at random moments of a busy daemon (seeded), then a clean run to the end.

Afterwards, the ground truth of `tests.support.crash`: nothing lost, nothing nudged that
was answered, at most one duplicate per kill. On SQLite and on PostgreSQL. The 5-round
variant always runs; the 50-round one is ``slow`` (ACKWATCH_SLOW=1).
"""

from __future__ import annotations

import os
import random
import time

import pytest
from tests.faults.daemon_config import write_config
from tests.servers.postgres import database_yaml
from tests.support.crash import (
    Fed,
    assert_ground_truth,
    feed_round,
    kill_as_a_mail_is_accepted,
    wait_until_all_notified,
)
from tests.support.daemon import ANNA, started

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
    fed = Fed()
    t_end = time.monotonic() + 60 + rounds * 6
    for r in range(rounds):
        assert time.monotonic() < t_end, f"round {r}: the loop is too slow"
        if not d.alive():
            d = ackwatch(cfg)  # not waited for: the next kill may land during start-up
        feed_round(rng, dovecot, [user], fed, f"{seed}-{r}")
        sink.delay = rng.choice([0.0, 0.0, 0.3])  # widen the SMTP window sometimes
        if rng.random() < 0.25:
            kill_as_a_mail_is_accepted(sink, d)  # no mail due within 5 s: killed below
        time.sleep(rng.uniform(0.05, 2.5))
        if d.alive():
            d.kill9()
        else:
            d.proc.wait(5)
        fed.kills += 1
    sink.delay = 0.0

    d = started(ackwatch, cfg)
    wait_until_all_notified(sink, fed, ("nudge",))
    time.sleep(2.0)
    assert d.stop() == 0
    assert_ground_truth(sink, cfg, fed)


def test_kill_9_five_rounds(dovecot, tmp_path, sink, ackwatch):
    crash_rounds(dovecot, tmp_path, sink, ackwatch, rounds=5, seed=20260611)


def test_kill_9_five_rounds_on_postgresql(dovecot, tmp_path, sink, ackwatch, postgres_server):
    crash_rounds(dovecot, tmp_path, sink, ackwatch, rounds=5, seed=20260611,
                 database=database_yaml(postgres_server))


@pytest.mark.slow
def test_kill_9_fifty_rounds(dovecot, tmp_path, sink, ackwatch):
    seed = int(os.environ.get("ACKWATCH_CRASH_SEED", "424242"))
    crash_rounds(dovecot, tmp_path, sink, ackwatch, rounds=50, seed=seed)
