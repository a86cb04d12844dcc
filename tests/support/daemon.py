"""A real ``ackwatch run -c FILE`` process for the daemon and fault tests.

Its config (short calendar-clock windows, in seconds), the process with its JSON log, the
mail fed to it and what the SMTP sink received from it. Fixtures: `sink` (an aiosmtpd
sink that remembers when each mail arrived), `ackwatch` (starts processes, kills leftovers)
and `dovecot` (the session Dovecot, restarted if a test stopped it); a conftest.py
declares them by importing them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from tests.servers.imapserver import ImapTestServer, make_message
from tests.support.config_yaml import mailbox_yaml, password_file
from tests.support.waiting import wait_for

if TYPE_CHECKING:  # imported in the fixture, after pytest could rewrite its asserts
    from tests.servers.smtp import SmtpSink


ANNA = "anna@agency.example"
PIOTR = "piotr@agency.example"
KASIA = "kasia@agency.example"
CLIENT = "jan@acme.example"


def iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


class _Stamped(list):
    """The sink's message list, remembering when each message was accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []
        self.on_append: Callable[[Any], None] | None = None  # runs in the sink's thread

    def append(self, item: Any) -> None:
        self.times.append(time.time())
        super().append(item)
        if self.on_append is not None:
            self.on_append(item)

    def clear(self) -> None:
        self.times.clear()
        super().clear()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    from tests.servers.smtp import SmtpSink


    s = SmtpSink()
    s.messages = _Stamped()  # type: ignore[assignment]
    with s:
        yield s


def mails(sink: SmtpSink, kind: str | None = None) -> list[EmailMessage]:
    with sink._lock:
        got = [r.message for r in sink.messages]
    return [m for m in got if kind is None or m["X-Ackwatch"] == kind]


def item_ids(msg: EmailMessage) -> list[str]:
    return str(msg.get("X-Ackwatch-Items", "")).split()


def times_mentioned(sink: SmtpSink, message_id: str, kind: str = "nudge") -> int:
    return sum(item_ids(m).count(message_id) for m in mails(sink, kind))


def text_part(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def html_part(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content()


def write_config(
    tmp_path: Path,
    server: ImapTestServer,
    mailboxes: dict[str, tuple[str, str]],
    sink: SmtpSink,
    *,
    window: str = "12s",
    nudge_before: str = "6s",
    escalate_after: str | None = None,
    poll_interval: str = "1s",
    batch_window: str = "2s",
    watch_sent: str = "auto",
    name: str = "config.yaml",
    anna_mentor: str | None = None,
    max_per_hour: int = 6,
) -> Path:
    """A config watching `mailboxes` ({name: (imap user, owner address)})."""
    mentor = f", mentor: {anna_mentor}" if anna_mentor else ""
    entries = []
    for mb_name, (user, owner) in mailboxes.items():
        pw = password_file(tmp_path, mb_name, server.password(user))
        entries.append(mailbox_yaml(mb_name, server.host, server.port, user, pw, owner))
    escalate = f", escalate_after: {escalate_after}" if escalate_after else ""
    cfg = tmp_path / name
    cfg.write_text(textwrap.dedent(f"""\
        timezone: Europe/Warsaw
        state_dir: {tmp_path / "state"}
        agency:
          domains: [agency.example]
        policies:
          default: {{window: {window}, clock: calendar, nudge_before: {nudge_before}{escalate}}}
        accounts:
          - {{email: {ANNA}, name: Anna Nowak, manager: {KASIA}, language: en{mentor}}}
          - {{email: {PIOTR}, name: Piotr, manager: {KASIA}, language: en}}
        clients:
          - {{name: Acme, match: [acme.example], account: {ANNA}}}
        unknown_senders: track
        smtp:
          host: {sink.host}
          port: {sink.port}
          security: none
          from: "ackwatch <ackwatch@agency.example>"
          timeout: 10
        sync:
          poll_interval: {poll_interval}
          watch_sent: {watch_sent}
        notify:
          batch_window: {batch_window}
          max_per_hour: {max_per_hour}
        digest:
          enabled: false
        mailboxes:
        """) + "".join(entries))
    cfg.chmod(0o600)
    return cfg


def with_board(cfg: Path, port: int) -> Path:
    """``cfg`` with the board on (``web.listen`` on loopback ``port``)."""
    with cfg.open("a") as f:
        f.write(f'web:\n  listen: "127.0.0.1:{port}"\n')
    return cfg


class Ackwatch:
    """One ``ackwatch run`` subprocess; its output (JSON log lines) goes to a file."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()):
        self.config = config
        self.log = log
        self.env = env
        self.args = args  # more arguments of ``run``: ``("--node", "n1")``
        self.status_config = config  # `ackwatch status` reads the config too
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Ackwatch:
        env = {**os.environ, **(self.env or {})}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ackwatch", "run", "-c", str(self.config), *self.args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-n:])

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and (name is None or record.get("event") == name):
                    out.append(record)
        return out

    def wait_event(self, name: str, count: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        def seen() -> list[dict[str, Any]] | None:
            if not self.alive():
                raise AssertionError(f"ackwatch exited ({self.proc.returncode}):\n{self.tail()}")
            found = self.events(name)
            return found if len(found) >= count else None

        try:
            return wait_for(seen, timeout, f"{count} {name} event(s)", step=0.05)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- ackwatch log ---\n{self.tail()}") from None

    def status(self) -> list[dict[str, Any]]:
        run = subprocess.run(
            [sys.executable, "-m", "ackwatch", "status", "-c", str(self.status_config), "--json"],
            capture_output=True, text=True, timeout=30, check=False,
        )
        if run.returncode != 0:  # no state yet
            return []
        return json.loads(run.stdout)

    def wait_item(self, message_id: str, timeout: float = 15.0) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((i for i in self.status() if i["message_id"] == message_id), None)

        try:
            return wait_for(find, timeout, f"item {message_id} in `ackwatch status`", step=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- ackwatch log ---\n{self.tail()}") from None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def ackwatch(tmp_path: Path) -> Iterator[Callable[..., Ackwatch]]:
    """Start ``ackwatch run`` processes; any left running are killed at teardown."""
    started: list[Ackwatch] = []

    def start(config: Path, env: dict[str, str] | None = None,
              args: tuple[str, ...] = ()) -> Ackwatch:
        d = Ackwatch(config, tmp_path / f"ackwatch-{len(started) + 1}.log", env, args).start()
        started.append(d)
        return d

    yield start
    for d in started:
        if d.alive():
            with contextlib.suppress(Exception):
                d.stop(10)
        if d.alive():
            d.kill9()


@pytest.fixture
def dovecot(dovecot_server: ImapTestServer) -> ImapTestServer:
    if not dovecot_server.is_running():
        dovecot_server.start()
    return dovecot_server


def client_mail(subject: str, message_id: str, *, sender: str = CLIENT, to: str = ANNA,
                **kw: Any) -> bytes:
    return make_message(subject=subject, sender=sender, to=to, message_id=message_id, **kw)


def reply_mail(to_message_id: str, subject: str, *, sender: str = ANNA,
               to: str = CLIENT) -> bytes:
    return make_message(subject=f"Re: {subject}", sender=sender, to=to,
                        in_reply_to=to_message_id, body="Got it, on it - by Friday.\r\n")


def started(ackwatch: Callable[..., Ackwatch], cfg: Path, mailboxes: int = 1,
            env: dict[str, str] | None = None) -> Ackwatch:
    """Start the daemon and wait until every mailbox finished its first sync."""
    d = ackwatch(cfg, env)
    d.wait_event("mailbox_up", count=mailboxes)
    return d
