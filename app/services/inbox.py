"""The in-app inbox and push devices of a citizen (always filtered by the owner)."""

from __future__ import annotations

from dataclasses import dataclass

from bson import ObjectId
from bson.errors import InvalidId
from mongoengine import NotUniqueError, Q

from app.models.device import Device
from app.models.notification import Notification
from app.services import audit
from app.services.audit import RequestContext
from app.services.errors import NotFound
from app.services.paging import after, newest_first


@dataclass(frozen=True)
class InboxPage:
    items: list[Notification]
    next_cursor: dict[str, str] | None
    unread_count: int


def _id(value: str, what: str) -> ObjectId:
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        raise NotFound(f"No such {what}.") from None


def list_messages(citizen_id: ObjectId, limit: int, cursor: dict[str, str] | None) -> InboxPage:
    """In-app messages, newest first."""
    query = Q(citizen_id=citizen_id, channel="in_app") & after(cursor, "created_at")
    items, next_cursor = newest_first(Notification.objects(query).exclude("secret_encrypted"), "created_at", limit)
    unread = Notification.objects(citizen_id=citizen_id, channel="in_app", read_at=None).count()
    return InboxPage(items, next_cursor, unread)


def mark_read(ctx: RequestContext, citizen_id: ObjectId, message_id: str) -> Notification:
    """Mark an in-app message read (404 for anyone else's)."""
    oid = _id(message_id, "message")
    Notification.objects(id=oid, citizen_id=citizen_id, channel="in_app", read_at=None).update_one(
        set__read_at=ctx.now)
    message = Notification.objects(id=oid, citizen_id=citizen_id, channel="in_app").first()
    if message is None:
        raise NotFound("No such message.")
    return message


def register_device(ctx: RequestContext, citizen_id: ObjectId, platform: str, push_token: str) -> Device:
    """Register a push token (registering the same token again returns the same device)."""
    device = Device(citizen_id=citizen_id, platform=platform, push_token=push_token, created_at=ctx.now)
    try:
        device.save(force_insert=True)
    except NotUniqueError:
        return Device.objects.get(citizen_id=citizen_id, push_token=push_token)
    audit.record(ctx, "device.register", citizen_id=citizen_id, target_type="device", target_id=str(device.id))
    return device


def remove_device(ctx: RequestContext, citizen_id: ObjectId, device_id: str) -> None:
    """Forget one of the citizen's devices (404 for anyone else's)."""
    if not Device.objects(id=_id(device_id, "device"), citizen_id=citizen_id).delete():
        raise NotFound("No such device.")
    audit.record(ctx, "device.remove", citizen_id=citizen_id, target_type="device", target_id=device_id)
