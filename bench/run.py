"""ackwatch benchmarks (issue 7): `make bench`, or `.venv/bin/python bench/run.py --help`.

Starts a private Dovecot (tests/servers/dovecot.py) on bench/data/dovecot, fills its
Maildirs with bench/generate.py, runs the selected targets and writes bench/results.json.
With ``--database postgresql`` the state is in a private PostgreSQL (`backend`), and the
results go to bench/results_postgresql.json. Method and results: bench/README.md. Never
part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import email
import json
import os
import platform
import pwd
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import generate  # noqa: E402
from backend import BACKENDS, Backend  # noqa: E402
from tests.servers.dovecot import DovecotServer  # noqa: E402
from tests.servers.imapserver import HOST, default_password, free_port  # noqa: E402

DATA = ROOT / "bench" / "data"
PY = sys.executable
NOW = dt.datetime.now(dt.UTC)
REGEN_AFTER = dt.timedelta(hours=6)  # the backfill window moves with the clock
BACKEND = Backend("sqlite")  # `main` sets the one of --database


def log(*a: object) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


# =========================================================================== dovecot


class BenchDovecot(DovecotServer):
    """The test fixture, with process limits raised for 200+ concurrent sessions, and
    the imap process's memory limit (256 MB) for indexing a 1M-message Maildir (target 2
    with `--growth-large 1m`)."""

    def __init__(self, *args: Any, idle_check_seconds: int | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.idle_check_seconds = idle_check_seconds  # None: Dovecot's default (30 s)

    @property
    def process_group(self) -> int:
        """The master's process group: the master and every ``imap`` process it starts."""
        assert self._proc is not None, "not started"
        return self._proc.pid

    def _write_config(self) -> None:
        super()._write_config()
        with open(self.dir / "dovecot.conf", "a") as f:
            f.write("default_process_limit = 1000\ndefault_client_limit = 4000\n"
                    "mail_max_userip_connections = 20\ndefault_vsz_limit = 2G\n")
            if self.idle_check_seconds is not None:
                f.write(f"mailbox_idle_check_interval = {self.idle_check_seconds} secs\n")


def mail_owner() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    p = pwd.getpwnam("dovecot")
    return p.pw_uid, p.pw_gid


def ensure_user(server: BenchDovecot, user: str, *, force: bool = False, **params: object) -> None:
    """Generate `user`'s Maildir unless an identical, recent one exists."""
    marker = DATA / "markers" / f"{user}.json"
    root = server.dir / "mail" / user
    if not force and marker.exists() and root.exists():
        m = json.loads(marker.read_text())
        age = NOW - dt.datetime.fromisoformat(m["generated_at"])
        if m["params"] == params and age < REGEN_AFTER:
            return
    t = time.monotonic()
    counts = generate.fill_user(root, owner=f"{user}@agency.example", now=NOW,
                                uid_gid=mail_owner(), **params)  # type: ignore[arg-type]
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"params": params, "generated_at": NOW.isoformat(),
                                  "counts": counts}))
    log(f"generated {user}: {counts} in {time.monotonic() - t:.1f}s")


def warm(server: BenchDovecot, user: str) -> None:
    """Let Dovecot index the Maildir (first access) outside any measurement."""
    t = time.monotonic()
    bare_sync(server, user)
    log(f"indexed {user} in {time.monotonic() - t:.1f}s")


# =========================================================================== config


