"""Reading the audit trail (administrators), in pages that cost the page.

Every audit event has a dense number (``AuditEvent.seq``: the order in which events were stored),
so the list pages by windows of numbers: the unfiltered list's page is the window of the next
``limit + 1`` numbers, one index range that holds the page (and no more). Filters are applied
inside windows, at most :data:`MAX_WINDOWS` per page (a time filter first finds where its
windows start and end, by a binary search over the numbers): a page holds what those windows held
(possibly fewer than ``limit`` items, even none) and a cursor to go on while older events remain.
A filter by action, outcome or time reads windows of :data:`WINDOW` numbers. A filter by citizen or
by actor reads its index, (citizen_ids, seq) or (actor_id, seq), so a window costs only that
citizen's or actor's events in it, and spans :data:`PREFIX_WINDOW` numbers.

The citizen's access log does not read this collection (``AccessLogEntry``, per citizen); the
admin's search by citizen does, because it finds every event about the citizen (their own reads,
sign-ins, activation), which the access log leaves out and which are most of a citizen's events.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from app.models.audit import AuditCounter, AuditEvent
from app.services.audit import COUNTER_ID
from app.services.paging import InvalidCursor, decode_cursor, encode_cursor

FILTER_FIELDS = ("action", "actor_type", "actor_id", "outcome")
WINDOW = 200  # numbers per window of a filter without an index of its own
PREFIX_WINDOW = 20_000  # numbers per window of a citizen's or an actor's events (read on their index)
MAX_WINDOWS = 10  # windows read per page at most
# An event is stored within this of its time (a request's start; a bulk upload's batches all carry
# the upload's): a time filter starts and ends its windows by it (``_last_before``).
STORED_WITHIN = timedelta(days=1)
PROBE = 16  # numbers read to find one event near a number
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
    # The embedded server plans a filter on a field outside the index it uses as a collection scan
    # (measured: {action, seq range} read every event), so a window asks its index only (the
    # numbers, after the citizen or the actor when given) and the other filters are applied here.
    query: dict[str, Any] = {}
    if filters.get("citizen_id"):
        query["citizen_ids"] = ObjectId(filters["citizen_id"])
    elif filters.get("actor_id"):
        query["actor_id"] = filters["actor_id"]
    since, until = filters.get("from_"), filters.get("to")
    if since:
        low = max(low, _first_after(since - STORED_WITHIN, low, upper))
    if until:
        upper = min(upper, _last_before(until + STORED_WITHIN, low, upper))
    wanted = {name: filters[name] for name in FILTER_FIELDS if filters.get(name)}

    def matches(event: AuditEvent) -> bool:
        return (all(getattr(event, name) == value for name, value in wanted.items())
                and (since is None or _naive_utc(event.at) >= _naive_utc(since))
                and (until is None or _naive_utc(event.at) < _naive_utc(until)))

    filtered = bool(query or wanted or since or until)
    span = PREFIX_WINDOW if query else WINDOW
    found: list[AuditEvent] = []
    for _ in range(MAX_WINDOWS):
        if upper <= low or len(found) > limit:
            break
        # unfiltered, a window is the numbers still needed (gaps are rare); filtered, a fixed span
        lower = max(low, upper - (span if filtered else limit + 1 - len(found)))
        window = AuditEvent.objects(__raw__={**query, "seq": {"$gte": lower, "$lt": upper}})
        found += sorted((event for event in window if matches(event)), key=lambda event: event.seq, reverse=True)
        upper = lower
    if len(found) > limit:
        return found[:limit], encode_cursor({"s": str(found[limit - 1].seq)})
    return found, encode_cursor({"s": str(upper)}) if upper > low else None


def _naive_utc(moment: datetime) -> datetime:
    """A time as naive UTC, as stored (the client may read times back aware or naive)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _probe(number: int) -> dict[str, Any] | None:
    """An event numbered ``number`` or a little above (numbers may have gaps)."""
    return AuditEvent._get_collection().find_one({"seq": {"$gte": number, "$lt": number + PROBE}},
                                                 {"seq": 1, "at": 1})


def _last_before(moment: datetime, low: int, upper: int) -> int:
    """An upper bound (exclusive) of the numbers of events older than ``moment`` - STORED_WITHIN.

    Numbers follow the order of storing, and an event is stored within ``STORED_WITHIN`` of its
    time: so an event at or after ``moment`` proves that every later-numbered one is at or after
    ``moment - STORED_WITHIN``. A binary search finds such an event low down (times need not be
    in order for that proof, only for the search to find the lowest); about 30 probes of a few
    documents each.
    """
    best, lo, hi = upper, low, upper
    while lo < hi:
        mid = (lo + hi) // 2
        event = _probe(mid)
        if event is not None and _naive_utc(event["at"]) >= _naive_utc(moment):
            best, hi = min(best, event["seq"]), mid
        else:
            lo = mid + 1
    return best


def _first_after(moment: datetime, low: int, upper: int) -> int:
    """A lower bound (inclusive) of the numbers of events newer than ``moment`` + STORED_WITHIN:
    one past an event older than ``moment`` found high up (see :func:`_last_before`)."""
    best, lo, hi = low, low, upper
    while lo < hi:
        mid = (lo + hi) // 2
        event = _probe(mid)
        if event is not None and _naive_utc(event["at"]) < _naive_utc(moment):
            best, lo = max(best, event["seq"] + 1), mid + 1
        else:
            hi = mid
    return best


def _bounds() -> tuple[int, int]:
    """The lowest number in use and one past the highest."""
    counter = AuditCounter._get_collection().find_one({"_id": COUNTER_ID}) or {}
    return int(counter.get("low", 1)), int(counter.get("value", 0)) + 1
