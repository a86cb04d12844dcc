"""What one daemon step costs with many items waiting (issue 24), in-process, no IMAP.

    .venv/bin/python bench/steady_step.py --waiting 0,10000 --steps 40
    .venv/bin/python bench/steady_step.py --waiting 10000 --profile   # cProfile of the steps

A state of 20 mailboxes gets ``waiting`` client mails received four days ago, stored
as a first sync stores them (`Store.apply_folder_sync`) and evaluated by the daemon's
first step: long-waiting items whose nudges and escalations are already past
(suppressed, as after a history import). Then each measured step is what 3 mails a
second make of the daemon's life: one new client mail applied as a watcher's sync event,
then `Daemon.step()` (evaluation of its thread, planning, outbox, metrics, status). The
figure is the median CPU time of a step (`time.process_time`: this process, no waiting),
and beside it that of `Store.pending_uids` for one folder (what a watcher asks before
each sync of a changed folder);
a run under callgrind (`valgrind --tool=callgrind ... --steps 10`) gives instruction
counts that do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAILBOXES = [f"mb{i:02d}" for i in range(20)]


def write_config(d: Path) -> Path:
    accounts = "".join(
        f"  - {{email: {mb}@agency.example, name: {mb}, manager: boss@agency.example}}\n"
        for mb in MAILBOXES
    ) + "  - {email: boss@agency.example, name: Boss}\n"
    mailboxes = "".join(
        f"  - {{name: {mb}, host: 127.0.0.1, port: 1, security: none, username: {mb},"
        f" password_env: NOPE, owner: {mb}@agency.example,"
        f" folders: {{inbox: [INBOX], sent: [Sent]}}}}\n"
        for mb in MAILBOXES
    )
    cfg = d / "config.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        timezone: Europe/Warsaw
        state_dir: {d / "state"}
        agency:
          domains: [agency.example]
        policies:
          default: {{window: 24h, clock: calendar, nudge_before: 1h}}
        accounts:
        """) + accounts + "unknown_senders: track\ndigest:\n  enabled: false\n"
        + "mailboxes:\n" + mailboxes)
    return cfg


def client_head(n: int, mb: str, tag: str) -> bytes:
    return (f"Message-ID: <{tag}{n}@client{n % 40:02d}.example>\r\n"
            f"From: Jan <jan{n % 300}@client{n % 40:02d}.example>\r\n"
            f"To: {mb}@agency.example\r\nSubject: Request {tag}{n} about the campaign\r\n"
            f"Date: Mon, 23 Nov 2026 09:00:00 +0100\r\n\r\n").encode()


def measure(waiting: int, steps: int, profile: bool) -> dict:
    from ackwatch.config import load_config
    from ackwatch.daemon.parsedmail import copies_to_store, parse_fetched
    from ackwatch.daemon.service import Daemon
    from ackwatch.mail.sync import FolderCursor, FolderSync, FolderSyncEvent
    from ackwatch.mail.uidfetch import FetchedMessage
    from ackwatch.store.sqlite import SqliteStore

    d = Path(tempfile.mkdtemp(prefix="ackwatch-steady-"))
    try:
        config = load_config(write_config(d))
        store = SqliteStore.open(config.state_dir)
        now = dt.datetime.now(dt.UTC)
        old = now - dt.timedelta(days=4)
        uids = dict.fromkeys(MAILBOXES, 0)
        per = {mb: [] for mb in MAILBOXES}
        for n in range(waiting):
            mb = MAILBOXES[n % len(MAILBOXES)]
            uids[mb] += 1
            per[mb].append(FetchedMessage(uids[mb], old + dt.timedelta(seconds=n),
                                          frozenset({"\\Seen"}), client_head(n, mb, "w")))
        for mb, batch in per.items():
            store.apply_folder_sync(
                mailbox=mb, folder="INBOX", role="inbox", uidvalidity=1, last_uid=uids[mb],
                highestmodseq=None, flag_updates=(), reset=False,
                new_messages=copies_to_store(
                    store, [(m, parse_fetched(m, mb, "INBOX", "inbox")) for m in batch]),
                initial=True, dismiss_keyword="$Ackwatch-Done", now=now)
        daemon = Daemon(config, store, now=lambda: dt.datetime.now(dt.UTC),
                        send=lambda msg, cfg: None)
        t = time.process_time()
        daemon.step()  # the first evaluation, and the skips it plans
        first = time.process_time() - t
        pending = len(store.pending_items())
        uid_cpu: list[float] = []
        for _ in range(3):
            for mb in MAILBOXES:  # what a sync of a changed folder asks first
                t = time.process_time()
                store.pending_uids(mb, "INBOX")
                uid_cpu.append(time.process_time() - t)
        cpu: list[float] = []
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
        for n in range(steps):
            mb = MAILBOXES[n % len(MAILBOXES)]
            uids[mb] += 1
            fetched = FetchedMessage(uids[mb], dt.datetime.now(dt.UTC), frozenset(),
                                     client_head(n, mb, "s"))
            event = FolderSyncEvent(mb, FolderSync("INBOX", "inbox", FolderCursor(1, uids[mb]),
                                                   new_messages=(fetched,)))
            if profiler:
                profiler.enable()
            t = time.process_time()
            daemon.post(event)
            daemon.step()
            cpu.append(time.process_time() - t)
            if profiler:
                profiler.disable()
        if profiler:
            import pstats

            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
        store.close()
        return {"waiting": waiting, "pending": pending, "steps": steps,
                "first_step_s": round(first, 3),
                "step_ms_median": round(statistics.median(cpu) * 1000, 2),
                "step_ms_p90": round(sorted(cpu)[int(0.9 * (len(cpu) - 1))] * 1000, 2),
                "pending_uids_ms_median": round(statistics.median(uid_cpu) * 1000, 3)}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--waiting", default="0,10000", help="comma list of waiting item counts")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    for w in a.waiting.split(","):
        print(json.dumps(measure(int(w), a.steps, a.profile)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
