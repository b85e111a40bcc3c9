"""flask-limiter on MongoDB storage: per-caller default limits shared by all workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import mongoengine
from flask import Flask, request
from flask_limiter import Limiter
from limits.storage import MongoDBStorage, Storage
from pymongo import MongoClient, ReturnDocument
from pymongo.uri_parser import parse_uri

from app.batching import GroupCommit
from app.embedded_db import DEFAULT_DATABASE
from app.security.ratelimit import AttemptLimiter
from app.settings import Settings

# Liveness probes and the static documentation are not rate limited.
EXEMPT_PREFIXES = ("/api/v1/health", "/api/docs", "/api/openapi.json", "/verify")


class SharedClientMongoDBStorage(MongoDBStorage):
    """``limits``' MongoDB storage on the app's own pymongo client, with a portable window reset.

    One connection pool per process instead of two, and no surprise connection attempt from the
    parent class's ``__del__`` (which builds a client just to close it). ``incr`` compares the
    window's end with the current time passed as a value rather than the server's ``$$NOW``: the
    embedded SecantusDB evaluates ``$lt`` against ``$$NOW`` as always false, so windows would never
    reset there; on MongoDB both forms behave the same.
    """

    STORAGE_SCHEME = ["hoso-mongodb"]

    def __init__(self, uri: str, database_name: str = "limits", **options: Any) -> None:
        super().__init__(uri, database_name, **options)
        # Hits of concurrent requests of this process go to the database together (see incr).
        self._hits: GroupCommit[tuple[str, int, int], int] = GroupCommit(self._incr_batch)

    def _init_mongo_client(self, uri: str | None, **options: int | str | bool) -> MongoClient:
        return mongoengine.get_connection()  # type: ignore[no-any-return]

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to the counter of ``key``; a window that has ended starts again at ``amount``.

        Concurrent hits on one key become one ``$inc`` of their sum; each hit is told the count as
        it stood after its own increment, so a limit is enforced exactly as with one update each.
        """
        return self._hits.submit((key, expiry, amount))

    def _incr_batch(self, hits: list[tuple[str, int, int]]) -> list[int]:
        totals: dict[tuple[str, int], int] = {}
        for key, expiry, amount in hits:
            totals[(key, expiry)] = totals.get((key, expiry), 0) + amount
        counts = {group: self._incr_one(*group, amount) for group, amount in totals.items()}
        results = []
        for key, expiry, amount in hits:  # hand out the counts in arrival order
            remaining = totals[(key, expiry)] - amount
            totals[(key, expiry)] = remaining
            results.append(counts[(key, expiry)] - remaining)
        return results

    def _incr_one(self, key: str, expiry: int, amount: int) -> int:
        now = datetime.now(UTC)
        ended = {"$lt": ["$expireAt", now]}
        answer = self.counters.find_one_and_update(
            {"_id": key},
            [{"$set": {
                "count": {"$cond": {"if": ended, "then": amount, "else": {"$add": ["$count", amount]}}},
                "expireAt": {"$cond": {"if": ended, "then": now + timedelta(seconds=expiry),
                                       "else": "$expireAt"}},
            }}],
            upsert=True, projection=["count"], return_document=ReturnDocument.AFTER,
        )
        return int(answer["count"]) if answer else 0

    def __del__(self) -> None:
        """The client belongs to mongoengine, which closes it."""


def caller_key() -> str:
    """Limit authenticated callers by identity, anonymous ones by address."""
    from app.auth import current_principal

    actor = current_principal().actor
    return f"{actor.type}:{actor.id}" if actor.id else f"ip:{request.remote_addr}"


def init_app(app: Flask, settings: Settings, uri: str) -> tuple[Limiter, Storage]:
    """Attach flask-limiter, storing its counters in the app's own database."""
    database = parse_uri(uri).get("database") or DEFAULT_DATABASE
    limiter = Limiter(
        caller_key,
        app=app,
        storage_uri="hoso-mongodb://app-connection",
        storage_options={
            "database_name": database,
            "counter_collection_name": "rate_limit_counters",
            "window_collection_name": "rate_limit_windows",
        },
        strategy="fixed-window",
        default_limits=[settings.rate_limit_default],
        default_limits_exempt_when=lambda: request.path.startswith(EXEMPT_PREFIXES),
        headers_enabled=False,  # Retry-After is set on 429 only, by app.errors
        swallow_errors=False,
    )
    return limiter, limiter.storage


def account_failures(storage: Storage, namespace: str, settings: Settings) -> AttemptLimiter:
    """Failed logins per account: ``HOSO_LOGIN_MAX_FAILURES`` per ``HOSO_LOGIN_LOCKOUT_SECONDS``."""
    return AttemptLimiter.per_window(
        storage, namespace, settings.login_max_failures, settings.login_lockout_seconds
    )


def ip_attempts(storage: Storage, settings: Settings) -> AttemptLimiter:
    """Authentication attempts per client address (``HOSO_RATE_LIMIT_AUTH_PER_IP``)."""
    return AttemptLimiter.from_string(storage, "auth-ip", settings.rate_limit_auth_per_ip)