def write_config(
    name: str,
    users: list[str],
    *,
    port: int,
    smtp_port: int | None = None,
    policy: str = "{window: 24h, clock: calendar, nudge_before: 1h}",
    accounts: list[str] | None = None,
    poll: str = "60s",
) -> tuple[Path, Path]:
    """A config for `users` (one mailbox each); (config path, state dir), state fresh."""
    d = DATA / "run" / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    os.chmod(d, 0o700)
    mbs = []
    for u in users:
        pw = d / f"{u}.pass"
        pw.write_text(default_password(u) + "\n")
        pw.chmod(0o600)
        mbs.append(f"""  - name: {u}
    host: {HOST}
    port: {port}
    security: none
    username: {u}
    password_file: {pw}
    owner: {u}@agency.example
    folders: {{inbox: [INBOX], sent: [Sent]}}
    timeout: 30
""")
    accs = accounts or ["anna@agency.example"]
    acc_yaml = "".join(f"  - {{email: {a}, name: {a.split('@')[0]}}}\n" for a in accs)
    smtp = ""
    if smtp_port is not None:
        smtp = (f"smtp:\n  host: {HOST}\n  port: {smtp_port}\n  security: none\n"
                f"  from: \"ackwatch <ackwatch@agency.example>\"\n  timeout: 10\n")
    state = d / "state"
    cfg = d / "config.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        timezone: Europe/Warsaw
        state_dir: {state}
        agency:
          domains: [agency.example]
        policies:
          default: {policy}
        accounts:
        """) + acc_yaml + textwrap.dedent(f"""\
        unknown_senders: track
        digest:
          enabled: false
        sync:
          poll_interval: {poll}
        """) + smtp + BACKEND.config_yaml(state) + "mailboxes:\n" + "".join(mbs))
    cfg.chmod(0o600)
    return cfg, state


def ackwatch(*args: str, log_to: Path | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    p = subprocess.run([PY, "-m", "ackwatch", *args], capture_output=True, timeout=3600,
                       check=False)
    elapsed = time.perf_counter() - t
    if log_to is not None:
        log_to.write_bytes(p.stdout + b"\n--- stderr ---\n" + p.stderr)
    if p.returncode != 0:
        raise RuntimeError(f"ackwatch {args[0]} exited {p.returncode}: {p.stderr[-2000:]!r}")
    return elapsed, p


def bare_sync(server: BenchDovecot, user: str) -> float:
    since = (NOW - dt.timedelta(days=7)).date().isoformat()
    t = time.perf_counter()
    subprocess.run([PY, str(ROOT / "bench" / "bare_sync.py"), HOST, str(server.port), user,
                    default_password(user), since], check=True, capture_output=True,
                   timeout=3600)
    return time.perf_counter() - t


def ro(state: Path):  # sqlite3.Connection, or `backend._Look`
    return BACKEND.ro(state)


def result(target: str, measured: str, ok: bool | None, limit: str, **raw: object) -> dict:
    r = {"target": target, "measured": measured, "limit": limit,
         "pass": ok, "raw": raw}
    log(f"RESULT {target}: {measured} (limit {limit}) -> "
        f"{'PASS' if ok else 'FAIL' if ok is not None else 'n/a'}")
    return r


# =========================================================================== 1 + 2


def run_once(server: BenchDovecot, user: str, tag: str) -> tuple[float, int]:
    cfg, state = write_config(f"once-{tag}", [user], port=server.port)
    elapsed, _ = ackwatch("run", "--once", "-c", str(cfg), log_to=cfg.parent / "run.log")
    with ro(state) as c:
        n = c.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    return elapsed, n


# Target 1's workloads: (name, what it is, the Maildir's generator parameters).
# "big100k": an agency's everyday mail, 90 % of recent client mail answered.
# "open40k": every client mail of the window still unanswered: 13.3k open items, and a
# third of the window agency mail that is not a reply (generate.mailbox_mails).
T1_WORKLOADS: dict[str, tuple[str, dict[str, object]]] = {
    "big100k": ("100k INBOX, 20k in window", dict(inbox=100_000, window=20_000, seed=1)),
    "open40k": ("every client mail unanswered: 40k INBOX, 20k in window, a third agency mail",
                dict(inbox=40_000, window=20_000, seed=5, answered_old=0.0,
                     answered_recent=0.0, agency_share=1 / 3)),
}


def target_initial_sync(server: BenchDovecot, rounds: int, user: str = "big100k") -> dict:
    """Rounds of one `run --once` and one bare sync each, the order alternating from round
    to round. The figure is the median of the rounds' own ratios: this shared 2-core VM
    drifts by 10-20 % within minutes (a pure-Python loop does), and a ratio taken within
    one round cancels the drift that a ratio of medians keeps. ``user``: the workload
    (`T1_WORKLOADS`); each is a result of its own ("1", "1b")."""
    ack, bare, n, items = [], [], 0, 0
    for i in range(rounds):
        if i % 2:
            b = bare_sync(server, user)
            a, n = run_once(server, user, f"t1-{user}-{i}")
        else:
            a, n = run_once(server, user, f"t1-{user}-{i}")
            b = bare_sync(server, user)
        ack.append(a)
        bare.append(b)
        log(f"t1 {user} round {i}: ackwatch {a:.2f}s, bare {b:.2f}s, ratio {a / b:.2f}, "
            f"{n} messages")
    with ro(write_config_state(f"once-t1-{user}-{rounds - 1}")) as c:
        items, open_items = c.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE state = 'pending') FROM items").fetchone()
    ratios = [a / b for a, b in zip(ack, bare, strict=True)]
    ratio = statistics.median(ratios)
    label = "1" if user == "big100k" else "1b"
    # The same limit on both workloads (bench/README.md: the targets).
    return result(f"{label} initial sync ({T1_WORKLOADS[user][0]})", f"ratio {ratio:.2f}",
                  ratio <= 1.5, "<= 1.5", ratio_of_medians=round(
                      statistics.median(ack) / statistics.median(bare), 3),
                  round_ratios=[round(r, 3) for r in ratios], ackwatch_s=ack, bare_s=bare,
                  messages_stored=n, items=items, open_items=open_items)


def write_config_state(name: str) -> Path:
    """The state dir of the run `write_config(name, ...)` set up."""
    return DATA / "run" / name / "state"


def target_growth(server: BenchDovecot, small: str, large: str, rounds: int) -> dict:
    ts: dict[str, list[float]] = {small: [], large: []}
    for i in range(rounds):
        for u in (small, large):
            ts[u].append(run_once(server, u, f"t2-{u}-{i}")[0])
    ratio = statistics.median(ts[large]) / statistics.median(ts[small])
    log(f"t2 {ts}")
    return result(f"2 growth ({small} vs {large}, same window)", f"ratio {ratio:.2f}",
                  ratio <= 1.5, "<= 1.5", seconds=ts)


# =========================================================================== 3 idle


class CountingProxy:
    """A loopback TCP proxy that counts the IMAP commands clients send, by verb."""

    def __init__(self, upstream: int):
        self.upstream = upstream
        self.port = free_port()
        self.counts: collections.Counter[str] = collections.Counter()
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(asyncio.start_server(self._handle, HOST, self.port,
                                                          limit=1 << 24))
        self._ready.set()
        self.loop.run_forever()

    def _count(self, line: bytes) -> None:
        parts = line.split(None, 3)
        if not parts:
            return
        if parts[0].upper() == b"DONE":
            self.counts["DONE"] += 1
            return
        if len(parts) < 2:
            return
        verb = parts[1].upper().decode("ascii", "replace")
        if verb == "UID" and len(parts) > 2:
            verb += " " + parts[2].upper().decode("ascii", "replace")
        self.counts[verb] += 1

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_r, up_w = await asyncio.open_connection(HOST, self.upstream, limit=1 << 24)

        async def c2s() -> None:
            try:
                while line := await reader.readline():
                    self._count(line)
                    up_w.write(line)
                    await up_w.drain()
            finally:
                up_w.close()

        async def s2c() -> None:
            try:
                while data := await up_r.read(1 << 16):
                    writer.write(data)
                    await writer.drain()
            finally:
                writer.close()

        await asyncio.gather(c2s(), s2c(), return_exceptions=True)

    def snapshot(self) -> collections.Counter[str]:
        return collections.Counter(dict(self.counts))


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu(pgid: int) -> float:
    """CPU seconds of a process group's live processes and of the children they reaped
    (a server's master and its per-connection processes: Dovecot's ``imap``)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid:
            total += sum(int(f) for f in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def proc_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Daemon:
    """`ackwatch run` in a subprocess, its output in ``log_name`` beside the config
    (``log_mode`` "ab" keeps the output of earlier lives: `soak.SoakDaemon`,
    `nodes.Node`); ``args``: more of `run`'s options."""

    def __init__(self, cfg: Path, log_mode: str = "wb", *, log_name: str = "daemon.log",
                 args: tuple[str, ...] = ()):
        self.cfg = cfg
        self.args = args
        self.log = open(cfg.parent / log_name, log_mode)  # noqa: SIM115
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [PY, "-m", "ackwatch", "run", "-c", str(self.cfg), *self.args],
            stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_up(state: Path, n: int, daemon: Daemon, timeout: float = 600,
            poll: float = 0.2) -> float:
    """Seconds until ``n`` mailboxes are up with their two folders synced (read in the
    state every ``poll`` seconds)."""
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        if daemon.proc.poll() is not None:
            raise RuntimeError("the daemon exited; see its daemon.log")
        try:
            with ro(state) as c:
                up = c.execute("SELECT COUNT(*) FROM health WHERE state = 'up'").fetchone()[0]
                folders = c.execute("SELECT COUNT(*) FROM folders").fetchone()[0]
            if up >= n and folders >= 2 * n:
                return time.monotonic() - t
        except BACKEND.errors:
            pass
        time.sleep(poll)
    raise TimeoutError(f"only some of {n} mailboxes came up")


def proc_threads(pid: int) -> tuple[float, int]:
    """(seconds on a CPU, context switches) summed over the live threads of `pid`.

    The seconds come from each thread's ``schedstat`` (the scheduler's exact runtime).
    utime + stime (`proc_cpu`) are sampled at timer ticks, which a tickless idle kernel
    skips while the CPUs sleep: short wake-ups of a mostly idle process are undercounted.
    Context switches (voluntary + not) are roughly its wake-ups.
    """
    runtime_ns = switches = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            runtime_ns += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            text = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except (OSError, IndexError, ValueError):  # the thread ended meanwhile
            continue
        for line in text.splitlines():
            if "ctxt_switches:" in line:
                switches += int(line.split()[1])
    return runtime_ns / 1e9, switches


def target_idle(server: BenchDovecot, users: list[str], minutes: float) -> dict:
    proxy = CountingProxy(server.port)
    poll = 60.0
    cfg, state = write_config("idle", users, port=proxy.port, poll=f"{int(poll)}s")
    d = Daemon(cfg)
    try:
        up = wait_up(state, len(users), d)
        log(f"t3: {len(users)} mailboxes up in {up:.1f}s; settling 20s")
        time.sleep(20)
        c0, cpu0, t0 = proxy.snapshot(), proc_cpu(d.proc.pid), time.monotonic()
        run0, sw0 = proc_threads(d.proc.pid)
        server0 = group_cpu(server.process_group)
        time.sleep(minutes * 60)
        server1 = group_cpu(server.process_group)
        c1, cpu1, t1 = proxy.snapshot(), proc_cpu(d.proc.pid), time.monotonic()
        run1, sw1 = proc_threads(d.proc.pid)
        hwm = proc_hwm_mb(d.proc.pid)
        threads = len(os.listdir(f"/proc/{d.proc.pid}/task"))
    finally:
        d.stop()
    delta = c1 - c0
    commands = sum(v for k, v in delta.items() if k != "DONE")
    polls = (t1 - t0) / poll
    per = commands / len(users) / polls
    # The larger of the tick-sampled and the exact figure (see proc_threads).
    cpu_share = max(cpu1 - cpu0, run1 - run0) / (t1 - t0)
    ok = per <= 2 and cpu_share <= 0.01
    return result(
        f"3 idle ({len(users)} mailboxes, {minutes:g} min, poll {poll:g}s)",
        f"{per:.2f} commands/mailbox/poll, CPU {cpu_share * 100:.2f}% of a core",
        ok, "<= 2 commands, <= 1% CPU",
        commands=commands, by_verb=dict(delta), mailboxes=len(users),
        seconds=round(t1 - t0, 1), polls=round(polls, 2), cpu_seconds=round(cpu1 - cpu0, 2),
        cpu_runtime_seconds=round(run1 - run0, 2),
        startup_s=round(up, 1), daemon_vmhwm_mb=round(hwm, 1), threads=threads,
        wakeups_per_s=round((sw1 - sw0) / (t1 - t0), 1),
        dovecot_cpu_percent=round((server1 - server0) / (t1 - t0) * 100, 2),
        dovecot_idle_check_s=server.idle_check_seconds,
    )


# =========================================================================== 4 detection


def client_mail(mid: str, to: str, subject: str) -> bytes:
    return (f"From: Jan <jan@client07.example>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: {email.utils.format_datetime(dt.datetime.now(dt.UTC))}\r\n"
            f"Message-ID: {mid}\r\n\r\nHello\r\n").encode()


def target_detection(server: BenchDovecot, user: str, others: list[str], samples: int) -> dict:
    from imapclient import IMAPClient

    cfg, state = write_config("detect", [user, *others], port=server.port)
    d = Daemon(cfg)
    lat: list[float] = []
    try:
        up = wait_up(state, 1 + len(others), d)
        log(f"t4: up in {up:.1f}s")
        time.sleep(3)
        admin = IMAPClient(HOST, server.port, ssl=False)
        admin.login(user, default_password(user))
        db = ro(state)
        run = f"{int(time.time())}"
        rng = random.Random(7)
        for i in range(samples):
            mid = f"<det-{run}-{i}@client07.example>"
            admin.append("INBOX", client_mail(mid, f"{user}@agency.example", f"Detect {i}"))
            t0 = time.perf_counter()
            while True:
                if db.execute("SELECT 1 FROM items WHERE key = ?", (mid,)).fetchone():
                    break
                if time.perf_counter() - t0 > 60:
                    raise TimeoutError(f"sample {i} not detected in 60s")
                time.sleep(0.002)
            lat.append(time.perf_counter() - t0)
            time.sleep(rng.uniform(0.1, 0.4))
        admin.logout()
        db.close()
    finally:
        d.stop()
    p50, p99 = pct(lat, 50), pct(lat, 99)
    return result(f"4 detection ({samples} APPENDs, IDLE)", f"p50 {p50:.3f}s, p99 {p99:.3f}s",
                  p99 <= 1.0, "p99 <= 1 s", p50=p50, p99=p99, max=max(lat),
                  samples=len(lat), mailboxes=1 + len(others))


# =========================================================================== 5 punctuality


class SmtpRecorder:
    def __init__(self) -> None:
        self.got: list[tuple[float, str, tuple[str, ...]]] = []

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content)
        self.got.append((time.time(), str(msg["Message-ID"]), tuple(envelope.rcpt_tos)))
        return "250 OK"


