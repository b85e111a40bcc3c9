"""The citizen's in-app inbox and push devices (bearer: citizen token)."""

from __future__ import annotations

from flask.views import MethodView

from app.resources.common import Blueprint, PageArgsSchema
from app.resources.me.schemas import DeviceCreateSchema, DeviceSchema, InboxItemSchema, InboxPageSchema
from app.services import inbox
from app.services.paging import decode_cursor, encode_cursor
from app.web.auth import current_principal, request_context

blp = Blueprint("inbox", __name__, description="The citizen's messages and devices")


@blp.route("/me/notifications")
class InboxViews(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, InboxPageSchema)
    def get(self, args):
        """My in-app messages, newest first, with the unread count"""
        cursor = decode_cursor(args["cursor"], ("t", "id")) if args.get("cursor") else None
        page = inbox.list_messages(current_principal().subject.id, args["limit"], cursor, request_context().now)
        return {"items": page.items,
                "next_cursor": encode_cursor(page.next_cursor) if page.next_cursor else None,
                "unread_count": page.unread_count}


@blp.route("/me/notifications/<message_id>/read")
class InboxReadViews(MethodView):
    @blp.response(200, InboxItemSchema)
    def post(self, message_id):
        """Mark one of my messages read"""
        return inbox.mark_read(request_context(), current_principal().subject.id, message_id)


@blp.route("/me/devices")
class DeviceViews(MethodView):
    @blp.arguments(DeviceCreateSchema)
    @blp.response(201, DeviceSchema)
    def post(self, body):
        """Register this phone for push messages"""
        return inbox.register_device(request_context(), current_principal().subject.id, body["platform"],
                                     body["push_token"])


@blp.route("/me/devices/<device_id>")
class DeviceByIdViews(MethodView):
    @blp.response(204)
    def delete(self, device_id):
        """Stop push messages to one of my devices"""
        inbox.remove_device(request_context(), current_principal().subject.id, device_id)
