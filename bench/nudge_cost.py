"""What one nudge costs the daemon in CPU (issue 24), against real Dovecot and SMTP.

    .venv/bin/python bench/nudge_cost.py --actions 40            # one nudge at a time
    .venv/bin/python bench/nudge_cost.py --burst 20 --actions 60 # 20 nudges due per step
    .venv/bin/python bench/nudge_cost.py --outbox 3000           # an hour of outbox
    .venv/bin/py-spy record -r 500 -o nudge.txt -f raw -- .venv/bin/python bench/nudge_cost.py

Each account has ``--sent`` mails of its own from the last two days in its Sent folder
(what the out-of-office check reads), and the state ``--outbox`` mails sent over the
last hour (what the hourly cap reads). The daemon runs in this process (`Daemon.run` in
a thread: its core loop and its watchers, 20 mailboxes on Dovecot, plain loopback SMTP
to an aiosmtpd sink in a process of its own). Each round APPENDs client mail to
``--burst`` mailboxes' INBOX and waits until the daemon has dealt with it, once with a
received time (INTERNALDATE) three minutes ago, so that each mail's nudge is due at once
(the policy nudges two minutes after arrival), and once with the received time now
(stored and evaluated, nothing due). The figure is the daemon's CPU (this process, less
the harness's own thread) per round, and their difference per nudge sent: what planning,
the pre-send re-check of the sent folders, composing and SMTP cost a nudge.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import generate  # noqa: E402
import soak  # noqa: E402
from run import BenchDovecot, mail_owner  # noqa: E402
from tests.servers.imapserver import HOST, free_port  # noqa: E402

MAILBOXES = [f"nc{i:02d}" for i in range(20)]
PARSES = [0]


def write_config(d: Path, port: int, smtp_port: int) -> Path:
    """The soak's config with a policy whose nudge is due 2 minutes after a mail."""
    return soak.write_config(
        d, MAILBOXES, port, smtp_port, max_per_hour=100000,
        policy="{window: 1h, clock: calendar, nudge_before: 58m, escalate_after: 1h}",
    )


def client_mail(n: int, user: str) -> bytes:
    return (f"Message-ID: <nc{n}-{time.time_ns()}@client{n % 40:02d}.example>\r\n"
            f"From: Jan Kowalski <jan{n % 300}@client{n % 40:02d}.example>\r\n"
            f"To: {user}@agency.example\r\nSubject: Quote {n} for the spring campaign\r\n"
            f"Date: {dt.datetime.now(dt.UTC):%a, %d %b %Y %H:%M:%S +0000}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
            f"Could you send the quote by Friday?\r\n").encode()


def preload_sent(server: BenchDovecot, per_mailbox: int) -> None:
    """``per_mailbox`` replies each account sent over the last two days, written into the
    Maildirs before the start: the mail the out-of-office check reads for every plan."""
    now = dt.datetime.now(dt.UTC)
    for u in MAILBOXES:
        writer = generate.MaildirWriter(server.dir / "mail" / u)
        writer._dir("Sent")
        for i in range(per_mailbox):
            at = now - dt.timedelta(hours=48) + dt.timedelta(hours=47 * i / per_mailbox)
            raw = (f"Message-ID: <sent{i}-{u}@agency.example>\r\n"
                   f"From: {u} <{u}@agency.example>\r\n"
                   f"To: Jan <jan{i % 300}@client{i % 40:02d}.example>\r\n"
                   f"Subject: Re: Quote {i} for the spring campaign\r\n"
                   f"Date: {at:%a, %d %b %Y %H:%M:%S +0000}\r\n\r\nI am on it.\r\n")
            writer.write(generate.Mail("Sent", at, raw.encode(), "S"))
    owner = mail_owner()
    if owner:
        for u in MAILBOXES:
            generate.chown_tree(server.dir / "mail" / u, *owner)


