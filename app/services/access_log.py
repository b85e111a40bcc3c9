"""The citizen's access log: every read of their record by someone else, and every write.

Read from the citizen's own access-log entries (``AccessLogEntry``, one per citizen per event,
written with the event by ``audit.insert_events``), paged through the citizen's list index: a page
reads the index document, one index range of the citizen's entries and the page's events by id,
whatever the size of their log or of the audit trail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from app.models.access_log import AccessLogEntry
from app.services import audit, list_index
from app.services.paging import InvalidCursor


def checked_cursor(cursor: dict[str, str] | None) -> dict[str, str] | None:
    """A list cursor ``{"t", "id"}`` whose values parse (else 422 on ``cursor``)."""
    if cursor:
        try:
            datetime.fromisoformat(cursor["t"])
            ObjectId(cursor["id"])
        except (KeyError, ValueError, InvalidId, TypeError):
            raise InvalidCursor from None
    return cursor


def _page_filters(citizen_id: ObjectId, page: list_index.Window) -> list[dict[str, Any]]:
    """The index ranges of a page's entries (the page's end times asked for by time and id when
    many entries share them)."""
    return list(list_index.range_filters(list_index.SOURCES["access_log"], citizen_id, page))


def access_log(citizen_id: ObjectId, limit: int, cursor: dict[str, str] | None, now: datetime
               ) -> tuple[list[AccessLogEntry], dict[str, str] | None]:
    """Newest first: reads by anyone but the citizen (doctors, support, facilities) and all writes
    (``audit.shown_in_access_log``): their entries (each names its event), and the next page's cursor.

    A bulk upload is one write event listing every record it wrote (for several citizens): it
    appears once in the log of each of them.
    """
    keys, version, counters = list_index.read_index(citizen_id, "access_log", now)
    if not counters.get(audit.FILLED):  # first read: what uploads left out while they were pending
        audit.fill_access_log(citizen_id, now)
        keys, version, counters = list_index.read_index(citizen_id, "access_log", now)
    page = list_index.window(keys, version, checked_cursor(cursor), limit)
    entries = [entry for query in _page_filters(citizen_id, page)
               for entry in AccessLogEntry.objects(__raw__=query)]
    return list_index.in_page_order(page, entries), page.next_cursor
