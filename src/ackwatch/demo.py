"""`make demo`: the real daemon against an embedded mail server, with a short story.

Starts, in this process, an IMAP server (pymap, in-memory) with a shared "office" inbox
and an SMTP sink (aiosmtpd) that prints every mail ackwatch sends as the account would
read it; writes a demo config with short calendar-clock windows; then runs the real
daemon (`ackwatch run`, a subprocess) and plays the story:

1. Acme asks for a quote; Anna replies within the window: no nudge.
2. Globex asks about banner sizes; nobody replies: Anna gets a nudge, then replies.
3. Initech's invoice question is never answered: a nudge, then an escalation to Kasia.

Plus a newsletter and an out-of-office auto-reply that ackwatch must ignore. Needs nothing
but Python and the packages in pyproject.toml. Exits 0 when the story played as expected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

HOST = "127.0.0.1"
USERS = {"office": "demo-office-pass", "anna": "demo-anna-pass"}
WINDOW = 40  # seconds: the acknowledgement window (calendar clock)
NUDGE_BEFORE = 20
ESCALATE_AFTER = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- IMAP


class EmbeddedImap:
    """pymap's in-memory backend, served from a thread of this process."""

    def __init__(self, users: dict[str, str]):
        self.users = users
        self.port = _free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="demo-imap", daemon=True)

    def start(self) -> None:
        os.environ.setdefault("FQDN", "localhost")
        self._thread.start()
        if not self._ready.wait(20) or self._error is not None:
            raise RuntimeError(f"embedded IMAP server did not start: {self._error}")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        from pymap.backend.dict import DictBackend
        from pymap.imap import IMAPService
        from pymap.user import Passwords, UserMetadata

        parser = argparse.ArgumentParser()
        parser.add_argument("--debug", action="store_true")
        parser.set_defaults(skip_services=[], passlib_cfg=None)
        IMAPService.add_arguments(parser)
        sub = parser.add_subparsers(dest="backend")
        DictBackend.add_subparser("dict", sub)
        args = parser.parse_args(["--host", HOST, "--port", str(self.port), "--no-tls", "dict"])
        backend, config = await DictBackend.init(args)
        config.apply_context()
        for name, password in self.users.items():
            hashed = await Passwords(config).hash_password(password)
            backend.login.users_dict[name] = UserMetadata(config, name, password=hashed)
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            await backend.start(stack)
            await IMAPService(backend, config).start(stack)
            self._ready.set()
            await self._stop.wait()

    def client(self, user: str):  # an admin connection of the story (not ackwatch's)
        from imapclient import IMAPClient

        c = IMAPClient(HOST, port=self.port, ssl=False, timeout=10)
        c.login(user, self.users[user])
        return c

    def deliver(self, user: str, folder: str, msg: EmailMessage, flags: tuple = ()) -> None:
        with self.client(user) as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            c.append(folder, msg.as_bytes(), flags=flags, msg_time=dt.datetime.now(dt.UTC))


# --------------------------------------------------------------------------- SMTP


class PrintingSink:
    """An SMTP server that prints each mail as its recipient would read it."""

    def __init__(self, out):
        from aiosmtpd.controller import Controller

        self.out = out
        self.received: list[EmailMessage] = []
        self.port = _free_port()
        self.controller = Controller(self, hostname=HOST, port=self.port)

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(msg)
        body = msg.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        to = msg["To"] + (f", cc {msg['Cc']}" if msg["Cc"] else "")
        self.out.write(
            "\n" + "┌" + "─" * 76 + "\n"
            f"│ ✉  {msg['X-Ackwatch']} to {to}\n"
            f"│ Subject: {msg['Subject']}\n"
            "├" + "─" * 76 + "\n"
            + "".join(f"│ {line}\n" for line in text.rstrip().splitlines())
            + "└" + "─" * 76 + "\n"
        )
        self.out.flush()
        return "250 OK"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def kinds(self) -> list[tuple[str, str]]:
        return [(str(m["X-Ackwatch"]), str(m["To"])) for m in self.received]


# --------------------------------------------------------------------------- the story


def _mail(sender: str, to: str, subject: str, *, reply_to: EmailMessage | None = None,
          extra: dict[str, str] | None = None, body: str = "") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">"))
    if reply_to is not None:
        msg["In-Reply-To"] = reply_to["Message-ID"]
        msg["References"] = reply_to["Message-ID"]
    for k, v in (extra or {}).items():
        msg[k] = v
    msg.set_content(body or "Hello,\n\nplease see below.\n")
    return msg


