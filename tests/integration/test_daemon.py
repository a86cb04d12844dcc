"""The daemon end to end: a real ``ackwatch run -c FILE`` process, real IMAP, real SMTP.

Every test writes a config with short calendar-clock windows (seconds) into tmp_path,
starts ``python -m ackwatch run`` as a subprocess against Dovecot (pymap too where it is
cheap) and an aiosmtpd sink, feeds mail through a separate admin IMAP connection and
watches what the sink receives. Waits are polls with deadlines, never fixed long sleeps.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import itertools
import os
import re
import signal
import sqlite3
import time

import pytest
from tests.servers.notifysocket import bound_notify_socket
from tests.support.daemon import (
    ANNA,
    CLIENT,
    KASIA,
    PIOTR,
    client_mail,
    html_part,
    iso,
    item_ids,
    mails,
    reply_mail,
    started,
    text_part,
    times_mentioned,
    write_config,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# How long a wait for what the daemon does may last before the test calls it hung: never
# reached on a healthy run, however loaded the machine.
HANG_GUARD_SECONDS = 120.0


# --------------------------------------------------------------------------- timing


def test_nudge_arrives_within_seconds_of_its_due_time(imap_server, tmp_path, sink, ackwatch):
    user = imap_server.add_user()
    cfg = write_config(tmp_path, imap_server, {"anna": (user, ANNA)}, sink)
    d = started(ackwatch, cfg)

    mid = "<due-time@acme.example>"
    imap_server.append(user, "INBOX", client_mail("Quote for the spring campaign", mid))
    item = d.wait_item(mid)
    nudge_at = iso(item["nudge_at"])
    assert nudge_at == iso(item["received"]) + dt.timedelta(seconds=6)  # INTERNALDATE + 12s - 6s
    assert item["account"] == ANNA and item["nudge"] is None

    left = (nudge_at - dt.datetime.now(dt.UTC)).total_seconds()
    wait_for(lambda: times_mentioned(sink, mid) >= 1, left + 10, "the nudge")
    index = next(i for i, r in enumerate(sink.messages) if mid in item_ids(r.message))
    lag = sink.messages.times[index] - nudge_at.timestamp()
    assert -0.5 <= lag <= 3.0, f"nudge accepted {lag:+.2f}s after its due time\n{d.tail()}"
    nudge = sink.messages[index]
    assert nudge.rcpt_tos == (ANNA,)
    assert "Quote for the spring campaign" in text_part(nudge.message)
    assert d.stop() == 0


def test_reply_one_second_before_the_nudge_cancels_it(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    # A long poll interval and no NOTIFY: only IDLE (inbox) and the pre-send recheck
    # look at Sent.
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink, window="16s",
                       nudge_before="8s", poll_interval="60s", batch_window="3s",
                       watch_sent="poll")
    d = started(ackwatch, cfg)

    answered, control = "<answered@acme.example>", "<control@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Banner sizes", answered))
    dovecot.append(user, "INBOX", client_mail("Invoice question", control))
    item = d.wait_item(answered)
    d.wait_item(control)
    nudge_at = iso(item["nudge_at"]).timestamp()
    time.sleep(max(0.0, nudge_at - 1.0 - time.time()))
    dovecot.append(user, "Sent", reply_mail(answered, "Banner sizes"))
    assert time.time() < nudge_at, "the reply was not made before the nudge was due"

    wait_for(lambda: times_mentioned(sink, control) >= 1, 15, "the control item's nudge")
    time.sleep(1.0)  # anything still in flight for the answered one
    assert times_mentioned(sink, answered) == 0, d.tail()
    (nudge,) = mails(sink, "nudge")
    assert "Banner sizes" not in text_part(nudge)
    assert [i["message_id"] for i in d.status()] == [control]
    assert d.stop() == 0


# --------------------------------------------------------------------------- what is sent


def test_one_mail_in_two_mailboxes_gives_one_line_in_one_nudge(dovecot, tmp_path, sink, ackwatch):
    anna, piotr = dovecot.add_user(), dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (anna, ANNA), "piotr": (piotr, PIOTR)}, sink)
    d = started(ackwatch, cfg, mailboxes=2)

    mid = "<to-and-cc@acme.example>"
    raw = client_mail("Brief for the autumn launch", mid, to=f"{ANNA}, {PIOTR}")
    dovecot.append(anna, "INBOX", raw)
    dovecot.append(piotr, "INBOX", raw)
    wait_for(lambda: len((d.status() or [{}])[0].get("mailboxes", [])) == 2, 15,
             "the item seen in both mailboxes", step=0.2)
    (item,) = d.status()
    left = (iso(item["nudge_at"]) - dt.datetime.now(dt.UTC)).total_seconds()
    wait_for(lambda: mails(sink, "nudge"), left + 10, "the nudge")
    time.sleep(2.5)  # a second nudge (one per mailbox) would come now

    (nudge,) = mails(sink, "nudge")
    assert nudge["To"].addresses[0].addr_spec == ANNA
    assert item_ids(nudge) == [mid]
    assert text_part(nudge).count("Brief for the autumn launch") == 1
    assert sorted(item["mailboxes"]) == ["anna", "piotr"]
    assert d.stop() == 0


def test_escalation_reaches_the_manager_with_the_account_in_cc(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink, window="8s",
                       nudge_before="4s", escalate_after="2s", batch_window="1s")
    d = started(ackwatch, cfg)

    mid = "<overdue@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Urgent: invoice 2026/11/042", mid))
    item = d.wait_item(mid)
    escalate_at = iso(item["escalate_at"])
    assert escalate_at == iso(item["deadline"]) + dt.timedelta(seconds=2)
    left = (escalate_at - dt.datetime.now(dt.UTC)).total_seconds()
    wait_for(lambda: mails(sink, "escalation"), left + 10, "the escalation")

    (received,) = [r for r in sink.messages if r.message["X-Ackwatch"] == "escalation"]
    esc = received.message
    assert [a.addr_spec for a in esc["To"].addresses] == [KASIA]
    assert [a.addr_spec for a in esc["Cc"].addresses] == [ANNA]
    assert set(received.rcpt_tos) == {KASIA, ANNA}
    assert item_ids(esc) == [mid]
    assert "Urgent: invoice 2026/11/042" in text_part(esc)
    assert [m["X-Ackwatch"] for m in mails(sink)] == ["nudge", "escalation"]
    assert times_mentioned(sink, mid, "nudge") == 1
    assert d.stop() == 0


def test_hostile_subject_cannot_inject_headers_or_html_into_the_nudge(
    dovecot, tmp_path, sink, ackwatch
):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink)
    d = started(ackwatch, cfg)

    hostile = (
        "Quote <script>alert('x')</script><img src=x onerror=alert(1)>\r\n"
        "Bcc: attacker@evil.example\r\nX-Injected: yes\n\n<b>body</b> "
        "\u202egnp.exe\u2066 \u200fend"
    )
    encoded = "=?utf-8?b?" + base64.b64encode(hostile.encode()).decode() + "?="
    mid = "<hostile@acme.example>"
    name = "=?utf-8?b?" + base64.b64encode("Jan <i>\u202eevil".encode()).decode() + "?="
    dovecot.append(user, "INBOX", client_mail(encoded, mid, sender=f"{name} <{CLIENT}>"))
    item = d.wait_item(mid)
    left = (iso(item["nudge_at"]) - dt.datetime.now(dt.UTC)).total_seconds()
    wait_for(lambda: mails(sink, "nudge"), left + 10, "the nudge")
    time.sleep(0.5)

    (received,) = sink.messages
    assert received.rcpt_tos == (ANNA,), "the subject added a recipient"
    msg = received.message
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    head = received.raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    assert not re.search(rb"(?im)^(bcc|x-injected):", head)
    for name, value in msg.items():
        assert "\r" not in str(value) and "\n" not in str(value), name
        assert not BIDI.search(str(value)), name

    text, html = text_part(msg), html_part(msg)
    assert not BIDI.search(text) and not BIDI.search(html)
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "<b>body" not in html
    assert "&lt;script&gt;" in html
    # The subject stays on one line of the text part: no line begins with the injection.
    assert not re.search(r"(?im)^\s*(bcc|x-injected):", text)
    (line,) = [ln for ln in text.splitlines() if "alert('x')" in ln]
    assert "attacker@evil.example" in line
    assert "alert(" not in d.text(), "the log shows subjects (log.subjects is false)"
    assert d.stop() == 0


# --------------------------------------------------------------------------- faults


def test_smtp_down_then_up_delivers_the_nudge_once(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink, window="6s",
                       nudge_before="3s", batch_window="1s")
    sink.refuse_mail = "421 4.3.2 Service not available, try again later"
    d = started(ackwatch, cfg)

    mid = "<smtp-down@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Proof for the catalogue", mid))
    (deferred,) = d.wait_event("mail_deferred", timeout=20)
    assert deferred["kind"] == "nudge" and "421" in deferred["error"]
    assert not sink.messages
    sink.refuse_mail = None  # the server is back

    # The first retry comes after the initial backoff (30 s +- 20 %).
    wait_for(lambda: mails(sink, "nudge"), 45, "the nudge after SMTP came back", step=0.2)
    time.sleep(2.0)
    assert times_mentioned(sink, mid) == 1
    assert len(mails(sink)) == 1
    (item,) = d.status()
    assert item["nudge"] == "sent"
    assert d.stop() == 0


def test_kill_9_and_restart_loses_nothing_and_doubles_nothing(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink, window="14s",
                       nudge_before="7s", batch_window="0s")
    d = started(ackwatch, cfg)
    # Crash 1: kill -9 the moment the sink has the first nudge, before the daemon hears
    # "250" and can record it as sent: after the restart it is sent again (once).
    victim = d.pid
    sink.messages.on_append = lambda _: os.kill(victim, signal.SIGKILL)

    mids = [f"<crash-{i}@acme.example>" for i in range(4)]
    for i, mid in enumerate(mids):
        dovecot.append(user, "INBOX", client_mail(f"Crash test {i}", mid))
        time.sleep(1.0)  # one INTERNALDATE second each: four separate nudges
    items = [d.wait_item(mid) for mid in mids]
    due = sorted(iso(i["nudge_at"]).timestamp() for i in items)
    wait_for(lambda: not d.alive(), due[0] - time.time() + 10, "the first crash")
    sink.messages.on_append = None
    assert d.proc is not None and d.proc.wait(5) == -signal.SIGKILL
    d = started(ackwatch, cfg)

    # Crash 2: kill -9 just after the third item came due, wherever the daemon is.
    sink.delay = 0.5  # widen the SMTP conversation so the kill can land inside it
    time.sleep(max(0.0, due[2] + 0.25 - time.time()))
    d.kill9()
    d = started(ackwatch, cfg)

    wait_for(lambda: all(times_mentioned(sink, m) >= 1 for m in mids),
             max(due) - time.time() + 15, "a nudge for every item", step=0.1)
    time.sleep(1.5)
    assert d.stop() == 0
    counts = {m: times_mentioned(sink, m) for m in mids}
    assert all(1 <= n <= 2 for n in counts.values()), (counts, d.tail())
    assert counts[mids[0]] == 2, counts  # accepted, then the crash: sent again, once
    assert sum(counts.values()) <= len(mids) + 2, counts  # one mail in flight per crash

    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "ackwatch.sqlite3")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        states = dict(db.execute("SELECT key, nudge_done FROM items").fetchall())
        outbox = db.execute("SELECT state FROM outbox").fetchall()
    assert set(states.values()) == {"sent"}, states
    assert {s for (s,) in outbox} == {"sent"}


def test_reply_made_while_the_daemon_was_down_cancels_the_nudge_at_restart(
    dovecot, tmp_path, sink, ackwatch
):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink, window="8s",
                       nudge_before="4s", batch_window="1s")
    d = started(ackwatch, cfg)
    mid = "<answered-offline@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Media plan", mid))
    item = d.wait_item(mid)
    assert d.stop() == 0
    time.sleep(1.1)  # the reply's INTERNALDATE is a later second than the mail's
    dovecot.append(user, "Sent", reply_mail(mid, "Media plan"))
    time.sleep(max(0.0, iso(item["nudge_at"]).timestamp() + 0.5 - time.time()))

    # Restarted after the nudge came due: the pending item is due at once, but the
    # reply made meanwhile must be seen first.
    d = started(ackwatch, cfg)
    wait_for(lambda: not d.status(), 10, "the item acknowledged", step=0.2)
    time.sleep(1.0)
    assert not mails(sink), d.tail()
    assert d.stop() == 0


def test_sighup_with_a_broken_config_keeps_the_old_one(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink)
    good = cfg.read_text()
    d = started(ackwatch, cfg)
    d.status_config = tmp_path / "good.yaml"
    d.status_config.write_text(good)

    cfg.write_text(good.replace("mailboxes:\n", "mailboxes: [unclosed\n  - {{{\n", 1))
    d.signal(signal.SIGHUP)
    (failed,) = d.wait_event("config_reload_failed")
    assert failed["level"] == "error"
    assert d.alive()

    # Mail that came after the failed reload is still watched and nudged for, on the old
    # config's policy. Waited for by what the daemon does, not by its due time: how soon
    # it sends is test_nudge_arrives_within_seconds_of_its_due_time's to say.
    mid = "<after-hup@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Still watched after the reload", mid))
    wait_for(lambda: times_mentioned(sink, mid) >= 1, HANG_GUARD_SECONDS,
             "a nudge with the old config")
    (item,) = [i for i in d.status() if i["message_id"] == mid]
    assert iso(item["nudge_at"]) == iso(item["received"]) + dt.timedelta(seconds=6)  # 12s - 6s
    assert times_mentioned(sink, mid) == 1
    assert d.alive()
    assert not d.events("config_reloaded")

    cfg.write_text(good)  # fixed: the next SIGHUP applies it
    d.signal(signal.SIGHUP)
    d.wait_event("config_reloaded")
    assert d.stop() == 0


# --------------------------------------------------------------------------- process


def test_ready_and_watchdog_are_sent_to_the_notify_socket(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink)
    with bound_notify_socket(tmp_path) as (path, sock):
        sock.settimeout(0.2)
        d = ackwatch(cfg, {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"})
        got: list[tuple[float, str]] = []

        def heard() -> bool:
            with contextlib.suppress(TimeoutError):
                while True:
                    data = sock.recv(4096)
                    got.extend((time.monotonic(), ln) for ln in data.decode().splitlines())
            lines = [ln for _, ln in got]
            return (
                "READY=1" in lines
                and lines.count("WATCHDOG=1") >= 3
                and any(ln.startswith("STATUS=") for ln in lines)
            )

        wait_for(heard, 15, f"READY, 3 watchdog pings and a status (got {got})", step=0)
    lines = [ln for _, ln in got]
    assert lines.index("READY=1") < lines.index("WATCHDOG=1")
    pings = [t for t, ln in got if ln == "WATCHDOG=1"]
    assert max(b - a for a, b in itertools.pairwise(pings)) < 2.0, "watchdog pinged too late"
    status = [ln for ln in lines if ln.startswith("STATUS=")][-1]
    assert "mailboxes up" in status and "pending 0" in status
    assert d.stop() == 0


def test_a_systemd_that_stops_reading_holds_up_neither_nudges_nor_the_exit(
    dovecot, tmp_path, sink, ackwatch
):
    """The notify socket's queue fills (a busy PID 1): its lines are dropped, not waited for."""
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink)
    with bound_notify_socket(tmp_path) as (path, _):  # never read
        d = started(ackwatch, cfg, env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "500000"})
        d.wait_event("systemd_notify_dropped")
        mid = "<unread-notify@acme.example>"
        dovecot.append(user, "INBOX", client_mail("Still nudged", mid))
        item = d.wait_item(mid)
        left = (iso(item["nudge_at"]) - dt.datetime.now(dt.UTC)).total_seconds()
        wait_for(lambda: times_mentioned(sink, mid) == 1, left + 10, "the nudge")
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        assert d.proc is not None
        assert d.proc.wait(10) == 0, d.tail()
        assert time.monotonic() - t0 < 10
        assert len(d.events("systemd_notify_dropped")) == 1  # once, not once a line


