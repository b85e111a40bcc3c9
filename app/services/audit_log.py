"""Reading the audit trail (administrators)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from mongoengine import Q

from app.models.audit import AuditEvent

FILTER_FIELDS = ("action", "actor_type", "actor_id", "outcome")


def search(
    filters: dict[str, Any], cursor: dict[str, str] | None, limit: int
) -> tuple[list[AuditEvent], dict[str, str] | None]:
    """Events matching ``filters``, newest first, keyset-paged by (time, id)."""
    query = Q(**{name: filters[name] for name in FILTER_FIELDS if filters.get(name)})
    if filters.get("citizen_id"):
        query &= Q(citizen_id=ObjectId(filters["citizen_id"]))
    if filters.get("from_"):
        query &= Q(at__gte=filters["from_"])
    if filters.get("to"):
        query &= Q(at__lt=filters["to"])
    if cursor:
        try:
            at, last_id = datetime.fromisoformat(cursor["at"]), ObjectId(cursor["id"])
        except (ValueError, InvalidId):
            from app.services.errors import InvalidCursor

            raise InvalidCursor("Not a valid cursor.") from None
        query &= Q(at__lt=at) | Q(at=at, id__lt=last_id)
    events = list(AuditEvent.objects(query).order_by("-at", "-id").limit(limit + 1))
    if len(events) <= limit:
        return events, None
    events = events[:limit]
    last = events[-1]
    return events, {"at": last.at.isoformat(), "id": str(last.id)}
