"""Rate limits shared by every worker: flask-limiter (per route) and attempt limits (per account).

Both keep their counters in MongoDB through the ``limits`` library, so all gunicorn workers and
hosts see the same numbers. Both use the fixed-window strategy (one atomic increment per attempt)
on ``app.web.ratelimiting.SharedClientMongoDBStorage``, whose window reset works on the embedded
SecantusDB server too; the sliding-window-counter strategy fails there (see README).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, RateLimitItemPerSecond, parse
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter

from app.services.errors import LockedOut


class AttemptLimiter:
    """At most ``max_attempts`` counted attempts per key in a ``window_seconds`` window, then a lockout.

    The attempt is counted *before* the credentials are checked (one atomic increment), so 20
    parallel guesses cannot all slip under the limit; a success clears the counter. The lockout
    ends by itself when the window ends, and while it lasts even correct credentials are refused.
    """

    def __init__(self, storage: Storage, namespace: str, item: RateLimitItem):
        self._strategy = FixedWindowRateLimiter(storage)
        self._item = item
        self._namespace = namespace

    @classmethod
    def per_window(
        cls, storage: Storage, namespace: str, max_attempts: int, window_seconds: int
    ) -> AttemptLimiter:
        """``max_attempts`` per ``window_seconds``."""
        return cls(storage, namespace, RateLimitItemPerSecond(max_attempts, window_seconds))

    @classmethod
    def from_string(cls, storage: Storage, namespace: str, limit: str) -> AttemptLimiter:
        """A limit written as flask-limiter does, e.g. ``"60 per minute"``."""
        return cls(storage, namespace, parse(limit))

    def hit(self, key: str) -> None:
        """Count one attempt for ``key``; raise :class:`LockedOut` when over the limit."""
        if not self._strategy.hit(self._item, self._namespace, key):
            raise LockedOut(self.retry_after(key))

    def check(self, key: str) -> None:
        """Raise :class:`LockedOut` if ``key`` is locked, without counting an attempt."""
        if not self._strategy.test(self._item, self._namespace, key):
            raise LockedOut(self.retry_after(key))

    def retry_after(self, key: str) -> int:
        """Seconds until the current window of ``key`` ends."""
        stats = self._strategy.get_window_stats(self._item, self._namespace, key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def clear(self, key: str) -> None:
        """Forget the attempts of ``key`` (after a success)."""
        self._strategy.clear(self._item, self._namespace, key)
