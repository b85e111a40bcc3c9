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

from pymongo import ReturnDocument

from app.models.citizen import Citizen
from app.models.device import Device
from app.models.notification import Notification
from app.security.crypto import DecryptionError, SecretBox
from app.services import outbox
from notifications import (
    SECRET_PLACEHOLDER,
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


def claim(now: datetime, worker: str, lease: timedelta = LEASE) -> Notification | None:
    """Take the next due message: pending and due, or claimed by a worker whose lease has passed."""
    document = Notification._get_collection().find_one_and_update(
        {"$or": [{"status": "pending", "next_attempt_at": {"$lte": now}},
                 {"status": "sending", "lease_until": {"$lte": now}}]},
        {"$set": {"status": "sending", "lease_until": now + lease, "claimed_by": worker},
         "$inc": {"attempts": 1}},
        sort=[("next_attempt_at", 1)],
        return_document=ReturnDocument.AFTER,
    )
    return Notification._from_son(document) if document else None


def release_claims(worker: str) -> int:
    """Hand back the messages ``worker`` holds (it has none in flight): due again at once.

    After a database outage a claim may have been applied whose answer never arrived; without
    this, its message would wait for the lease to pass. The attempt it counted is given back.
    """
    return Notification._get_collection().update_many(
        {"status": "sending", "claimed_by": worker},
        {"$set": {"status": "pending"}, "$unset": {"lease_until": ""}, "$inc": {"attempts": -1}},
    ).modified_count


def _address(message: Notification, citizen: Citizen | None) -> str | None:
    if citizen is None:
        return None
    if message.channel == "sms":
        return citizen.phone
    if message.channel == "email":
        return citizen.email
    if message.channel == "push" and message.device_id:
        device = Device.objects(id=message.device_id, citizen_id=citizen.id).first()
        return device.push_token if device else None
    return None


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
    if permanent or is_exhausted(message.attempts):
        persist(lambda: Notification.objects(id=message.id, status="sending").update_one(
            set__status="dead", set__last_error=reason, unset__lease_until=True, unset__secret_encrypted=True))
        return "dead"
    retry_at = retry_delay(error, message.attempts, now, rng)
    persist(lambda: Notification.objects(id=message.id, status="sending").update_one(
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
        address = _address(message, Citizen.objects(id=message.citizen_id).first())
        if not address:
            raise PermanentFailure(f"the citizen has no {message.channel} address")
        channel.send(OutgoingMessage(message_id=str(message.id), channel=message.channel, to=address,
                                     subject=message.subject or "", body=_text(message, box),
                                     language=message.language or "vi"))
    except PermanentFailure as error:
        return _fail(message, error, now, True, rng, persist)
    except TemporaryFailure as error:
        return _fail(message, error, now, False, rng, persist)
    persist(lambda: outbox.mark_sent(message.id, now))
    return "sent"


def run_once(channels: Mapping[str, Channel], box: SecretBox, now: datetime, worker: str,
             limit: int = 100, rng: random.Random | None = None,
             persist: Persist = _direct) -> RunReport:
    """Deliver up to ``limit`` due messages (``persist`` as in ``deliver``)."""
    report = RunReport()
    rng = rng or random.Random()
    for _ in range(limit):
        message = claim(now, worker)
        if message is None:
            break
        outcome = deliver(message, channels, box, now, rng, persist)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report