def test_sigterm_exits_0_within_10_seconds(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink)
    d = started(ackwatch, cfg)
    time.sleep(0.5)  # in IDLE
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.proc is not None
    assert d.proc.wait(10) == 0, d.tail()
    assert time.monotonic() - t0 < 10
    assert d.events("daemon_stopping")


def test_sigusr1_dumps_every_threads_stack_and_the_daemon_goes_on(dovecot, tmp_path, sink,
                                                                     ackwatch):
    """Where a hung daemon hangs, without stopping it (and on systemd's watchdog SIGABRT):
    file, line and function of each thread, no value (no secret) in it."""
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink)
    d = started(ackwatch, cfg)
    d.signal(signal.SIGUSR1)
    dump = wait_for(lambda: "Current thread" in d.text() and d.text(), 10, "the stack dump")
    assert dump.count("Thread 0x") >= 2 and 'File "' in dump and "in run" in dump
    assert dovecot.password(user) not in dump
    mid = "<after-the-dump@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Still watching", mid))
    d.wait_item(mid)
    assert d.stop() == 0


def _signal_a_thread_other_than_main(pid: int, sig: int) -> None:
    """What the kernel may do with a signal sent to the process: deliver it to any of its
    threads (here a watcher's, on purpose)."""
    import ctypes

    others = [int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid]
    assert others, "the daemon has no thread besides the main one"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.tgkill(pid, others[0], sig) == 0, os.strerror(ctypes.get_errno())


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_a_signal_received_by_another_thread_is_handled_at_once(dovecot, tmp_path, sink,
                                                                 ackwatch, sig):
    """Without the wake-up fd the main thread, asleep on the event queue, ran the handler
    only when its wait ended (up to 30 s): a reload or a stop that came late."""
    user = dovecot.add_user()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink)
    d = started(ackwatch, cfg)
    time.sleep(0.5)  # every thread asleep: IDLE, the core on its queue
    t0 = time.monotonic()
    _signal_a_thread_other_than_main(d.pid, sig)
    if sig == signal.SIGHUP:
        d.wait_event("config_reloaded", timeout=5)
    else:
        assert d.proc is not None
        assert d.proc.wait(5) == 0, d.tail()
        assert d.events("daemon_stopping")
    assert time.monotonic() - t0 < 5


