"""The citizen's in-app inbox and push devices (bearer: citizen token)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from app.resources.common import Blueprint, PageArgsSchema, StrictSchema
from app.schemas.text import Text
from app.services import inbox
from app.services.paging import decode_cursor, encode_cursor
from app.web.auth import current_principal, request_context

blp = Blueprint("inbox", __name__, description="The citizen's messages and devices")


class InboxItemSchema(ma.Schema):
    id = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    subject = ma.fields.String(allow_none=True)
    body = ma.fields.String(required=True)
    created_at = ma.fields.DateTime(required=True)
    read_at = ma.fields.DateTime(allow_none=True)


class InboxPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(InboxItemSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)
    unread_count = ma.fields.Integer(required=True)


class DeviceCreateSchema(StrictSchema):
    platform = Text(16, required=True, validate=ma.validate.OneOf(("android", "ios")))
    push_token = Text(4096, min_length=8, required=True)


class DeviceSchema(ma.Schema):
    id = ma.fields.String(required=True)
    platform = ma.fields.String(required=True)
    created_at = ma.fields.DateTime(required=True)


def _item(message) -> dict:  # type: ignore[no-untyped-def]
    return {"id": str(message.id), "kind": message.kind, "subject": message.subject, "body": message.body,
            "created_at": message.created_at, "read_at": message.read_at}


@blp.route("/me/notifications")
class InboxViews(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, InboxPageSchema)
    def get(self, args):
        """My in-app messages, newest first, with the unread count"""
        cursor = decode_cursor(args["cursor"], ("t", "id")) if args.get("cursor") else None
        page = inbox.list_messages(current_principal().subject.id, args["limit"], cursor)
        return {"items": [_item(m) for m in page.items],
                "next_cursor": encode_cursor(page.next_cursor) if page.next_cursor else None,
                "unread_count": page.unread_count}


@blp.route("/me/notifications/<message_id>/read")
class InboxReadViews(MethodView):
    @blp.response(200, InboxItemSchema)
    def post(self, message_id):
        """Mark one of my messages read"""
        return _item(inbox.mark_read(request_context(), current_principal().subject.id, message_id))


@blp.route("/me/devices")
class DeviceViews(MethodView):
    @blp.arguments(DeviceCreateSchema)
    @blp.response(201, DeviceSchema)
    def post(self, body):
        """Register this phone for push messages"""
        device = inbox.register_device(request_context(), current_principal().subject.id, body["platform"],
                                       body["push_token"])
        return {"id": str(device.id), "platform": device.platform, "created_at": device.created_at}


@blp.route("/me/devices/<device_id>")
class DeviceByIdViews(MethodView):
    @blp.response(204)
    def delete(self, device_id):
        """Stop push messages to one of my devices"""
        inbox.remove_device(request_context(), current_principal().subject.id, device_id)
