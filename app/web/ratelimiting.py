"""flask-limiter on MongoDB storage: per-caller default limits shared by all workers."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import mongoengine
from flask import request
from flask_limiter import Limiter
from limits import RateLimitItem
from limits.storage import MongoDBStorage, Storage
from limits.strategies import STRATEGIES, FixedWindowRateLimiter
from pymongo import InsertOne, MongoClient, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError
from pymongo.uri_parser import parse_uri

from app.infra import embedded_quirks
from app.infra.batching import Failed, GroupCommit
from app.infra.embedded_db import DEFAULT_DATABASE
from app.infra.unstorable import UNSTORABLE
from app.security.attempts import AttemptLimiter
from app.security.crypto import SecretBox
from app.security.lockout import LoginGuard
from app.settings import Settings

DUPLICATE_KEY = 11000
# A window this close to its end is counted by one find-and-modify (``_incr_one``): another host
# may start the next window meanwhile (the leases' ``CLOCK_MARGIN``, the clocks' agreement).
WINDOW_CLOSING = timedelta(seconds=1)



def _as_stored(moment: datetime) -> datetime:
    """``moment`` as BSON keeps it (whole milliseconds): a window's end read back equals it."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# Liveness probes and the static documentation are not rate limited.
EXEMPT_PREFIXES = ("/api/v1/health", "/api/docs", "/api/openapi.json", "/verify")


