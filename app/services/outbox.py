"""Writing messages into the notification outbox, in the request that causes them."""

from __future__ import annotations

from datetime import datetime

from mongoengine import NotUniqueError

from app.models.citizen import Citizen
from app.models.notification import Notification
from app.security.crypto import SecretBox
from app.services.audit import RequestContext
from notifications import render


def secret_context(dedupe_key: str) -> str:
    """Authenticated data of a secret carried by one message."""
    return f"notification-secret:{dedupe_key}"


def notify(
    ctx: RequestContext,
    citizen: Citizen,
    kind: str,
    event_key: str,
    *,
    channels: list[str] | None = None,
    secret: str | None = None,
    box: SecretBox | None = None,
    **params: str,
) -> list[Notification]:
    """Queue one message per channel; the same ``event_key`` never queues a message twice.

    ``channels`` defaults to the in-app inbox plus every contact channel the citizen has. A
    ``secret`` (an activation code) is stored encrypted, never in the text.
    """
    rendered = render(kind, citizen.language or "vi", **params)
    written = []
    for channel in channels if channels is not None else ["in_app", *citizen.contact_channels]:
        dedupe_key = f"{kind}:{event_key}:{channel}"
        message = Notification(
            citizen_id=citizen.id,
            kind=kind,
            channel=channel,
            language=rendered.language,
            subject=rendered.subject,
            body=rendered.body,
            dedupe_key=dedupe_key,
            created_at=ctx.now,
            next_attempt_at=ctx.now,
            status="sent" if channel == "in_app" else "pending",
            sent_at=ctx.now if channel == "in_app" else None,
        )
        if secret is not None:
            assert box is not None, "a secret needs the SecretBox to encrypt it"
            message.secret_encrypted = box.encrypt(secret, secret_context(dedupe_key))
        try:
            message.save(force_insert=True)
        except NotUniqueError:
            continue  # the same event already queued this message
        written.append(message)
    return written


def mark_sent(message_id: object, now: datetime) -> bool:
    """Record a delivery; a secret the message carried (an activation code) is erased with it."""
    return bool(
        Notification.objects(id=message_id, status__in=["pending", "sending"]).update_one(
            set__status="sent", set__sent_at=now, unset__secret_encrypted=True
        )
    )
