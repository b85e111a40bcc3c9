"""Delivering the outbox: claim a due message with one atomic update, send it, record the outcome.

Several workers never send one message twice: a claim is a single conditional update that only
one worker can win. A worker killed mid-send loses nothing: its claim carries a lease, and a
message whose lease has passed is claimed again (at-least-once delivery towards the provider,
which receives the message id as an idempotency key so it can drop the duplicate).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from bson import ObjectId
from mongoengine.queryset import QuerySet

from app.models.citizen import Citizen
from app.models.device import Device
from app.models.notification import ROUTINE, SECURITY, Notification
from app.security.crypto import DecryptionError, SecretBox
from app.services import outbox
from notifications import (
    SECRET_PLACEHOLDER,
    SECURITY_KINDS,
    Channel,
    OutgoingMessage,
    PermanentFailure,
    TemporaryFailure,
    is_exhausted,
    retry_delay,
)

LEASE = timedelta(minutes=2)
T = TypeVar("T")


class Persist(Protocol):
    """Runs one database write (and may retry it)."""

    def __call__(self, operation: Callable[[], T]) -> T: ...



def _direct(operation: Callable[[], T]) -> T:
    return operation()


@dataclass
class RunReport:
    """What one pass of the worker did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0


BACKLOG_BATCH = 100  # routine candidates read at once: one sorted read serves this many claims
CANDIDATES = 5  # expired leases and security messages: few, and read again before every claim


def claim_queries(now: datetime) -> list[tuple[dict[str, object], list[tuple[str, int]]]]:
    """The claim's queries in the order they are tried, each one an index range with its sort.

    An expired lease first (a worker died mid-send), then due security messages, then due routine
    ones. Each is its own query: SecantusDB plans a top-level ``$or`` as a collection scan, and
    MongoDB cannot sort an ``$or`` across priorities by one index either.
    """
    due = {"$lte": now}
    return [
        ({"status": "sending", "lease_until": due}, [("lease_until", 1)]),
        ({"status": "pending", "priority": SECURITY, "next_attempt_at": due}, [("next_attempt_at", 1)]),
        ({"status": "pending", "priority": ROUTINE, "next_attempt_at": due}, [("next_attempt_at", 1)]),
    ]


def claim(now: datetime, worker: str, lease: timedelta = LEASE,
          backlog: list[tuple[ObjectId, ObjectId]] | None = None) -> Notification | None:
    """Take the next message: an expired lease, else the oldest due security message, else routine.

    Candidates are read in order, then taken with a conditional update by id that only one worker
    can win; a candidate another worker took is skipped. (On SecantusDB ``findAndModify`` costs a
    pass over the whole collection, ~300 ms at 20,000 messages, and a sorted query reads every
    match; hence the two steps.) ``backlog``,
    kept by the caller across claims, holds routine candidates in due order, so a long backlog is
    read once per ``BACKLOG_BATCH`` claims; security messages are looked for before every claim.
    A candidate is read with its citizen (``(id, citizen_id)``): the take and every later write of
    the message name its citizen, the notifications' shard key, so each reaches one shard.
    """
    collection = Notification._get_collection()
    update = {"$set": {"status": "sending", "lease_until": now + lease, "claimed_by": worker},
              "$inc": {"attempts": 1}}
    (expired, expired_sort), (security, security_sort), (routine, routine_sort) = claim_queries(now)

    def take(query: dict[str, object], candidate: tuple[ObjectId, ObjectId]) -> Notification | None:
        pinned = {"_id": candidate[0], "citizen_id": candidate[1]}
        if not collection.update_one({**pinned, **query}, update).modified_count:
            return None
        return Notification._from_son(collection.find_one(pinned))

    candidate = {"_id": 1, "citizen_id": 1}
    for query, sort in ((expired, expired_sort), (security, security_sort)):
        for found in collection.find(query, candidate).sort(sort).limit(CANDIDATES):
            if message := take(query, (found["_id"], found["citizen_id"])):
                return message
    backlog = [] if backlog is None else backlog
    read = False
    while True:
        if not backlog:
            if read:
                return None  # every fresh candidate went to other workers: the next pass looks again
            backlog[:] = [(found["_id"], found["citizen_id"]) for found in
                          collection.find(routine, candidate).sort(routine_sort).limit(BACKLOG_BATCH)]
            read = True
            if not backlog:
                return None
        if message := take(routine, backlog.pop(0)):
            return message


def backfill_priority() -> int:
    """Give messages queued by versions without priorities theirs (the claim needs the field)."""
    collection = Notification._get_collection()
    waiting = {"status": {"$in": ["pending", "sending"]}, "priority": None}
    changed = collection.update_many({**waiting, "kind": {"$in": sorted(SECURITY_KINDS)}},
                                     {"$set": {"priority": SECURITY}}).modified_count
    return changed + collection.update_many(waiting, {"$set": {"priority": ROUTINE}}).modified_count