def target_punctuality(server: BenchDovecot, n_accounts: int, n_items: int) -> dict:
    from aiosmtpd.controller import Controller

    users = [f"punct{i:02d}" for i in range(n_accounts)]
    rec = SmtpRecorder()
    smtp_port = free_port()
    ctl = Controller(rec, hostname=HOST, port=smtp_port)
    ctl.start()
    # Items due (nudge_at = received + 5 min) spread over one minute starting at t0.
    start = dt.datetime.now(dt.UTC)
    t0 = (start + dt.timedelta(seconds=60)).replace(microsecond=0)
    per_user: dict[str, list[generate.Mail]] = {u: [] for u in users}
    for k in range(n_items):
        u = users[k % n_accounts]
        received = t0 - dt.timedelta(minutes=5) + dt.timedelta(seconds=60 * k / n_items)
        per_user[u].append(generate.Mail("INBOX", received, client_mail(
            f"<p{k}.{int(start.timestamp())}@client{k % 40:02d}.example>",
            f"{u}@agency.example", f"Punctual {k}")))
    for u, mails in per_user.items():
        root = server.dir / "mail" / u
        if root.exists():
            shutil.rmtree(root)
        w = generate.MaildirWriter(root)
        w._dir("INBOX")
        w._dir("Sent")
        for m in mails:
            w.write(m)
        if mail_owner():
            generate.chown_tree(root, *mail_owner())  # type: ignore[misc]
    cfg, state = write_config(
        "punctual", users, port=server.port, smtp_port=smtp_port,
        policy="{window: 10m, clock: calendar, nudge_before: 5m}",
        accounts=[f"{u}@agency.example" for u in users])
    d = Daemon(cfg)
    try:
        up = wait_up(state, n_accounts, d)
        log(f"t5: {n_accounts} mailboxes up in {up:.1f}s; first nudge due at {t0:%H:%M:%S}")
        deadline = time.time() + max(0, (t0 - dt.datetime.now(dt.UTC)).total_seconds()) + 120
        while time.time() < deadline:
            with ro(state) as c:
                left = c.execute("SELECT COUNT(*) FROM items WHERE state = 'pending' AND"
                                 " (nudge_done IS NULL OR nudge_done != 'sent')").fetchone()[0]
            if left == 0 and len(rec.got) > 0:
                break
            time.sleep(0.5)
        with ro(state) as c:
            nudge_at = {k: dt.datetime.fromisoformat(v).timestamp() for k, v in
                        c.execute("SELECT key, nudge_at FROM items")}
            outbox = {mid: json.loads(keys) for mid, keys in
                      c.execute("SELECT message_id, item_keys FROM outbox")}
            suppressed = c.execute("SELECT COUNT(*) FROM items WHERE nudge_done = 'suppressed'"
                                   ).fetchone()[0]
    finally:
        d.stop()
        ctl.stop()
    mail_late, item_late, items_sent = [], [], 0
    for t, mid, _rcpt in rec.got:
        keys = outbox.get(mid, {}).get("nudge", [])
        dues = [nudge_at[k] for k in keys if k in nudge_at]
        if not dues:
            continue
        items_sent += len(dues)
        mail_late.append(t - min(dues))
        item_late.extend(t - x for x in dues)
    p99 = pct(mail_late, 99) if mail_late else float("inf")
    ok = items_sent == n_items and p99 <= 2.0
    return result(
        f"5 punctuality ({n_items} items due in one minute, {n_accounts} accounts)",
        f"{items_sent}/{n_items} items in {len(mail_late)} mails; lateness per mail p50 "
        f"{pct(mail_late, 50):.2f}s p99 {p99:.2f}s max {max(mail_late, default=0):.2f}s",
        ok, "every item nudged, p99 <= 2 s after due",
        mails=len(mail_late), items_sent=items_sent, suppressed=suppressed,
        mail_lateness_p50=pct(mail_late, 50), mail_lateness_p99=p99,
        mail_lateness_max=max(mail_late, default=None),
        item_lateness_max=max(item_late, default=None), startup_s=round(up, 1),
    )


