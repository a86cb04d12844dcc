"""`ackwatch backfill`: last month's service level on day one, without a single nudge."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from tests.servers.imapserver import make_message
from tests.servers.smtp import SmtpSink
from tests.support.run_once import ackwatch, write_config

pytestmark = pytest.mark.integration


def test_backfill_imports_old_history_silently_and_the_report_covers_it(imap_server, tmp_path):
    user = imap_server.add_user()
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(days=20)
    imap_server.append(user, "INBOX", make_message(
        subject="Old quote", sender="jan@acme.example", message_id="<old1@acme.example>"),
        internaldate=old)
    imap_server.append(user, "Sent", make_message(
        subject="Re: Old quote", sender="anna@agency.example", to="jan@acme.example",
        in_reply_to="<old1@acme.example>"), internaldate=old + dt.timedelta(hours=3))
    imap_server.append(user, "INBOX", make_message(
        subject="Never answered", sender="bill@acme.example"),
        internaldate=old + dt.timedelta(days=1))
    with SmtpSink() as sink:
        smtp = (f"smtp: {{host: 127.0.0.1, port: {sink.port}, security: none,"
                f" from: 'ackwatch <ackwatch@agency.example>'}}\n")
        cfg = write_config(tmp_path, imap_server, {"anna": user}, extra=smtp)
        assert ackwatch("run", "-c", str(cfg), "--once").returncode == 0
        assert json.loads(ackwatch("status", "-c", str(cfg), "--json").stdout) == []

        since = (old - dt.timedelta(days=2)).date().isoformat()
        result = ackwatch("backfill", "-c", str(cfg), "--since", since)
        assert result.returncode == 0, result.stderr
        assert "3 messages imported" in result.stdout

        # A second backfill adds nothing; a normal run sends nothing for old history.
        assert "0 messages imported" in ackwatch("backfill", "-c", str(cfg), "--since",
                                                  since).stdout
        assert ackwatch("run", "-c", str(cfg), "--once").returncode == 0
        assert sink.messages == []

    until = (now + dt.timedelta(days=1)).date().isoformat()
    rep = ackwatch("report", "-c", str(cfg), "--format", "json", "--since", since,
                   "--until", until)
    assert rep.returncode == 0, rep.stderr
    totals = json.loads(rep.stdout)["totals"]
    assert (totals["client_emails"], totals["acknowledged"], totals["overdue"]) == (2, 1, 1)
    items = json.loads(ackwatch("status", "-c", str(cfg), "--json").stdout)
    assert [(i["subject"], i["nudge"]) for i in items] == [("Never answered", "suppressed")]
