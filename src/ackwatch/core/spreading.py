"""Which node watches which mailbox, when several nodes share the mailboxes.

A pure function of (mailboxes, live nodes, current leases): every node computes the
same answer from the same rows, so no node has to hand out work to the others. Each
node then claims the free leases assigned to it and releases the ones it holds beyond
its share (`daemon.cluster`); the database's conditional claim makes sure two nodes
never both win one mailbox, whatever they computed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType


def spread(
    mailboxes: Iterable[str], nodes: Iterable[str], holders: Mapping[str, str]
) -> Mapping[str, frozenset[str]]:
    """Each node's share of ``mailboxes``: every mailbox to exactly one node, each node
    ``M // N`` or ``M // N + 1`` of them (none above ``ceil(M/N)`` while another has
    room), and the mailboxes a node holds (``holders``: mailbox -> node) kept with it
    as far as that allows, so that a node joining or leaving moves few mailboxes.

    Deterministic: the same inputs give the same shares in every process. The nodes
    holding the most get the ``M % N`` larger shares (fewest moves), ties by name; what
    is left over goes to the nodes with room in name order. No nodes: no shares.
    """
    names = sorted(set(mailboxes))
    live = sorted(set(nodes))
    if not live:
        return MappingProxyType({})
    held: dict[str, list[str]] = {n: [] for n in live}
    free: list[str] = []
    for mailbox in names:
        holder = holders.get(mailbox)
        if holder in held:
            held[holder].append(mailbox)
        else:
            free.append(mailbox)
    base, extra = divmod(len(names), len(live))
    by_holdings = sorted(live, key=lambda n: (-len(held[n]), n))
    quota = {n: base + (1 if i < extra else 0) for i, n in enumerate(by_holdings)}
    shares: dict[str, list[str]] = {}
    for n in live:
        shares[n] = held[n][: quota[n]]
        free.extend(held[n][quota[n] :])
    free.sort()
    for n in live:
        room = quota[n] - len(shares[n])
        shares[n].extend(free[:room])
        del free[:room]
    return MappingProxyType({n: frozenset(shares[n]) for n in live})
