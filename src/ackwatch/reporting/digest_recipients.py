"""Who gets a weekly digest, and with which accounts' figures.

- A manager (an ``accounts[].manager``) gets the accounts they manage: their team.
- A mentor (an ``accounts[].mentor``) gets the accounts they mentor: a junior's figures
  reach the second pair of eyes too.

One digest per person and week: someone who manages some accounts and mentors others
gets one digest with all of them (each once, in config order), recorded once per week
under their address (`digest.week_key`). Its words follow what they are to the accounts in
it: "your team" for a manager, "the people you mentor" for someone who manages none of
them (`mentors_only`).
"""

from __future__ import annotations

from collections.abc import Collection

from ackwatch.config import Config


def recipients(config: Config) -> dict[str, tuple[str, ...]]:
    """Digest recipient address -> the accounts whose figures they get (config order)."""
    accounts: dict[str, dict[str, None]] = {}
    for acc in config.accounts:
        for reader in dict.fromkeys(a for a in (acc.manager, acc.mentor) if a):
            accounts.setdefault(reader, {})[acc.email] = None
    return {reader: tuple(emails) for reader, emails in accounts.items()}


def mentors_only(config: Config, recipient: str, accounts: Collection[str]) -> bool:
    """True when ``recipient`` manages none of ``accounts`` (and there are some): a
    mentor's digest, not a manager's."""
    reader = recipient.lower()
    managed = {a.email for a in config.accounts if a.manager == reader}
    return bool(accounts) and managed.isdisjoint(a.lower() for a in accounts)
