"""Wall-clock jumps under the Daemon core (no network: events in, a fake `send` out).

freezegun drives the clock the Daemon reads (`now`). A jump forward sends what came due
meanwhile, once and batched, and nothing that is not due yet; a jump back neither
repeats what was sent nor loses what is due, and does not park a retry for hours.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from freezegun import freeze_time
from tests.configfactory import make_config, make_policy
from tests.servers.imapserver import make_message

from ackwatch.config import DigestConfig
from ackwatch.daemon.service import Daemon
from ackwatch.mail import smtp
from ackwatch.mail.sync import FolderCursor, FolderSync, FolderSyncEvent
from ackwatch.mail.uidfetch import FetchedMessage
from ackwatch.store.sqlite import SqliteStore as Store

T0 = dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)  # a Tuesday


class Outbox:
    def __init__(self) -> None:
        self.sent: list[list[str]] = []  # X-Ackwatch-Items of each accepted mail
        self.fail_next = 0

    def __call__(self, msg, _config) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise smtp.TemporarySendError("451 try again")
        self.sent.append(str(msg.get("X-Ackwatch-Items", "")).split())

    def count(self, mid: str) -> int:
        return sum(items.count(mid) for items in self.sent)


@pytest.fixture
def daemon(tmp_path: Path):
    config = make_config(
        policies={"default": make_policy("default", window="1h", clock="calendar",
                                         calendar=None, nudge_before="30m",
                                         escalate_after=None)},
        digest=DigestConfig(enabled=False),
        state_dir=tmp_path,
    )
    store = Store.open(tmp_path)
    out = Outbox()
    d = Daemon(config, store, now=lambda: dt.datetime.now(dt.UTC), send=out)
    d.outbox = out  # type: ignore[attr-defined]
    yield d
    store.close()


def receive(d: Daemon, uid: int, mid: str, at: dt.datetime) -> None:
    raw = make_message(subject=f"Question {uid}", sender="jan@unknown.example",
                       to="anna@agency.example", message_id=mid, date=at)
    header = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    sync = FolderSync(
        "INBOX", "inbox", FolderCursor(7, uid),
        new_messages=(FetchedMessage(uid, at, frozenset(), header),),
    )
    d.apply_event(FolderSyncEvent("anna", sync))


MIDS = ["<m1@unknown.example>", "<m2@unknown.example>", "<m3@unknown.example>"]


def test_jump_forward_sends_only_what_is_due_once_and_batched(daemon):
    out = daemon.outbox
    with freeze_time(T0) as clock:
        for i, mid in enumerate(MIDS):  # nudges due at +30m, +40m, +50m
            clock.move_to(T0 + dt.timedelta(minutes=10 * i))
            receive(daemon, i + 1, mid, T0 + dt.timedelta(minutes=10 * i))
            daemon.step()
        assert out.sent == []
        clock.move_to(T0 + dt.timedelta(minutes=45))  # the clock jumps 25 minutes ahead
        daemon.step()
        daemon.step()
        assert len(out.sent) == 1, out.sent  # one mail for the two that came due
        assert sorted(out.sent[0]) == sorted(MIDS[:2])
        assert out.count(MIDS[2]) == 0  # not due yet: not fired early


def test_jump_back_repeats_nothing_and_loses_nothing(daemon):
    out = daemon.outbox
    with freeze_time(T0) as clock:
        for i, mid in enumerate(MIDS):
            clock.move_to(T0 + dt.timedelta(minutes=10 * i))
            receive(daemon, i + 1, mid, T0 + dt.timedelta(minutes=10 * i))
            daemon.step()
        clock.move_to(T0 + dt.timedelta(minutes=31))
        daemon.step()
        assert [sorted(s) for s in out.sent] == [[MIDS[0]]]
        clock.move_to(T0 - dt.timedelta(hours=2))  # the clock jumps 2.5 hours back
        for _ in range(3):
            daemon.step()
        assert len(out.sent) == 1  # nothing sent again
        clock.move_to(T0 + dt.timedelta(minutes=41))
        daemon.step()
        clock.move_to(T0 + dt.timedelta(minutes=51))
        daemon.step()
        assert [out.count(m) for m in MIDS] == [1, 1, 1], out.sent


def test_retry_after_a_jump_back_is_not_parked_for_hours(daemon):
    out = daemon.outbox
    with freeze_time(T0) as clock:
        receive(daemon, 1, MIDS[0], T0)
        daemon.step()
        clock.move_to(T0 + dt.timedelta(minutes=30))
        out.fail_next = 1
        daemon.step()  # 4xx: retry in about 30 s
        assert out.sent == []
        clock.move_to(T0 - dt.timedelta(hours=3))  # NTP fixes a clock 3 hours fast
        daemon.step()
        assert out.count(MIDS[0]) == 1, "the retry waited for the clock to catch up"
        daemon.step()
        assert out.count(MIDS[0]) == 1