# =========================================================================== 6 memory


def synth_messages(state: Path, users: list[str], total: int) -> None:
    """`total` stored messages over the last year across `users`, stored the way a sync
    stores them (parsed, then `Store.apply_folder_sync`: links, dirty marks), IMAP aside."""
    from ackwatch.daemon.parsedmail import ParsedMail, copies_to_store
    from ackwatch.store import NewMessage

    store = BACKEND.open_store(state)
    if BACKEND.name == "sqlite":
        # Bench-only: a large page cache and no fsync, so that storing a year takes
        # minutes (the daemon keeps SQLite's defaults; the measured processes open the
        # state anew).
        store._conn.execute("PRAGMA cache_size = -2000000")
        store._conn.execute("PRAGMA synchronous = OFF")
    per = total // len(users)
    for u in users:
        batches: dict[str, list[NewMessage]] = {"INBOX": [], "Sent": []}
        for m in generate.mailbox_mails(owner=f"{u}@agency.example", inbox=int(per / 1.3),
                                        window=int(per / 1.3 * 0.03), now=NOW, seed=6):
            head = m.raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            flags = frozenset({"\\Seen"} | ({"\\Answered"} if "R" in m.flags else set()))
            batch = batches[m.folder]
            batch.append(NewMessage(len(batch) + 1, m.received, flags, head))
        for folder, batch in batches.items():
            role = "inbox" if folder == "INBOX" else "sent"
            parsed = ParsedMail().parse(u, folder, role, batch)  # none kept: not measured here
            store.apply_folder_sync(
                mailbox=u, folder=folder, role=role, uidvalidity=1, last_uid=len(batch),
                highestmodseq=None, new_messages=copies_to_store(store, parsed),
                flag_updates=(), reset=False, initial=True, dismiss_keyword="$Ackwatch-Done",
                now=NOW)
    store.close()


