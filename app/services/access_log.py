"""The citizen's access log: every read of their record by someone else, and every write."""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from bson.errors import InvalidId
from mongoengine import Q

from app.models.audit import AuditEvent
from app.services.errors import InvalidInput


def access_log(citizen_id: ObjectId, limit: int, cursor: dict[str, str] | None = None
               ) -> tuple[list[AuditEvent], dict[str, str] | None]:
    """Newest first: reads by anyone but the citizen (doctors, support, facilities) and all writes."""
    query = Q(citizen_id=citizen_id) & (
        Q(access="write") | (Q(access="read") & Q(actor_type__ne="citizen"))
    )
    if cursor:
        try:
            at, last = datetime.fromisoformat(cursor["t"]), ObjectId(cursor["id"])
        except (KeyError, ValueError, InvalidId):
            raise InvalidInput({"cursor": ["Not a valid cursor."]}) from None
        query &= Q(at__lt=at) | Q(at=at, id__lt=last)
    events = list(AuditEvent.objects(query).order_by("-at", "-id").limit(limit + 1))
    if len(events) <= limit:
        return events, None
    events = events[:limit]
    return events, {"t": events[-1].at.isoformat(), "id": str(events[-1].id)}