class SmtpSink:
    """aiosmtpd's discarding handler in a process of its own (its CPU is not ours)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{HOST}:{self.port}",
             "-c", "aiosmtpd.handlers.Sink"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the SMTP sink did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def count(state: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{state / 'ackwatch.sqlite3'}?mode=ro", uri=True) as c:
        return int(c.execute(sql).fetchone()[0])


def wait_until(check, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the daemon did not get there")
        time.sleep(0.05)


def daemon_cpu() -> float:
    """CPU of this process but the calling (harness) thread."""
    return time.process_time() - time.thread_time()


def rounds(server: BenchDovecot, state: Path, n: int, burst: int, due: bool,
           start: int) -> list[float]:
    """CPU of the daemon for each of ``n`` rounds of ``burst`` client mails."""
    cpu: list[float] = []
    for r in range(n):
        received = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3 if due else 0)
        sent0 = count(state, "SELECT COUNT(*) FROM outbox WHERE state = 'sent'")
        items0 = count(state, "SELECT COUNT(*) FROM items")
        users = [MAILBOXES[(start + r * burst + i) % len(MAILBOXES)] for i in range(burst)]
        time.sleep(0.3)  # let the last round's trailing work end
        c0 = daemon_cpu()
        for i, user in enumerate(users):
            server.append(user, "INBOX", client_mail(start + r * burst + i, user),
                          internaldate=received)
        if due:
            sql, target = "SELECT COUNT(*) FROM outbox WHERE state = 'sent'", sent0 + burst
        else:
            sql, target = "SELECT COUNT(*) FROM items", items0 + burst
        wait_until(lambda sql=sql, target=target: count(state, sql) >= target)
        time.sleep(0.3)  # the step's tail (metrics, status) and the watchers' IDLE again
        cpu.append(daemon_cpu() - c0)
    return cpu


def preload_outbox(store, count: int) -> None:  # type: ignore[no-untyped-def]
    """``count`` mails sent over the last hour, as the soak sends them: 60 % nudges to
    the accounts, 40 % escalations to their manager with the account in Cc (what the
    hourly cap reads at every plan with an action due)."""
    now = dt.datetime.now(dt.UTC)
    for i in range(count):
        account = f"{MAILBOXES[i % len(MAILBOXES)]}@agency.example"
        at = now - dt.timedelta(hours=1) + dt.timedelta(seconds=3590 * (i + 1) / count)
        nudge = i % 5 < 3
        oid = store.enqueue(
            kind="nudge" if nudge else "escalation",
            recipient=account if nudge else "boss@agency.example",
            cc=() if nudge else (account,), account=account, nudge_keys=(),
            escalation_keys=(), message_id=f"<pre{i}@agency.example>", now=at)
        store.outbox_sent(oid, at)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--actions", type=int, default=40, help="nudges sent in all")
    ap.add_argument("--burst", type=int, default=1, help="client mails (nudges) per round")
    ap.add_argument("--sent", type=int, default=100,
                    help="mails each account sent in the last two days (history)")
    ap.add_argument("--outbox", type=int, default=0,
                    help="mails sent over the last hour before the start (the hourly cap's)")
    ap.add_argument("--label", default="")
    a = ap.parse_args()

    from ackwatch.config import load_config
    from ackwatch.daemon import parsedmail
    from ackwatch.daemon.service import Daemon
    from ackwatch.logs import configure_logging
    from ackwatch.store.sqlite import SqliteStore

    parse = parsedmail.parse_stored

    def counted(copy):  # type: ignore[no-untyped-def]
        PARSES[0] += 1
        return parse(copy)

    parsedmail.parse_stored = counted  # stored copies parsed (not the new mail's first parse)

    d = Path(tempfile.mkdtemp(prefix="ackwatch-nudgecost-"))
    d.chmod(0o755)  # Dovecot's own user reads its passwd file below it
    (d / "dovecot").mkdir()
    private = d / "daemon"
    private.mkdir(mode=0o700)
    server = BenchDovecot(tuple(MAILBOXES), directory=d / "dovecot", pool=0)
    if a.sent:
        preload_sent(server, a.sent)
    server.start()
    sink = SmtpSink()
    daemon = None
    thread = None
    logfile = open(private / "daemon.log", "w")  # noqa: SIM115
    try:
        config = load_config(write_config(private, server.port, sink.port))
        configure_logging(level="info", stream=logfile, force_json=True)
        logging.getLogger().setLevel(logging.WARNING)
        store = SqliteStore.open(config.state_dir)
        preload_outbox(store, a.outbox)
        daemon = Daemon(config, store)
        thread = threading.Thread(target=daemon.run, name="core", daemon=True)
        thread.start()
        state = config.state_dir
        wait_until(lambda: count(state, "SELECT COUNT(*) FROM health WHERE state = 'up'")
                   >= len(MAILBOXES), timeout=30)
        time.sleep(2)
        n = max(1, a.actions // a.burst)
        # Warm-up: a first nudge to every account (imports, caches that fill once).
        rounds(server, state, max(1, len(MAILBOXES) // a.burst), a.burst, True, 0)
        quiet = rounds(server, state, n, a.burst, False, 1000)
        parses0 = PARSES[0]
        nudged = rounds(server, state, n, a.burst, True, 2000)
        parses = PARSES[0] - parses0
        per_round_quiet = statistics.median(quiet)
        per_round_due = statistics.median(nudged)
        result = {
            "label": a.label, "burst": a.burst, "rounds": n, "sent_history": a.sent,
            "outbox_last_hour": a.outbox,
            "round_ms_not_due": round(per_round_quiet * 1000, 1),
            "round_ms_due": round(per_round_due * 1000, 1),
            "nudge_ms": round((per_round_due - per_round_quiet) * 1000 / a.burst, 1),
            "nudge_ms_mean": round((sum(nudged) - sum(quiet)) * 1000 / (n * a.burst), 1),
            "sent": count(state, "SELECT COUNT(*) FROM outbox WHERE state = 'sent'"),
            "parses_per_nudge": round(parses / (n * a.burst), 1),
        }
        print(json.dumps(result), flush=True)
        return 0
    finally:
        if daemon is not None:
            daemon.request_stop()
        if thread is not None:
            thread.join(15)
        sink.stop()
        server.stop()
        logfile.close()
        if os.environ.get("KEEP") is None:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
