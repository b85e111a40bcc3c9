"""The notification worker's loop: deliver the outbox, run the daily reminders, outlast the database.

A database outage or failover (a connection, timeout or "not primary" error) never ends the
worker: it waits with capped exponential backoff and jitter, logs once when the outage starts and
once when it ends, and carries on where it was. Nothing is lost or sent twice on the way:

- a claim whose answer was lost leaves the message ``sending`` under this worker's name; the
  worker hands such claims back before its next pass (it sends one message at a time, so none of
  them is in flight then);
- the outcome of a send (sent, retry later, dead) is written again until the database takes it;
- the reminders of a day are queued under stable keys, so running the job again is harmless.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TypeVar

from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure, PyMongoError, WTimeoutError

from app.security.crypto import SecretBox
from app.services import delivery
from app.services.audit import RequestContext
from notifications import Channel

log = logging.getLogger("hoso.worker")
T = TypeVar("T")

# Server error codes of a failover, a shutdown or a network fault (MongoDB's error_codes.yml):
# HostUnreachable, HostNotFound, NetworkTimeout, ShutdownInProgress, PrimarySteppedDown,
# ExceededTimeLimit, SocketException, NotWritablePrimary, InterruptedAtShutdown,
# InterruptedDueToReplStateChange, NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary.
TRANSIENT_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})


def is_transient(error: PyMongoError) -> bool:
    """True for an error that the same operation can outlast: connection, timeout, failover."""
    # ConnectionFailure covers AutoReconnect, NetworkTimeout, NotPrimaryError, ServerSelectionTimeoutError.
    if isinstance(error, ConnectionFailure | ExecutionTimeout | WTimeoutError):
        return True
    if error.has_error_label("RetryableWriteError") or error.has_error_label("TransientTransactionError"):
        return True
    return isinstance(error, OperationFailure) and error.code in TRANSIENT_CODES


@dataclass
class Outage:
    """Waits out a database outage: backoff ``base * 2**n`` capped at ``cap`` seconds, with jitter.

    The wait is between half the ceiling and the ceiling ("equal jitter"), so workers that lost the
    database together do not come back together, and none retries in a tight loop.
    """

    stop: threading.Event
    base: float = 0.5
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    started: float | None = None

    def delay(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(self.failures, 30))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def wait(self, error: PyMongoError) -> None:
        """Log the outage if it just started, then sleep (a stop request cuts the sleep short)."""
        if self.started is None:
            self.started = time.monotonic()
            log.warning("database unavailable (%s); retrying with backoff", type(error).__name__)
        pause = self.delay()
        self.failures += 1
        self.stop.wait(pause)

    def over(self) -> None:
        """The database answered: log the end of an outage once, and start the backoff afresh."""
        if self.started is not None:
            log.warning("database available again after %.1f s", time.monotonic() - self.started)
        self.started, self.failures = None, 0

    @property
    def active(self) -> bool:
        return self.started is not None

    def call(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` until the database takes it; other errors (and a stop) propagate."""
        while True:
            try:
                result = operation()
            except PyMongoError as error:
                if not is_transient(error) or self.stop.is_set():
                    raise
                self.wait(error)
                continue
            self.over()
            return result


@dataclass
class Worker:
    """One worker process: passes over the outbox until ``stop`` is set."""

    channels: Mapping[str, Channel]
    box: SecretBox
    clock: Callable[[], datetime]
    name: str
    reminder_interval: timedelta
    context: Callable[[], RequestContext]
    local_date: Callable[[datetime], date]
    stop: threading.Event = field(default_factory=threading.Event)
    interval: float = 2.0
    echo: Callable[[str], None] = print
    rng: random.Random = field(default_factory=random.Random)
    reminded_on: date | None = None

    def __post_init__(self) -> None:
        self.outage = Outage(self.stop, rng=self.rng)

    def prepare(self) -> None:
        """Create the indexes before the first claim (the worker serves no request that would),
        and give messages queued by an older version their priority."""
        from app.infra.db import ensure_indexes

        self.outage.call(ensure_indexes)
        self.outage.call(delivery.backfill_priority)

    def one_pass(self) -> bool:
        """Reminders once a day, then what is due; True when something was delivered or failed."""
        if self.outage.active:
            delivery.release_claims(self.name)
        now = self.clock()
        today = self.local_date(now)
        if self.reminded_on != today:
            from app.services.reminders import run_reminders

            queued = run_reminders(self.context(), today, self.reminder_interval)
            self.echo(f"reminders for {today}: {queued} queued")
            self.reminded_on = today
        report = delivery.run_once(self.channels, self.box, now, self.name, rng=self.rng,
                                   persist=self.outage.call, clock=self.clock)
        if report.sent or report.retried or report.dead:
            self.echo(f"sent {report.sent}, retry later {report.retried}, dead {report.dead}")
            return True
        return False

    def run(self, once: bool = False) -> None:
        """Pass over the outbox until stopped (or once), outlasting database outages."""
        self.prepare()
        while not self.stop.is_set():
            try:
                busy = self.one_pass()
            except PyMongoError as error:
                if not is_transient(error):
                    raise
                self.outage.wait(error)
                continue
            self.outage.over()
            if once:
                return
            if not busy:
                self.stop.wait(self.interval)