def release_claims(worker: str) -> int:
    """Hand back the messages ``worker`` holds (it has none in flight): due again at once.

    After a database outage a claim may have been applied whose answer never arrived; without
    this, its message would wait for the lease to pass. The attempt it counted is given back.
    """
    return Notification._get_collection().update_many(
        {"status": "sending", "claimed_by": worker},
        {"$set": {"status": "pending"}, "$unset": {"lease_until": ""}, "$inc": {"attempts": -1}},
    ).modified_count


def _address(message: Notification) -> str | None:
    """The address fixed when the message was queued; for older messages, today's contact data.

    A push message goes to the token its device had when queued, and only while that device is
    still registered: a device the citizen removed (a lost phone) receives nothing more.
    """
    if message.channel == "push":
        device = Device.objects(id=message.device_id, citizen_id=message.citizen_id).only("push_token").first()
        if device is None:
            return None
        return message.address or device.push_token
    if message.address:
        return message.address
    citizen = Citizen.objects(id=message.citizen_id).only("phone", "email").first()
    return outbox.address_of(citizen, message.channel) if citizen is not None else None


def _text(message: Notification, box: SecretBox) -> str:
    """The body to send: the activation code goes into its placeholder only now."""
    if SECRET_PLACEHOLDER not in message.body:
        return message.body
    if not message.secret_encrypted:
        raise PermanentFailure("the secret this message carried is gone")
    try:
        secret = box.decrypt(message.secret_encrypted, outbox.secret_context(message.dedupe_key))
    except DecryptionError:
        raise PermanentFailure("the secret this message carried does not decrypt") from None
    return message.body.replace(SECRET_PLACEHOLDER, secret)


def _fail(message: Notification, error: Exception, now: datetime, permanent: bool,
          rng: random.Random, persist: Persist) -> str:
    reason = f"{type(error).__name__}: {error}"[:300]

    def held() -> QuerySet:  # the claimed message, by id and citizen (its shard key); built inside persist
        return Notification.objects(id=message.id, citizen_id=message.citizen_id, status="sending")

    if permanent or is_exhausted(message.attempts):
        persist(lambda: held().update_one(
            set__status="dead", set__last_error=reason, unset__lease_until=True, unset__secret_encrypted=True,
            unset__address=True))
        return "dead"
    retry_at = retry_delay(error, message.attempts, now, rng)
    persist(lambda: held().update_one(
        set__status="pending", set__last_error=reason, unset__lease_until=True, set__next_attempt_at=retry_at))
    return "retried"


def deliver(message: Notification, channels: Mapping[str, Channel], box: SecretBox, now: datetime,
            rng: random.Random, persist: Persist = _direct) -> str:
    """Send one claimed message; returns ``sent``, ``retried`` or ``dead``.

    ``persist`` runs each write of the outcome; the worker passes one that outlasts a database
    outage, so a message sent is never left to be claimed and sent again.
    """
    channel = channels.get(message.channel)
    try:
        if channel is None:
            raise PermanentFailure(f"no {message.channel} channel is configured")
        address = _address(message)
        if not address:
            raise PermanentFailure(f"the citizen has no {message.channel} address")
        channel.send(OutgoingMessage(message_id=str(message.id), channel=message.channel, to=address,
                                     subject=message.subject or "", body=_text(message, box),
                                     language=message.language or "vi"))
    except PermanentFailure as error:
        return _fail(message, error, now, True, rng, persist)
    except TemporaryFailure as error:
        return _fail(message, error, now, False, rng, persist)
    persist(lambda: outbox.mark_sent(message.id, message.citizen_id, now))
    return "sent"


def run_once(channels: Mapping[str, Channel], box: SecretBox, now: datetime, worker: str,
             limit: int = 100, rng: random.Random | None = None,
             persist: Persist = _direct, clock: Callable[[], datetime] | None = None) -> RunReport:
    """Deliver up to ``limit`` due messages (``persist`` as in ``deliver``).

    ``clock`` gives the time of each claim (default: ``now`` for all): a pass of slow sends must not
    hand out leases measured from its start, which could have run out before the send begins and
    let another worker claim the same message.
    """
    report = RunReport()
    rng = rng or random.Random()
    backlog: list[tuple[ObjectId, ObjectId]] = []
    for _ in range(limit):
        moment = clock() if clock is not None else now
        message = claim(moment, worker, backlog=backlog)
        if message is None:
            break
        outcome = deliver(message, channels, box, moment, rng, persist)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report
