"""What an idle watcher costs (issue 7, target 3), against Dovecot and pymap.

The watcher talks to the server through a loopback proxy that counts the command lines
it sends, by verb (``DONE`` is not a command). Counts only: no timing assertions except
generous upper bounds.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from tests.faults.proxy import FaultProxy
from tests.servers.dovecot import DovecotServer
from tests.servers.imapserver import HOST, ImapTestServer, make_message
from tests.support.waiting import wait_for
from tests.support.watcher_events import (
    NOW,
    Events,
    StartWatcher,
    append_mail,
    health_is,
    new_mail,
    watchers,
)

from ackwatch.config import MailboxConfig, SyncConfig
from ackwatch.mail.sync import FolderSyncEvent
from ackwatch.mail.watcher import MailboxWatcher

pytestmark = pytest.mark.integration

POLL = 1.0


class _Tap:
    """Stands in for the upstream socket of one connection: counts the lines sent."""

    def __init__(self, sock, proxy: CountingProxy) -> None:
        self.sock = sock
        self.proxy = proxy
        self.buf = b""

    def sendall(self, data: bytes) -> None:
        self.buf += data
        *lines, self.buf = self.buf.split(b"\r\n")
        for line in lines:
            self.proxy.record(line)
        self.sock.sendall(data)


class CountingProxy(FaultProxy):
    """`FaultProxy` that records every client line (``"<VERB> <args>"``, tag dropped)."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(target)
        self._lines_lock = threading.Lock()
        self.lines: list[str] = []

    def record(self, line: bytes) -> None:
        parts = line.split(None, 1)
        if not parts:
            return
        if parts[0].upper() == b"DONE":
            text = "DONE"
        elif len(parts) == 2:
            text = parts[1].decode("latin-1")
        else:
            return  # a literal's content (none are sent while idle)
        with self._lines_lock:
            self.lines.append(text)

    def _pump(self, pair, src, dst, from_server: bool) -> None:  # type: ignore[no-untyped-def]
        super()._pump(pair, src, dst if from_server else _Tap(dst, self), from_server)

    def mark(self) -> int:
        with self._lines_lock:
            return len(self.lines)

    def since(self, mark: int) -> list[str]:
        with self._lines_lock:
            return list(self.lines[mark:])


def verbs(lines: list[str]) -> collections.Counter[str]:
    out: collections.Counter[str] = collections.Counter()
    for line in lines:
        words = line.upper().split()
        verb = words[0]
        if verb == "UID" and len(words) > 1:
            verb += " " + words[1]
        out[verb] += 1
    return out


@pytest.fixture
def proxied(imap_server: ImapTestServer, imap_user: str, make_mailbox_config
            ) -> Iterator[tuple[MailboxConfig, CountingProxy]]:  # fmt: skip
    with CountingProxy((imap_server.host, imap_server.port)) as proxy:
        mb = make_mailbox_config(imap_server, imap_user)
        yield dataclasses.replace(mb, host=HOST, port=proxy.port), proxy


@pytest.fixture
def watch(resolve) -> Iterator[StartWatcher]:
    """``watch(mailbox, poll=POLL, pending=..., **kw)``: a watcher with IDLE, once up."""
    with watchers(resolve=resolve) as start:

        def start_up(mb: MailboxConfig, poll: float = POLL, **kw) -> tuple[MailboxWatcher, Events]:
            w, events = start(mb, SyncConfig(poll_interval=dt.timedelta(seconds=poll),
                                             idle=True), **kw)
            events.wait(health_is("up"))
            return w, events

        yield start_up


def _wait_lines(proxy: CountingProxy, mark: int, pred: Callable[[list[str]], bool],
                timeout: float = 15.0) -> list[str]:  # fmt: skip
    def seen() -> tuple[list[str]] | None:
        lines = proxy.since(mark)
        return (lines,) if pred(lines) else None

    try:
        return wait_for(seen, timeout, "the expected command lines", step=0.02)[0]
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {proxy.since(mark)}") from None


def _idle_again(lines: list[str]) -> bool:
    return bool(lines) and lines[-1].upper() == "IDLE"


def _polls(proxy: CountingProxy, n: int) -> list[str]:
    """The lines of the next `n` whole poll rounds (each ends by going back into IDLE)."""
    mark = proxy.mark()
    # Start at the end of a round: DONE ... IDLE.
    _wait_lines(proxy, mark, lambda ls: "DONE" in ls and _idle_again(ls))
    mark = proxy.mark()
    lines = _wait_lines(proxy, mark, lambda ls: ls.count("DONE") >= n and _idle_again(ls),
                        timeout=n * POLL * 10 + 10)  # fmt: skip
    return lines


# ---------------------------------------------------------------------------- cost


