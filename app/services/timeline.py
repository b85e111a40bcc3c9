"""The citizen's own record: timeline, details, prescriptions, reaction reports.

Every query filters by the owner (``citizen_id``) in the query itself; another citizen's id is
simply not found. Every read of health data leaves exactly one audit event.

Every list is paged through the citizen's list index (``app.services.list_index``): the index
document gives the page's keys, and one bounded index range of the citizen fetches its documents,
so a page costs the page whatever the size of the record. The timeline's pages are cached per app
(a :class:`PageCache` held on the app's ``Runtime``) keyed on the index's ``version``, which every
write to a listed collection changes (``app.services.ingest.writes.RecordWrites``): a changed
record makes a new key, so a cached page is never stale.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo.errors import PyMongoError

from app.infra.batching import GroupCommit
from app.infra.recent_reads import RecentReads
from app.models.citizen import Citizen
from app.models.facility import Facility
from app.models.list_index import ListIndex
from app.models.records import VOIDED, Immunization, Reaction, Visit
from app.services import audit, list_index, outbox
from app.services.audit import RequestContext
from app.services.errors import Conflict, InvalidInput, NotFound
from app.services.ingest.writes import RecordWrites

WITHDRAWN_NOTE = "Withdrawn by the facility"
FACILITY_NAME_TTL = 300.0
# A citizen's index version, read for a cached page, serves this app's page requests this long
# (and is forgotten on any write to list indexes sent on the app's connection): a write is seen
# at once by the app that made it and within this by every other, as the citizen reads of
# authentication (``app.web.auth.CITIZEN_MAX_AGE``).
INDEX_VERSION_MAX_AGE = 0.1
IndexVersions = RecentReads[ObjectId, "int | None"]


ListReads = GroupCommit[tuple[ObjectId, str, datetime], list_index.StoredList]


def list_reads() -> ListReads:
    """The app's reads of list index documents for pages (``Runtime.list_reads``): concurrent page
    requests share one query (each still reads after it asked: a write it saw finish is in it)."""
    return GroupCommit(list_index.read_lists)


def index_versions(on_write: Callable[[str, Callable[[], None]], None]) -> IndexVersions:
    """The app's recent index versions (``Runtime.index_versions``): concurrent page requests
    share one query, reused for ``INDEX_VERSION_MAX_AGE``; ``on_write`` is the app's write watch's
    (``WriteWatch.on_write``)."""
    batch: GroupCommit[ObjectId, int | None] = GroupCommit(list_index.versions)
    reads: IndexVersions = RecentReads(batch.submit, INDEX_VERSION_MAX_AGE)
    on_write(ListIndex._get_collection_name(), reads.forget_all)
    return reads


class RecordWithdrawn(Conflict):
    """The facility withdrew this record (entered in error)."""

    slug = "record-withdrawn"


@dataclass
class Page:
    """One page of a list and the cursor of the next one.

    ``rendered`` keeps its serialised form beside a cached page (see :func:`visits_page`), so a
    page served again from the cache is not serialised again.
    """

    items: list[Any]
    next_cursor: dict[str, str] | None
    rendered: bytes | None = None


def object_id(value: str) -> ObjectId:
    """A record id from a path; anything malformed is simply not found."""
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        raise NotFound("No such record.") from None


class FacilityNames:
    """Facility code -> name, cached for a few minutes (names change rarely; pages show many).

    One per app (``Runtime.facility_names``); a fresh one simply reads the names.
    """

    def __init__(self, ttl: float = FACILITY_NAME_TTL) -> None:
        self._names: dict[str, tuple[float, str]] = {}
        self._ttl = ttl

    def names(self, codes: set[str]) -> dict[str, str]:
        now = time.monotonic()
        missing = {code for code in codes if code not in self._names or self._names[code][0] < now}
        if missing:
            for facility in Facility.objects(code__in=list(missing)).only("code", "name"):
                self._names[facility.code] = (now + self._ttl, facility.name)
        return {code: self._names[code][1] for code in codes if code in self._names}


class PageCache:
    """Recent pages per citizen, keyed on the citizen's list index ``version``.

    Every write to a citizen's lists increments that version (read with the page's keys on every
    request anyway), so a cached page can never be stale: a changed record makes a new key. One
    per app (``Runtime.pages``), bounded, and its entries expire after a couple of minutes.
    """

    def __init__(self, size: int = 4096, ttl: float = 120.0) -> None:
        self._entries: OrderedDict[tuple, tuple[float, Page]] = OrderedDict()
        self._held: Counter[tuple] = Counter()  # entries per page (a key without its version)
        self._lock = threading.Lock()
        self._size = size
        self._ttl = ttl

    def holds(self, page: tuple) -> bool:
        """Whether this page (a key without its version) is kept at any version (else no version
        can find it: a page read for the first time here need not read the version apart)."""
        with self._lock:
            return page in self._held

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: tuple) -> Page | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] < time.monotonic():
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: tuple, page: Page) -> None:
        with self._lock:
            if key not in self._entries:
                self._held[key[:-1]] += 1
            self._entries[key] = (time.monotonic() + self._ttl, page)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                evicted, _ = self._entries.popitem(last=False)
                self._held[evicted[:-1]] -= 1
                if not self._held[evicted[:-1]]:
                    del self._held[evicted[:-1]]


def _read(ctx: RequestContext, citizen_id: ObjectId, action: str, target_type: str,
          target_id: str | None = None, **details: Any) -> None:
    audit.record(ctx, action, citizen_id=citizen_id, target_type=target_type, target_id=target_id,
                 access="read", details=details or None)


def indexed_page(list_name: str, queryset: Callable[[dict[str, Any]], Any], page: list_index.Window,
                 citizen_id: ObjectId, id_of: Callable[[Any], ObjectId] = lambda item: item.id) -> Page:
    """The documents of ``page`` (bounded index ranges of the citizen), in the page's order.

    ``queryset`` makes the list's query (its field exclusions) from a range filter; ``id_of``
    reads an item's id (a raw document's is ``_id``).
    """
    queries = list_index.range_filters(list_index.SOURCES[list_name], citizen_id, page)
    found = [item for query in queries for item in queryset(query)]
    return Page(list_index.in_page_order(page, found, id_of), page.next_cursor)


# The timeline's rows are stored fields as pymongo reads them, not mongoengine documents: building
# 20 mongoengine visits cost 4.8 ms of a 23 ms uncached page (measured 2026-12-01); the presenter
# (``app.resources.me.present.timeline_entry``) reads the stored fields. They come from the list
# index's rows (``list_index.SOURCES["visits"].row_fields``); only a page whose rows are missing
# is fetched from the visits, without what a row does not show:
TIMELINE_EXCLUDED = {"lab_results": 0, "prescriptions": 0, "notes": 0, "provenance": 0, "payload_hash": 0}


def _timeline_rows(query: dict[str, Any]) -> list[dict[str, Any]]:
    return list(Visit._get_collection().find(query, TIMELINE_EXCLUDED))


def list_visits(
    ctx: RequestContext,
    citizen_id: ObjectId,
    limit: int,
    cursor: dict[str, str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    facility: str | None = None,
    pages: PageCache | None = None,
    versions: IndexVersions | None = None,
    lists: ListReads | None = None,
) -> Page:
    """Visits across all facilities, newest first (withdrawn ones marked, without content), as
    stored documents (``TIMELINE_EXCLUDED`` left out).

    With the app's ``pages``, the page may come from the cache (keyed on the index version, read
    through the app's recent ``versions`` when given); its index document is read through the
    app's ``lists`` when given.
    """
    after = list_index.cursor_key(cursor)  # a bad cursor is a 422 before the cache is asked
    key = ("visits", citizen_id, limit, after, start, end, facility)
    page = None
    if pages is not None and pages.holds(key):  # a cached page costs one small read: the version
        version = versions.get(citizen_id) if versions is not None else None
        page = pages.get((*key, list_index.read_version(citizen_id, ctx.now) if version is None else version))
    if page is None:
        wanted = (citizen_id, "visits", ctx.now)
        stored = lists.submit(wanted) if lists is not None else list_index.read_list(*wanted)
        window = list_index.window(stored.keys, stored.version, cursor, limit, start=start, end=end, facility=facility)
        rows = stored.rows_of(window)
        if rows is not None:  # the usual case: the page is read from the index document alone
            page = Page(rows, window.next_cursor)
        else:
            page = indexed_page("visits", _timeline_rows, window, citizen_id, id_of=lambda row: row["_id"])
            if stored.keeps_rows_of(window):
                try:
                    list_index.fill_rows(citizen_id, "visits", page.items)
                except (list_index.ListIndexContention, PyMongoError):
                    pass  # best effort: the page is right without them, and a later page fills them in
        if pages is not None:
            pages.put((*key, stored.version), page)  # the version of the keys read: at least the one asked for
    _read(ctx, citizen_id, "visits.list", "visit", count=len(page.items))
    return page


def visits_page(
    ctx: RequestContext,
    citizen_id: ObjectId,
    limit: int,
    cursor: dict[str, str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    facility: str | None = None,
    *,
    pages: PageCache,
    facility_names: FacilityNames,
    render: Callable[[Page, dict[str, str]], bytes],
    versions: IndexVersions | None = None,
    lists: ListReads | None = None,
) -> bytes:
    """``GET /me/visits`` as bytes: a page of :func:`list_visits`, serialised once per cached page.

    ``render`` (the presenter) turns a page and its facilities' names into the response body;
    its bytes are kept beside the cached page, so a page served again is not serialised again.
    """
    page = list_visits(ctx, citizen_id, limit, cursor, start, end, facility, pages=pages, versions=versions,
                       lists=lists)
    if page.rendered is None:
        page.rendered = render(page, facility_names.names({row["facility_code"] for row in page.items}))
    return page.rendered


def get_visit(ctx: RequestContext, citizen_id: ObjectId, visit_id: str) -> Visit:
    """One visit with diagnoses, results and prescriptions."""
    visit = Visit.objects(id=object_id(visit_id), citizen_id=citizen_id).first()
    if visit is None:
        raise NotFound("No such visit.")
    _read(ctx, citizen_id, "visit.read", "visit", str(visit.id))
    return visit


def list_immunizations(ctx: RequestContext, citizen_id: ObjectId, limit: int,
                       cursor: dict[str, str] | None = None) -> Page:
    """Vaccinations, newest first."""
    keys, version, _ = list_index.read_index(citizen_id, "immunizations", ctx.now)
    window = list_index.window(keys, version, cursor, limit)
    page = indexed_page("immunizations", lambda query: Immunization.objects(__raw__=query), window, citizen_id)
    _read(ctx, citizen_id, "immunizations.list", "immunization", count=len(page.items))
    return page


def get_immunization(ctx: RequestContext, citizen_id: ObjectId, immunization_id: str) -> Immunization:
    """One vaccination with its reactions."""
    record = Immunization.objects(id=object_id(immunization_id), citizen_id=citizen_id).first()
    if record is None:
        raise NotFound("No such vaccination.")
    _read(ctx, citizen_id, "immunization.read", "immunization", str(record.id))
    return record


def report_reaction(
    ctx: RequestContext, citizen: Citizen, immunization_id: str, onset_at: datetime,
    description: str, severity: str,
) -> Immunization:
    """The citizen's own reaction report, kept beside (never over) the facility's data."""
    record = Immunization.objects(id=object_id(immunization_id), citizen_id=citizen.id).first()
    if record is None:
        raise NotFound("No such vaccination.")
    if record.status == VOIDED:
        raise RecordWithdrawn("The facility withdrew this vaccination record.")
    if onset_at < record.administered_at:
        raise InvalidInput({"onset_at": ["A reaction cannot start before the injection."]})
    reaction = Reaction(onset_at=onset_at, description=description, severity=severity,
                        reported_by="citizen", recorded_at=ctx.now)
    with RecordWrites() as writes:
        writes.update(Immunization.objects(id=record.id, citizen_id=citizen.id),
                      push__citizen_reactions=reaction)
    audit.record(ctx, "immunization.reaction_report", citizen_id=citizen.id,
                 target_type="immunization", target_id=str(record.id), access="write",
                 details={"severity": severity})
    outbox.notify(ctx, citizen, "reaction_recorded", f"{record.id}:{ctx.now.isoformat()}", channels=["in_app"])
    return Immunization.objects(id=record.id, citizen_id=citizen.id).first()  # (reload() names only the id)


def list_prescriptions(ctx: RequestContext, citizen_id: ObjectId, limit: int,
                       cursor: dict[str, str] | None = None) -> Page:
    """Visits that carry prescriptions, newest first (each shows its national codes)."""
    keys, version, _ = list_index.read_index(citizen_id, "prescriptions", ctx.now)
    window = list_index.window(keys, version, cursor, limit)
    page = indexed_page("prescriptions", lambda query: Visit.objects(__raw__=query).only(
        "id", "facility_code", "started_at", "prescriptions", "practitioner"), window, citizen_id)
    _read(ctx, citizen_id, "prescriptions.list", "visit", count=len(page.items))
    return page


def withdrawn(record: Visit | Immunization) -> bool:
    """True when the facility voided the record."""
    return record.status == VOIDED
