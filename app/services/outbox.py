"""Writing messages into the notification outbox, in the request that causes them."""

from __future__ import annotations

from datetime import datetime

from mongoengine import NotUniqueError

from app.models.citizen import Citizen
from app.models.device import Device
from app.models.notification import ROUTINE, SECURITY, Notification
from app.security.crypto import SecretBox
from app.services import list_index
from app.services.audit import RequestContext
from notifications import SECURITY_KINDS, render


def secret_context(dedupe_key: str) -> str:
    """Authenticated data of a secret carried by one message."""
    return f"notification-secret:{dedupe_key}"


def default_channels(citizen: Citizen, kind: str) -> list[str]:
    """Security messages: the inbox and every contact channel. Others: the inbox and push, plus
    SMS or e-mail only where the citizen turned them on; a channel turned off is never used."""
    if kind in SECURITY_KINDS:
        return ["in_app", *citizen.contact_channels]
    wanted = (citizen.notification_preferences or {}).get(kind, {})
    channels = ["in_app"]
    if wanted.get("push", True):
        channels.append("push")
    channels += [name for name in citizen.contact_channels if wanted.get(name, False)]
    return channels


def address_of(citizen: Citizen, channel: str) -> str | None:
    """The citizen's phone or e-mail address for ``channel`` (none for the inbox and push)."""
    return {"sms": citizen.phone, "email": citizen.email}.get(channel)


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
    """Queue one message per channel (per device for push); one ``event_key`` never queues twice.

    Each message keeps the address it goes to as ``citizen`` has it now: to warn about a change of
    contact data, pass the citizen as it was before the change.

    A ``secret`` (an activation code) is stored encrypted, never in the text, and erased once sent.
    Preferences can narrow the channels of non-security messages, never widen them.
    """
    rendered = render(kind, citizen.language or "vi", **params)
    allowed = set(default_channels(citizen, kind))
    chosen = [c for c in (channels if channels is not None else default_channels(citizen, kind))
              if c in allowed or kind in SECURITY_KINDS]
    targets: list[tuple[str, object, str | None]] = []
    for channel in chosen:
        if channel == "push":
            targets += [("push", device.id, device.push_token)
                        for device in Device.objects(citizen_id=citizen.id).only("id", "push_token")]
        else:
            targets.append((channel, None, address_of(citizen, channel)))
    written = []
    for channel, device_id, address in targets:
        dedupe_key = f"{kind}:{event_key}:{channel}" + (f":{device_id}" if device_id else "")
        message = Notification(
            citizen_id=citizen.id, kind=kind, channel=channel, language=rendered.language,
            subject=rendered.subject, body=rendered.body, dedupe_key=dedupe_key, created_at=ctx.now,
            next_attempt_at=ctx.now, device_id=device_id, address=address,
            priority=SECURITY if kind in SECURITY_KINDS else ROUTINE,
            status="sent" if channel == "in_app" else "pending",
            sent_at=ctx.now if channel == "in_app" else None,
        )
        if secret is not None:
            assert box is not None, "a secret needs the SecretBox to encrypt it"
            message.secret_encrypted = box.encrypt(secret, secret_context(dedupe_key))
        try:
            message.save(force_insert=True)
        except NotUniqueError:
            continue  # the same event already queued this message (a retried request)
        written.append(message)
    changes = list_index.Changes()  # in-app messages are the citizen's inbox list
    for message in written:
        changes.inserted("notifications", message.to_mongo().to_dict())
    list_index.apply(changes)
    return written


def mark_sent(message_id: object, citizen_id: object, now: datetime) -> bool:
    """Record a delivery; a secret the message carried (an activation code) and its address are
    erased with it. The message's citizen is its shard key: the update reaches one shard."""
    return bool(
        Notification.objects(id=message_id, citizen_id=citizen_id, status__in=["pending", "sending"]).update_one(
            set__status="sent", set__sent_at=now, unset__secret_encrypted=True, unset__lease_until=True,
            unset__address=True
        )
    )