def _vm_hwm_mb() -> float:
    """This process's peak RSS. (Not ru_maxrss: Linux carries it over from the parent
    across fork + exec, and the parent holds the synthesized state's page cache.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def mem_child(cfg: str, mode: str) -> None:
    """One daemon life in this process, on the synthesized state:

    - "first": the first start (nothing evaluated yet): threads found anew, a batch of
      link components at a time (as after `backfill` or a change of the agency addresses);
    - "config": a start after a config change that leaves threading as it was (a policy,
      an account): everything evaluated again, a batch of threads at a time;
    - "steady": a restart on an evaluated state, then new mail (replies to 200 open items
      and 200 new client mails across the mailboxes) and one step.
    """
    from ackwatch.config import load_config
    from ackwatch.daemon.service import Daemon as Core
    from ackwatch.mail.sync import FolderCursor, FolderSync, FolderSyncEvent
    from ackwatch.mail.uidfetch import FetchedMessage
    from ackwatch.store import open_store

    config = load_config(cfg)
    store = open_store(config.state_dir, database=config.database)
    forget = {"first": ("evaluated_with", "threaded_with"), "config": ("evaluated_with",)}
    with store._write() as c:
        c.executemany("DELETE FROM meta WHERE name = ?", [(n,) for n in forget.get(mode, ())])
    base = _vm_hwm_mb()
    core = Core(config, store)
    t = time.perf_counter()
    if mode in forget:
        core.step()
    else:
        core.step()  # nothing changed since the last run: nothing to evaluate
        pending = store.pending_items()[:200]
        by_mailbox: dict[str, list] = {}
        for i, rec in enumerate(pending):
            mb = rec.mailboxes[0]
            head = (f"Message-ID: <steady-r{i}@agency.example>\r\nFrom: {mb}@agency.example\r\n"
                    f"To: {rec.client_address}\r\nSubject: Re: {rec.subject}\r\n"
                    f"In-Reply-To: {rec.message_id}\r\nReferences: {rec.message_id}\r\n\r\n")
            by_mailbox.setdefault(mb, []).append(("Sent", "sent", head))
            client = (f"Message-ID: <steady-c{i}@client.example>\r\nFrom: c{i}@client.example"
                      f"\r\nTo: {mb}@agency.example\r\nSubject: New request {i}\r\n\r\n")
            by_mailbox[mb].append(("INBOX", "inbox", client))
        cursors = {(r[0], r[1]): r[2] for r in store._conn.execute(
            "SELECT mailbox, folder, last_uid FROM folders")}
        for mb, mails in by_mailbox.items():
            for folder, role in (("INBOX", "inbox"), ("Sent", "sent")):
                uid = cursors.get((mb, folder), 0)
                fetched = []
                for f, _r, head in mails:
                    if f == folder:
                        uid += 1
                        fetched.append(FetchedMessage(uid, NOW, frozenset(), head.encode()))
                if fetched:
                    core.apply_event(FolderSyncEvent(mb, FolderSync(
                        folder, role, FolderCursor(1, uid), new_messages=tuple(fetched))))
        core.step()
    elapsed = time.perf_counter() - t
    c = store._conn
    n = c.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    items = c.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    pending_n = c.execute("SELECT COUNT(*) FROM items WHERE state = 'pending'").fetchone()[0]
    print(json.dumps({"peak_rss_mb": _vm_hwm_mb(),
                      "base_rss_mb": base, "seconds": elapsed, "messages": n,
                      "items": items, "pending_after": pending_n}))


def target_memory(users: list[str], total: int, reuse: bool) -> dict:
    cfg = DATA / "run" / "memory" / "config.yaml"
    if not (reuse and cfg.exists()):
        cfg, state = write_config("memory", users, port=1)
        t = time.monotonic()
        synth_messages(state, users, total)
        log(f"t6: stored {total} messages in {time.monotonic() - t:.1f}s")
    runs = {}
    for mode in ("first", "config", "steady"):
        p = subprocess.run([PY, __file__, "--mem-child", f"{mode}:{cfg}"], capture_output=True,
                           timeout=3600, check=False)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.decode()[-3000:])
        runs[mode] = json.loads(p.stdout.decode().strip().splitlines()[-1])
        log(f"t6 {mode}: {runs[mode]}")
    r = runs["steady"]
    peak = max(run["peak_rss_mb"] for run in runs.values())
    return result(
        f"6 memory ({len(users)} mailboxes, {r['messages']} messages in the state)",
        f"peak RSS {peak:.0f} MB: restart + 400 new mails {r['peak_rss_mb']:.0f} MB, after "
        f"a config change {runs['config']['peak_rss_mb']:.0f} MB, first start "
        f"{runs['first']['peak_rss_mb']:.0f} MB",
        peak <= 150, "<= 150 MB in each", **runs)


# =========================================================================== 7 report/status


def synth_items(state: Path, n: int, *, pending: int, span_days: float) -> None:
    store = BACKEND.open_store(state)
    if BACKEND.name == "sqlite":
        store.close()
        conn = sqlite3.connect(state / "ackwatch.sqlite3")
        conn.execute("PRAGMA synchronous=OFF")
    else:
        conn = _PgBulk(store)
    rng = random.Random(7)
    accounts = [f"acc{i:02d}@agency.example" for i in range(20)]
    iso = lambda t: t.isoformat(timespec="microseconds")  # noqa: E731
    rows = []
    start = NOW - dt.timedelta(days=span_days)
    for i in range(n):
        received = start + dt.timedelta(seconds=span_days * 86400 * i / n)
        deadline = received + dt.timedelta(hours=2)
        state_ = "pending" if i >= n - pending else ("dropped" if rng.random() < 0.01
                                                      else "acknowledged")
        ack = received + dt.timedelta(minutes=rng.expovariate(1 / 60)) \
            if state_ == "acknowledged" else None
        c = rng.randrange(40)
        rows.append((
            f"<i{i}@client{c:02d}.example>", f"t{i}", f"<i{i}@client{c:02d}.example>",
            f"jan@client{c:02d}.example", f"Client {c:02d}", f"Subject {i}", iso(received),
            json.dumps([f"mb{c % 20}"]), accounts[c % 20], "default", "calendar",
            iso(deadline), iso(deadline - dt.timedelta(minutes=30)), iso(deadline), state_,
            f"<a{i}@agency.example>" if ack else None, iso(ack) if ack else None,
            "reply" if ack else None, accounts[c % 20] if ack else None, 0, iso(received),
        ))
        if len(rows) >= 50_000:
            _insert_items(conn, rows)
            rows = []
    _insert_items(conn, rows)
    conn.commit()
    conn.close()


class _PgBulk:
    """The store's PostgreSQL connection, used as `synth_items` uses an sqlite3 one: the
    rows of each ``executemany`` in one transaction."""

    def __init__(self, store) -> None:  # a PostgresStore
        self._store = store

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        with self._store._write() as c:
            c.executemany(sql, rows)

    def commit(self) -> None:
        pass

    def close(self) -> None:
        self._store.close()


def _insert_items(conn, rows: list[tuple]) -> None:  # conn: sqlite3 or _PgBulk
    conn.executemany(
        "INSERT INTO items (key, thread, message_id, client_address, client, subject, received,"
        " mailboxes, account, policy, clock, deadline, nudge_at, escalate_at, state, ack_key,"
        " ack_at, ack_kind, ack_by, follow_ups, first_seen)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)


def target_report(n: int) -> dict:
    cfg, state = write_config("report", ["mb0"], port=1)
    t = time.monotonic()
    synth_items(state, n, pending=50, span_days=365)
    log(f"t7: synthesized {n} items in {time.monotonic() - t:.1f}s")
    since = (NOW - dt.timedelta(days=365)).isoformat()
    runs = [ackwatch("report", "-c", str(cfg), "--since", since, "--until", NOW.isoformat(),
                     log_to=cfg.parent / "report.txt")[0] for _ in range(3)]
    best, med = min(runs), statistics.median(runs)
    return result(f"7a report over one year ({n} client emails)", f"{med:.2f}s (median of 3)",
                  med <= 5, "<= 5 s", seconds=runs, best=best)


def target_status(n_open: int, mailboxes: int) -> dict:
    users = [f"mb{i:03d}" for i in range(mailboxes)]
    cfg, state = write_config("status", users, port=1)
    synth_items(state, n_open, pending=n_open, span_days=5)
    runs = [ackwatch("status", "-c", str(cfg), log_to=cfg.parent / "status.txt")[0]
            for _ in range(3)]
    med = statistics.median(runs)
    return result(f"7b status ({n_open} open items)", f"{med:.2f}s (median of 3)", med <= 1,
                  "<= 1 s", seconds=runs)


# =========================================================================== main


def compile_bytecode() -> None:
    """Write ackwatch's bytecode, as installing the package does. The editable install of
    a checkout has none, and where PYTHONDONTWRITEBYTECODE is set (as on this project's
    machines) every `ackwatch` process would compile its modules again: ~0.1 s of each
    start that an installed ackwatch never spends (the bare script imports less)."""
    import compileall

    compileall.compile_dir(ROOT / "src" / "ackwatch", quiet=1)


def main() -> int:
    ap = argparse.ArgumentParser(description="ackwatch benchmarks (see bench/README.md)")
    ap.add_argument("--targets", default="1,2,3,4,5,6,7", help="comma list of 1..7")
    ap.add_argument("--growth-large", choices=["100k", "1m"], default="1m",
                    help="the large folder of target 2 (1m: ~1M files, long to generate)")
    ap.add_argument("--dovecot-idle-check", type=int, default=None, metavar="SECONDS",
                    help="Dovecot's mailbox_idle_check_interval (its default: 30); target 3 "
                    "reports Dovecot's CPU beside the daemon's")
    ap.add_argument("--idle-minutes", type=float, default=10.0, help="target 3 (as specified: 10)")
    ap.add_argument("--idle-mailboxes", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=7, help="repetitions for targets 1 and 2")
    ap.add_argument("--t1-workloads", default=",".join(T1_WORKLOADS),
                    help=f"target 1's workloads (comma list of {', '.join(T1_WORKLOADS)})")
    ap.add_argument("--samples", type=int, default=200, help="target 4 APPENDs")
    ap.add_argument("--mem-messages", type=int, default=1_000_000)
    ap.add_argument("--mem-reuse", action="store_true",
                    help="target 6: measure on the state of the last run (no new synthesis)")
    ap.add_argument("--report-items", type=int, default=1_000_000)
    ap.add_argument("--regenerate", action="store_true", help="rewrite every Maildir")
    ap.add_argument("--database", choices=BACKENDS, default="sqlite",
                    help="where the state is: sqlite (default) or postgresql (a private "
                         "server, as the tests start; results to results_postgresql.json)")
    ap.add_argument("--output", type=Path, default=None,
                    help="default bench/results.json (results_postgresql.json with "
                         "--database postgresql)")
    ap.add_argument("--mem-child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.mem_child:
        mode, _, cfg = a.mem_child.partition(":")
        mem_child(cfg, mode)
        return 0
    targets = {int(t) for t in a.targets.split(",") if t.strip()}
    if a.database == "postgresql" and a.mem_reuse:
        ap.error("--mem-reuse needs --database sqlite (each run starts a new PostgreSQL)")
    if a.output is None:
        suffix = "" if a.database == "sqlite" else f"_{a.database}"
        a.output = ROOT / "bench" / f"results{suffix}.json"
    global BACKEND
    BACKEND = Backend(a.database)
    BACKEND.start()
    try:
        return run_targets(a, targets)
    finally:
        BACKEND.stop()


def run_targets(a: argparse.Namespace, targets: set[int]) -> int:
    """Run ``targets`` with the arguments ``a``; write and print the results."""
    compile_bytecode()
    DATA.mkdir(parents=True, exist_ok=True)
    idle_users = [f"idle{i:03d}" for i in range(a.idle_mailboxes)]
    large = "g1m" if a.growth_large == "1m" else "g100k"
    t1_users = [w.strip() for w in a.t1_workloads.split(",") if w.strip()]
    unknown = set(t1_users) - T1_WORKLOADS.keys()
    if unknown:
        raise SystemExit(f"unknown --t1-workloads: {', '.join(sorted(unknown))}")
    users = [*T1_WORKLOADS, "g10k", "g100k", "g1m", "detect", *idle_users,
             *(f"punct{i:02d}" for i in range(50))]
    results: list[dict] = []
    started = time.monotonic()
    server = None
    if targets & {1, 2, 3, 4, 5}:
        server = BenchDovecot(tuple(users), directory=DATA / "dovecot", pool=0,
                              idle_check_seconds=a.dovecot_idle_check)
        (DATA / "dovecot").mkdir(parents=True, exist_ok=True)
        force = a.regenerate
        if 1 in targets:
            for u in t1_users:
                ensure_user(server, u, force=force, **T1_WORKLOADS[u][1])
        if 2 in targets:
            ensure_user(server, "g10k", inbox=10_000, window=2_000, seed=2, force=force)
            ensure_user(server, large, inbox=1_000_000 if large == "g1m" else 100_000,
                        window=2_000, seed=2, force=force)
        if 4 in targets:
            ensure_user(server, "detect", inbox=10_000, window=2_000, seed=4, force=force)
        if targets & {3, 4}:
            for u in idle_users:
                ensure_user(server, u, inbox=60, window=20, seed=3, force=force)
        server.start()
        log(f"dovecot on {server.port} ({server.dir})")
    try:
        if 1 in targets:
            assert server is not None
            for u in t1_users:
                warm(server, u)
                results.append(target_initial_sync(server, a.rounds, u))
        if 2 in targets:
            assert server is not None
            warm(server, "g10k")
            warm(server, large)
            results.append(target_growth(server, "g10k", large, a.rounds))
        if 3 in targets:
            assert server is not None
            results.append(target_idle(server, idle_users, a.idle_minutes))
        if 4 in targets:
            assert server is not None
            warm(server, "detect")
            results.append(target_detection(server, "detect", idle_users[:9], a.samples))
        if 5 in targets:
            assert server is not None
            results.append(target_punctuality(server, 50, 1000))
        if 6 in targets:
            results.append(target_memory(idle_users or ["idle000"], a.mem_messages,
                                         a.mem_reuse))
        if 7 in targets:
            results.append(target_report(a.report_items))
            results.append(target_status(10_000, 200))
    finally:
        if server is not None:
            server.stop()
    out = {
        "when": NOW.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "dovecot": "2.3"},
        "database": a.database,
        "args": {k: v for k, v in vars(a).items() if k not in ("output", "mem_child")},
        "seconds": round(time.monotonic() - started, 1),
        "results": results,
    }
    if a.output.exists() and set(targets) != {1, 2, 3, 4, 5, 6, 7}:
        try:  # a partial run updates only its own targets
            old = json.loads(a.output.read_text())
            mine = {r["target"].split()[0] for r in results}
            out["results"] = [r for r in old.get("results", [])
                              if r["target"].split()[0] not in mine] + results
            out["results"].sort(key=lambda r: r["target"])
        except (ValueError, KeyError):
            pass
    a.output.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print("\n| target | measured | limit | result |\n|---|---|---|---|")
    for r in out["results"]:
        verdict = "pass" if r["pass"] else "FAIL" if r["pass"] is not None else "n/a"
        print(f"| {r['target']} | {r['measured']} | {r['limit']} | {verdict} |")
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
