"""`make soak`: the real daemon against Dovecot for a while, with a ground truth (issue 24).

    .venv/bin/python bench/soak.py --minutes 5                       # 3 mails/s, 20 mailboxes
    .venv/bin/python bench/soak.py --minutes 60 --sighup-every 120 --dovecot-restart-at 600 \\
        --kill9-at 900                                               # faults, in seconds
    .venv/bin/python bench/soak.py --minutes 10 --compare-waiting 10000   # the CPU target

A generator APPENDs client mail to the mailboxes' INBOX at ``--rate`` a second (spread
over ``--mailboxes``); ``--answered`` of them get a reply APPENDed to Sent after 5-120 s,
the rest are never answered. The policy is short (window 4 min, nudge 2 min before,
escalation at the deadline) so that a few minutes see every kind of mail. The SMTP
server (aiosmtpd) records what it accepted and when; the daemon's outbox tells which
items each mail is about. At the end (after ``--drain`` seconds without new mail):

- misses: unanswered mail whose nudge was due (30 s of slack) and never accepted;
- wrong nudges (and escalations): an item in an accepted mail whose reply was appended
  2 s or more before (under 2 s: a race the re-check cannot win, counted apart);
- duplicates: items nudged in two accepted mails, Message-IDs accepted twice;
- nudge lateness: accepted - the item's nudge_at (the first nudge of each item);
- reply detection: APPEND to Sent -> the item acknowledged in the state (polled every
  0.2 s, read-only);
- the state's pending items against the ground truth;
- the daemon's CPU (schedstat of all threads), RSS, file descriptors and threads, sampled
  every ``--sample`` seconds, across restarts.

``--waiting N`` puts N unanswered client mails of four days ago in the Maildirs before the
start: the first sync finds them as history, so they wait (suppressed) all along.
``--compare-waiting N`` runs twice, with none and with N waiting, and reports the CPU
ratio (issue 24's target: <= 1.5, and under 5 % of a core).

Results: ``bench/data/soak/<run>/results.json`` (summary, samples, and each reply's
mailbox, UID, APPEND and detection times: with ``--log-level debug`` the daemon's
log there says when each watcher heard news and read which UIDs) and
``bench/soak_results.json`` (the last run); the table is in bench/README.md. Never part
of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email
import email.utils
import heapq
import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import generate  # noqa: E402
from run import (  # noqa: E402
    BenchDovecot,
    Daemon,
    log,
    mail_owner,
    pct,
    proc_threads,
    ro,
    wait_up,
)
from tests.servers.imapserver import HOST, default_password, free_port  # noqa: E402

DATA = ROOT / "bench" / "data" / "soak"
WRONG_SLACK = 2.0  # a reply appended this shortly before a nudge is a race, not a wrong nudge
MISS_SLACK = 30.0  # a nudge due this long before the end and not accepted is a miss


# =========================================================================== SMTP


class Sink:
    """aiosmtpd handler: what was accepted and when; can hold a mail's DATA a while, so
    that a kill -9 lands while the daemon is sending."""

    def __init__(self) -> None:
        self.got: list[tuple[float, str]] = []  # (accepted at, Message-ID)
        self.hold = 0.0
        self.in_data = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls it so
        msg = email.message_from_bytes(envelope.content)
        self.got.append((time.time(), str(msg["Message-ID"])))
        if self.hold:
            self.in_data.set()
            await asyncio.sleep(self.hold)
        return "250 OK"


# =========================================================================== mail


def client_mail(n: int, mailbox: str, when: dt.datetime, run: str) -> tuple[str, bytes]:
    """A client mail as Outlook sends it (Thread-Index, a display name, Cc sometimes)."""
    mid = f"<soak{run}.{n}@client{n % 40:02d}.example>"
    cc = "Cc: Office <office@agency.example>\r\n" if n % 5 == 0 else ""
    raw = (f"From: \"Client {n % 300}\" <buyer{n % 300}@client{n % 40:02d}.example>\r\n"
           f"To: {mailbox} <{mailbox}@agency.example>\r\n{cc}"
           f"Subject: Order {run}-{n}: can you confirm the delivery date?\r\n"
           f"Date: {email.utils.format_datetime(when)}\r\nMessage-ID: {mid}\r\n"
           f"Thread-Index: AdrB{n:08x}\r\nX-Mailer: Microsoft Outlook 16.0\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           "Hello, please confirm.\r\n")
    return mid, raw.encode()


def reply_mail(n: int, mailbox: str, mid: str, when: dt.datetime, run: str) -> bytes:
    return (f"From: {mailbox} <{mailbox}@agency.example>\r\n"
            f"To: \"Client {n % 300}\" <buyer{n % 300}@client{n % 40:02d}.example>\r\n"
            f"Subject: RE: Order {run}-{n}: can you confirm the delivery date?\r\n"
            f"Date: {email.utils.format_datetime(when)}\r\n"
            f"Message-ID: <re{run}.{n}@agency.example>\r\nIn-Reply-To: {mid}\r\n"
            f"References: {mid}\r\n\r\nGot it, I will confirm by Friday.\r\n").encode()


def preload_waiting(server: BenchDovecot, users: list[str], n: int, run: str) -> set[str]:
    """``n`` unanswered client mails of four days ago, written into the Maildirs."""
    keys: set[str] = set()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=4)
    writers = {u: generate.MaildirWriter(server.dir / "mail" / u) for u in users}
    for i in range(n):
        u = users[i % len(users)]
        mid, raw = client_mail(10_000_000 + i, u, old + dt.timedelta(seconds=i), f"w{run}")
        writers[u].write(generate.Mail("INBOX", old + dt.timedelta(seconds=i), raw, "S"))
        keys.add(mid)
    owner = mail_owner()
    for u in users:
        writers[u]._dir("Sent")
        if owner:
            generate.chown_tree(server.dir / "mail" / u, *owner)
    return keys


@dataclass
class Truth:
    """What the generator did: the ground truth."""

    received: dict[str, float] = field(default_factory=dict)  # key -> appended at
    replied: dict[str, float] = field(default_factory=dict)  # key -> reply appended at
    unanswered: set[str] = field(default_factory=set)
    detected: dict[str, float] = field(default_factory=dict)  # key -> seen acknowledged
    reply_uid: dict[str, tuple[str, int]] = field(default_factory=dict)  # key -> (user, UID)
    append_failures: int = 0


class Generator(threading.Thread):
    """Client mail at ``rate`` a second (Poisson), replies to ``answered`` of them."""

    def __init__(self, server: BenchDovecot, users: list[str], rate: float, answered: float,
                 truth: Truth, run: str, seed: int) -> None:
        super().__init__(daemon=True, name="generator")
        self.server, self.users, self.rate, self.answered = server, users, rate, answered
        self.truth, self.run_id, self.rng = truth, run, random.Random(seed)
        self.stop = threading.Event()
        self.replies: list[tuple[float, int, str, str]] = []  # (due, n, mailbox, key)
        self.lock = threading.Lock()

    def _append(self, user: str, folder: str, raw: bytes) -> int | None:
        """APPEND; the new message's UID (None: Dovecot refused it for a minute)."""
        for _ in range(60):  # Dovecot restarting: retry for up to a minute
            try:
                return self.server.append(user, folder, raw,
                                          flags=("\\Seen",) if folder == "Sent" else ())
            except Exception:  # refused while Dovecot restarts
                self.truth.append_failures += 1
                time.sleep(1)
        return None

    def run(self) -> None:
        n = 0
        next_at = time.time()
        while not self.stop.is_set():
            now = time.time()
            while self.replies and self.replies[0][0] <= now:
                _, k, user, key = heapq.heappop(self.replies)
                raw = reply_mail(k, user, key, dt.datetime.now(dt.UTC), self.run_id)
                uid = self._append(user, "Sent", raw)
                if uid is not None:
                    self.truth.replied[key] = time.time()
                    self.truth.reply_uid[key] = (user, uid)
            if now >= next_at:
                n += 1
                user = self.users[self.rng.randrange(len(self.users))]
                key, raw = client_mail(n, user, dt.datetime.now(dt.UTC), self.run_id)
                if self._append(user, "INBOX", raw) is not None:
                    self.truth.received[key] = time.time()
                    if self.rng.random() < self.answered:
                        heapq.heappush(self.replies,
                                       (time.time() + self.rng.uniform(5, 120), n, user, key))
                    else:
                        self.truth.unanswered.add(key)
                next_at += self.rng.expovariate(self.rate)
            wake = min([next_at, *(r[0] for r in self.replies[:1])])
            self.stop.wait(max(0.0, min(0.5, wake - time.time())))

    def finish_replies(self) -> None:
        """Replies still scheduled are dropped: their mail counts as unanswered."""
        for _, _, _, key in self.replies:
            self.truth.unanswered.add(key)
        self.replies.clear()


