"""Reading the audit trail (administrators), in pages that cost the page.

Every audit event has a dense number (``AuditEvent.seq``: the order in which events were stored),
so the list pages by windows of numbers: the unfiltered list's page is the window of the next
``limit + 1`` numbers, one index range that holds the page (and no more). Filters are applied
inside windows, at most :data:`MAX_WINDOWS` per page: a page holds what those windows held
(possibly fewer than ``limit`` items, even none) and a cursor to go on while older events remain.
A filter by action, outcome or time reads windows of :data:`WINDOW` numbers. A filter by citizen or
by actor reads its index, (citizen_ids, seq) or (actor_id, seq), so a window costs only that
citizen's or actor's events in it, and spans :data:`PREFIX_WINDOW` numbers.

The citizen's access log does not read this collection (``AccessLogEntry``, per citizen); the
admin's search by citizen does, because it finds every event about the citizen (their own reads,
sign-ins, activation), which the access log leaves out and which are most of a citizen's events.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from app.models.audit import AuditCounter, AuditEvent
from app.services.audit import COUNTER_ID
from app.services.paging import InvalidCursor, decode_cursor, encode_cursor

FILTER_FIELDS = ("action", "actor_type", "actor_id", "outcome")
WINDOW = 200  # numbers per window of a filter without an index of its own
PREFIX_WINDOW = 20_000  # numbers per window of a citizen's or an actor's events (read on their index)
MAX_WINDOWS = 10  # windows read per page at most
SEQ_CURSOR = ("s",)


def search(filters: dict[str, Any], cursor: str | None, limit: int) -> tuple[list[AuditEvent], str | None]:
    """Events matching ``filters``, newest stored first, and the (opaque) cursor of the next page
    (None when no older event remains); a cursor this function did not make raises
    :class:`InvalidCursor`."""
    low, upper = _bounds()
    if cursor:
        raw = decode_cursor(cursor, SEQ_CURSOR)["s"]
        if not raw.lstrip("-").isdigit() or len(raw) > 20:
            raise InvalidCursor
        upper = min(upper, int(raw))
    query: dict[str, Any] = {name: filters[name] for name in FILTER_FIELDS if filters.get(name)}
    if filters.get("citizen_id"):
        query["citizen_ids"] = ObjectId(filters["citizen_id"])
    if filters.get("from_") or filters.get("to"):
        query["at"] = {}
        if filters.get("from_"):
            query["at"]["$gte"] = filters["from_"]
        if filters.get("to"):
            query["at"]["$lt"] = filters["to"]
    span = PREFIX_WINDOW if ("citizen_ids" in query or "actor_id" in query) else WINDOW
    found: list[AuditEvent] = []
    for _ in range(MAX_WINDOWS):
        if upper <= low or len(found) > limit:
            break
        # unfiltered, a window is the numbers still needed (gaps are rare); filtered, a fixed span
        lower = max(low, upper - (span if query else limit + 1 - len(found)))
        window = AuditEvent.objects(__raw__={**query, "seq": {"$gte": lower, "$lt": upper}})
        found += sorted(window, key=lambda event: event.seq, reverse=True)
        upper = lower
    if len(found) > limit:
        return found[:limit], encode_cursor({"s": str(found[limit - 1].seq)})
    return found, encode_cursor({"s": str(upper)}) if upper > low else None


def _bounds() -> tuple[int, int]:
    """The lowest number in use and one past the highest."""
    counter = AuditCounter._get_collection().find_one({"_id": COUNTER_ID}) or {}
    return int(counter.get("low", 1)), int(counter.get("value", 0)) + 1
