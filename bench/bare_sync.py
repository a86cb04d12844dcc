"""The baseline for target 1: a bare imapclient script doing what ackwatch's first sync
does on the wire (EXAMINE, UID SEARCH SINCE, UID FETCH of the same header fields in
batches of 500) for INBOX and Sent, keeping the results in memory. No parsing, no state.
The SEARCH is ackwatch's: ``YOUNGER n SINCE date`` where the server has WITHIN
(`ackwatch.mail.sync.backfill_criteria`, written out here so that this script imports no
more of ackwatch than the header list).

    bare_sync.py HOST PORT USER PASSWORD SINCE(YYYY-MM-DD)
"""

from __future__ import annotations

import datetime as dt
import math
import sys

from imapclient import IMAPClient

from ackwatch.core.message import HEADER_FIELDS


def main() -> None:
    host, port, user, password, since = sys.argv[1:6]
    item = f"BODY.PEEK[HEADER.FIELDS ({' '.join(f.upper() for f in HEADER_FIELDS)})]"
    items = ["UID", "INTERNALDATE", "FLAGS", item]
    c = IMAPClient(host, int(port), ssl=False)
    c.login(user, password)
    kept = []
    day = dt.date.fromisoformat(since)
    criteria: list[object] = ["SINCE", day]
    if c.has_capability("WITHIN"):
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        margin = dt.timedelta(days=3)  # ackwatch.mail.sync.YOUNGER_MARGIN
        criteria = ["YOUNGER", math.ceil((dt.datetime.now(dt.UTC) - start + margin)
                                         .total_seconds()), *criteria]
    for folder in ("INBOX", "Sent"):
        c.select_folder(folder, readonly=True)
        uids = sorted(c.search(criteria))
        for i in range(0, len(uids), 500):
            kept.extend(c.fetch(uids[i : i + 500], items).items())
    c.logout()
    print(len(kept))


if __name__ == "__main__":
    main()
