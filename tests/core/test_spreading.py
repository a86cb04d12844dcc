"""Spreading the mailboxes over the live nodes (`core.spreading.spread`)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from ackwatch.core.spreading import spread

MAILBOXES = [f"mb{i:02}" for i in range(10)]


def sizes(shares):
    return sorted(len(s) for s in shares.values())


def test_every_mailbox_goes_to_exactly_one_node():
    shares = spread(MAILBOXES, ["a", "b", "c"], {})
    assert sorted(m for s in shares.values() for m in s) == MAILBOXES


def test_no_node_holds_more_than_its_ceiling_while_another_has_room():
    assert sizes(spread(MAILBOXES, ["a", "b", "c"], {})) == [3, 3, 4]


def test_a_node_keeps_the_mailboxes_it_holds():
    holders = {"mb00": "b", "mb01": "b", "mb02": "a"}
    shares = spread(MAILBOXES[:4], ["a", "b"], holders)
    assert shares["b"] == {"mb00", "mb01"}
    assert shares["a"] == {"mb02", "mb03"}


def test_a_node_over_its_share_gives_up_only_the_surplus():
    holders = {m: "a" for m in MAILBOXES}  # "a" watched everything alone
    shares = spread(MAILBOXES, ["a", "b"], holders)
    assert len(shares["a"]) == len(shares["b"]) == 5
    assert shares["a"] < set(MAILBOXES)


def test_the_mailboxes_of_a_node_that_left_go_to_the_others():
    holders = {m: ["a", "b", "c"][i % 3] for i, m in enumerate(MAILBOXES)}
    shares = spread(MAILBOXES, ["a", "c"], holders)
    assert sizes(shares) == [5, 5]
    for node in ("a", "c"):
        assert {m for m, h in holders.items() if h == node} <= shares[node]


def test_a_node_joining_takes_its_share_from_the_fullest():
    holders = {m: ["a", "b"][i % 2] for i, m in enumerate(MAILBOXES)}
    shares = spread(MAILBOXES, ["a", "b", "c"], holders)
    assert sizes(shares) == [3, 3, 4]
    moved = sum(1 for m in MAILBOXES if m not in shares[holders[m]])
    assert moved == 3


def test_no_live_node_no_shares():
    assert spread(MAILBOXES, [], {}) == {}


def test_more_nodes_than_mailboxes_leaves_some_idle():
    shares = spread(["x"], ["a", "b"], {})
    assert sizes(shares) == [0, 1]


def test_the_same_inputs_give_the_same_shares_in_any_order():
    holders = {"mb03": "c", "mb07": "a"}
    one = spread(MAILBOXES, ["a", "b", "c"], holders)
    two = spread(list(reversed(MAILBOXES)), ["c", "a", "b"], dict(reversed(holders.items())))
    assert one == two


names = st.lists(st.text("abcdef", min_size=1, max_size=3), unique=True, max_size=12)


@given(
    mailboxes=st.lists(st.text("mnopqrst", min_size=1, max_size=3), unique=True, max_size=40),
    nodes=names.filter(bool),
    data=st.data(),
)
def test_spreading_properties(mailboxes, nodes, data):
    holder_names = [*nodes, "gone"]
    holders = {
        m: data.draw(st.sampled_from(holder_names)) for m in mailboxes if data.draw(st.booleans())
    }
    shares = spread(mailboxes, nodes, holders)
    assigned = [m for s in shares.values() for m in s]
    assert sorted(assigned) == sorted(mailboxes)  # each exactly once
    assert set(shares) == set(nodes)
    ceiling = math.ceil(len(mailboxes) / len(nodes))
    assert max(sizes(shares)) <= ceiling
    assert max(sizes(shares)) - min(sizes(shares)) <= 1  # nobody over while another has room
    # Few moves: a live holder keeps min(held, its quota) of what it holds.
    for node in nodes:
        held = {m for m, h in holders.items() if h == node}
        assert len(held & shares[node]) == min(len(held), len(shares[node]))
    assert spread(mailboxes, nodes, holders) == shares  # deterministic
