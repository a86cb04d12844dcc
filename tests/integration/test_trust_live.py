"""Spoofed agency senders against the real daemon on Dovecot (issue 18, DESIGN.md "Trust").

A mail from outside that wears an agency From must neither silence a client mail's nudge
nor send its account away; a colleague's real reply Cc'd to a watched shared inbox still
acknowledges when the agency's server vouches for it. Helpers and fixtures are
test_daemon's (a real ``ackwatch run`` process, Dovecot, an aiosmtpd sink).
"""

from __future__ import annotations

import datetime as dt
import time
from email.utils import formatdate
from pathlib import Path

import pytest
from tests.servers.imapserver import make_message
from tests.support.daemon import (
    ANNA,
    CLIENT,
    KASIA,
    client_mail,
    iso,
    item_ids,
    mails,
    started,
    times_mentioned,
    write_config,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

OFFICE = "office@agency.example"


def _now() -> str:
    return formatdate(time.time(), usegmt=True)


def from_outside() -> list[tuple[str, str]]:
    """The trace the agency's servers write on mail that came from the internet."""
    return [
        ("Received", "from mail.agency.example ([192.0.2.25]) by imap.agency.example with"
                     f" LMTP id 8Jm4Lx; {_now()}"),
        ("Received", "from mx.evil.example (mx.evil.example [203.0.113.5]) by"
                     f" mail.agency.example (Postfix) with ESMTPS id 4Xb2; {_now()}"),
        ("Authentication-Results", "mail.agency.example; dmarc=fail (p=none)"
                                   " header.from=agency.example"),
    ]


def wait_nudge_for(smtp, item: dict, message_id: str) -> None:
    left = (iso(item["nudge_at"]) - dt.datetime.now(dt.UTC)).total_seconds()
    wait_for(lambda: times_mentioned(smtp, message_id) >= 1, left + 15,
             f"the nudge for {message_id}")


def test_spoofed_agency_replies_in_a_watched_inbox_do_not_stop_the_nudge(
    dovecot, tmp_path, sink, ackwatch
):
    """(a) ``From: anna@agency.example <attacker@evil.example>`` (an address as display
    name) and a plain forged ``From: Anna Nowak <anna@agency.example>``, To the client,
    naming the client mail, delivered into Anna's INBOX: both client mails are nudged."""
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink, window="14s",
                       nudge_before="6s")
    d = started(ackwatch, cfg)

    spoofs = {
        "<spoof-display@acme.example>": "anna@agency.example <attacker@evil.example>",
        "<spoof-plain@acme.example>": "Anna Nowak <anna@agency.example>",
    }
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for mid, forged_from in spoofs.items():
        dovecot.append(user, "INBOX", client_mail(f"Quote {mid}", mid), internaldate=now)
        # Later by INTERNALDATE, as an answer comes.
        dovecot.append(user, "INBOX", make_message(
            subject=f"RE: Quote {mid}", sender=forged_from, to=CLIENT, in_reply_to=mid,
            body="Received, on it.\r\n", extra_headers=from_outside()),
            internaldate=now + dt.timedelta(seconds=2))
    items = {mid: d.wait_item(mid) for mid in spoofs}
    for mid, item in items.items():
        wait_nudge_for(sink, item, mid)
    nudged = mails(sink, "nudge")
    assert {a.addr_spec for m in nudged for a in m["To"].addresses} == {ANNA}
    assert sorted(i for m in nudged for i in item_ids(m)) == sorted(spoofs)
    assert {i["message_id"] for i in d.status()} == set(spoofs)  # still open
    assert d.stop() == 0


def test_spoofed_out_of_office_does_not_move_annas_nudge_to_her_manager(
    dovecot, tmp_path, sink, ackwatch
):
    """(b) A forged absence notice "from Anna" in a watched inbox: Anna (who has no
    backup) is not taken for away, so she, not her manager Kasia, gets the nudge."""
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink, window="14s",
                       nudge_before="6s")
    d = started(ackwatch, cfg)

    dovecot.append(user, "INBOX", make_message(
        subject="Automatic reply: Quote", sender="Anna Nowak <anna@agency.example>",
        to=CLIENT, body="I am out of the office until Monday.\r\n",
        extra_headers=[("Auto-Submitted", "auto-replied"), *from_outside()]))
    time.sleep(1.5)  # the notice is stored before the client mail comes
    mid = "<while-away@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Brief for the autumn launch", mid))
    wait_nudge_for(sink, d.wait_item(mid), mid)

    (nudge,) = mails(sink, "nudge")
    assert [a.addr_spec for a in nudge["To"].addresses] == [ANNA]
    assert KASIA not in {a.addr_spec for a in nudge["To"].addresses}
    assert d.stop() == 0


def _trusting(cfg: Path) -> None:
    """The agency's mail server as a trusted authserv-id and relay, in the config."""
    text = cfg.read_text()
    trusted = ("agency:\n  domains: [agency.example]\n  trust:\n"
               "    authserv_ids: [mail.agency.example]\n    relays: [192.0.2.25]\n")
    assert "agency:\n  domains: [agency.example]\n" in text
    cfg.write_text(text.replace("agency:\n  domains: [agency.example]\n", trusted))


def test_real_agency_reply_cc_to_a_watched_shared_inbox_acknowledges(
    dovecot, tmp_path, sink, ackwatch
):
    """(c) Kasia (no watched mailbox of her own) answers Anna's client with the shared
    office inbox in Cc; the agency's server vouches for it by Authentication-Results
    (one reply) or by its Received chain alone (another): no nudge for either. An
    unanswered control mail is nudged, so the daemon did look."""
    anna, office = dovecot.add_user(), dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (anna, ANNA), "office": (office, KASIA)},
                       sink, window="16s", nudge_before="6s")
    _trusting(cfg)
    d = started(ackwatch, cfg, mailboxes=2)

    lmtp = ("Received", "from mail.agency.example ([192.0.2.25]) by imap.agency.example"
                        f" with LMTP id 8Jm4Lx; {_now()}")
    submission = ("Received", "from [10.10.0.42] (unknown [83.24.115.7]) (Authenticated"
                              " sender: kasia@agency.example) by mail.agency.example"
                              f" (Postfix) with ESMTPSA id 4Xb2; {_now()}")
    results = ("Authentication-Results", "mail.agency.example; dkim=pass (2048-bit key)"
               " header.d=agency.example header.s=mail; dmarc=pass header.from=agency.example")
    vouched = {
        "<by-results@acme.example>": [results],
        "<by-relays@acme.example>": [lmtp, submission],
    }
    control = "<unanswered@acme.example>"
    for mid in (*vouched, control):
        dovecot.append(anna, "INBOX", client_mail(f"Quote {mid}", mid))
    for mid, trace in vouched.items():
        reply = make_message(subject=f"Re: Quote {mid}", sender="Kasia <kasia@agency.example>",
                             to=CLIENT, in_reply_to=mid, body="Thanks, we are on it.\r\n",
                             extra_headers=[("Cc", OFFICE), *trace])
        dovecot.append(office, "INBOX", reply)
    wait_nudge_for(sink, d.wait_item(control), control)
    time.sleep(1.0)  # anything still in flight

    assert [i for m in mails(sink, "nudge") for i in item_ids(m)] == [control]
    assert {i["message_id"] for i in d.status()} == {control}
    assert d.stop() == 0
