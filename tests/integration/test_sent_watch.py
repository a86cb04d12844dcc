"""Replies within seconds: the sent folder watched as quickly as the inbox.

The real daemon with a 10-minute poll, so that only the sent-folder watching can see a
reply within the wait: IMAP NOTIFY on Dovecot (``sync.watch_sent: auto``), and a second
connection IDLEing the sent folder on pymap, which has no NOTIFY (``watch_sent: idle``).
The waits are hang guards, not timing assertions (the latency is measured by
``bench/reply_latency.py``). Both watch read-only: every flag is as it was afterwards
(the promise keeper's BODY.PEEK of the reply included).
"""

from __future__ import annotations

import pytest
from tests.servers.imapserver import ImapTestServer
from tests.support.daemon import ANNA, Ackwatch, client_mail, reply_mail, started, write_config
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

HANG_GUARD = 30.0  # seconds; the poll would take 600


def reply_acknowledges(server: ImapTestServer, user: str, d: Ackwatch, mid: str) -> None:
    """A client mail, then its reply put into Sent: the item leaves `status` without a poll,
    and no flag of the mailbox changed meanwhile."""
    server.append(user, "INBOX", client_mail("Quote for the spring campaign", mid))
    d.wait_item(mid)
    server.append(user, "Sent", reply_mail(mid, "Quote for the spring campaign"))
    before = server.flags_snapshot(user)
    wait_for(lambda: all(i["message_id"] != mid for i in d.status()), HANG_GUARD,
             "the reply seen without a poll", step=0.2)
    assert d.stop() == 0
    assert server.flags_snapshot(user) == before, "ackwatch changed flags in a watched mailbox"


def test_a_reply_in_sent_is_acknowledged_through_notify_on_dovecot(dovecot, tmp_path, sink,
                                                                     ackwatch):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink, window="30m",
                       nudge_before="10m", poll_interval="10m")
    d = started(ackwatch, cfg)
    reply_acknowledges(dovecot, user, d, "<notify@acme.example>")
    assert not d.events("imap_notify_refused")


def test_a_reply_in_sent_is_acknowledged_through_watch_sent_idle_on_pymap(pymap_server, tmp_path,
                                                                         sink, ackwatch):
    user = pymap_server.add_user()
    cfg = write_config(tmp_path, pymap_server, {"anna": (user, ANNA)}, sink, window="30m",
                       nudge_before="10m", poll_interval="10m", watch_sent="idle")
    d = started(ackwatch, cfg)
    reply_acknowledges(pymap_server, user, d, "<sent-idle@acme.example>")
    # Two connections, each logged by its part of the mailbox. (pymap now and then ends
    # a session in the middle of a line while another session of the user changes the
    # mailbox; the watcher reconnects, so a part may come up twice.)
    assert {e["connection"] for e in d.events("mailbox_up")} == {"inbox", "sent"}


def test_without_notify_or_idle_on_sent_a_reply_waits_for_the_poll(dovecot, tmp_path, sink,
                                                                     ackwatch):
    """The control: with ``watch_sent: poll`` the same reply is not seen within the wait
    (what the two tests above prove is the sent-folder watching, not some other path)."""
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink, window="30m",
                       nudge_before="10m", poll_interval="10m", watch_sent="poll")
    d = started(ackwatch, cfg)
    mid = "<polled@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Quote for the spring campaign", mid))
    d.wait_item(mid)
    dovecot.append(user, "Sent", reply_mail(mid, "Quote for the spring campaign"))
    with pytest.raises(AssertionError):
        wait_for(lambda: all(i["message_id"] != mid for i in d.status()), 5.0,
                 "the reply (not expected before the poll)", step=0.5)
    assert d.stop() == 0
