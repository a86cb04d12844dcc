"""What a daemon step costs on a grown state (issue 24): the soak's hour, in-process.

    .venv/bin/python bench/grown_step.py SOAK_DAEMON_DIR --steps 200
    .venv/bin/python bench/grown_step.py SOAK_DAEMON_DIR --steps 200 --profile
    .venv/bin/python bench/grown_step.py SOAK_DAEMON_DIR --steps 2000 --memory

SOAK_DAEMON_DIR is a soak run's ``daemon`` directory (``config.yaml`` and ``state/``,
e.g. the 1-hour soak's: 10,856 client mails, 7,449 answered with "I will confirm by
Friday", so 7,449 open promises). Its state is copied to a temporary directory (the
original is never written) and a `Daemon` runs on the copy with the soak's config, its
mailboxes pointed at a closed port. Each measured step is what the soak's 3 mails a
second make of the daemon's life: a new client mail, and every other step the
account's reply to the previous one ("I will confirm by Friday"), applied as a watcher's
sync events, then `Daemon.step()`. The keeper's reads of those replies fail (no server)
and are retried later, as when a mailbox is down. The figures: the median CPU time of
a step (`time.process_time`), and with ``--memory`` the Python heap's growth per step
(tracemalloc) and where it is, after a first step that loads what a start loads.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from soak import client_mail, reply_mail  # noqa: E402


def write_config(src: Path, d: Path) -> Path:
    """The soak's config, its state in ``d`` and its servers on a closed port."""
    text = (src / "config.yaml").read_text()
    text = re.sub(r"(?m)^state_dir: .*$", f"state_dir: {d / 'state'}", text)
    text = re.sub(r"port: \d+", "port: 1", text)
    text = re.sub(r"password_file: [^,}]+", "password_env: NOPE", text)
    cfg = d / "config.yaml"
    cfg.write_text(text)
    return cfg


def measure(src: Path, steps: int, profile: bool, memory: bool, top: int) -> dict:
    from ackwatch.config import load_config
    from ackwatch.daemon.service import Daemon
    from ackwatch.daemon.watchers import Recheck
    from ackwatch.mail.sync import FolderCursor, FolderSync, FolderSyncEvent
    from ackwatch.mail.uidfetch import FetchedMessage
    from ackwatch.store.sqlite import SqliteStore

    d = Path(tempfile.mkdtemp(prefix="ackwatch-grown-"))
    try:
        shutil.copytree(src / "state", d / "state")
        config = load_config(write_config(src, d))
        store = SqliteStore.open(config.state_dir)
        uids: dict[tuple[str, str], int] = {}
        for mb in config.mailboxes:
            for folder in ("INBOX", "Sent"):
                row = store._db.conn.execute(  # type: ignore[attr-defined]
                    "SELECT MAX(uid) FROM messages WHERE mailbox = ? AND folder = ?",
                    (mb.name, folder),
                ).fetchone()
                uids[mb.name, folder] = int(row[0] or 0) + 1000
        daemon = Daemon(config, store, now=lambda: dt.datetime.now(dt.UTC),
                        send=lambda msg, cfg: None)
        daemon.recheck = (  # type: ignore[method-assign]
            lambda mailboxes: Recheck(frozenset(), frozenset()))
        t = time.process_time()
        daemon.step()
        first = time.process_time() - t
        names = [mb.name for mb in config.mailboxes]
        run = "g" + str(int(time.time()))

        def feed(n: int) -> None:
            mb = names[n % len(names)]
            now = dt.datetime.now(dt.UTC)
            _, raw = client_mail(n, mb, now, run)
            events = [("INBOX", "inbox", raw)]
            if n % 2:
                prev = n - 1
                pmb = names[prev % len(names)]
                pmid = f"<soak{run}.{prev}@client{prev % 40:02d}.example>"
                events.append(("Sent", "sent", reply_mail(prev, pmb, pmid, now, run)))
                mb_of = {"INBOX": mb, "Sent": pmb}
            else:
                mb_of = {"INBOX": mb}
            for folder, role, data in events:
                box = mb_of[folder]
                uids[box, folder] += 1
                uid = uids[box, folder]
                fetched = FetchedMessage(uid, now, frozenset(), data)
                daemon.post(FolderSyncEvent(box, FolderSync(
                    folder, role, FolderCursor(1, uid), new_messages=(fetched,))))

        cpu: list[float] = []
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
        snap0 = None
        if memory:
            import gc
            import tracemalloc

            for n in range(20):  # warm the memos before the first snapshot
                feed(n)
                daemon.step()
            tracemalloc.start(12)
            gc.collect()
            snap0 = tracemalloc.take_snapshot()
        for n in range(100, 100 + steps):
            feed(n)
            if profiler:
                profiler.enable()
            t = time.process_time()
            daemon.step()
            cpu.append(time.process_time() - t)
            if profiler:
                profiler.disable()
        out = {"state": str(src), "steps": steps, "first_step_s": round(first, 3),
               "step_ms_median": round(statistics.median(cpu) * 1000, 2),
               "step_ms_p90": round(sorted(cpu)[int(0.9 * (len(cpu) - 1))] * 1000, 2),
               "open_promises": len(store.promises(states=["open"]))}
        if profiler:
            import pstats

            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
        if snap0 is not None:
            import gc
            import tracemalloc

            gc.collect()
            snap1 = tracemalloc.take_snapshot()
            diff = snap1.compare_to(snap0, "traceback")
            grown = sum(s.size_diff for s in diff)
            out["heap_growth_bytes_per_step"] = round(grown / steps)
            for s in diff[:top]:
                print(f"--- {s.size_diff / steps:.0f} B/step, {s.count_diff} blocks",
                      file=sys.stderr)
                for line in s.traceback.format()[-16:]:
                    print(line, file=sys.stderr)
            tracemalloc.stop()
        store.close()
        return out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("state", type=Path, help="a soak run's daemon directory")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--top", type=int, default=8)
    a = ap.parse_args()
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    print(json.dumps(measure(a.state, a.steps, a.profile, a.memory, a.top)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