def poll_detection(state: Path, truth: Truth, stop: threading.Event) -> None:
    """Note when each replied item is first seen acknowledged in the state."""
    db: sqlite3.Connection | None = None
    while not stop.wait(0.2):
        waiting = [k for k in list(truth.replied) if k not in truth.detected]
        if not waiting:
            continue
        try:
            if db is None:
                db = ro(state)
            rows = db.execute(
                "SELECT key FROM items WHERE state != 'pending' AND key IN ({})".format(
                    ",".join("?" * len(waiting[:500]))), waiting[:500]).fetchall()
        except sqlite3.Error:
            db = None
            continue
        now = time.time()
        for (key,) in rows:
            truth.detected.setdefault(key, now)


# =========================================================================== daemon


def write_config(d: Path, users: list[str], port: int, smtp_port: int, *,
                 policy: str = "{window: 4m, clock: calendar, nudge_before: 2m, escalate_after: 0m}",
                 max_per_hour: int = 1000, log_level: str = "info",
                 watch_sent: str = "auto") -> Path:
    """The daemon's config: one account and mailbox per user on Dovecot, a manager,
    SMTP to the sink; ``policy``: the default policy (this soak's 4-minute window makes
    nudges and escalations due within the run)."""
    accounts = "".join(
        f"  - {{email: {u}@agency.example, name: {u}, manager: boss@agency.example}}\n"
        for u in users) + "  - {email: boss@agency.example, name: Boss}\n"
    mailboxes = ""
    for u in users:
        pw = d / f"{u}.pass"
        pw.write_text(default_password(u) + "\n")
        pw.chmod(0o600)
        mailboxes += (f"  - {{name: {u}, host: {HOST}, port: {port}, security: none,"
                      f" username: {u}, password_file: {pw}, owner: {u}@agency.example,"
                      f" folders: {{inbox: [INBOX], sent: [Sent]}}, timeout: 30}}\n")
    cfg = d / "config.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        timezone: Europe/Warsaw
        state_dir: {d / "state"}
        log:
          level: {log_level}
        agency:
          domains: [agency.example]
        policies:
          default: {policy}
        sync:
          watch_sent: {watch_sent}
        notify:
          batch_window: 10s
          max_per_hour: {max_per_hour}
        unknown_senders: track
        digest:
          enabled: false
        smtp:
          host: {HOST}
          port: {smtp_port}
          security: none
          from: "ackwatch <ackwatch@agency.example>"
          timeout: 10
        accounts:
        """) + accounts + "mailboxes:\n" + mailboxes)
    cfg.chmod(0o600)
    return cfg


class SoakDaemon(Daemon):
    """`ackwatch run` as systemd would run it; restarted after a kill -9."""

    def __init__(self, cfg: Path) -> None:
        self.cpu_done = 0.0  # CPU of the lives before this one
        self.lives = 0
        super().__init__(cfg, log_mode="ab")

    def start(self) -> None:
        super().start()
        self.lives += 1

    def cpu(self) -> float:
        try:
            return self.cpu_done + proc_threads(self.proc.pid)[0]
        except OSError:
            return self.cpu_done

    def kill9_and_restart(self) -> None:
        self.cpu_done = self.cpu()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        time.sleep(1)  # systemd's RestartSec
        self.start()

    def sample(self) -> dict:
        pid = self.proc.pid
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:"))
        return {"cpu_s": round(self.cpu(), 3), "rss_mb": round(rss / 1024, 1),
                "fds": len(os.listdir(f"/proc/{pid}/fd")),
                "threads": len(os.listdir(f"/proc/{pid}/task")), "life": self.lives}


# =========================================================================== the run


def soak(a: argparse.Namespace, waiting: int, tag: str) -> dict:
    from aiosmtpd.controller import Controller

    users = [f"soak{i:02d}" for i in range(a.mailboxes)]
    run = f"{int(time.time())}"
    d = DATA / tag
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    (d / "dovecot").mkdir()  # Dovecot's own user reads its passwd file here
    private = d / "daemon"  # the daemon's config, passwords and state: ours only
    private.mkdir(mode=0o700)
    server = BenchDovecot(tuple(users), directory=d / "dovecot", pool=0,
                          idle_check_seconds=a.dovecot_idle_check)
    waiting_keys = preload_waiting(server, users, waiting, run) if waiting else set()
    server.start()
    sink = Sink()
    smtp_port = free_port()
    ctl = Controller(sink, hostname=HOST, port=smtp_port)
    ctl.start()
    cfg = write_config(private, users, server.port, smtp_port, log_level=a.log_level,
                       watch_sent=a.watch_sent, max_per_hour=a.max_per_hour)
    state = private / "state"
    truth = Truth()
    daemon = SoakDaemon(cfg)
    samples: list[dict] = []
    faults: list[dict] = []
    stop_poll = threading.Event()
    try:
        t_up = time.monotonic()
        wait_up(state, len(users), daemon, timeout=900, poll=0.5)
        log(f"{tag}: {len(users)} mailboxes up in {time.monotonic() - t_up:.1f}s"
            f" ({waiting} waiting); settling 20 s")
        time.sleep(20)
        gen = Generator(server, users, a.rate, a.answered, truth, run, a.seed)
        poller = threading.Thread(target=poll_detection, args=(state, truth, stop_poll),
                                  daemon=True)
        poller.start()
        t0 = time.time()
        cpu0 = daemon.cpu()
        cpu_mail = 0.0
        gen.start()
        end = t0 + a.minutes * 60
        next_sample = t0
        next_hup = t0 + a.sighup_every if a.sighup_every else float("inf")
        restarts = sorted(a.dovecot_restart_at)
        kills = sorted(a.kill9_at)
        armed: float | None = None
        while time.time() < end + a.drain:
            now = time.time()
            if now >= end and gen.is_alive():
                cpu_mail = (daemon.cpu() - cpu0) / (now - t0)
                gen.stop.set()
                gen.join()
                gen.finish_replies()
                log(f"{tag}: mail stopped; draining {a.drain:.0f} s")
            if now >= next_sample:
                s = daemon.sample()
                s["t"] = round(now - t0, 1)
                s["cpu_s"] = round(s["cpu_s"] - cpu0, 3)
                samples.append(s)
                next_sample += a.sample
            if now >= next_hup and now < end:
                daemon.proc.send_signal(signal.SIGHUP)
                faults.append({"t": round(now - t0, 1), "fault": "SIGHUP"})
                next_hup += a.sighup_every
            if restarts and now - t0 >= restarts[0]:
                restarts.pop(0)
                server.stop()
                time.sleep(2)
                server.start()
                faults.append({"t": round(now - t0, 1), "fault": "dovecot restart"})
                log(f"{tag}: Dovecot restarted")
            if kills and now - t0 >= kills[0]:  # armed: the next mail's DATA is held
                kills.pop(0)
                sink.in_data.clear()
                sink.hold = 1.5
                armed = now
            if armed is not None and (sink.in_data.is_set() or now - armed > 180):
                landed = sink.in_data.is_set()
                daemon.kill9_and_restart()
                sink.hold = 0.0
                armed = None
                faults.append({"t": round(now - t0, 1), "fault": "kill -9",
                               "while_sending": landed})
                log(f"{tag}: kill -9 {'while sending' if landed else '(no mail in flight)'}")
            time.sleep(0.05 if armed is not None else 0.2)
        if gen.is_alive():
            cpu_mail = (daemon.cpu() - cpu0) / (time.time() - t0)
            gen.stop.set()
            gen.join()
            gen.finish_replies()
        t_end = time.time()
    finally:
        stop_poll.set()
        daemon.stop()
        ctl.stop()
        server.stop()
    return analyse(a, tag, state, truth, sink, samples, faults, waiting_keys, t0, t_end,
                   cpu_mail)


def analyse(a, tag, state, truth, sink, samples, faults, waiting_keys, t0, t_end,
            cpu_mail) -> dict:
    with ro(state) as c:
        items = {k: (dt.datetime.fromisoformat(n).timestamp(), s) for k, n, s in
                 c.execute("SELECT key, nudge_at, state FROM items")}
        outbox = {mid: (kind, json.loads(keys)) for mid, kind, keys in
                  c.execute("SELECT message_id, kind, item_keys FROM outbox")}
        pending = {k for (k,) in c.execute("SELECT key FROM items WHERE state = 'pending'")}
    nudged: dict[str, list[float]] = {}
    escalated: dict[str, list[float]] = {}
    ids: dict[str, int] = {}
    for at, mid in sink.got:
        ids[mid] = ids.get(mid, 0) + 1
        _kind, keys = outbox.get(mid, ("?", {}))
        for key in keys.get("nudge", []) if isinstance(keys, dict) else []:
            nudged.setdefault(key, []).append(at)
        for key in keys.get("escalation", []) if isinstance(keys, dict) else []:
            escalated.setdefault(key, []).append(at)
    wrong, races = _after_reply(nudged, truth)
    wrong_escalations, escalation_races = _after_reply(escalated, truth)
    after_reply = [{**e, "kind": "nudge"} for e in wrong + races] + [
        {**e, "kind": "escalation"} for e in wrong_escalations + escalation_races]
    misses = [k for k in truth.unanswered
              if k in items and items[k][0] <= t_end - MISS_SLACK and k not in nudged]
    never_seen = [k for k in truth.received if k not in items]
    late = [min(times) - items[k][0] for k, times in nudged.items() if k in items]
    detect = [truth.detected[k] - t for k, t in truth.replied.items() if k in truth.detected]
    expected_pending = truth.unanswered | waiting_keys
    cpu_share = cpu_mail  # CPU seconds a second while mail arrived
    last = samples[-1] if samples else {}
    half = [s for s in samples if s["t"] >= samples[-1]["t"] / 2] if samples else []
    summary = {
        "run": tag, "minutes": a.minutes, "rate": a.rate, "mailboxes": a.mailboxes,
        "watch_sent": a.watch_sent, "dovecot_idle_check_s": a.dovecot_idle_check,
        "waiting": len(waiting_keys), "client_mails": len(truth.received),
        "replied": len(truth.replied), "unanswered": len(truth.unanswered),
        "append_failures": truth.append_failures,
        "mails_accepted": len(sink.got), "items_nudged": len(nudged),
        "misses": len(misses), "wrong_nudges": len(wrong), "races_under_2s": len(races),
        "items_escalated": len(escalated), "wrong_escalations": len(wrong_escalations),
        "escalation_races_under_2s": len(escalation_races),
        "duplicate_items": sum(1 for t in nudged.values() if len(t) > 1),
        "duplicate_message_ids": sum(1 for n in ids.values() if n > 1),
        "never_stored": len(never_seen),
        "lateness_s": {"p50": round(pct(late, 50), 2), "p99": round(pct(late, 99), 2),
                       "max": round(max(late, default=0), 2)},
        "reply_detection_s": {"p50": round(pct(detect, 50), 2),
                              "p99": round(pct(detect, 99), 2),
                              "max": round(max(detect, default=0), 2),
                              "not_seen": len(truth.replied) - len(detect)},
        "pending_vs_truth": {"missing": len(expected_pending - pending),
                             "extra": len(pending - expected_pending)},
        "cpu_percent_while_mail": round(cpu_share * 100, 2),
        "rss_mb": {"first": samples[0]["rss_mb"] if samples else None,
                   "last": last.get("rss_mb"), "max": max((s["rss_mb"] for s in samples),
                                                          default=None),
                   "growth_last_half": round(half[-1]["rss_mb"] - half[0]["rss_mb"], 1)
                   if half else None},
        "fds": [min((s["fds"] for s in samples), default=None),
                max((s["fds"] for s in samples), default=None)],
        "threads": [min((s["threads"] for s in samples), default=None),
                    max((s["threads"] for s in samples), default=None)],
        "faults": faults,
    }
    replies = [{"key": k, "mailbox": truth.reply_uid[k][0], "uid": truth.reply_uid[k][1],
                "appended": t, "detected": truth.detected.get(k)}
               for k, t in truth.replied.items() if k in truth.reply_uid]
    out = {"summary": summary, "samples": samples, "replies": replies,
           "sent_after_reply": after_reply}
    (DATA / tag / "results.json").write_text(json.dumps(out, indent=1) + "\n")
    log(f"{tag}: {json.dumps(summary)}")
    return out


def _after_reply(sent: dict[str, list[float]], truth: Truth) -> tuple[list[dict], list[dict]]:
    """(items whose first mail went out `WRONG_SLACK` or more after their reply was
    appended, items whose first mail went out less than that after it), each with the
    times (seconds since the epoch) to find it in the daemon's log."""
    wrong: list[dict] = []
    races: list[dict] = []
    for key, times in sent.items():
        replied = truth.replied.get(key)
        if replied is not None and replied <= min(times):
            entry = {"key": key, "reply_appended": replied, "accepted": min(times),
                     "detected": truth.detected.get(key)}
            (wrong if min(times) - replied >= WRONG_SLACK else races).append(entry)
    return wrong, races


