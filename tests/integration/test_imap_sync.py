"""Read-only IMAP sync and the mailbox watcher, against Dovecot and pymap."""

from __future__ import annotations

import dataclasses
import datetime as dt
import imaplib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs
from tests.faults.proxy import FaultProxy
from tests.servers.dovecot import DovecotServer
from tests.servers.imapserver import ImapTestServer, make_message
from tests.servers.pymapserver import PymapServer
from tests.support.watcher_events import (
    NOW,
    StartWatcher,
    append_mail,
    health_is,
    new_mail,
    watchers,
)

from ackwatch.config import Folders, MailboxConfig, SyncConfig
from ackwatch.core.message import parse_message
from ackwatch.mail.connection import AuthError, ImapError, connect, logout
from ackwatch.mail.folders import discover_folders
from ackwatch.mail.sync import (
    FolderCursor,
    FolderSync,
    FolderSyncEvent,
    backfill_criteria,
    folder_changed,
    sync_folder,
)
from ackwatch.mail.uidfetch import FetchedMessage, _raw_uid_fetch, to_message
from ackwatch.mail.watcher import HealthEvent

pytestmark = pytest.mark.integration

SINCE = (NOW - dt.timedelta(days=7)).date()
BODY_MARKER = "BODY-MARKER-never-fetched-7f3a"


# ---------------------------------------------------------------------------- helpers


@pytest.fixture
def client(mailbox_config: MailboxConfig, resolve) -> Iterator:
    c = connect(mailbox_config, resolve=resolve)
    try:
        yield c
    finally:
        logout(c)


@pytest.fixture
def start_watcher(resolve) -> Iterator[StartWatcher]:
    with watchers(resolve=resolve) as start:
        yield start


