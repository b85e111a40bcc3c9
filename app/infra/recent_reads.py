"""Recent reads shared by the requests of one process for a fraction of a second.

Every authenticated request reads its caller's current state (revocations, locks, the records
version). Under load one caller sends many requests per second, and reading the same document
for each was a third of the database's work. A read is reused while it is younger than
``max_age``, so a change made elsewhere (another process, another server) is seen within
``max_age``; a change this process makes is seen at once, because its writes call
:meth:`RecentReads.forget_all` (see ``app.infra.db.WriteWatch.on_write``) both when they start and when they end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

Key = TypeVar("Key")
Value = TypeVar("Value")


@dataclass(frozen=True)
class _Read(Generic[Value]):
    value: Value
    started: float  # time.monotonic() before the read was asked for
    generation: int


class RecentReads(Generic[Key, Value]):
    """``load(key)`` results, reused while younger than ``max_age`` seconds and no local write intervened."""

    def __init__(self, load: Callable[[Key], Value], max_age: float, max_size: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._max_age = max_age
        self._max_size = max_size
        self._clock = clock
        self._lock = threading.Lock()
        self._reads: dict[Key, _Read[Value]] = {}
        self._generation = 0

    def get(self, key: Key) -> Value:
        """The value of ``key`` as read less than ``max_age`` ago, or as read now."""
        now = self._clock()
        with self._lock:
            read = self._reads.get(key)
            generation = self._generation
        if read is not None and read.generation == generation and now - read.started < self._max_age:
            return read.value
        value = self._load(key)
        with self._lock:
            # a local write that started or ended meanwhile may not be in ``value``: not kept
            if generation == self._generation:
                if len(self._reads) >= self._max_size:
                    self._forget_old(now)
                self._reads[key] = _Read(value, now, generation)
        return value

    def forget_all(self) -> None:
        """Read everything again (this process is writing what was read)."""
        with self._lock:
            self._generation += 1
            self._reads.clear()

    def _forget_old(self, now: float) -> None:
        self._reads = {key: read for key, read in self._reads.items() if now - read.started < self._max_age}
        if len(self._reads) >= self._max_size:
            self._reads.clear()