def test_idle_poll_costs_at_most_two_commands(imap_server, imap_user, proxied, watch):
    """Per poll with nothing new: DONE, STATUS of the sent folder, IDLE. Nothing else."""
    mb, proxy = proxied
    inbox = [append_mail(imap_server, imap_user, subject=f"client {i}") for i in range(3)]
    sent = append_mail(imap_server, imap_user, "Sent", subject="Re: client 0")
    # Pending messages make the flags of both folders matter. Without CONDSTORE flag
    # changes are invisible to STATUS, so pending folders are re-fetched every poll
    # (pymap): that documented fall-back is not what this test measures.
    pending = ({"INBOX": set(inbox), "Sent": {sent}} if imap_server.has_condstore
               else {})  # fmt: skip
    w, events = watch(mb, pending=lambda folder: pending.get(folder, set()))
    events.wait(new_mail("INBOX", inbox[-1]))

    lines = _polls(proxy, 5)

    count = verbs(lines)
    polls = count.pop("DONE")
    commands = sum(count.values())
    assert polls >= 5
    assert commands <= 2 * polls, lines
    assert set(count) == {"STATUS", "IDLE"}, lines
    assert count["IDLE"] == polls and count["STATUS"] == polls, lines
    assert all(line.split()[1] == '"Sent"' for line in lines if line.startswith("STATUS")), lines
    assert w.health.state == "up"


def test_safety_recheck_of_the_idle_folder_is_one_examine(imap_server, imap_user, proxied,
                                                          watch):  # fmt: skip
    mb, proxy = proxied
    uid = append_mail(imap_server, imap_user)
    pending = {uid} if imap_server.has_condstore else set()
    _w, events = watch(mb, pending=lambda folder: pending if folder == "INBOX" else set(),
                       idle_safety_polls=2)  # fmt: skip
    events.wait(new_mail("INBOX", uid))

    lines = _polls(proxy, 4)

    count = verbs(lines)
    polls = count.pop("DONE")
    assert set(count) == {"STATUS", "IDLE", "EXAMINE"}, lines
    assert 1 <= count["EXAMINE"] <= polls // 2 + 1, lines
    assert all(line.split()[1] == '"INBOX"' for line in lines if line.startswith("EXAMINE"))
    assert not [line for line in lines if line.startswith("STATUS") and "INBOX" in line]


def test_condstore_cursor_from_the_first_sync(dovecot_server: DovecotServer, make_mailbox_config,
                                              watch):  # fmt: skip
    """The first EXAMINE already carries HIGHESTMODSEQ (ENABLE CONDSTORE), so the first
    poll does not re-fetch the flags of pending messages."""
    user = dovecot_server.add_user()
    mb = make_mailbox_config(dovecot_server, user)
    uid = dovecot_server.append(user, "INBOX", make_message(), internaldate=NOW)
    w, events = watch(mb, pending=lambda folder: {uid} if folder == "INBOX" else set())
    first = events.wait(new_mail("INBOX", uid))
    assert first.sync.cursor.highestmodseq is not None
    assert all(c.highestmodseq is not None for c in w.cursors.values())


# ---------------------------------------------------------------------------- promptness


def test_stop_while_idling_is_prompt(imap_server, imap_user, proxied, watch):
    mb, proxy = proxied
    w, _events = watch(mb, poll=300)
    _wait_lines(proxy, 0, _idle_again)
    time.sleep(0.3)

    t0 = time.monotonic()
    w.stop(timeout=5)
    assert not w.is_alive()
    assert time.monotonic() - t0 < 3
    tail = [line.split()[0].upper() for line in proxy.since(0)][-3:]
    assert tail == ["IDLE", "DONE", "LOGOUT"], proxy.since(0)


def test_recheck_while_idling(imap_server, imap_user, proxied, watch):
    """A recheck ends IDLE at once, syncs the sent folder, re-checks the IDLE folder with
    one EXAMINE (not STATUS) and goes back into IDLE."""
    mb, proxy = proxied
    first = append_mail(imap_server, imap_user)
    w, events = watch(mb, poll=300)
    events.wait(new_mail("INBOX", first))
    _wait_lines(proxy, 0, _idle_again)

    mark = proxy.mark()
    t0 = time.monotonic()
    assert w.recheck(timeout=8)
    assert time.monotonic() - t0 < 5
    lines = _wait_lines(proxy, mark, _idle_again)
    assert [line.split()[0].upper() for line in lines] == ["DONE", "STATUS", "EXAMINE", "IDLE"]
    assert lines[1].split()[1] == '"Sent"' and lines[2].split()[1] == '"INBOX"'

    reply = append_mail(imap_server, imap_user, "Sent", subject="Re: hello")
    mark = proxy.mark()
    assert w.recheck(timeout=8)
    assert reply in events.synced_uids("Sent")
    lines = _wait_lines(proxy, mark, _idle_again)
    # The IDLE folder is re-checked last, so IDLE follows without another EXAMINE.
    assert lines[-2].split()[:2] == ["EXAMINE", '"INBOX"'], lines
    assert verbs(lines)["EXAMINE"] == 2, lines  # Sent (sync), INBOX (check)

    later = append_mail(imap_server, imap_user, subject="still watched")
    events.wait(new_mail("INBOX", later), timeout=8)


