"""`ackwatch run --once` then `ackwatch status` on a live server (issue 3's acceptance).

Every situation of DESIGN.md's semantics, on real IMAP: replies in Sent, a reply from a
colleague's mailbox, CC to two watched mailboxes, auto-replies, an internal forward, a
form lead, a newsletter, \\Answered, the dismissal keyword, broken threading. Afterwards
exactly the mail that still waits is listed, and no flag of any message changed.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from tests.servers.imapserver import make_message
from tests.servers.postgres import database_yaml
from tests.support.run_once import ackwatch, write_config

pytestmark = pytest.mark.integration

NOW = dt.datetime.now(dt.UTC)


@pytest.mark.parametrize("state", ["sqlite", "postgresql"])
def test_run_once_then_status_lists_exactly_the_mail_that_waits(imap_server, tmp_path, state,
                                                                 request):
    anna, piotr = imap_server.add_user(), imap_server.add_user()
    t = NOW - dt.timedelta(hours=3)

    def at(minutes: int) -> dt.datetime:
        return t + dt.timedelta(minutes=minutes)

    def put(user, folder, raw, minutes, flags=()):
        return imap_server.append(user, folder, raw, flags=flags, internaldate=at(minutes))

    # 1. answered from anna's Sent folder -> not waiting
    put(anna, "INBOX", make_message(subject="Quote", sender="jan@acme.example",
                                    message_id="<q1@acme.example>"), 0)
    put(anna, "Sent", make_message(subject="Re: Quote", sender="anna@agency.example",
                                   to="jan@acme.example", in_reply_to="<q1@acme.example>"), 10)
    # 2. CC to anna and piotr, answered by piotr -> not waiting (a colleague's reply)
    cc = make_message(subject="Brief", sender="eva@acme.example",
                      to="anna@agency.example, piotr@agency.example",
                      message_id="<brief@acme.example>")
    put(anna, "INBOX", cc, 1)
    put(piotr, "INBOX", cc, 1)
    put(piotr, "Sent", make_message(subject="Re: Brief", sender="piotr@agency.example",
                                    to="eva@acme.example", in_reply_to="<brief@acme.example>"), 20)
    # 3. only forwarded internally -> still waiting
    put(anna, "INBOX", make_message(subject="Invoice question", sender="bill@acme.example",
                                    message_id="<inv@acme.example>"), 2)
    put(anna, "Sent", make_message(subject="Fwd: Invoice question", sender="anna@agency.example",
                                   to="piotr@agency.example", in_reply_to="<inv@acme.example>"), 5)
    # 4. our auto-reply to the client does not acknowledge -> still waiting
    put(anna, "INBOX", make_message(subject="Banner sizes", sender="grace@globex.example",
                                    message_id="<banner@globex.example>"), 3)
    put(anna, "Sent", make_message(
        subject="Automatic reply: Banner sizes", sender="anna@agency.example",
        to="grace@globex.example", in_reply_to="<banner@globex.example>",
        extra_headers=[("Auto-Submitted", "auto-replied")]), 4)
    # 5. a website form lead -> waiting, client is the Reply-To
    put(anna, "INBOX", make_message(subject="New contact form entry", sender="forms@agency.example",
                                    extra_headers=[("Reply-To", "lead@gmail.example")]), 6)
    # 6. newsletter, bounce, ignored sender, client auto-reply -> never items
    put(anna, "INBOX", make_message(subject="Weekly news", sender="news@list.example",
                                    extra_headers=[("List-Id", "<news.list.example>")]), 7)
    put(anna, "INBOX", make_message(subject="Undelivered Mail", sender="MAILER-DAEMON@mx.example",
                                    extra_headers=[("Return-Path", "<>")]), 8)
    put(anna, "INBOX", make_message(subject="Your invoice", sender="noreply@billing.example"), 9)
    put(anna, "INBOX", make_message(subject="Out of office", sender="ooo@acme.example",
                                    extra_headers=[("Auto-Submitted", "auto-replied")]), 11)
    # 7. \\Answered set by the mail program, and the dismissal keyword -> not waiting
    put(anna, "INBOX", make_message(subject="Thanks!", sender="jan@acme.example"), 12,
        flags=("\\Answered",))
    put(anna, "INBOX", make_message(subject="FYI only", sender="jan@acme.example"), 13,
        flags=("$Ackwatch-Done",))
    # 8. a mailer that broke In-Reply-To/References: threads by subject + participant
    put(anna, "INBOX", make_message(subject="Spring campaign budget", sender="zoe@acme.example",
                                    message_id="<budget@acme.example>"), 14)
    put(anna, "Sent", make_message(subject="RE: Spring campaign budget", sender="anna@agency.example",
                                   to="zoe@acme.example"), 30)

    before = {u: imap_server.flags_snapshot(u) for u in (anna, piotr)}
    database = ""
    if state == "postgresql":
        database = database_yaml(request.getfixturevalue("postgres_server"))
    cfg = write_config(tmp_path, imap_server, {"anna": anna, "piotr": piotr}, extra=database)
    run = ackwatch("run", "-c", str(cfg), "--once")
    assert run.returncode == 0, run.stderr

    status = ackwatch("status", "-c", str(cfg), "--json")
    assert status.returncode == 0, status.stderr
    waiting = {(i["from"], i["subject"]) for i in json.loads(status.stdout)}
    assert waiting == {
        ("bill@acme.example", "Invoice question"),
        ("grace@globex.example", "Banner sizes"),
        ("lead@gmail.example", "New contact form entry"),
    }
    items = {i["subject"]: i for i in json.loads(status.stdout)}
    assert items["Invoice question"]["client"] == "Acme"
    assert items["Invoice question"]["account"] == "anna@agency.example"
    assert items["Banner sizes"]["client"] is None  # unknown sender, tracked

    readable = ackwatch("status", "-c", str(cfg))
    assert "3 client emails waiting" in readable.stdout
    assert "anna" in readable.stdout and "up" in readable.stdout

    after = {u: imap_server.flags_snapshot(u) for u in (anna, piotr)}
    assert after == before, "ackwatch changed flags in a watched mailbox"

    # A second run is incremental and idempotent: nothing doubles.
    assert ackwatch("run", "-c", str(cfg), "--once").returncode == 0
    again = json.loads(ackwatch("status", "-c", str(cfg), "--json").stdout)
    assert len(again) == 3
    # The state is where the config says: no SQLite file beside a PostgreSQL state.
    assert (tmp_path / "state" / "ackwatch.sqlite3").exists() == (state == "sqlite")


def test_run_once_with_no_reachable_mailbox_fails_clearly(imap_server, tmp_path):
    user = imap_server.add_user()
    cfg = write_config(tmp_path, imap_server, {"anna": user})
    (tmp_path / "anna.pass").write_text("wrong-password\n")
    run = ackwatch("run", "-c", str(cfg), "--once")
    assert run.returncode != 0
    assert "no mailbox could be reached" in run.stderr
    assert "wrong-password" not in run.stderr + run.stdout


def test_one_failing_mailbox_does_not_stop_the_others(imap_server, tmp_path):
    good, bad = imap_server.add_user(), imap_server.add_user()
    imap_server.append(good, "INBOX", make_message(subject="Still tracked",
                                                   sender="jan@acme.example"))
    cfg = write_config(tmp_path, imap_server, {"anna": good, "piotr": bad})
    (tmp_path / "piotr.pass").write_text("wrong-password\n")
    run = ackwatch("run", "-c", str(cfg), "--once")
    assert run.returncode == 0, run.stderr
    items = json.loads(ackwatch("status", "-c", str(cfg), "--json").stdout)
    assert [i["subject"] for i in items] == ["Still tracked"]
    health = json.loads(ackwatch("status", "-c", str(cfg), "--json", "--mailboxes").stdout)
    assert {h["mailbox"]: h["state"] for h in health} == {"anna": "up", "piotr": "auth_failed"}


def test_answered_flag_set_later_on_a_follow_up_acknowledges_the_item(imap_server, tmp_path):
    user = imap_server.add_user()
    t = NOW - dt.timedelta(hours=2)
    imap_server.append(user, "INBOX", make_message(
        subject="Brief", sender="eva@acme.example", message_id="<brief-1@acme.example>"),
        internaldate=t)
    follow_up = imap_server.append(user, "INBOX", make_message(
        subject="Re: Brief", sender="eva@acme.example", message_id="<brief-2@acme.example>",
        in_reply_to="<brief-1@acme.example>"), internaldate=t + dt.timedelta(minutes=10))
    cfg = write_config(tmp_path, imap_server, {"anna": user})
    assert ackwatch("run", "-c", str(cfg), "--once").returncode == 0
    assert [i["subject"] for i in json.loads(ackwatch("status", "-c", str(cfg), "--json").stdout)
            ] == ["Brief"]
    imap_server.add_flags(user, "INBOX", follow_up, ["\\Answered"])  # replied from a phone
    assert ackwatch("run", "-c", str(cfg), "--once").returncode == 0
    assert json.loads(ackwatch("status", "-c", str(cfg), "--json").stdout) == []


@pytest.mark.parametrize("second_connection", ["allowed", "refused"])
def test_sent_folder_read_beside_the_inbox_or_after_it_acknowledges_alike(
    imap_server, tmp_path, monkeypatch, second_connection
):
    from ackwatch.config import load_config
    from ackwatch.daemon import once, service
    from ackwatch.mail import connection as imap
    from ackwatch.store.sqlite import SqliteStore as Store

    user = imap_server.add_user()
    t = NOW - dt.timedelta(hours=2)
    for n, answered in ((1, True), (2, False)):
        imap_server.append(user, "INBOX", make_message(
            subject=f"Brief {n}", sender="eva@acme.example",
            message_id=f"<brief-{n}@acme.example>"), internaldate=t)
        if answered:
            imap_server.append(user, "Sent", make_message(
                subject=f"Re: Brief {n}", sender="anna@agency.example", to="eva@acme.example",
                in_reply_to=f"<brief-{n}@acme.example>"), internaldate=t + dt.timedelta(minutes=5))
    config = load_config(write_config(tmp_path, imap_server, {"anna": user}))
    connect, opened = imap.connect, []

    def counting_connect(mb, **kw):
        opened.append(mb.name)
        if second_connection == "refused" and len(opened) > 1:
            raise imap.ImapError("too many connections")
        return connect(mb, **kw)

    monkeypatch.setattr(imap, "connect", counting_connect)
    store = Store.open(config.state_dir)
    try:
        daemon = service.Daemon(config, store)
        assert once.sync_once(daemon) == (["anna"], [])
        daemon.step()
        assert len(opened) == 2  # never more than two connections to a mailbox
        assert [i.subject for i in store.items(state="pending")] == ["Brief 2"]
        assert [i.subject for i in store.items(state="acknowledged")] == ["Brief 1"]
    finally:
        store.close()
