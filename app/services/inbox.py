"""The in-app inbox and push devices of a citizen (always filtered by the owner)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bson import ObjectId
from bson.errors import InvalidId
from mongoengine import NotUniqueError

from app.models.device import Device
from app.models.notification import Notification
from app.services import audit, list_index
from app.services.audit import RequestContext
from app.services.errors import NotFound


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


def list_messages(citizen_id: ObjectId, limit: int, cursor: dict[str, str] | None, now: datetime) -> InboxPage:
    """In-app messages, newest first, and how many are unread (both from the list index: an
    unread message's key carries ``list_index.UNREAD``)."""
    keys, version, _ = list_index.read_index(citizen_id, "inbox", now)
    window = list_index.window(keys, version, cursor, limit)
    queries = list_index.range_filters(list_index.SOURCES["inbox"], citizen_id, window)
    items = list_index.in_page_order(window, [message for query in queries for message in Notification.objects(
        __raw__=query).exclude("secret_encrypted")])
    return InboxPage(items, window.next_cursor, list_index.tagged(keys, list_index.UNREAD))


def mark_read(ctx: RequestContext, citizen_id: ObjectId, message_id: str) -> Notification:
    """Mark an in-app message read (404 for anyone else's)."""
    oid = _id(message_id, "message")
    unread = Notification._get_collection().find_one(
        {"_id": oid, "citizen_id": citizen_id, "channel": "in_app", "read_at": None},
        list_index.projection_of("notifications"))
    if unread is not None and Notification.objects(id=oid, citizen_id=citizen_id, channel="in_app",
                                                   read_at=None).update_one(set__read_at=ctx.now):
        changes = list_index.Changes()
        changes.replaced("notifications", unread, {**unread, "read_at": ctx.now})
        list_index.apply(changes)
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
