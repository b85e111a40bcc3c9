"""Reading the audit trail (administrators)."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from mongoengine import Q

from app.models.audit import AuditEvent
from app.services.paging import after, newest_first

FILTER_FIELDS = ("action", "actor_type", "actor_id", "outcome")


def search(
    filters: dict[str, Any], cursor: dict[str, str] | None, limit: int
) -> tuple[list[AuditEvent], dict[str, str] | None]:
    """Events matching ``filters``, newest first, keyset-paged by (time, id)."""
    query = Q(**{name: filters[name] for name in FILTER_FIELDS if filters.get(name)})
    if filters.get("citizen_id"):  # the access-log index, (citizen_ids, access, at), finds them
        query &= Q(citizen_ids=ObjectId(filters["citizen_id"]))
    if filters.get("from_"):
        query &= Q(at__gte=filters["from_"])
    if filters.get("to"):
        query &= Q(at__lt=filters["to"])
    return newest_first(AuditEvent.objects(query & after(cursor, "at")), "at", limit)