class WireSpy:
    """Records every command line sent by imaplib, per thread."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[tuple[str, bytes]] = []
        original = imaplib.IMAP4.send
        spy = self

        def send(self_imap, data):  # type: ignore[no-untyped-def]
            spy.sent.append((threading.current_thread().name, bytes(data)))
            return original(self_imap, data)

        monkeypatch.setattr(imaplib.IMAP4, "send", send)

    def commands(self, thread: str | None = None) -> list[str]:
        out = []
        for name, data in self.sent:
            if thread is None or name == thread:
                out.append(data.decode("latin-1").upper())
        return out


# ---------------------------------------------------------------------------- sync


def test_initial_sync_fetches_only_mail_since_backfill(imap_server, imap_user, client):
    old = append_mail(imap_server, imap_user, internaldate=NOW - dt.timedelta(days=30))
    recent = append_mail(imap_server, imap_user, internaldate=NOW - dt.timedelta(days=1),
                     subject="Brief for the autumn campaign")  # fmt: skip
    newest = append_mail(imap_server, imap_user, internaldate=NOW)

    result = sync_folder(client, "INBOX", "inbox", None, since=SINCE, pending_uids=())

    assert result.reset
    assert [m.uid for m in result.new_messages] == [recent, newest]
    assert result.cursor.last_uid >= newest > old
    first = result.new_messages[0]
    assert first.internaldate == NOW - dt.timedelta(days=1)
    assert first.internaldate.tzinfo is not None
    assert first.internaldate.utcoffset() == dt.timedelta(0)
    assert b"Subject: Brief for the autumn campaign" in first.header_bytes
    assert BODY_MARKER.encode() not in first.header_bytes
    assert first.gm_thrid is None
    assert parse_message(
        first.header_bytes, mailbox="m", folder="INBOX", role="inbox", uid=first.uid,
        received=first.internaldate,
    ).subject == "Brief for the autumn campaign"  # fmt: skip

    again = sync_folder(client, "INBOX", "inbox", result.cursor, since=SINCE, pending_uids=())
    assert not again.reset and again.new_messages == ()
    assert again.cursor.last_uid == result.cursor.last_uid


def test_backfill_search_finds_exactly_what_since_finds(imap_server, imap_user, client):
    """Where the server has WITHIN, a looser YOUNGER goes first (cheaper on Dovecot); the
    hits are those of SINCE alone, at the edges of the day and for mail dated ahead."""
    start = dt.datetime.combine(SINCE, dt.time(), tzinfo=dt.UTC)
    uids = [
        append_mail(imap_server, imap_user, internaldate=when)
        for when in (
            NOW - dt.timedelta(days=30),
            start - dt.timedelta(days=1),
            start - dt.timedelta(seconds=1),
            start,
            start + dt.timedelta(hours=23, minutes=59),
            NOW,
            NOW + dt.timedelta(days=2),  # a sender's clock (or a server's) ahead
        )
    ]
    client.select_folder("INBOX", readonly=True)
    criteria = backfill_criteria(client, SINCE)
    assert ("YOUNGER" in criteria) == client.has_capability("WITHIN")
    found = sorted(int(u) for u in client.search(criteria))
    assert found == sorted(int(u) for u in client.search(["SINCE", SINCE]))
    assert set(uids[-4:]) <= set(found) and uids[0] not in found
    # A clock a day behind or ahead of the server's changes nothing.
    for skew in (dt.timedelta(days=-1), dt.timedelta(days=1)):
        skewed = backfill_criteria(client, SINCE, now=dt.datetime.now(dt.UTC) + skew)
        assert sorted(int(u) for u in client.search(skewed)) == found


def test_incremental_sync_picks_up_exactly_the_new_mail(imap_server, imap_user, client):
    append_mail(imap_server, imap_user)
    first = sync_folder(client, "INBOX", "inbox", None, since=SINCE)
    added = [append_mail(imap_server, imap_user, subject=f"Change {i}") for i in range(3)]

    second = sync_folder(client, "INBOX", "inbox", first.cursor, since=SINCE)

    assert not second.reset
    assert [m.uid for m in second.new_messages] == added
    assert second.cursor.last_uid == added[-1]
    third = sync_folder(client, "INBOX", "inbox", second.cursor, since=SINCE)
    assert third.new_messages == ()
    # Small batches give the same answer, each batch handed over as soon as it is read.
    batches: list[list[int]] = []
    batched = sync_folder(client, "INBOX", "inbox", None, since=SINCE, batch_size=2,
                          on_batch=lambda b: batches.append([m.uid for m in b]))
    assert [m.uid for m in batched.new_messages][-3:] == added
    assert [len(b) for b in batches] == [2, 2]
    assert [uid for b in batches for uid in b] == [m.uid for m in batched.new_messages]


def test_uid_fetch_star_past_the_end_returns_nothing_new(imap_server, imap_user, client):
    uids = [append_mail(imap_server, imap_user) for _ in range(2)]
    first = sync_folder(client, "INBOX", "inbox", None, since=SINCE)
    last = uids[-1]

    # The server quirk this guards against: "UID FETCH n:*" with n past every UID still
    # answers with the last message (RFC 3501: "*" is the largest UID in use).
    raw = _raw_uid_fetch(client, f"{last + 1}:*", ["UID", "FLAGS"])
    raw_text = b" ".join(p if isinstance(p, bytes) else b"".join(p) for p in raw)
    assert f"UID {last}".encode() in raw_text.upper() or raw == [], raw

    for cursor_last in (last, last + 10):
        cursor = FolderCursor(first.cursor.uidvalidity, cursor_last, first.cursor.highestmodseq)
        result = sync_folder(client, "INBOX", "inbox", cursor, since=SINCE)
        assert result.new_messages == ()
        assert result.cursor.last_uid == cursor_last


def test_sent_folder_is_discovered_by_special_use(dovecot_server: DovecotServer, resolve,
                                                  make_mailbox_config):  # fmt: skip
    user = dovecot_server.add_user()
    dovecot_server.create_folder(user, "Sent Items")  # a common name, but not \Sent
    dovecot_server.create_folder(user, "Outgoing", special_use="\\Sent")  # odd name, \Sent
    c = connect(make_mailbox_config(dovecot_server, user), resolve=resolve)
    try:
        inbox, sent = discover_folders(c, Folders())
        assert inbox == ["INBOX"]
        assert sorted(sent) == ["Outgoing", "Sent"]
        assert discover_folders(c, Folders(sent=("Sent Items",))) == (["INBOX"], ["Sent Items"])
    finally:
        logout(c)


def test_sent_folder_is_discovered_by_name(pymap_server: PymapServer, resolve,
                                           make_mailbox_config):  # fmt: skip
    user = pymap_server.add_user()
    pymap_server.create_folder(user, "Elementy wysłane")
    pymap_server.create_folder(user, "Archive")
    c = connect(make_mailbox_config(pymap_server, user), resolve=resolve)
    try:
        assert not c.has_capability("SPECIAL-USE")
        inbox, sent = discover_folders(c, Folders())
        assert inbox == ["INBOX"]
        assert sent == ["Sent", "Elementy wysłane"]
    finally:
        logout(c)


def test_answered_flag_change_is_seen_for_pending_uids(imap_server, imap_user, client):
    a = append_mail(imap_server, imap_user)
    b = append_mail(imap_server, imap_user)
    gone = append_mail(imap_server, imap_user)
    first = sync_folder(client, "INBOX", "inbox", None, since=SINCE)
    pending = {a, b, gone}
    assert not folder_changed(client, "INBOX", first.cursor) or not imap_server.has_condstore

    imap_server.add_flags(imap_user, "INBOX", a, ["\\Answered"])
    # pymap keeps no custom keywords (PERMANENTFLAGS without \*): use \Flagged there.
    keyword = "$Ackwatch-Done" if imap_server.has_keywords else "\\Flagged"
    imap_server.add_flags(imap_user, "INBOX", b, [keyword])
    imap_server.expunge(imap_user, "INBOX", gone)
    assert folder_changed(client, "INBOX", first.cursor, has_pending=True)

    result = sync_folder(client, "INBOX", "inbox", first.cursor, since=SINCE, pending_uids=pending)
    flags = dict(result.flag_updates)
    assert "\\Answered" in flags[a]
    assert keyword in flags[b]
    assert gone not in flags
    assert result.new_messages == ()

    # Nothing changed since: with CONDSTORE nothing is even fetched.
    quiet = sync_folder(client, "INBOX", "inbox", result.cursor, since=SINCE,
                        pending_uids={a, b})  # fmt: skip
    if imap_server.has_condstore:
        assert result.cursor.highestmodseq is not None
        assert quiet.flag_updates == ()
        assert not folder_changed(client, "INBOX", result.cursor, has_pending=True)
    else:
        assert result.cursor.highestmodseq is None
        assert dict(quiet.flag_updates) == {a: flags[a], b: flags[b]}
        assert folder_changed(client, "INBOX", result.cursor, has_pending=True)
        assert not folder_changed(client, "INBOX", result.cursor, has_pending=False)


def test_uidvalidity_change_resets_the_folder(imap_server, imap_user, client):
    imap_server.create_folder(imap_user, "Clients")
    append_mail(imap_server, imap_user, "Clients", subject="one")
    append_mail(imap_server, imap_user, "Clients", subject="two")
    first = sync_folder(client, "Clients", "inbox", None, since=SINCE)
    assert len(first.new_messages) == 2

    client.select_folder("INBOX", readonly=True)  # leave it, as the watcher would
    new_validity = imap_server.recreate_folder(imap_user, "Clients")
    assert folder_changed(client, "Clients", first.cursor)

    result = sync_folder(client, "Clients", "inbox", first.cursor, since=SINCE,
                         pending_uids={m.uid for m in first.new_messages})  # fmt: skip
    assert result.reset
    assert result.cursor.uidvalidity == new_validity != first.cursor.uidvalidity
    subjects = sorted(
        parse_message(
            m.header_bytes, mailbox="m", folder="Clients", role="inbox", uid=m.uid,
            received=m.internaldate,
        ).subject
        for m in result.new_messages
    )
    assert subjects == ["one", "two"]
    assert result.flag_updates == ()


def test_header_fetch_never_reads_bodies(imap_server, imap_user, mailbox_config, resolve,
                                         monkeypatch):  # fmt: skip
    spy = WireSpy(monkeypatch)
    uid = append_mail(imap_server, imap_user, body=f"{BODY_MARKER}\r\n" * 50)
    c = connect(mailbox_config, resolve=resolve)
    try:
        r = sync_folder(c, "INBOX", "inbox", None, since=SINCE)
        sync_folder(c, "INBOX", "inbox", r.cursor, since=SINCE, pending_uids={uid})
    finally:
        logout(c)
    assert [m.uid for m in r.new_messages] == [uid]
    assert BODY_MARKER.encode() not in r.new_messages[0].header_bytes

    fetches = [cmd for cmd in spy.commands() if " FETCH " in cmd]
    assert fetches
    for cmd in fetches:
        assert "RFC822" not in cmd and "BODY[" not in cmd and "BINARY" not in cmd, cmd
        assert "BODY.PEEK[]" not in cmd and "BODY.PEEK[TEXT]" not in cmd, cmd
    assert any("BODY.PEEK[HEADER.FIELDS (MESSAGE-ID " in cmd for cmd in fetches)
    for cmd in spy.commands():
        verb = cmd.split(" ")[1:3]
        assert "SELECT" not in verb and "STORE" not in verb and "EXPUNGE" not in verb, cmd

    if isinstance(imap_server, DovecotServer):  # the server's own accounting agrees
        deadline = time.monotonic() + 10

        def header_sessions() -> list[dict]:
            return [s for s in imap_server.session_stats(imap_user) if int(s["hdr_count"]) > 0]

        # Ours is logged when its imap process ends, possibly after the other sessions of
        # this user (the admin APPEND, ...) under load: wait for it, not for a count.
        while not header_sessions() and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = imap_server.session_stats(imap_user)
        ours = header_sessions()
        assert ours, stats
        assert all(int(s["body_count"]) == 0 and int(s["body_bytes"]) == 0 for s in stats)


def test_malformed_headers_do_not_crash(imap_server, imap_user, mailbox_config, fast_sync,
                                        start_watcher):  # fmt: skip
    nasty = [
        b"From: \xff\xfe broken <\r\nSubject: =?utf-8?B?not base64!?= \xc3\x28\r\n"
        b"Message-ID: <<<>>>\r\nDate: yesterday-ish\r\nReferences: " + b"<x@y> junk " * 2000
        + b"\r\n\r\nbody\r\n",
        b"no colon header line\r\nSubject: only junk before me\r\nTo: ,,,@,\r\n\r\nbody\r\n",
        b"Subject: =?x-unknown?Q?=FF=FE?=\r\nFrom: \"unterminated <a@b\r\n\r\n",
        b"\r\n\r\nno headers at all\r\n",
    ]
    uids = [imap_server.append(imap_user, "INBOX", raw, internaldate=NOW) for raw in nasty]
    good = append_mail(imap_server, imap_user, subject="fine")

    w, events = start_watcher(mailbox_config, fast_sync)
    events.wait(new_mail("INBOX", good))
    seen = {m.uid: m for e in events.drain() if isinstance(e, FolderSyncEvent)
            for m in e.sync.new_messages}  # fmt: skip
    assert set(uids) | {good} <= set(seen)
    for m in seen.values():
        parse_message(m.header_bytes, mailbox="m", folder="INBOX", role="inbox", uid=m.uid,
                      received=m.internaldate)  # fmt: skip
    later = append_mail(imap_server, imap_user, subject="after the junk")
    events.wait(new_mail("INBOX", later))
    assert w.is_alive() and w.health.state == "up"


def test_malformed_fetch_items_are_skipped_not_raised():
    assert to_message(5, {b"FLAGS": (b"\\Seen",)}) is None  # no header item
    odd = to_message(6, {b"INTERNALDATE": None, b"FLAGS": b"\\Seen",
                          b"BODY[HEADER.FIELDS (SUBJECT)]": None})  # fmt: skip
    assert isinstance(odd, FetchedMessage) and odd.header_bytes == b""
    assert odd.flags == frozenset({"\\Seen"}) and odd.internaldate.tzinfo is not None
    assert to_message(7, {b"INTERNALDATE": NOW, b"X-GM-THRID": b"x",
                           b"BODY[HEADER.FIELDS (SUBJECT)]": b""}) is None  # fmt: skip


# ---------------------------------------------------------------------------- watcher


def test_watcher_emits_new_mail_promptly_with_idle(imap_server, imap_user, mailbox_config,
                                                   start_watcher):  # fmt: skip
    first = append_mail(imap_server, imap_user)
    sync = SyncConfig(poll_interval=dt.timedelta(minutes=5), idle=True)  # only IDLE is fast
    w, events = start_watcher(mailbox_config, sync)
    events.wait(new_mail("INBOX", first))
    events.wait(health_is("up"))

    t0 = time.monotonic()
    uid = append_mail(imap_server, imap_user, subject="urgent")
    events.wait(new_mail("INBOX", uid), timeout=8)
    assert time.monotonic() - t0 < 8

    sent_uid = append_mail(imap_server, imap_user, "Sent", sender=f"{imap_user}@agency.example",
                       to="ceo@client.example", subject="Re: urgent")  # fmt: skip
    assert w.recheck(timeout=8)  # the sent folder is not IDLEd: recheck syncs it now
    assert sent_uid in events.synced_uids("Sent")
    assert events.synced_uids("INBOX").count(uid) == 1


def test_a_line_the_server_writes_in_pieces_during_idle_is_read_whole_not_as_a_cut(
    imap_server, imap_user, make_mailbox_config, start_watcher
):
    """pymap may write one response line in several writes; with only its first part
    arrived, IDLE waits for the rest of the line (a connection that is really cut is
    `test_cut_refused_and_cut_mid_response_reconnect_and_miss_no_mail`'s)."""
    with FaultProxy((imap_server.host, imap_server.port)) as proxy:
        mb = dataclasses.replace(make_mailbox_config(imap_server, imap_user), port=proxy.port)
        sync = SyncConfig(poll_interval=dt.timedelta(minutes=5), idle=True)  # only IDLE
        w, events = start_watcher(mb, sync)
        events.wait(health_is("up"))
        proxy.split = 0.3  # each piece the server sends: half now, half 0.3 s later
        uids = [append_mail(imap_server, imap_user, subject=f"in pieces {i}") for i in range(3)]
        for uid in uids:
            events.wait(new_mail("INBOX", uid), timeout=15)
        assert w.health.state == "up"
        assert [e.health.state for e in events.drain() if isinstance(e, HealthEvent)] == ["up"]
        assert proxy.connections == 1  # never reconnected


def test_sync_never_changes_flags(imap_server, imap_user, mailbox_config, start_watcher,
                                  monkeypatch):  # fmt: skip
    spy = WireSpy(monkeypatch)
    append_mail(imap_server, imap_user)
    append_mail(imap_server, imap_user, flags=["\\Flagged"])
    append_mail(imap_server, imap_user, flags=["\\Seen", "\\Answered"])
    append_mail(imap_server, imap_user, "Sent", flags=["\\Seen"])
    append_mail(imap_server, imap_user, "Sent")
    before = imap_server.flags_snapshot(imap_user)
    if isinstance(imap_server, DovecotServer):
        assert any("\\Recent" in f for f in before.values())  # so keeping it means something

    sync = SyncConfig(poll_interval=dt.timedelta(seconds=0.5), idle=True)
    w, events = start_watcher(mailbox_config, sync, pending=lambda folder: {1, 2, 3, 101, 102})
    events.wait(health_is("up"))
    late = append_mail(imap_server, imap_user, subject="during IDLE")
    events.wait(new_mail("INBOX", late))
    assert w.recheck(timeout=8)
    time.sleep(1.2)  # at least one poll round of the other folders
    w.stop(timeout=5)

    after = imap_server.flags_snapshot(imap_user)
    assert {k: v for k, v in after.items() if k in before} == before
    assert "\\Seen" not in after[("INBOX", late)]
    cmds = spy.commands(thread=w.name)
    assert any(" IDLE" in c for c in cmds) and any(" EXAMINE " in c for c in cmds)
    for c in cmds:
        words = c.split()
        assert not {"SELECT", "STORE", "EXPUNGE", "APPEND", "CREATE", "DELETE", "CLOSE",
                    "COPY", "MOVE", "SUBSCRIBE"} & set(words[1:2]), c  # fmt: skip


def _bytes_before_login(server: ImapTestServer) -> int:
    """What a server sends before a client's LOGIN: the greeting and imaplib's CAPABILITY."""
    with socket.create_connection((server.host, server.port), timeout=5) as raw:
        answer = raw.makefile("rb")
        size = len(answer.readline())
        raw.sendall(b"ABCD0 CAPABILITY\r\n")  # a tag as long as imaplib's first
        while not (line := answer.readline()).startswith(b"ABCD0 "):
            size += len(line)
        return size + len(line)


def test_a_connection_lost_during_login_is_a_network_error_not_refused_credentials(
    imap_server, imap_user, make_mailbox_config, resolve
):
    with FaultProxy((imap_server.host, imap_server.port)) as proxy:
        proxy.cut_after(_bytes_before_login(imap_server))  # LOGIN's answer never comes
        mb = dataclasses.replace(make_mailbox_config(imap_server, imap_user), port=proxy.port)
        with pytest.raises(ImapError, match="login aborted") as err:
            connect(mb, resolve=resolve)
        assert not isinstance(err.value, AuthError)  # retried soon, not blamed on the password
        assert imap_server.password(imap_user) not in str(err.value)
        proxy.cut_after(None)
        logout(connect(mb, resolve=resolve))  # the same credentials on a connection that holds


def test_wrong_password_is_auth_failed_and_others_keep_working(
    imap_server, imap_user, make_mailbox_config, resolve, start_watcher
):
    other = imap_server.add_user()
    wrong = "wrong-Hunter2-password"
    bad_mb = make_mailbox_config(imap_server, other, password=wrong)
    good_mb = make_mailbox_config(imap_server, imap_user)

    with pytest.raises(AuthError) as err:
        connect(bad_mb, resolve=resolve)
    assert wrong not in str(err.value) and other in str(err.value)

    sync = SyncConfig(poll_interval=dt.timedelta(seconds=1))
    with capture_logs() as logs:
        bad, bad_events = start_watcher(bad_mb, sync, auth_backoff_initial=0.2,
                                        auth_backoff_max=0.3)  # fmt: skip
        _good, good_events = start_watcher(good_mb, sync)
        bad_events.wait(health_is("auth_failed"))
        good_events.wait(health_is("up"))
        uid = append_mail(imap_server, imap_user)
        good_events.wait(new_mail("INBOX", uid))
        time.sleep(1.0)  # several more failed attempts
        assert bad.health.state == "auth_failed" and wrong not in (bad.health.last_error or "")
        assert bad.is_alive()
    assert [e for e in logs if e["event"] == "mailbox_auth_failed"].__len__() == 1
    assert all(wrong not in repr(e) for e in logs)
    assert sum(isinstance(e, HealthEvent) for e in bad_events.drain()) == 1
    assert not bad.recheck(timeout=1)


def test_server_restart_mid_session_reconnects(dovecot_server: DovecotServer,
                                               make_mailbox_config, start_watcher):  # fmt: skip
    user = dovecot_server.add_user()
    # A short socket timeout: a connection accepted by a login process that is shutting
    # down (its auth process already gone) hangs until the timeout.
    mb = make_mailbox_config(dovecot_server, user, timeout=3)
    first = dovecot_server.append(user, "INBOX", make_message(), internaldate=NOW)
    sync = SyncConfig(poll_interval=dt.timedelta(seconds=1))
    with capture_logs() as logs:
        _w, events = start_watcher(mb, sync, backoff_initial=0.2, backoff_max=0.5)
        events.wait(new_mail("INBOX", first))
        events.wait(health_is("up"))
        try:
            dovecot_server.stop()
            events.wait(health_is("backoff"), timeout=10)
            time.sleep(1.0)  # a few failed attempts while it is down
        finally:
            # Mark before restarting: the watcher may be up again before start() returns.
            seen = len(events.drain())
            dovecot_server.start()
        events.wait(lambda e: health_is("up")(e) and events.all.index(e) >= seen, timeout=20)
        uid = dovecot_server.append(user, "INBOX", make_message(subject="after restart"))
        events.wait(new_mail("INBOX", uid), timeout=10)
    assert len([e for e in logs if e["event"] == "mailbox_down"]) == 1
    assert events.synced_uids("INBOX").count(first) == 1  # the cursor survived


def test_security_none_is_refused_off_loopback(make_mailbox_config, pymap_server):
    user = pymap_server.add_user()
    mb = make_mailbox_config(pymap_server, user)
    with pytest.raises(ImapError, match="loopback"):
        connect(dataclasses.replace(mb, host="imap.example.org"), resolve=lambda ref: "x")


def test_folder_sync_value_is_frozen():
    fs = FolderSync("INBOX", "inbox", FolderCursor(1, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fs.folder = "x"  # type: ignore[misc]


def test_tls_and_starttls_verify_the_certificate(tls_dovecot: DovecotServer, resolve,
                                                 make_mailbox_config):  # fmt: skip
    user = tls_dovecot.add_user()
    plain = make_mailbox_config(tls_dovecot, user)
    tls = dataclasses.replace(plain, security="tls", port=tls_dovecot.tls_port,
                              ca_file=tls_dovecot.cert_file)  # fmt: skip
    for mb in (tls, dataclasses.replace(tls, security="starttls", port=tls_dovecot.port)):
        c = connect(mb, resolve=resolve)
        try:
            assert c.select_folder("INBOX", readonly=True)[b"READ-ONLY"] == [b""]
        finally:
            logout(c)
    for mb in (dataclasses.replace(tls, ca_file=None),
               dataclasses.replace(tls, security="starttls", port=tls_dovecot.port, ca_file=None)):  # fmt: skip
        with pytest.raises(ImapError, match="CERTIFICATE_VERIFY_FAILED") as err:
            connect(mb, resolve=resolve)
        assert tls_dovecot.password(user) not in str(err.value)


def test_starttls_is_never_skipped(pymap_server: PymapServer, resolve, make_mailbox_config):
    user = pymap_server.add_user()  # this pymap runs with --no-tls: no STARTTLS offered
    mb = dataclasses.replace(make_mailbox_config(pymap_server, user), security="starttls")
    with pytest.raises(ImapError, match="STARTTLS") as err:
        connect(mb, resolve=resolve)
    assert not isinstance(err.value, AuthError)
