"""The board's failed-login limit per client address (`web/loginlimit.py`), on a clock
the test moves."""

from __future__ import annotations

from structlog.testing import capture_logs

from ackwatch.web.loginlimit import LoginLimit, client_key

ATTACKER = "203.0.113.9"
COLLEAGUE = "198.51.100.20"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_ten_failures_in_ten_minutes_limit_the_address_for_the_rest_of_the_window():
    clock = Clock()
    limit = LoginLimit(clock=clock)
    for _ in range(9):
        assert limit.failed(ATTACKER) is None
        clock.t += 30
    assert limit.failed(ATTACKER) == 600 - 9 * 30  # the tenth, 4.5 minutes in
    clock.t += 300
    assert limit.retry_after(ATTACKER) == 30
    clock.t += 30
    assert limit.retry_after(ATTACKER) is None  # the window is over: a fresh start
    assert limit.failed(ATTACKER) is None


def test_failures_spread_wider_than_the_window_never_limit():
    clock = Clock()
    limit = LoginLimit(clock=clock)
    for _ in range(30):
        assert limit.failed(ATTACKER) is None
        clock.t += 67  # ten of them span more than the ten minutes


def test_one_address_limited_leaves_the_others_alone():
    limit = LoginLimit(clock=Clock())
    for _ in range(10):
        limit.failed(ATTACKER)
    assert limit.retry_after(ATTACKER) is not None
    assert limit.retry_after(COLLEAGUE) is None
    assert limit.failed(COLLEAGUE) is None


def test_web_login_limited_is_logged_once_per_address_and_window():
    clock = Clock()
    limit = LoginLimit(clock=clock)
    with capture_logs() as logs:
        for _ in range(25):
            limit.failed(ATTACKER)
        clock.t += 600
        for _ in range(10):
            limit.failed(ATTACKER)
    told = [e for e in logs if e["event"] == "web_login_limited"]
    assert told == [
        {"event": "web_login_limited", "client": ATTACKER, "failures": 10,
         "retry_after": 600, "log_level": "warning"},
    ] * 2


def test_an_attacker_with_many_addresses_cannot_grow_the_table_without_limit():
    clock = Clock()
    limit = LoginLimit(clock=clock, max_tracked=100)
    for _ in range(10):
        limit.failed(COLLEAGUE)
    for n in range(10_000):
        limit.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
        clock.t += 0.001
    assert len(limit) == 100


def test_expired_windows_are_forgotten_first():
    clock = Clock()
    limit = LoginLimit(clock=clock, max_tracked=3)
    limit.failed("192.0.2.1")
    clock.t += 700  # its window is over
    for _ in range(10):
        limit.failed(ATTACKER)
    limit.failed("192.0.2.2")
    limit.failed("192.0.2.3")  # the table is full: the expired one goes, not the attacker
    assert limit.retry_after(ATTACKER) is not None and len(limit) == 3


def test_ipv6_addresses_count_per_64_block():
    limit = LoginLimit(clock=Clock())
    for n in range(10):
        limit.failed(f"2001:db8:1:2::{n + 1:x}")
    assert limit.retry_after("2001:db8:1:2:ffff::1") is not None
    assert limit.retry_after("2001:db8:1:3::1") is None
    assert client_key("::ffff:203.0.113.9") == ATTACKER