class SharedClientMongoDBStorage(MongoDBStorage):
    """``limits``' MongoDB storage on the app's own pymongo client, with a portable window reset.

    One connection pool per process instead of two, and no surprise connection attempt from the
    parent class's ``__del__`` (which builds a client just to close it). ``incr`` compares the
    window's end with the current time passed as a value rather than the server's ``$$NOW``
    (``embedded_quirks.pipeline_now``), and reads a counter back when the embedded database answers
    null to a racing upsert (``embedded_quirks.read_back_if_null``).
    """

    STORAGE_SCHEME = ["hoso-mongodb"]

    def __init__(self, uri: str, database_name: str = "limits", **options: Any) -> None:
        super().__init__(uri, database_name, **options)
        # Hits of concurrent requests of this process go to the database together (see incr).
        self._hits: GroupCommit[tuple[str, int, int], tuple[int, datetime]] = GroupCommit(self._incr_batch)
        # keys this process has counted (bounded): a key not among them is most likely new, and is
        # inserted without reading it first (``_incr_many``)
        self._known: set[str] = set()

    def _init_mongo_client(self, uri: str | None, **options: int | str | bool) -> MongoClient:
        return mongoengine.get_connection()  # type: ignore[no-any-return]

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to the counter of ``key``; a window that has ended starts again at ``amount``.

        Concurrent hits on one key become one ``$inc`` of their sum; each hit is told the count as
        it stood after its own increment, so a limit is enforced exactly as with one update each.
        """
        return self.take(key, expiry, amount)[0]

    def take(self, key: str, expiry: int, amount: int) -> tuple[int, datetime]:
        """Like ``incr``, and also when the counter's window ends."""
        return self._hits.submit((key, expiry, amount))

    def _incr_batch(self, hits: list[tuple[str, int, int]]) -> list[tuple[int, datetime] | Failed]:
        """One update per key (several keys, or any on the embedded server: a read and a write for
        all, see ``_incr_many``); a key whose update fails fails its own hits only."""
        totals: dict[tuple[str, int], int] = {}
        for key, expiry, amount in hits:
            totals[(key, expiry)] = totals.get((key, expiry), 0) + amount
        counts: dict[tuple[str, int], tuple[int, datetime] | Failed] = {}
        if len(totals) > 1 or embedded_quirks.FIND_AND_MODIFY_SCANS:
            try:
                counts = self._incr_many(totals)
            except UNSTORABLE:  # one key cannot be stored: each alone finds which
                counts = {}
        for group, amount in totals.items():
            if group in counts:
                continue
            try:
                counts[group] = self._incr_one(*group, amount)
            except UNSTORABLE as error:  # this key cannot be stored
                counts[group] = Failed(error)
        results: list[tuple[int, datetime] | Failed] = []
        for key, expiry, amount in hits:  # hand out the counts in arrival order
            remaining = totals[(key, expiry)] - amount
            totals[(key, expiry)] = remaining
            counted = counts[(key, expiry)]
            results.append(counted if isinstance(counted, Failed) else (counted[0] - remaining, counted[1]))
        return results

    @staticmethod
    def _window_update(now: datetime, expiry: int, amount: int) -> list[dict[str, Any]]:
        """The update that adds ``amount``, or starts the window again when it has ended."""
        ended = {"$lt": ["$expireAt", now]}
        return [{"$set": {
            "count": {"$cond": {"if": ended, "then": amount, "else": {"$add": ["$count", amount]}}},
            "expireAt": {"$cond": {"if": ended, "then": now + timedelta(seconds=expiry), "else": "$expireAt"}},
        }}]

    def _incr_many(self, totals: dict[tuple[str, int], int]) -> dict[tuple[str, int], tuple[int, datetime]]:
        """The hits on several keys with a read and one write, instead of a find-and-modify per key
        (a new caller's first request costs the database a share of a round trip or two instead of
        one of its own: the uncached timeline's).

        Each key's write is conditional on the window read, so no hit can land in another window,
        nor be counted from a stale count: a key this process has not counted yet is inserted
        without a read (most are new callers; one that exists is a duplicate ``_id`` and goes on as
        the others); then the others' windows are read, a missing one is inserted, an ended one is
        started again only if it is still the one read, and an open one is incremented only if
        its end and count are still those read (its count is then the one read plus this batch's).
        A window that ends within ``WINDOW_CLOSING`` and a key whose write lost a race (a
        duplicate ``_id`` from its upsert) are left out: ``_incr_batch`` does them alone, exactly.
        """
        now = embedded_quirks.pipeline_now()  # not $$NOW (see embedded_quirks)
        fresh = [group for group in totals if group[0] not in self._known]
        counts = self._write(totals, now, fresh, dict.fromkeys((key for key, _ in fresh), None))
        others = [group for group in totals if group not in counts]
        if others:
            counts.update(self._write(totals, now, others, self._windows([key for key, _ in others])))
        if len(self._known) > 100_000:  # forget, rather than grow: a forgotten key is read first again
            self._known.clear()
        self._known.update(key for key, _ in counts)
        return counts

    def _write(self, totals: dict[tuple[str, int], int], now: datetime, groups: list[tuple[str, int]],
               windows: dict[str, dict[str, Any] | None]) -> dict[tuple[str, int], tuple[int, datetime]]:
        """One conditional write for each of ``groups`` from its ``windows`` as read (None: none);
        answers the count and window end of each one written (a lost race is left out)."""
        requests: list[InsertOne | UpdateOne] = []
        written: list[tuple[tuple[str, int], tuple[int, datetime]]] = []  # group, its count if written
        for key, expiry in groups:
            amount, window = totals[(key, expiry)], windows.get(key)
            ends = _as_stored(now + timedelta(seconds=expiry))
            if window is None:
                requests.append(InsertOne({"_id": key, "count": amount, "expireAt": ends}))
                written.append(((key, expiry), (amount, ends)))
            elif window["expireAt"] < now:
                requests.append(UpdateOne({"_id": key, "expireAt": window["expireAt"]},
                                          {"$set": {"count": amount, "expireAt": ends}}, upsert=True))
                written.append(((key, expiry), (amount, ends)))
            elif window["expireAt"] > now + WINDOW_CLOSING:
                count = int(window["count"])
                requests.append(UpdateOne({"_id": key, "expireAt": window["expireAt"], "count": count},
                                          {"$inc": {"count": amount}}, upsert=True))
                written.append(((key, expiry), (count + amount, window["expireAt"])))
        lost: set[int] = set()
        if requests:
            try:
                self.counters.bulk_write(requests, ordered=False)
            except BulkWriteError as error:
                if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                    raise
                lost = {e["index"] for e in error.details["writeErrors"]}
        return {group: count for index, (group, count) in enumerate(written) if index not in lost}

    def _windows(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The stored counters of ``keys`` (count and window end) by key."""
        return {document["_id"]: document for chunk in embedded_quirks.in_chunks(keys)
                for document in self.counters.find({"_id": {"$in": chunk}}, ["count", "expireAt"])}

    def _incr_one(self, key: str, expiry: int, amount: int) -> tuple[int, datetime]:
        now = embedded_quirks.pipeline_now()  # not $$NOW (see embedded_quirks)
        answer = self.counters.find_one_and_update(
            {"_id": key}, self._window_update(now, expiry, amount),
            upsert=True, projection=["count", "expireAt"], return_document=ReturnDocument.AFTER,
        )
        # A count read back after SecantusDB's null answer may include later hits: it only refuses
        # earlier, never later.
        answer = embedded_quirks.read_back_if_null(answer, self.counters, {"_id": key}, ["count", "expireAt"])
        if answer is None:  # removed in between by the expiry sweep: this hit opens the window
            return amount, now + timedelta(seconds=expiry)
        return int(answer["count"]), answer["expireAt"]

    def __del__(self) -> None:
        """The client belongs to mongoengine, which closes it."""


@dataclass
class _Lease:
    left: int
    ends: datetime


class LeasedFixedWindowRateLimiter(FixedWindowRateLimiter):
    """Fixed windows whose hits a process takes from the shared counter a few at a time.

    Counting every request of a busy caller in the database costs a counter update per request.
    Here a process that needs a hit adds a lease of 1% of the limit (at most ``MAX_LEASE``) to the
    shared counter and admits that caller's next hits from the lease until it is used up or the
    window is about to end. Every hit admitted is counted before it is admitted, so no limit is
    exceeded; what is left of a lease when its window ends is lost, so a caller served by several
    processes may be refused up to ``lease - 1`` hits per process early.

    A window ends when the clock of the first process to see it ended says so, so leases stop
    ``CLOCK_MARGIN`` before their window's end (hits then count one by one): hosts whose clocks
    agree within that margin cannot spend an old window's lease in a new window. Limits under 200
    per window, and windows shorter than ``MIN_WINDOW_SECONDS``, are plain fixed windows.
    """

    LEASE_SHARE = 100
    MAX_LEASE = 100
    MAX_LEASES_KEPT = 10_000
    CLOCK_MARGIN = timedelta(seconds=1)
    MIN_WINDOW_SECONDS = 10

    def __init__(self, storage: Storage) -> None:
        super().__init__(storage)
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        size = min(self.MAX_LEASE, item.amount // self.LEASE_SHARE)
        if (size <= 1 or item.get_expiry() < self.MIN_WINDOW_SECONDS
                or not isinstance(self.storage, SharedClientMongoDBStorage)):
            return super().hit(item, *identifiers, cost=cost)
        key = item.key_for(*identifiers)
        now = datetime.now(UTC)
        with self._lock:
            lease = self._leases.get(key)
            usable = lease is not None and now < lease.ends - self.CLOCK_MARGIN
            if lease is not None and usable and lease.left >= cost:
                lease.left -= cost
                return True
            closing = lease is not None and not usable and now < lease.ends
        taken = cost if closing else max(size, cost)  # no new lease in a window's last moments
        count, ends = self.storage.take(key, item.get_expiry(), taken)
        granted = min(taken, item.amount - (count - taken))  # the part of this take under the limit
        if granted < cost:
            return False
        with self._lock:
            if len(self._leases) >= self.MAX_LEASES_KEPT:
                self._forget_ended(now)
            current = self._leases.get(key)
            if current is not None and current.ends == ends:
                current.left += granted - cost  # leases taken together in one window add up
            else:
                self._leases[key] = _Lease(granted - cost, ends)
        return True

    def clear(self, item: RateLimitItem, *identifiers: str) -> None:
        with self._lock:
            self._leases.pop(item.key_for(*identifiers), None)
        super().clear(item, *identifiers)

    def _forget_ended(self, now: datetime) -> None:
        self._leases = {key: lease for key, lease in self._leases.items() if lease.ends > now}
        if len(self._leases) >= self.MAX_LEASES_KEPT:  # forgetting a lease only refuses earlier
            self._leases.clear()


# flask-limiter looks strategies up by name in this registry.
STRATEGIES["hoso-leased-fixed-window"] = LeasedFixedWindowRateLimiter  # type: ignore[assignment]


def caller_key() -> str:
    """Limit authenticated callers by identity, anonymous ones by address."""
    from app.web.auth import current_principal

    actor = current_principal().actor
    return f"{actor.type}:{actor.id}" if actor.id else f"ip:{request.remote_addr}"


def build_limiter(settings: Settings, uri: str) -> Limiter:
    """flask-limiter, storing its counters in the app's own database.

    ``create_app`` attaches it (``limiter.init_app(app)``, which registers its request hooks) at its
    place in the app's list of hooks; its storage exists from then on.
    """
    database = parse_uri(uri).get("database") or DEFAULT_DATABASE
    return Limiter(
        caller_key,
        storage_uri="hoso-mongodb://app-connection",
        storage_options={
            "database_name": database,
            "counter_collection_name": "rate_limit_counters",
            "window_collection_name": "rate_limit_windows",
        },
        strategy="hoso-leased-fixed-window",
        default_limits=[settings.rate_limit_default],
        default_limits_exempt_when=lambda: request.path.startswith(EXEMPT_PREFIXES),
        headers_enabled=False,  # Retry-After is set on 429 only, by app.web.problems
        swallow_errors=False,
    )


def account_failures(
    storage: Storage, namespace: str, settings: Settings, box: SecretBox, origins_of: str | None = None
) -> LoginGuard:
    """Failed logins per account and per (account, address): ``HOSO_LOGIN_MAX_FAILURES`` per
    ``HOSO_LOGIN_LOCKOUT_SECONDS``; addresses that signed in are known for ``HOSO_LOGIN_KNOWN_ADDRESS_DAYS``."""
    return LoginGuard(
        storage, namespace, box, max_failures=settings.login_max_failures,
        window_seconds=settings.login_lockout_seconds, remember_days=settings.login_known_address_days,
        remember_count=settings.login_known_addresses, origins_of=origins_of,
    )


def ip_attempts(storage: Storage, settings: Settings) -> AttemptLimiter:
    """Authentication attempts per client address (``HOSO_RATE_LIMIT_AUTH_PER_IP``)."""
    return AttemptLimiter.from_string(storage, "auth-ip", settings.rate_limit_auth_per_ip)
