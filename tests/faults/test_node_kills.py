"""kill -9 of a random node of three, at random moments (seeded): three ``ackwatch run
--node`` processes on one PostgreSQL state, one Dovecot with three mailboxes, one SMTP
sink, a 3 s lease renewed every second.

Each round feeds client mail into random mailboxes, then kills one node chosen at random
(the leader or a follower, whichever the dice say) after a random pause, or, one round in
four, the leader right as the SMTP server accepts a mail from it; the killed node is
started again at once under the same name. Afterwards the ground truth of
`tests.support.crash`: every unanswered mail nudged and escalated, nothing for mail
answered before its nudge was due, at most one duplicate (same Message-ID) per kill.
The 5-round variant always runs; the 50-round one is ``slow`` (ACKWATCH_SLOW=1).
"""

from __future__ import annotations

import os
import random
import time

import pytest
from tests.support.crash import (
    Fed,
    assert_ground_truth,
    feed_round,
    kill_as_a_mail_is_accepted,
    wait_until_all_notified,
)
from tests.support.nodes import cluster_view, nodes_config
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]

NODES = ("n1", "n2", "n3")


def node_kill_rounds(dovecot, tmp_path, sink, ackwatch, postgres, *, rounds: int,
                     seed: int) -> None:
    rng = random.Random(seed)
    cfg, users = nodes_config(tmp_path, dovecot, postgres, mailboxes=3, smtp_port=sink.port,
                              window="6s", nudge_before="3s", escalate_after="0s",
                              batch_window="0s", max_per_hour=10_000, imap_timeout=5)
    nodes = {n: ackwatch(cfg, args=("--node", n)) for n in NODES}

    def start_dead() -> None:
        for name, d in nodes.items():
            if not d.alive():
                nodes[name] = ackwatch(cfg, args=("--node", name))

    def all_held() -> bool:
        view = cluster_view(cfg)
        return len(view.leases) == len(users) and view.leader is not None
    # The first spread completes: what arrives later is live mail, never "history".
    wait_for(all_held, 30, "every mailbox held and a leader", step=0.2)
    for d in nodes.values():
        d.wait_event("mailbox_up")
    fed = Fed()
    t_end = time.monotonic() + 60 + rounds * 8
    for r in range(rounds):
        assert time.monotonic() < t_end, f"round {r}: the loop is too slow"
        start_dead()  # not waited for: the next kill may land during start-up
        feed_round(rng, dovecot, users, fed, f"{seed}-{r}")
        sink.delay = rng.choice([0.0, 0.0, 0.3])  # widen the SMTP window sometimes
        leader = cluster_view(cfg).leader if rng.random() < 0.25 else None
        if leader is not None and kill_as_a_mail_is_accepted(sink, nodes[leader]):
            fed.kills += 1  # the leader, as it sent
            continue
        time.sleep(rng.uniform(0.05, 2.5))
        victim = nodes[rng.choice(NODES)]
        if victim.alive():
            victim.kill9()
            fed.kills += 1
    sink.delay = 0.0

    start_dead()
    wait_for(all_held, 30, "every mailbox held again and a leader", step=0.2)
    wait_until_all_notified(sink, fed, ("nudge", "escalation"), timeout=90)
    time.sleep(2.0)
    for d in nodes.values():
        assert d.stop() == 0, d.tail()
    assert_ground_truth(sink, cfg, fed, kinds=("nudge", "escalation"))


def test_kill_9_of_a_random_node_five_rounds_loses_nothing_and_doubles_at_most_one_per_kill(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    node_kill_rounds(dovecot, tmp_path, sink, ackwatch, postgres_server, rounds=5,
                     seed=20261205)


@pytest.mark.slow
def test_kill_9_of_a_random_node_fifty_rounds_loses_nothing_and_doubles_at_most_one_per_kill(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    seed = int(os.environ.get("ACKWATCH_CRASH_SEED", "424242"))
    node_kill_rounds(dovecot, tmp_path, sink, ackwatch, postgres_server, rounds=50, seed=seed)
