"""The bounds of `ackwatch.mail.imapguard` that need no server (the servers: tests/faults/
test_hostile_imap.py)."""

from __future__ import annotations

import datetime as dt
import inspect
import time
from typing import Any

import pytest
from imapclient import IMAPClient

from ackwatch.config import SyncConfig
from ackwatch.core.headers import MAX_HEADER_BYTES
from ackwatch.mail import imapguard
from ackwatch.mail.uidfetch import _header_item


def test_a_header_fetch_may_carry_four_times_the_header_limit():
    command = f"A1 UID FETCH 1:500 (UID INTERNALDATE FLAGS {_header_item()})\r\n".encode()
    assert imapguard.literal_limit(command, 1 << 30) == 4 * MAX_HEADER_BYTES


def test_the_promise_readers_body_part_may_carry_four_times_its_16_kb():
    command = b"A2 UID FETCH 7 (UID BODY.PEEK[1]<0.16384>)\r\n"
    assert imapguard.literal_limit(command, 1 << 30) == 4 * 16384


@pytest.mark.parametrize(
    "command",
    [b"A3 EXAMINE INBOX\r\n", b"A4 UID FETCH 7 (UID BODYSTRUCTURE)\r\n",
     b"A5 UID FETCH 1:* (UID FLAGS)\r\n", b"A6 LIST \"\" *\r\n"],
)  # fmt: skip
def test_commands_that_ask_for_no_text_get_small_literals_only(command):
    assert imapguard.literal_limit(command, 1 << 30) == imapguard.OTHER_LITERAL


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (b"A1 UID FETCH 1:5 (UID FLAGS)\r\n", "UID FETCH"),
        (b"A2 EXAMINE INBOX\r\n", "EXAMINE"),
        (b"A3 LOGIN anna hunter\r\n", "LOGIN"),
        (b"A4 IDLE\r\n", "IDLE"),
        (b"A5 AUTHENTICATE PLAIN\r\n", "AUTHENTICATE"),
    ],
)
def test_a_command_is_named_by_its_verb_never_its_arguments(command, name):
    assert imapguard.command_name(command) == name


def test_limits_follow_the_batch_size_and_the_deadlines():
    sync = SyncConfig(batch_size=2000, command_deadline=dt.timedelta(minutes=2))
    limits = imapguard.Limits.for_sync(sync, idle_renew=600)
    assert limits.max_untagged == 10_000 + 4000
    assert limits.max_bytes == 16 * 2**20 + 2000 * 32 * 2**10
    assert (limits.command_seconds, limits.idle_seconds) == (120, 720)


def test_the_default_limits_are_those_of_the_default_sync_config():
    assert imapguard.Limits.for_sync(SyncConfig()) == imapguard.Limits()


def test_imapclients_transport_factory_is_still_the_one_restated():
    """`GuardedClient._create_IMAP4` restates imapclient's: this breaks when it changes."""
    source = inspect.getsource(IMAPClient._create_IMAP4)
    body = [ln.strip() for ln in source.splitlines()[1:] if ln.strip()]
    assert body == [
        "if self.stream:",
        "return imaplib.IMAP4_stream(self.host)",
        'connect_timeout = getattr(self._timeout, "connect", None)',
        "if self.ssl:",
        "return tls.IMAP4_TLS(",
        "self.host,",
        "self.port,",
        "self.ssl_context,",
        "connect_timeout,",
        ")",
        "return imap4.IMAP4WithTimeout(self.host, self.port, connect_timeout)",
    ]


def test_the_guarded_reads_are_imaplibs_documented_overrides():
    import imaplib

    for name in ("read", "readline", "send"):
        assert name in vars(imaplib.IMAP4)
        assert name in vars(imapguard._GuardedIMAP4)
    assert issubclass(imapguard.CommandDeadline, imaplib.IMAP4.abort)
    assert issubclass(imapguard.ResponseTooLarge, imaplib.IMAP4.abort)


def test_cancelled_deadlines_do_not_pile_up_in_the_reaper():
    """Every command arms a deadline minutes ahead and its answer cancels it: with a few
    commands a second the cancelled ones must not stay until their time comes."""
    from ackwatch.mail.imapguard import COMPACT_AFTER, _Reaper

    reaper = _Reaper()
    guard: Any = object()  # an hour ahead: never comes up in the test
    far = time.monotonic() + 3600
    live = reaper.arm(guard, far)
    for n in range(5000):
        reaper.cancel(reaper.arm(guard, far + n))
    assert len(reaper._heap) <= 2 * COMPACT_AFTER + 2
    assert live in reaper._heap
