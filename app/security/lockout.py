"""Failed sign-ins limited per account and per (account, address), without locking the owner out.

Five wrong passwords for a CCCD printed on an ID card used to lock its owner out everywhere. Here
an account remembers (as keyed hashes, for a bounded time and count) the addresses it has signed
in from. Every attempt is counted before the credentials are checked, by atomic increments:

- always on the (account, address) counter: an address that keeps failing locks itself;
- from an address the account has never signed in from, also on the account-wide counter, and
  such an attempt is refused while that counter is over the limit.

So an attacker failing from address B locks B and, after the limit, every address the account has
not used; the owner's known addresses are limited only by their own counters and still sign in.
A success clears its own (account, address) counter, from an unknown address also the account-wide
one (the address then becomes known). Both counters are fixed windows that end by themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from limits.storage import Storage
from pymongo import DeleteOne

from app.models.login_origin import LoginOrigin
from app.security.attempts import AttemptLimiter
from app.security.crypto import SecretBox


@dataclass(frozen=True)
class Attempt:
    """A counted attempt: which counters it hit, and whether its address was known."""

    account: str
    counter: str
    known: bool
    address: str | None  # the origin key of the address, remembered on success


class LoginGuard:
    """Attempt limits of one kind of account (staff, facility client, citizen, activation)."""

    def __init__(
        self,
        storage: Storage,
        namespace: str,
        box: SecretBox,
        *,
        max_failures: int,
        window_seconds: int,
        remember_days: int,
        remember_count: int,
        origins_of: str | None = None,
    ) -> None:
        self._limiter = AttemptLimiter.per_window(storage, namespace, max_failures, window_seconds)
        self._box = box
        self._remember = timedelta(days=remember_days)
        self._remember_count = remember_count
        # Activation reads the addresses the citizen signed in from (after a support reset).
        self._origins_of = origins_of or namespace

    def _account_key(self, account: str) -> str:
        return self._box.keyed_hash(f"{self._origins_of}\x00{account}", "login-account")

    def _origin_key(self, account: str, address: str) -> str:
        return self._box.keyed_hash(f"{self._origins_of}\x00{account}\x00{address}", "login-origin")

    def attempt(self, account: str, address: str | None, now: datetime, device: str | None = None) -> Attempt:
        """Count one attempt of ``account`` from ``address``; raise ``LockedOut`` for a locked scope.

        ``device`` names a device the caller has verified signed in before (a citizen's earlier
        session): it is known wherever it is, and counted on its own (account, device) counter.
        """
        account_key = self._account_key(account)
        origin_key = self._origin_key(account, address or "unknown")
        if device:
            counter, known = self._origin_key(account, f"device:{device}"), True
        else:
            counter = origin_key
            # The account is login_origins' shard key: naming it keeps the look-up on one shard.
            known = bool(address) and LoginOrigin.objects(
                account=account_key, id=origin_key, expires_at__gt=now).count() > 0
        self._limiter.hit(f"{account_key}:{counter}")
        if not known:
            self._limiter.hit(account_key)
        return Attempt(account_key, counter, known, origin_key if address else None)

    def succeeded(self, attempt: Attempt, now: datetime) -> None:
        """Clear the counters this success proves innocent and remember its address."""
        self._limiter.clear(f"{attempt.account}:{attempt.counter}")
        if not attempt.known:
            self._limiter.clear(attempt.account)
        if attempt.address:
            self._remember_origin(attempt.account, attempt.address, now)

    def remember(self, account: str, address: str | None, now: datetime) -> None:
        """Remember a sign-in of ``account`` from ``address`` made outside :meth:`attempt`."""
        if address:
            self._remember_origin(self._account_key(account), self._origin_key(account, address), now)

    def _remember_origin(self, account_key: str, origin_key: str, now: datetime) -> None:
        # Every filter names the account (the shard key): an upsert must, and so one shard answers.
        collection = LoginOrigin._get_collection()
        result = collection.update_one(
            {"_id": origin_key, "account": account_key},
            {"$set": {"seen_at": now, "expires_at": now + self._remember}},
            upsert=True,
        )
        if result.upserted_id is None:
            return
        # A new address: keep only the most recent ones, so the memory stays bounded per account.
        # Deleted one by one (usually one): ``{account, _id: {$in}}`` is a collection scan on SecantusDB.
        stale = LoginOrigin.objects(account=account_key).order_by("-seen_at").skip(self._remember_count)
        deletes = [DeleteOne({"_id": origin.id, "account": account_key}) for origin in stale.only("id")]
        if deletes:
            collection.bulk_write(deletes, ordered=False)