# ---------------------------------------------------------------------------- correctness


def _flags_of(events: Events, folder: str, uid: int, flag: str) -> Callable[[object], bool]:
    return lambda e: (
        isinstance(e, FolderSyncEvent)
        and e.sync.folder == folder
        and any(u == uid and flag in f for u, f in e.sync.flag_updates)
    )


def test_inbox_flag_change_is_seen_through_idle(imap_server, imap_user, proxied, watch):
    """The IDLE folder is not polled: its flag changes come through IDLE. pymap sometimes
    holds a flag change back until the client's next command (here: the DONE of the next
    poll), which the watcher reads as well; Dovecot reports it during IDLE."""
    mb, proxy = proxied
    uid = append_mail(imap_server, imap_user)
    poll = 300 if isinstance(imap_server, DovecotServer) else POLL
    _w, events = watch(mb, poll=poll, pending=lambda folder: {uid} if folder == "INBOX" else set())
    events.wait(new_mail("INBOX", uid))
    _wait_lines(proxy, 0, _idle_again)

    imap_server.add_flags(imap_user, "INBOX", uid, ["\\Answered"])
    events.wait(_flags_of(events, "INBOX", uid, "\\Answered"), timeout=10)


def test_sent_flag_change_and_new_sent_mail_on_the_poll(imap_server, imap_user, proxied,
                                                         watch):  # fmt: skip
    mb, _proxy = proxied
    sent = append_mail(imap_server, imap_user, "Sent")
    _w, events = watch(mb, pending=lambda folder: {sent} if folder == "Sent" else set())
    events.wait(new_mail("Sent", sent))

    imap_server.add_flags(imap_user, "Sent", sent, ["\\Flagged"])
    events.wait(_flags_of(events, "Sent", sent, "\\Flagged"), timeout=10)
    reply = append_mail(imap_server, imap_user, "Sent", subject="Re: later")
    events.wait(new_mail("Sent", reply), timeout=10)


def test_mail_arriving_between_idle_rounds_is_not_lost(imap_server, imap_user, proxied,
                                                       watch):  # fmt: skip
    """News about the INBOX that the server sends along with the poll's STATUS (or at the
    start of the next IDLE) rather than during IDLE still triggers a sync, although the
    INBOX is not EXAMINEd again."""
    mb, _proxy = proxied
    arrived: list[int] = []
    flagged: list[int] = []
    seed = append_mail(imap_server, imap_user)
    ready = threading.Event()
    second = threading.Event()

    def clock() -> dt.datetime:
        # The poll's sync_all asks the clock after DONE, before the STATUS of Sent.
        if sys._getframe(1).f_code.co_name == "sync_all":
            if ready.is_set() and not arrived:
                arrived.append(append_mail(imap_server, imap_user, subject="between rounds"))
            elif second.is_set() and not flagged:
                imap_server.add_flags(imap_user, "INBOX", seed, ["\\Answered"])
                flagged.append(seed)
        return dt.datetime.now(dt.UTC)

    _w, events = watch(mb, pending=lambda folder: {seed} if folder == "INBOX" else set(),
                       clock=clock)  # fmt: skip
    events.wait(new_mail("INBOX", seed))
    ready.set()
    wait_for(lambda: arrived, 10, "the mail appended between the two rounds", step=0.02)
    events.wait(new_mail("INBOX", arrived[0]), timeout=5)
    second.set()
    events.wait(_flags_of(events, "INBOX", seed, "\\Answered"), timeout=10)
    assert flagged
    assert events.synced_uids("INBOX").count(arrived[0]) == 1


def test_idle_over_tls(tls_dovecot: DovecotServer, make_mailbox_config, watch):
    """The wait looks at TLS-buffered bytes too: new mail during IDLE is seen promptly,
    and stop is prompt."""
    user = tls_dovecot.add_user()
    mb = dataclasses.replace(make_mailbox_config(tls_dovecot, user), security="tls",
                             port=tls_dovecot.tls_port, ca_file=tls_dovecot.cert_file)  # fmt: skip
    w, events = watch(mb, poll=300)
    for i in range(3):
        uid = tls_dovecot.append(user, "INBOX", make_message(subject=f"tls {i}"), internaldate=NOW)
        events.wait(new_mail("INBOX", uid), timeout=8)
    t0 = time.monotonic()
    w.stop(timeout=5)
    assert not w.is_alive() and time.monotonic() - t0 < 3
