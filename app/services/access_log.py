"""The citizen's access log: every read of their record by someone else, and every write."""

from __future__ import annotations

from bson import ObjectId
from mongoengine import Q

from app.models.audit import AuditEvent
from app.services.paging import after, newest_first


def access_log(citizen_id: ObjectId, limit: int, cursor: dict[str, str] | None = None
               ) -> tuple[list[AuditEvent], dict[str, str] | None]:
    """Newest first: reads by anyone but the citizen (doctors, support, facilities) and all writes.

    A bulk upload is one write event listing every record it wrote (for several citizens): it
    appears once in the log of each of them.
    """
    query = Q(citizen_ids=citizen_id) & (
        Q(access="write") | (Q(access="read") & Q(actor_type__ne="citizen"))
    )
    return newest_first(AuditEvent.objects(query & after(cursor, "at")), "at", limit)
