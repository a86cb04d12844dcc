"""Does Dovecot's IMAP NOTIFY keep reporting the sent folder? (issue 24's reply tail)

    .venv/bin/python bench/notify_rotation.py [--minutes 7] [--idle-check SECONDS]

One connection as the watcher holds it (ENABLE CONDSTORE, ``NOTIFY SET`` for Sent,
EXAMINE INBOX, IDLE) on a private Dovecot (tests/servers/dovecot.py); every second a
message is APPENDed to Sent on another connection, and the script notes whether NOTIFY's
``STATUS`` news of it came within 3 s, and which ``dovecot.list.index.log*`` files the
user has. Dovecot watches that log with inotify, set once per NOTIFY SET; when the log
is rotated (at least 8 kB and 5 minutes old) the watch stays on the old file, and news
then comes only from Dovecot's ``mailbox_idle_check_interval`` timer (30 s) or along
with an inbox change. After three changes in a row without news the script sends
``NOTIFY SET`` again and shows whether that brings the news back (``--idle-check``: with
Dovecot's ``mailbox_idle_check_interval`` set, no renewal: whether the timer alone brings
the news). Prints one line per APPEND; not part of ``make bench``; figures in
bench/README.md.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from imapclient import IMAPClient  # noqa: E402
from run import BenchDovecot  # noqa: E402
from tests.servers.imapserver import make_message  # noqa: E402

from ackwatch.mail import notify  # noqa: E402
from ackwatch.mail.idle import Waker, idle_wait  # noqa: E402

WAIT = 3.0  # seconds for the news of one APPEND


def _note(heard: list[float]) -> None:
    heard.append(time.monotonic())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=7.0)
    ap.add_argument("--idle-check", type=int, default=None, metavar="SECONDS",
                    help="Dovecot's mailbox_idle_check_interval (default: Dovecot's, 30)")
    a = ap.parse_args()
    server = BenchDovecot(pool=0, idle_check_seconds=a.idle_check)
    server.start()
    wake = Waker()
    wake.open()
    try:
        user = server.add_user()
        home = server.dir / "mail" / user
        client = IMAPClient(server.host, server.port, ssl=False, timeout=30)
        server._login(client, user, server.passwords[user])
        client._imap._simple_command("ENABLE", "CONDSTORE")
        assert notify.notify_set(client, ["Sent"])
        client.select_folder("INBOX", readonly=True)
        t0 = time.monotonic()
        missed = 0
        renewed = False
        n = 0
        while time.monotonic() - t0 < a.minutes * 60:
            n += 1
            t = time.monotonic()
            server.append(user, "Sent", make_message(subject=f"reply {n}"), flags=("\\Seen",))
            heard: list[float] = []
            idle_wait(client, wake, until=time.monotonic() + WAIT, renew=600,
                      interrupted=lambda: False, host=server.host,
                      notified=functools.partial(_note, heard))  # fmt: skip
            notify.take_notified(client)
            logs = sorted(p.name for p in home.glob("dovecot.list.index.log*"))
            news = f"news {heard[0] - t:.2f} s" if heard else f"NO NEWS within {WAIT:.0f} s"
            print(f"{t - t0:6.1f} s  #{n:<4} {news:22} {' '.join(logs)}", flush=True)
            missed = 0 if heard else missed + 1
            if missed >= 3 and not renewed and a.idle_check is None:
                print("NOTIFY SET again", flush=True)
                assert notify.notify_set(client, ["Sent"])
                client.select_folder("INBOX", readonly=True)
                renewed = True
            time.sleep(1.0)
        client.logout()
    finally:
        wake.close()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