# --------------------------------------------------------------------------- mailboxes


def test_history_at_first_start_produces_no_nudges(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    hours_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    old = "<old-unanswered@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Last week's question", old, date=hours_ago),
                   internaldate=hours_ago)
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, sink, window="8s",
                       nudge_before="4s", escalate_after="1s", batch_window="1s")
    d = started(ackwatch, cfg)
    item = d.wait_item(old)
    assert item["nudge"] == "suppressed" and item["escalation"] == "suppressed"

    # A fresh mail is nudged as usual (so the daemon is working), alone.
    fresh = "<fresh@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Today's question", fresh))
    new = d.wait_item(fresh)
    left = (iso(new["escalate_at"]) - dt.datetime.now(dt.UTC)).total_seconds()
    wait_for(lambda: times_mentioned(sink, fresh, "escalation"), left + 10, "fresh escalation")
    time.sleep(0.5)
    for m in mails(sink):
        assert old not in item_ids(m), d.tail()
        assert "Last week" not in text_part(m)
    assert [m["X-Ackwatch"] for m in mails(sink)] == ["nudge", "escalation"]
    assert d.stop() == 0


def test_flags_are_unchanged_after_a_daemon_run(imap_server, tmp_path, sink, ackwatch):
    user = imap_server.add_user()
    put = imap_server.append
    put(user, "INBOX", client_mail("Unread before start", "<f1@acme.example>"))
    put(user, "INBOX", client_mail("Read before start", "<f2@acme.example>"), flags=("\\Seen",))
    now = dt.datetime.now(dt.UTC)  # INTERNALDATE has whole seconds: the reply is later
    put(user, "INBOX", client_mail("Flagged", "<f3@acme.example>"), flags=("\\Flagged",),
        internaldate=now - dt.timedelta(seconds=20))
    put(user, "Sent", reply_mail("<f3@acme.example>", "Flagged"), flags=("\\Seen",),
        internaldate=now - dt.timedelta(seconds=10))
    cfg = write_config(tmp_path, imap_server, {"anna": (user, ANNA)}, sink, batch_window="3s")
    d = started(ackwatch, cfg)

    put(user, "INBOX", client_mail("Unread while running", "<f4@acme.example>"))
    put(user, "INBOX", client_mail("Answered while running", "<f5@acme.example>"),
        flags=("\\Answered", "\\Seen"))
    if imap_server.has_keywords:
        put(user, "INBOX", client_mail("No reply needed", "<f6@acme.example>"),
            flags=("$Ackwatch-Done",))
    before = imap_server.flags_snapshot(user)
    item = d.wait_item("<f4@acme.example>")
    left = (iso(item["nudge_at"]) - dt.datetime.now(dt.UTC)).total_seconds()
    # The nudge (with its pre-send re-check of every folder) has gone out.
    wait_for(lambda: times_mentioned(sink, "<f4@acme.example>"), left + 10, "the nudge")
    assert d.stop() == 0

    after = imap_server.flags_snapshot(user)
    assert after == before, "ackwatch changed flags in a watched mailbox"
    unread = [k for k, f in after.items() if k[0] == "INBOX" and "\\Seen" not in f]
    assert len(unread) >= 2
    waiting = {i["message_id"] for i in d.status()}
    assert waiting == {"<f1@acme.example>", "<f2@acme.example>", "<f4@acme.example>"}
    if imap_server.kind == "dovecot":
        stats = imap_server.session_stats(user)  # type: ignore[attr-defined]
        assert stats and all(s["body_count"] == 0 for s in stats), stats
