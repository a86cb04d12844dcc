"""The hourly cap (``notify.max_per_hour``), shared by the scheduler and the promise keeper.

A person gets at most ``max_per_hour`` mails from ackwatch per rolling hour, counting
every mail that reaches them: addressed To them, or with them in Cc (an escalation to
their manager copies them). Pure: the mails already queued come in as times per address.

Within one plan, mail To a person takes their room first; a Cc is kept only while the
copied person still has room. A manager's escalation is never held back because the
account it copies has had its fill: it goes out at once without that Cc.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

HOUR = dt.timedelta(hours=1)


class HourlyCap:
    """The room left per address during one plan (addresses compared case-insensitively)."""

    def __init__(
        self,
        limit: int,
        now: dt.datetime,
        reached_last_hour: Mapping[str, Sequence[dt.datetime]],
    ) -> None:
        self.limit = limit
        self.now = now
        self._times: dict[str, list[dt.datetime]] = {}
        for address, times in reached_last_hour.items():
            recent = [t for t in times if t > now - HOUR]
            self._times.setdefault(address.lower(), []).extend(recent)
        for times in self._times.values():
            times.sort()

    def room(self, address: str) -> int:
        return self.limit - len(self._times.get(address.lower(), ()))

    def take(self, address: str) -> None:
        """Count one more mail reaching ``address`` (queued now)."""
        self._times.setdefault(address.lower(), []).append(self.now)

    def free_at(self, address: str) -> dt.datetime:
        """When the oldest mail of the hour rolls out (``now + 1h`` when none is recorded)."""
        times = self._times.get(address.lower())
        return (min(times) if times else self.now) + HOUR

    def admit_cc(self, cc: Iterable[str]) -> tuple[str, ...]:
        """The Cc addresses that still have room, each counted; the others are left out."""
        kept = []
        for address in cc:
            if self.room(address) > 0:
                self.take(address)
                kept.append(address)
        return tuple(kept)