def write_config(directory: Path, imap_port: int, smtp_port: int) -> Path:
    pw = directory / "office.pass"
    pw.write_text(USERS["office"] + "\n")
    pw.chmod(0o600)
    cfg = directory / "config.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        # ackwatch demo: short calendar-clock windows so that the story fits in a minute.
        timezone: Europe/Warsaw
        state_dir: {directory / "state"}
        agency:
          domains: [agency.example]
        calendars:
          office:
            timezone: Europe/Warsaw
            hours: {{mon-fri: "09:00-17:00"}}
            holidays: PL
        policies:
          default: {{window: {WINDOW}s, clock: calendar, nudge_before: {NUDGE_BEFORE}s,
                     escalate_after: {ESCALATE_AFTER}s}}
        accounts:
          - {{email: anna@agency.example, name: Anna Nowak, manager: kasia@agency.example,
             language: en}}
        clients:
          - {{name: Acme, match: [acme.example], account: anna@agency.example}}
          - {{name: Globex, match: [globex.example], account: anna@agency.example}}
          - {{name: Initech, match: [initech.example], account: anna@agency.example}}
        unknown_senders: track
        mailboxes:
          - name: office
            host: {HOST}
            port: {imap_port}
            security: none
            username: office
            password_file: {pw}
            owner: anna@agency.example
            folders: {{inbox: [INBOX], sent: [Sent]}}
        smtp:
          host: {HOST}
          port: {smtp_port}
          security: none
          from: "ackwatch <ackwatch@agency.example>"
        sync:
          poll_interval: 2s
        notify:
          batch_window: 5s
        digest:
          enabled: false
        """))
    cfg.chmod(0o600)
    return cfg


def say(text: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp}] {text}", flush=True)


def main() -> int:
    print(__doc__.split("\n\n")[0].replace("`make demo`: ", "ackwatch demo — "), flush=True)
    imap = EmbeddedImap(USERS)
    imap.start()
    sink = PrintingSink(sys.stdout)
    sink.start()
    with tempfile.TemporaryDirectory(prefix="ackwatch-demo-") as tmp:
        directory = Path(tmp)
        with imap.client("office") as c:
            if not c.folder_exists("Sent"):
                c.create_folder("Sent")
        cfg = write_config(directory, imap.port, sink.port)
        say(f"IMAP (pymap) on {HOST}:{imap.port}, SMTP sink on {HOST}:{sink.port}")
        say(f"policy: acknowledge within {WINDOW}s, nudge {NUDGE_BEFORE}s before, "
            f"escalate {ESCALATE_AFTER}s after")
        log_path = directory / "ackwatch.log"
        with open(log_path, "wb") as log_file:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "ackwatch", "run", "-c", str(cfg)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
            try:
                ok = _story(imap, sink)
            finally:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(15)
                except subprocess.TimeoutExpired:
                    daemon.kill()
            say(f"daemon exited with status {daemon.returncode}")
            status = subprocess.run(
                [sys.executable, "-m", "ackwatch", "status", "-c", str(cfg)],
                capture_output=True, text=True, check=False,
            )
            print("\n$ ackwatch status\n" + status.stdout + status.stderr, flush=True)
        if not ok or daemon.returncode != 0:
            print("\nthe daemon's log:\n" + log_path.read_text(errors="replace")[-4000:])
    sink.stop()
    imap.stop()
    return 0 if ok and daemon.returncode == 0 else 1


def _story(imap: EmbeddedImap, sink: PrintingSink) -> bool:
    time.sleep(3)  # let the daemon connect and record the (empty) history
    acme = _mail("Jan Kowalski <jan@acme.example>", "office@agency.example",
                 "Quote for the winter campaign")
    globex = _mail("Grace <grace@globex.example>", "office@agency.example",
                   "Banner sizes for the launch?")
    initech = _mail("Bill <bill@initech.example>", "office@agency.example",
                    "Urgent: invoice 2026/11/042")
    newsletter = _mail("News <news@marketing.example>", "office@agency.example",
                       "Weekly digest", extra={"List-Id": "<weekly.marketing.example>",
                                               "Precedence": "bulk"})
    say("Acme, Globex and Initech write to the office inbox; a newsletter arrives too.")
    for m in (acme, globex, initech, newsletter):
        imap.deliver("office", "INBOX", m)
    time.sleep(8)
    say("Anna replies to Acme (saved in Sent): Acme will get no nudge.")
    imap.deliver("office", "Sent", _mail(
        "Anna Nowak <anna@agency.example>", "jan@acme.example", "Re: " + str(acme["Subject"]),
        reply_to=acme, body="Dear Jan, got it - the quote will be ready by Friday noon.\n"))
    say(f"Waiting for the nudge (due {WINDOW - NUDGE_BEFORE}s after the mail)...")
    if not _wait(lambda: any(k == "nudge" for k, _ in sink.kinds()), 60):
        say("no nudge arrived: something is wrong")
        return False
    time.sleep(2)
    say("Anna replies to Globex after the nudge; Initech stays unanswered.")
    imap.deliver("office", "Sent", _mail(
        "Anna Nowak <anna@agency.example>", "grace@globex.example",
        "Re: " + str(globex["Subject"]), reply_to=globex,
        body="Hi Grace, the sizes are coming today by 15:00.\n"))
    say("Waiting for the escalation to Kasia...")
    if not _wait(lambda: any(k == "escalation" for k, _ in sink.kinds()), 60):
        say("no escalation arrived: something is wrong")
        return False
    time.sleep(3)
    kinds = sink.kinds()
    say(f"ackwatch sent {len(kinds)} mail(s): " + ", ".join(f"{k} to {to}" for k, to in kinds))
    return True


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return False


if __name__ == "__main__":
    sys.exit(main())
