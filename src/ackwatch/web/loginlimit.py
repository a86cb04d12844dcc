"""The board's failed-login limit: password guessing from one client address is stopped.

After `FAILURES` failed sign-ins from one address within `WINDOW_SECONDS` of the first
of them, that address is answered 429 with ``Retry-After`` for the rest of the window,
without a password check. Then it starts afresh. Choices:

- A successful sign-in resets no count, not even its own address's: whoever knows one
  password (their own) must not be able to go on guessing the others'. A sign-in that
  is already remembered (`access`) needs no check and is let in while its address is
  limited, so a colleague behind the same office NAT who signed in earlier keeps the page.
- IPv6 addresses count per /64, the block one subscriber is given: counting each address
  would give one attacker 2**64 fresh counts.
- The table is bounded (`MAX_TRACKED` addresses): when it is full, the address whose window
  began first is forgotten (expired ones go first). An attacker with many addresses
  can then shorten their own windows, but the board's one password check at a time
  (`access.CONCURRENT_CHECKS`) still bounds how fast anyone guesses overall.
- ``web_login_limited`` is logged once per address and window, when it reaches the limit.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

FAILURES = 10
WINDOW_SECONDS = 600.0
MAX_TRACKED = 4096
IPV6_BLOCK = 64


@dataclass
class _Count:
    since: float  # when the window began: the first failure in it
    failures: int = 0


def client_key(address: str) -> str:
    """The key an address is counted under: itself (IPv4, or text that is no address),
    its /64 for IPv6 (an IPv4-mapped IPv6 address counts as the IPv4 address)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_BLOCK), strict=False))
    return str(ip)


class LoginLimit:
    """Failed sign-ins per client address (thread-safe; ``clock`` in seconds)."""

    def __init__(self, failures: int = FAILURES, window: float = WINDOW_SECONDS,
                 max_tracked: int = MAX_TRACKED,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.window = window
        self.max_tracked = max_tracked
        self._clock = clock
        self._counts: OrderedDict[str, _Count] = OrderedDict()  # window start order
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._counts)

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try again (at least 1), or None: not limited."""
        now = self._clock()
        with self._lock:
            count = self._counts.get(client_key(address))
            if count is None or count.failures < self.failures:
                return None
            left = count.since + self.window - now
        return max(1, math.ceil(left)) if left > 0 else None

    def failed(self, address: str) -> int | None:
        """Count a failed sign-in from ``address``; like `retry_after` afterwards (the
        failure that reaches the limit is logged, once per window)."""
        key = client_key(address)
        now = self._clock()
        with self._lock:
            count = self._counts.get(key)
            if count is None or now >= count.since + self.window:
                self._counts.pop(key, None)
                self._make_room(now)
                count = self._counts[key] = _Count(since=now)
            count.failures += 1
            reached = count.failures == self.failures
        if reached:
            log.warning("web_login_limited", client=key, failures=self.failures,
                        retry_after=max(1, math.ceil(count.since + self.window - now)))
        return self.retry_after(address)

    def _make_room(self, now: float) -> None:
        """Forget expired windows from the oldest on, and the oldest while full."""
        counts = self._counts
        while counts:
            oldest = next(iter(counts.values()))
            if now < oldest.since + self.window and len(counts) < self.max_tracked:
                break
            counts.popitem(last=False)
