"""Whether acknowledgements said by when: the figures beside the service level (pure).

The agency's standard is an acknowledgement that says the mail arrived, that someone is
on it, and by when it will be ready. The promise keeper reads the text of acknowledgements
it saw arrive live; each acknowledged client email of a period is then one of:

- **with date**: the acknowledgement named a date (the keeper recorded a promise);
- **without date**: its text was read and named none;
- **not read**: the keeper did not read a text: history imported at the first start,
  ``promise.enabled: false``, acknowledged by the \\Answered flag or the dismissal
  keyword, no text part, the read failed or is not done yet, or acknowledged before
  ackwatch kept this. Never counted as either of the other two.

``date_share = with / (with + without)``; None when nothing was read. The three counts
add up to the acknowledged client emails of the group: the store gives the reads (a few
a day, `Store.ack_date_rows`), "not read" is the rest of the report's acknowledged count,
so a year's report reads no extra row per item. Groups are those of the report:
per account, and per client (the client's name, else the sender's domain).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ackwatch.reporting.figures import Report, client_group

FOUND_DATE = "date"
FOUND_NO_DATE = "no_date"


@dataclass(frozen=True, slots=True)
class DateFigures:
    with_date: int = 0
    without_date: int = 0
    not_read: int = 0

    @property
    def date_share(self) -> float | None:
        read = self.with_date + self.without_date
        return self.with_date / read if read else None


@dataclass(frozen=True)
class DateReport:
    totals: DateFigures = DateFigures()
    by_account: Mapping[str | None, DateFigures] = field(default_factory=dict)
    by_client: Mapping[str, DateFigures] = field(default_factory=dict)
    found: Mapping[str, str] = field(default_factory=dict)  # item key -> date | no_date

    def account(self, name: str | None) -> DateFigures:
        return self.by_account.get(name, DateFigures())

    def client(self, name: str | None) -> DateFigures:
        return self.by_client.get(name or "", DateFigures())


def date_figures(
    rows: Iterable[tuple[str | None, str | None, str | None, str, str, int]],
    report: Report,
    *,
    accounts: Iterable[str] | None = None,
) -> DateReport:
    """The figures of the acknowledgements read (``rows``: ``Store.ack_date_rows``, item
    key or None, account, client, client address, found, count) beside ``report``'s
    (``found`` per item: only from per-item rows, for the CSV): what was not read
    is the rest of each group's acknowledged emails. ``accounts``: only those accounts'
    rows (a manager's team, whose `Report` holds only theirs)."""
    team = None if accounts is None else set(accounts)
    read: dict[tuple[int, str | None], list[int]] = {}  # (side, name) -> [with, without]
    found: dict[str, str] = {}
    for key, account, client, address, what, n in rows:
        if team is not None and account not in team:
            continue
        dated = what == FOUND_DATE
        for side_key in ((0, account), (1, client_group(client, address)), (2, None)):
            counts = read.setdefault(side_key, [0, 0])
            counts[0 if dated else 1] += n
        if key is not None:
            found[key] = what

    def figures(side: int, name: str | None, acknowledged: int) -> DateFigures:
        with_date, without_date = read.get((side, name), (0, 0))
        return DateFigures(with_date, without_date,
                           max(0, acknowledged - with_date - without_date))  # fmt: skip

    return DateReport(
        figures(2, None, report.totals.acknowledged),
        {g.name: figures(0, g.name, g.figures.acknowledged) for g in report.by_account},
        {g.name or "": figures(1, g.name, g.figures.acknowledged) for g in report.by_client},
        found,
    )


def share_text(f: DateFigures) -> str:
    """"75%", or "–" when nothing was read."""
    share = f.date_share
    return "–" if share is None else f"{share * 100:.0f}%"


def figures_dict(f: DateFigures) -> dict[str, object]:
    """The JSON fields of a group."""
    share = f.date_share
    return {
        "acks_with_date": f.with_date,
        "acks_without_date": f.without_date,
        "acks_not_read": f.not_read,
        "date_share": None if share is None else round(share, 4),
    }


__all__ = [
    "FOUND_DATE",
    "FOUND_NO_DATE",
    "DateFigures",
    "DateReport",
    "date_figures",
    "figures_dict",
    "share_text",
]
