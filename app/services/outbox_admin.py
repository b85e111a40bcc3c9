"""Administrators see messages by delivery state (dead letters first), never their text."""

from __future__ import annotations

from bson import ObjectId
from bson.errors import InvalidId

from app.models.notification import Notification
from app.services import paging
from app.services.errors import InvalidInput


def list_by_status(status: str, after_id: str | None, limit: int) -> tuple[list[Notification], dict[str, str] | None]:
    """A page of the messages in ``status``, newest first, and the next page's cursor."""
    query = Notification.objects(status=status)
    if after_id:
        try:
            query = query.filter(id__lt=ObjectId(after_id))
        except InvalidId:
            raise InvalidInput({"cursor": ["Not a valid cursor."]}) from None
    return paging.by_key(query.only(
        "id", "citizen_id", "kind", "channel", "status", "attempts", "last_error", "created_at", "next_attempt_at"),
        "-id", limit)
