"""The report for a chosen period, as the board offers it for download: rendered as
``ackwatch report`` renders it (`reporting.render`), over the accounts the viewer
may see, with the promise figures in the JSON, the HTML page and the CSV summary as the
CLI adds them.

The daemon's memory is shared with the nudges (the unit caps it), so a download costs what
the CLI's streaming path costs: HTML and JSON are computed from the store's raw rows in
one pass, no object per item (`figures.compute_stored`), for up to 400 days, and so is the
CSV summary (``csv-summary``: a row per total, account and client); the CSV lists every
item and is limited to 93 days (longer: ``ackwatch report --format csv``). The app
prepares one download at a time.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ackwatch.config import Config
from ackwatch.core import promise_rules
from ackwatch.reporting import figures
from ackwatch.reporting.period import local_midnight
from ackwatch.reporting.render import render_report
from ackwatch.store import Store
from ackwatch.web.access import Viewer

FORMATS: Mapping[str, str] = {
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "csv-summary": "text/csv; charset=utf-8",
}
FORMAT_NAMES = "html, csv, csv-summary or json"
MAX_DAYS = 400  # a period longer than this is refused (a year and a bit)
MAX_CSV_DAYS = 93  # a row per item: a quarter at most from the daemon's memory
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


class BadRequest(ValueError):
    """The query asks for something the board does not offer (the text says what)."""


@dataclass(frozen=True)
class Request:
    format: str
    since: dt.date
    until: dt.date

    @property
    def filename(self) -> str:
        """``ackwatch-report-<since>-<until>.<format>``; the CSV summary is
        ``ackwatch-summary-<since>-<until>.csv`` (a spreadsheet opens it by its suffix)."""
        if self.format == "csv-summary":
            return f"ackwatch-summary-{self.since}-{self.until}.csv"
        return f"ackwatch-report-{self.since}-{self.until}.{self.format}"


def parse(query: Mapping[str, list[str]]) -> Request:
    """``format``, ``since`` and ``until`` (dates, ``until`` excluded), each once."""
    unknown = set(query) - {"format", "since", "until"}
    if unknown:
        raise BadRequest("unknown parameter")
    values: dict[str, str] = {}
    for key in ("format", "since", "until"):
        given = query.get(key, [])
        if len(given) != 1:
            raise BadRequest(f"give {key} once")
        values[key] = given[0]
    if values["format"] not in FORMATS:
        raise BadRequest(f"format is {FORMAT_NAMES}")
    try:
        if not (_DATE_RE.fullmatch(values["since"]) and _DATE_RE.fullmatch(values["until"])):
            raise ValueError
        since = dt.date.fromisoformat(values["since"])
        until = dt.date.fromisoformat(values["until"])
    except ValueError:
        raise BadRequest("dates are YYYY-MM-DD") from None
    if not since < until:
        raise BadRequest("the period is empty")
    if (until - since).days > MAX_DAYS:
        raise BadRequest(f"at most {MAX_DAYS} days")
    if values["format"] == "csv" and (until - since).days > MAX_CSV_DAYS:
        raise BadRequest(f"a CSV covers at most {MAX_CSV_DAYS} days (longer: ackwatch report)")
    return Request(values["format"], since, until)


def render(request: Request, store: Store, config: Config, viewer: Viewer,
           now: dt.datetime) -> bytes:
    since = local_midnight(request.since, config.timezone)
    until = local_midnight(request.until, config.timezone)
    if request.format == "csv":
        items = [i for i in store.report_rows(since, until, figures.ReportItem)
                 if viewer.sees(i.account)]
        report = figures.compute(items, config, since=since, until=until, now=now)
        return render_report(report, "csv").encode("utf-8")
    rows = store.report_rows(since, until, stored=True)
    report = figures.compute_stored(_visible(rows, viewer), config, since=since, until=until,
                                    now=now)
    try:
        promised = store.promise_rows(since, until)
    except store.errors:  # a state from before promises
        promised = []
    kept = promise_rules.figures(r for r in promised if viewer.sees(r[0]))
    return render_report(report, request.format, target=config.web.target,
                         promises=kept).encode("utf-8")


def _visible(rows: Iterable[tuple[Any, ...]], viewer: Viewer) -> Iterator[tuple[Any, ...]]:
    """The stored rows of the accounts ``viewer`` sees; a row's group is the JSON array
    ``[account, client, ...]``, decoded once per distinct group."""
    if viewer.accounts is None:
        yield from rows
        return
    seen: dict[str, bool] = {}
    for row in rows:
        group = row[0]
        shown = seen.get(group)
        if shown is None:
            shown = seen[group] = viewer.sees(json.loads(group)[0])
        if shown:
            yield row
