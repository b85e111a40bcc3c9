"""Reading the audit trail (administrators), in pages that cost the page.

Every audit event has a dense number (``AuditEvent.seq``: the order in which events were stored),
so the list pages by windows of numbers: the unfiltered list's page is the window of the next
``limit + 1`` numbers, one index range that holds the page (and no more). A filter (action, actor,
outcome, time) is applied inside windows of :data:`WINDOW` numbers, at most :data:`MAX_WINDOWS` per
page: a page holds what those windows held (possibly fewer than ``limit`` items, even none) and a
cursor to go on while older events remain. A filter by actor reads the (actor, number) index, so a
window costs only that actor's events in it.

A filter by citizen reads the citizen's access-log entries instead (what their access log shows:
reads by others and every write), through their list index, then those events by id: one page of
the citizen's own entries whatever the size of the trail. The citizen's own actions are found by
actor (``actor_type=citizen&actor_id=<citizen id>``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId

from app.models.audit import AuditCounter, AuditEvent
from app.services.access_log import entries_page
from app.services.audit import COUNTER_ID
from app.services.paging import InvalidCursor, decode_cursor, encode_cursor

FILTER_FIELDS = ("action", "actor_type", "actor_id", "outcome")
WINDOW = 200  # numbers read per window when a filter is set
MAX_WINDOWS = 10  # windows read per page at most
SEQ_CURSOR, CITIZEN_CURSOR = ("s",), ("t", "id")


def search(filters: dict[str, Any], cursor: str | None, limit: int, now: datetime
           ) -> tuple[list[AuditEvent], str | None]:
    """Events matching ``filters``, newest stored first, and the (opaque) cursor of the next page.

    ``cursor`` is one this function returned for the same kind of search (by citizen or not);
    anything else raises :class:`InvalidCursor`.
    """
    if filters.get("citizen_id"):
        return _by_citizen(filters, cursor, limit, now)
    return _numbered(filters, cursor, limit)


def _matches(event: AuditEvent, filters: dict[str, Any]) -> bool:
    return all(getattr(event, name) == filters[name] for name in FILTER_FIELDS if filters.get(name))


def _by_citizen(filters: dict[str, Any], cursor: str | None, limit: int, now: datetime
                ) -> tuple[list[AuditEvent], str | None]:
    position = decode_cursor(cursor, CITIZEN_CURSOR) if cursor else None
    entries, next_position = entries_page(ObjectId(filters["citizen_id"]), limit, position, now,
                                          start=filters.get("from_"), end=filters.get("to"))
    found = {event.id: event for event in AuditEvent.objects(id__in=[entry.event_id for entry in entries])}
    events = [found[entry.event_id] for entry in entries if entry.event_id in found]
    return ([event for event in events if _matches(event, filters)],
            encode_cursor(next_position) if next_position else None)


def _bounds() -> tuple[int, int]:
    """The lowest number in use and one past the highest."""
    counter = AuditCounter._get_collection().find_one({"_id": COUNTER_ID}) or {}
    return int(counter.get("low", 1)), int(counter.get("value", 0)) + 1


def _numbered(filters: dict[str, Any], cursor: str | None, limit: int) -> tuple[list[AuditEvent], str | None]:
    low, upper = _bounds()
    if cursor:
        raw = decode_cursor(cursor, SEQ_CURSOR)["s"]
        if not raw.lstrip("-").isdigit() or len(raw) > 20:
            raise InvalidCursor
        upper = min(upper, int(raw))
    query: dict[str, Any] = {name: filters[name] for name in FILTER_FIELDS if filters.get(name)}
    if filters.get("from_") or filters.get("to"):
        query["at"] = {}
        if filters.get("from_"):
            query["at"]["$gte"] = filters["from_"]
        if filters.get("to"):
            query["at"]["$lt"] = filters["to"]
    found: list[AuditEvent] = []
    for _ in range(MAX_WINDOWS):
        if upper <= low or len(found) > limit:
            break
        # unfiltered, a window is the numbers still needed (gaps are rare); filtered, a fixed span
        lower = max(low, upper - (WINDOW if query else limit + 1 - len(found)))
        window = AuditEvent.objects(__raw__={**query, "seq": {"$gte": lower, "$lt": upper}})
        found += sorted(window, key=lambda event: event.seq, reverse=True)
        upper = lower
    if len(found) > limit:
        return found[:limit], encode_cursor({"s": str(found[limit - 1].seq)})
    return found, encode_cursor({"s": str(upper)}) if upper > low else None