def main() -> int:
    ap = argparse.ArgumentParser(description="ackwatch soak (see bench/README.md)")
    ap.add_argument("--minutes", type=float, default=5.0, help="how long mail arrives")
    ap.add_argument("--rate", type=float, default=3.0, help="client mails a second")
    ap.add_argument("--mailboxes", type=int, default=20)
    ap.add_argument("--answered", type=float, default=0.7, help="share answered (5-120 s)")
    ap.add_argument("--drain", type=float, default=180.0,
                    help="seconds the daemon runs on after the last mail")
    ap.add_argument("--waiting", type=int, default=0, help="items already waiting")
    ap.add_argument("--compare-waiting", type=int, default=0,
                    help="run twice, with none and this many waiting: the CPU ratio")
    ap.add_argument("--sighup-every", type=float, default=0.0, help="seconds; 0: never")
    ap.add_argument("--dovecot-restart-at", type=float, nargs="*", default=[],
                    help="seconds after the start of mail")
    ap.add_argument("--kill9-at", type=float, nargs="*", default=[],
                    help="seconds after the start of mail (lands while a mail is sent)")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--seed", type=int, default=24)
    ap.add_argument("--watch-sent", default="auto", choices=("auto", "idle", "poll"),
                    help="the daemon's sync.watch_sent")
    ap.add_argument("--dovecot-idle-check", type=int, default=None, metavar="SECONDS",
                    help="Dovecot's mailbox_idle_check_interval (its default: 30): what "
                    "bounds NOTIFY's news on Dovecot 2.3 once a user's list index log has "
                    "rotated (bench/README.md, Session 13)")
    ap.add_argument("--log-level", default="info",
                    help="the daemon's log.level (debug: the watchers' reads, per folder)")
    ap.add_argument("--max-per-hour", type=int, default=1000,
                    help="notify.max_per_hour: the one manager, who gets every escalation,"
                    " reaches 1,000 about 30 minutes into the mail")
    ap.add_argument("--output", type=Path, default=ROOT / "bench" / "soak_results.json")
    a = ap.parse_args()
    runs = []
    if a.compare_waiting:
        for w in (0, a.compare_waiting):
            runs.append(soak(a, w, f"cpu-waiting-{w}"))
        none, many = (r["summary"]["cpu_percent_while_mail"] for r in runs)
        ratio = many / none if none else float("inf")
        verdict = {"cpu_percent_none_waiting": none, "cpu_percent_waiting": many,
                   "ratio": round(ratio, 2), "pass": ratio <= 1.5 and many < 5.0,
                   "limit": "ratio <= 1.5 and < 5 % of a core"}
        log(f"CPU with {a.compare_waiting} waiting / none: {verdict}")
    else:
        runs.append(soak(a, a.waiting, "soak"))
        verdict = None
    a.output.write_text(json.dumps({
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "cpu_comparison": verdict,
        "runs": [r["summary"] for r in runs],
    }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
