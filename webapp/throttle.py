"""Login rate limit: failed attempts per user name and per client address in a sliding window.

The failures are rows in the database (``store.login_failures``), so all processes of all servers on
one database share one limit, and a restart does not reset it. Times come from the UTC wall clock
(servers are expected to keep their clocks in step; seconds of skew hardly matter in a window of
minutes). A database that cannot be reached raises DBAPIError, which the app answers with 503
``database_unavailable``: no login gets past a throttle it could not consult.

An attempt counts as a failure from the moment it starts: :meth:`LoginThrottle.start` records it
before the password is checked and only then counts the other failures, so attempts sent in parallel
cannot all slip under the limit together. A blocked attempt is taken back (it does not prolong the
block); a successful one is taken back together with the user name's earlier failures, while the
address keeps its own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from store.database import Store
from store.login_failures import (
    add_login_failures,
    delete_expired_login_failures,
    delete_login_failures,
    nth_newest_failure,
)
from store.schema import utcnow
from webapp.errors import LoginThrottledError

ADDRESS_FACTOR = 4  # one address may fail for this many user names' worth of attempts


@dataclass(frozen=True)
class LoginAttempt:
    """A login attempt under way: its user name key and the failure rows recorded for it in advance."""

    username_key: str
    row_ids: tuple[int, ...]


class LoginThrottle:
    """Counts failed logins in SQL; ``limit`` failures (times a key's factor) in ``window`` s block a key."""

    def __init__(
        self, store: Store, limit: int, window: float, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.store = store
        self.limit = limit
        self.window = timedelta(seconds=window)
        self._clock = clock
        self._swept_at: datetime | None = None

    @staticmethod
    def keys(username: str, address: str | None) -> dict[str, int]:
        """The throttled keys of one attempt, user name first, and their limits relative to ``limit``."""
        return {f"user:{username.strip().lower()}": 1, f"address:{address or '?'}": ADDRESS_FACTOR}

    def start(self, username: str, address: str | None) -> LoginAttempt:
        """Record an attempt as a failure in advance, or refuse it when one of its keys is over its limit.

        Raises:
            LoginThrottledError: too many failures of the user name or the address in the window.
        """
        keys = self.keys(username, address)
        now = self._clock()
        row_ids = add_login_failures(self.store, list(keys), now, expired_before=now - self.window)
        self._sweep_now_and_then(now)
        wait = self.retry_after(keys, excluding=row_ids)
        if wait > 0:
            delete_login_failures(self.store, ids=row_ids)
            raise LoginThrottledError(f"too many failed logins; try again in {int(wait // 60) + 1} minutes")
        return LoginAttempt(next(iter(keys)), tuple(row_ids))

    def succeeded(self, attempt: LoginAttempt) -> None:
        """Take the attempt back and forget the user name's failures (the address keeps its own)."""
        delete_login_failures(self.store, ids=attempt.row_ids, keys=[attempt.username_key])

    def retry_after(self, keys: dict[str, int], excluding: Collection[int] = ()) -> float:
        """Seconds until an attempt with these keys is allowed (0: now), not counting rows ``excluding``."""
        now = self._clock()
        waits = [0.0]
        for key, factor in keys.items():
            allowed = max(1, self.limit * factor)
            blocking = nth_newest_failure(self.store, key, allowed, now - self.window, excluding)
            if blocking is not None:
                waits.append((blocking + self.window - now).total_seconds())
        return max(waits)

    def _sweep_now_and_then(self, now: datetime) -> None:
        """Once per window and process, delete the expired failures of every key."""
        if self._swept_at is None or now - self._swept_at >= self.window:
            self._swept_at = now
            delete_expired_login_failures(self.store, expired_before=now - self.window)
