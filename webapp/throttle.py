"""Login rate limit: failed attempts per user name and per client address in a sliding window.

The counts live in this process's memory: with several app servers, each counts on its own (a
deployment behind a load balancer multiplies the allowance by the number of servers).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

ADDRESS_FACTOR = 4  # one address may fail for this many user names' worth of attempts
SWEEP_ABOVE = 10_000  # keys kept before expired ones are swept out


class LoginThrottle:
    """Counts failed logins; a key with ``limit`` failures in ``window`` seconds is blocked."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys(username: str, address: str | None) -> dict[str, int]:
        """The throttled keys of one attempt and their limits relative to ``limit`` (factors)."""
        return {f"user:{username.strip().lower()}": 1, f"address:{address or '?'}": ADDRESS_FACTOR}

    def retry_after(self, keys: dict[str, int]) -> float:
        """Seconds until an attempt with these keys is allowed again (0 when it is allowed now)."""
        now = self._clock()
        waits = [0.0]
        with self._lock:
            for key, factor in keys.items():
                times = self._recent(key, now)
                if len(times) >= self.limit * factor:
                    waits.append(times[0] + self.window - now)
        return max(waits)

    def failed(self, keys: Iterable[str]) -> None:
        """Record a failed attempt for each key."""
        now = self._clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > SWEEP_ABOVE:
                for key in list(self._failures):
                    if not self._recent(key, now):
                        del self._failures[key]

    def succeeded(self, username_key: str) -> None:
        """Forget the failures of a user name after a successful login (not of the address)."""
        with self._lock:
            self._failures.pop(username_key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times
