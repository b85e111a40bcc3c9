"""Pages that cost the page: every paged list of a citizen reads one small read model first.

Why: the embedded database (and any server once a citizen's record is large) reads every document
a filter's index range matches before it sorts and cuts the page, so a page must be asked for with
a filter that matches the page and little more. A keyset filter ("older than the cursor") matches
the whole rest of the record. So each citizen has one *list index* document (``ListIndex``, ``_id``
= the citizen id, on the citizen's shard) holding, per list, the keys of its items: 8 bytes of time
and the item's 12-byte id, then a tag (for lists that can be filtered by facility, its code; in
the inbox, whether the message is unread, which makes the unread count). A page is:

1. the citizen's index document (one read by ``_id``): each list's keys packed in one binary value,
   sorted, one fixed-width slot per item (:class:`PackedKeys`; see "Why packed" below);
2. the ``limit + 1`` keys after the cursor (and inside the filters), found by binary search;
3. the page's documents with ``{citizen_id, <time>: {$gte: oldest, $lte: newest}}`` on the list's
   (citizen, time, _id) index: an index range that holds the page and the items sharing its end
   times; when those are many (hundreds of messages of one upload share an instant), the ends
   are asked for by time and id (:func:`range_filters`: at most three ranges).

How it is kept true: every write to a listed collection goes through :func:`apply` with what it
added and removed, and the citizens whose listed documents changed in place (their ``version``
changes: it keys the app's page cache). The one write path of each collection calls it:
``RecordWrites`` for health records, the audit trail for the access log, the outbox for the inbox
(and marking a message read). :func:`apply` only changes
index documents that exist: a citizen gets one when their lists become readable (activation: see
:func:`build`), built from the collections. A write that began before a build and skipped the
citizen as not yet readable asks :func:`built_since` afterwards and adds its items then: the build
is recorded before it reads, so every item is either seen by the build or added by its writer.
The build adds only items the index does not hold yet (a writer that added one since read it
later than the build did).

Why packed: a document's read costs what it decodes, on the embedded server even for a projection
of ``version`` alone: an array of 2,000 binary keys took 1.2-2.3 ms to read against 0.6 ms for 20,
one binary value of the same keys 1.0 ms whatever their number. So the keys of a list are one
value, and a write to it is a read, a merge and a conditional write of the new value
(:func:`apply`: ``version`` is the condition; a write that lost the race to another writer of the
same citizen reads and merges again). Documents written before the keys were packed hold an
array of keys; they are read as well (:func:`stored_keys`) and packed by their next write.

Rows: a list whose source names ``row_fields`` (the timeline) also keeps, beside the keys of its
newest items (``rows_kept``: 100, five pages of 20), each item's row: those stored fields as BSON,
after the item's ``version`` (:class:`PackedRows`, in the order of the keys). Those pages are then
read from the index document alone, with no query of the collection: on the embedded server,
fetching a page's 20 visits cost 4-6 ms, more than the rest of the request (measured 2026-12-01).
Only the newest rows, so that the document's size, and the cost of reading and writing it, stays
bounded by the keys: with a row for each of 2,000 visits (about 600 KB), first pages of such a
record ran at 0.75 of those of a record of 20. The one write path reports each written item's row
with its key (:meth:`Changes.add`), and the merge keeps, of two rows of one item, the one of the
higher record ``version``: two writers of one record may apply in either order. A page with a
missing row (older items; an index written before its list kept rows; a row format that changed;
an item that became one of the newest when a newer one was removed) is fetched from the
collection instead, and, if it is among the newest, its rows are filled in (:func:`fill_rows`).
"""

from __future__ import annotations

import random
import struct
import time
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
from bson import Binary, ObjectId
from bson.errors import InvalidId
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from app.infra.batching import Failed
from app.infra.embedded_quirks import in_chunks, inclusive_time_range
from app.models.access_log import AccessLogEntry
from app.models.list_index import ListIndex, RecentBuild
from app.models.notification import Notification
from app.models.records import VOIDED, Immunization, Visit
from app.services.paging import InvalidCursor

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIME_BYTES, ID_BYTES = 8, 12
ORDER_BYTES = TIME_BYTES + ID_BYTES  # a key's order is its first 20 bytes; then the facility code
# A stored key's slot: its order, the tag's length, the tag padded (a facility code is 5 bytes).
SLOT_BYTES = 32
TAG_BYTES = SLOT_BYTES - ORDER_BYTES - 1
# A conditional write that lost to another writer of the same citizen reads and merges again, for
# this long at most (then the write fails: the caller's unit of work reports the error).
CONTENTION_SECONDS = 10.0
DUPLICATE_KEY = 11000
# Writers and builders run on different servers: a write that began this long before a build's
# recorded time still looks for it (clock skew between app servers is far smaller).
CLOCK_SKEW = timedelta(minutes=2)
# A page's one time range may also match this many items off the page (sharing its end times);
# with more, its ends are asked for by time and id (see ``range_filters``).
EDGE_TIES = 4
# A row starts with its item's record version (which of two writers' rows is newer), then BSON.
ROW_VERSION = struct.Struct(">q")
NO_ROW = -1  # the version of a missing row: any row replaces it


@dataclass(frozen=True)
class ListSource:
    """Where a list's items live: the collection (mongoengine model), its citizen and time
    fields, the facility field (lists filtered by facility), the filter its members match, and
    what a key carries after its order (``tag_of``: the facility code, or an inbox message's
    unread mark). ``fields``: the other stored fields ``is_member`` and ``tag_of`` read.
    ``prepare``: run for a citizen before a build reads the collection (derived fields of
    documents stored before the list existed). ``row_fields``: the stored fields each item's row
    keeps beside its key (none: the list keeps keys only; see the module docstring); a change to
    them bumps ``row_format``, and rows of another format are read as missing. ``rows_kept``:
    how many of the newest items keep their row."""

    name: str
    model: Any
    time_field: str
    facility_field: str | None = None
    member_filter: dict[str, Any] = field(default_factory=dict)
    is_member: Callable[[dict[str, Any]], bool] = lambda document: True
    citizen_field: str = "citizen_id"
    tag_of: Callable[[dict[str, Any]], str] | None = None
    fields: tuple[str, ...] = ()
    prepare: Callable[[ObjectId], None] | None = None
    row_fields: tuple[str, ...] = ()
    row_format: int = 1
    rows_kept: int = 100  # rows of the newest items only (see the module docstring)

    def key_of(self, document: dict[str, Any]) -> bytes:
        """The key of a stored document (raw pymongo form: ``_id`` and field names as stored)."""
        if self.tag_of is not None:
            tag = self.tag_of(document)
        else:
            tag = document.get(self.facility_field, "") if self.facility_field else ""
        return key(document[self.time_field], document["_id"], tag or "")

    def row_of(self, document: dict[str, Any]) -> bytes | None:
        """The row kept beside a stored document's key (None: the list keeps keys only)."""
        if not self.row_fields:
            return None
        fields = {name: document[name] for name in self.row_fields if name in document}
        return ROW_VERSION.pack(int(document.get("version") or 0)) + bson.encode(fields)

    def projection(self) -> list[str]:
        """The stored fields :meth:`key_of`, :meth:`row_of` and ``is_member`` read."""
        names = [self.citizen_field, self.time_field, *self.fields, *self.row_fields]
        names = names + [self.facility_field] if self.facility_field else names
        return list(dict.fromkeys(names))


UNREAD = "u"  # the tag of an unread inbox message's key


def _unread_tag(document: dict[str, Any]) -> str:
    return UNREAD if document.get("read_at") is None else ""


def _backfill_prescribed_at(citizen_id: ObjectId) -> None:
    """Give the citizen's prescribing visits stored before ``Visit.prescribed_at`` existed their
    ``prescribed_at`` (once per citizen: a build runs when their lists first become readable)."""
    collection = Visit._get_collection()
    missing = collection.find({"citizen_id": citizen_id, "status": {"$ne": VOIDED},
                               "prescriptions.0": {"$exists": True}, "prescribed_at": {"$exists": False}},
                              {"started_at": 1})
    requests = [UpdateOne({"_id": d["_id"], "citizen_id": citizen_id}, {"$set": {"prescribed_at": d["started_at"]}})
                for d in missing]
    if requests:
        collection.bulk_write(requests, ordered=False)


# Every paged list of a citizen, in one table: a new list (a later record kind) adds a line here,
# and its collection's one write path reports its writes to ``Changes``.
SOURCES: dict[str, ListSource] = {source.name: source for source in (
    # the timeline's rows: what ``app.resources.me.present.timeline_entry`` shows of a visit
    ListSource("visits", Visit, "started_at", "facility_code", prepare=_backfill_prescribed_at,
               row_fields=("_id", "facility_code", "started_at", "status", "visit_type", "ended_at",
                           "department", "reason", "diagnoses", "follow_up_date", "version")),
    ListSource("immunizations", Immunization, "administered_at"),
    # prescribing visits have their own time field and index range (``Visit.prescribed_at``): the
    # visits between two prescribing ones are never in a prescription page's range
    ListSource("prescriptions", Visit, "prescribed_at",
               member_filter={"prescribed_at": {"$ne": None}},
               is_member=lambda document: document.get("prescribed_at") is not None),
    ListSource("inbox", Notification, "created_at", member_filter={"channel": "in_app"},
               is_member=lambda document: document.get("channel") == "in_app",
               tag_of=_unread_tag, fields=("channel", "read_at")),
    ListSource("access_log", AccessLogEntry, "at"),
)}


def register(source: ListSource) -> ListSource:
    """Add a list to :data:`SOURCES` (tests of the mechanism use their own)."""
    SOURCES[source.name] = source
    return source


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - EPOCH
    # whole milliseconds: what BSON stores, so a key made before an insert is the stored one's
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds // 1000 * 1000


def key(moment: datetime, item_id: ObjectId, facility: str = "") -> bytes:
    """An item's key: sortable time (microseconds, offset so that dates before 1970 sort too),
    the item's id, then the facility code (not part of the order)."""
    tag = facility.encode("ascii")
    if len(tag) > TAG_BYTES:
        raise ValueError(f"a list key's tag holds at most {TAG_BYTES} bytes: {facility!r}")
    return struct.pack(">Q", _micros(moment) + (1 << 63)) + item_id.binary + tag


def key_time(item_key: bytes) -> datetime:
    """The time a key was made from (naive UTC, as stored documents carry it)."""
    micros = struct.unpack(">Q", item_key[:TIME_BYTES])[0] - (1 << 63)
    return (EPOCH + timedelta(microseconds=micros)).replace(tzinfo=None)


def key_id(item_key: bytes) -> ObjectId:
    return ObjectId(item_key[TIME_BYTES:ORDER_BYTES])


def key_facility(item_key: bytes) -> str:
    return item_key[ORDER_BYTES:].decode("ascii")


class Changes:
    """What one unit of work added to and removed from citizens' lists, and the citizens whose
    listed documents changed without moving (``touched``: a voided visit keeps its key, but its
    cached pages are stale, so their index ``version`` changes too)."""

    def __init__(self) -> None:
        self.added: dict[ObjectId, dict[str, list[bytes]]] = defaultdict(lambda: defaultdict(list))
        self.removed: dict[ObjectId, dict[str, list[bytes]]] = defaultdict(lambda: defaultdict(list))
        self.touched: set[ObjectId] = set()
        self.rows: dict[tuple[ObjectId, str, bytes], bytes] = {}  # (citizen, list, key) -> its row
        # (citizen, list, key) -> the record version that removed it (lists that keep rows)
        self.removed_by: dict[tuple[ObjectId, str, bytes], int] = {}

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.touched)

    def add(self, citizen_id: ObjectId, list_name: str, item_key: bytes, row: bytes | None = None) -> None:
        """An item (now) under ``item_key``; ``row``: its row, in a list that keeps rows."""
        self.added[citizen_id][list_name].append(item_key)
        if row is not None:
            self.rows[(citizen_id, list_name, item_key)] = row

    def remove(self, citizen_id: ObjectId, list_name: str, item_key: bytes, version: int | None = None) -> None:
        """An item no longer under ``item_key``; ``version``: the record version that moved or
        removed it, in a list that keeps rows (an older writer's key or row is not taken back)."""
        self.removed[citizen_id][list_name].append(item_key)
        if version is not None:
            at = (citizen_id, list_name, item_key)
            self.removed_by[at] = max(version, self.removed_by.get(at, version))

    def inserted(self, collection: str, document: dict[str, Any]) -> None:
        """A document stored in ``collection``: added to each list it belongs to."""
        for source in _sources_of(collection):
            if source.is_member(document):
                self.add(document[source.citizen_field], source.name, source.key_of(document),
                         source.row_of(document))

    def replaced(self, collection: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        """A document changed (or removed: ``after`` None): its keys moved as membership, time,
        facility or citizen changed."""
        for source in _sources_of(collection):
            old = before is not None and source.is_member(before)
            new = after is not None and source.is_member(after)
            old_key = source.key_of(before) if old and before is not None else None
            new_key = source.key_of(after) if new and after is not None else None
            same_citizen = old and new and before[source.citizen_field] == after[source.citizen_field]  # type: ignore[index]
            if old_key == new_key and same_citizen:
                self.touched.add(after[source.citizen_field])  # type: ignore[index]
                if source.row_fields and after is not None and new_key is not None:  # the row changed
                    self.add(after[source.citizen_field], source.name, new_key, source.row_of(after))
                continue
            if old_key is not None and before is not None:
                version = None
                if source.row_fields:  # the version that moved it (a removal: one past the last)
                    version = (int(after.get("version") or 0) if after is not None
                               else int(before.get("version") or 0) + 1)
                self.remove(before[source.citizen_field], source.name, old_key, version)
            if new_key is not None and after is not None:
                self.add(after[source.citizen_field], source.name, new_key, source.row_of(after))

    def citizens(self) -> set[ObjectId]:
        return set(self.added) | set(self.removed) | self.touched


def _sources_of(collection: str) -> list[ListSource]:
    return [source for source in SOURCES.values() if source.model._get_collection_name() == collection]


def projection_of(collection: str) -> dict[str, int]:
    """The stored fields that decide a document's keys in every list of ``collection`` (what a
    writer reads before and after an update to call :meth:`Changes.replaced`)."""
    return {name: 1 for source in _sources_of(collection) for name in source.projection()}


def _collection() -> Any:
    return ListIndex._get_collection()


# ---------------------------------------------------------------- stored keys

class PackedKeys(Sequence[bytes]):
    """One list's keys as stored: ascending, one per item, in fixed ``SLOT_BYTES`` slots of one
    ``bytes`` value (order, tag length, tag padded). Indexing unpacks one key, so a page's binary
    search reads a few slots whatever the size of the list."""

    def __init__(self, packed: bytes) -> None:
        if len(packed) % SLOT_BYTES:
            raise ValueError("a packed key list is a whole number of slots")
        self._packed = packed

    def __len__(self) -> int:
        return len(self._packed) // SLOT_BYTES

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        start = index * SLOT_BYTES
        tag_length = self._packed[start + ORDER_BYTES]
        return self._packed[start:start + ORDER_BYTES] + self._packed[
            start + ORDER_BYTES + 1:start + ORDER_BYTES + 1 + tag_length]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (self[i] for i in range(len(self)))


def pack(keys: Iterable[bytes]) -> bytes:
    """Keys (ascending, one per item) in their stored form (see :class:`PackedKeys`)."""
    return b"".join(k[:ORDER_BYTES] + bytes([len(k) - ORDER_BYTES]) + k[ORDER_BYTES:].ljust(TAG_BYTES, b"\0")
                    for k in keys)


def sorted_keys(keys: Iterable[bytes]) -> Sequence[bytes]:
    """``keys`` ascending and one per item (packed keys already are)."""
    if isinstance(keys, PackedKeys):
        return keys
    return sorted(_distinct([bytes(k) for k in keys]))


def stored_keys(value: Any) -> Sequence[bytes]:
    """A list as an index document holds it: packed (``bytes``), or an array of keys written
    before keys were packed (read as well: the next write to the list packs it), or absent."""
    if value is None:
        return []
    if isinstance(value, bytes):
        return PackedKeys(value)
    return sorted_keys(value)


def merged(stored: Sequence[bytes], added: list[bytes], removed: list[bytes], fill_only: bool = False) -> bytes:
    """A list's new packed value: ``stored`` without ``removed``, with ``added`` (``fill_only``:
    only the items it does not hold yet), one key per item (:func:`_distinct`)."""
    gone = set(removed)
    keys = [k for k in stored if k not in gone]
    if fill_only:
        held = {k[TIME_BYTES:ORDER_BYTES] for k in keys}
        added = [k for k in added if k[TIME_BYTES:ORDER_BYTES] not in held]
    return pack(sorted(_distinct(keys + added)))


class PackedRows:
    """One list's rows as stored, in the order of its keys: the row format (2 bytes), their count
    (4 bytes), ``count + 1`` offsets (4 bytes each), then the rows; an empty row is a missing one.
    Reading a row slices it out, so a page decodes its own rows only."""

    HEADER = struct.Struct(">HI")

    def __init__(self, packed: bytes, count: int) -> None:
        self._packed = packed
        self._count = count
        self._data = self.HEADER.size + 4 * (count + 1)

    @classmethod
    def stored(cls, value: Any, count: int, row_format: int) -> PackedRows | None:
        """The rows of a list of ``count`` keys as an index document holds them; None when it holds
        none of this format (or not one per key)."""
        if not isinstance(value, bytes) or len(value) < cls.HEADER.size + 4 * (count + 1):
            return None
        rows = cls(value, count)
        if cls.HEADER.unpack_from(value) != (row_format, count) or rows._offset(count) != len(value) - rows._data:
            return None
        return rows

    def _offset(self, position: int) -> int:
        return int(struct.unpack_from(">I", self._packed, self.HEADER.size + 4 * position)[0])

    def at(self, position: int) -> bytes | None:
        """The row of the key at ``position`` (None: missing)."""
        start, end = self._offset(position), self._offset(position + 1)
        return self._packed[self._data + start:self._data + end] if end > start else None


def pack_rows(rows: Sequence[bytes | None], row_format: int) -> bytes:
    """Rows (one per key, in the keys' order; None: missing) in their stored form (:class:`PackedRows`)."""
    offsets = [0]
    for row in rows:
        offsets.append(offsets[-1] + len(row or b""))
    return (PackedRows.HEADER.pack(row_format, len(rows)) + struct.pack(f">{len(offsets)}I", *offsets)
            + b"".join(row or b"" for row in rows))


def row_version(row: bytes | None) -> int:
    """The record version a row was made from (``NO_ROW``: no row)."""
    return NO_ROW if row is None else int(ROW_VERSION.unpack_from(row)[0])


# A removed item's record version is kept this long beside the list (``PackedGone``), so that a
# writer that read the record before it was moved or removed cannot put it back: far longer than
# a unit of work takes from its writes to its index write (``CONTENTION_SECONDS`` and a batch).
GONE_SECONDS = 3600
GONE_ENTRY = struct.Struct(">12sqq")  # item id, the version that removed it, when (epoch seconds)


def stored_gone(value: Any, now: float) -> dict[bytes, tuple[int, int]]:
    """Item id -> (the version that removed it, when), of those removed within ``GONE_SECONDS``."""
    if not isinstance(value, bytes) or len(value) % GONE_ENTRY.size:
        return {}
    return {item: (version, at) for item, version, at in GONE_ENTRY.iter_unpack(value) if now - at < GONE_SECONDS}


def row_shown(row: bytes | None) -> bool:
    """Whether ``row`` holds fields to show (else it is missing, or only its item's version)."""
    return row is not None and len(row) > ROW_VERSION.size


@dataclass(frozen=True)
class MergedList:
    """A list that keeps rows, as merged: its packed keys, rows and removed items."""

    keys: bytes
    rows: bytes
    gone: bytes


def merged_with_rows(stored: Sequence[bytes], stored_rows: PackedRows | None, gone_value: Any,
                     added: list[bytes], removed: list[bytes], rows: Callable[[bytes], bytes | None],
                     removed_by: Callable[[bytes], int | None], row_format: int, *, rows_kept: int,
                     now: float, fill_only: bool = False, rows_only: bool = False) -> MergedList:
    """A list that keeps rows, merged by record version: every item's row carries the version of
    the record it was made from (beyond the ``rows_kept`` newest, the version alone), and a
    removal the version that moved or removed it (kept ``GONE_SECONDS``). So two writers of one
    record may reach the index in either order and the newer stays: an added key replaces the
    held one unless that is of a newer version; a removal at version v removes the item held at
    an older version (whatever its key: at v it is no longer there) or at v under that key; and
    an item removed at version v is not added back by an older version.

    ``fill_only`` (a build) adds only items not held; ``rows_only`` (a page fetched from the
    collection) only fills in the rows of keys held without one. ``rows``/``removed_by``: the
    row written with each added key (None: none given) and the version of each removal."""
    gone = stored_gone(gone_value, now)
    items: dict[bytes, tuple[bytes, bytes | None]] = {}  # item id -> (key, row)
    for position, item_key in enumerate(stored):
        items[item_key[TIME_BYTES:ORDER_BYTES]] = (item_key, stored_rows.at(position) if stored_rows else None)
    for item_key in removed:
        item, version = item_key[TIME_BYTES:ORDER_BYTES], removed_by(item_key)
        held = items.get(item)
        if held is not None and _removes(item_key, version, held):
            del items[item]
        if version is not None and version > gone.get(item, (NO_ROW, 0))[0]:
            gone[item] = (version, int(now))
    for item_key in added:
        item, row = item_key[TIME_BYTES:ORDER_BYTES], rows(item_key)
        held = items.get(item)
        if row is not None and row_version(row) < gone.get(item, (NO_ROW, 0))[0]:
            continue  # a newer version moved or removed it
        if held is None:
            if not rows_only:
                items[item] = (item_key, row)
        elif fill_only or rows_only:  # only a missing row of the same key, from no older a version
            if held[0] == item_key and not row_shown(held[1]) and row is not None \
                    and row_version(row) >= row_version(held[1]):
                items[item] = (item_key, row)
        elif row is None or row_version(row) >= row_version(held[1]):
            items[item] = (item_key, row)
    ordered = sorted(items.values(), key=lambda entry: entry[0])
    first_kept = max(0, len(ordered) - rows_kept)
    kept = [row if position >= first_kept or row is None else row[:ROW_VERSION.size]
            for position, (_, row) in enumerate(ordered)]
    return MergedList(pack(k for k, _ in ordered), pack_rows(kept, row_format), b"".join(
        GONE_ENTRY.pack(item, version, at) for item, (version, at) in gone.items()))


def _removes(item_key: bytes, version: int | None, held: tuple[bytes, bytes | None]) -> bool:
    """Whether a removal of ``item_key`` at record ``version`` (None: a list without versions)
    removes the held (key, row) of its item: the same key, unless held at a newer version; any
    key held at an older version (at ``version`` the item is no longer there)."""
    if version is None:
        return held[0] == item_key
    held_version = row_version(held[1])
    return held_version < version or held[0] == item_key and held_version <= version


# ---------------------------------------------------------------- writing

class ListIndexContention(RuntimeError):
    """The index document of one citizen kept changing under this write (see :func:`apply`)."""


def apply(changes: Changes, *, not_indexed: Iterable[ObjectId] = (), read_at: datetime | None = None,
          fill_only: bool = False, rows_only: bool = False) -> None:
    """Write ``changes`` to the index documents that exist (one read and one write for all the
    citizens, again for those another writer changed meanwhile).

    ``not_indexed`` are citizens the caller read as not yet readable (no index: pending accounts,
    by the thousand in a bulk upload) at ``read_at``: they are skipped, except those whose index
    was built since then (:func:`built_since`), which are updated like the others. ``fill_only``
    (a build): add only items a list does not hold yet. ``rows_only`` (:func:`fill_rows`): only
    fill in missing rows of items a list holds under the same key.
    """
    if not changes:
        return
    skipped = set(not_indexed) & changes.citizens()
    if skipped:
        skipped -= built_since(skipped, read_at)
    pending = changes.citizens() - skipped
    give_up = time.monotonic() + CONTENTION_SECONDS
    attempt = 0
    while pending:
        pending = _write_lists(changes, pending, fill_only, rows_only)
        if pending:
            if time.monotonic() > give_up:
                raise ListIndexContention(f"{len(pending)} list index documents kept changing under this write")
            attempt += 1
            time.sleep(random.uniform(0, 0.002 * min(attempt, 10)))  # apart from the writer it lost to


def _write_lists(changes: Changes, citizens: set[ObjectId], fill_only: bool, rows_only: bool) -> set[ObjectId]:
    """One read-merge-write of ``citizens``' index documents; returns those another writer changed
    between the read and the write (the write is conditional on the version read)."""
    names = {name for citizen_id in citizens
             for name in (*changes.added.get(citizen_id, {}), *changes.removed.get(citizen_id, {}))}
    with_rows = {name for name in names if name in SOURCES and SOURCES[name].row_fields}
    projection = {"version": 1, **{f"lists.{name}": 1 for name in names},
                  **{f"rows.{name}": 1 for name in with_rows}, **{f"gone.{name}": 1 for name in with_rows}}
    now = time.time()
    documents = [document for chunk in in_chunks(list(citizens))
                 for document in _collection().find({"_id": {"$in": chunk}}, projection)]
    requests: list[UpdateOne] = []
    written: list[ObjectId] = []  # the citizen of each request
    for document in documents:
        citizen_id = document["_id"]
        added, removed = changes.added.get(citizen_id, {}), changes.removed.get(citizen_id, {})
        lists, stored_rows, removals = document.get("lists", {}), document.get("rows", {}), document.get("gone", {})
        update: dict[str, Any] = {"$inc": {"version": 1}}
        values: dict[str, Binary] = {}
        for name in {*added, *removed}:
            keys = stored_keys(lists.get(name))
            if name in with_rows:
                source = SOURCES[name]
                merged_list = merged_with_rows(
                    keys, PackedRows.stored(stored_rows.get(name), len(keys), source.row_format),
                    removals.get(name), added.get(name, []), removed.get(name, []),
                    lambda item_key, at=(citizen_id, name): changes.rows.get((*at, item_key)),
                    lambda item_key, at=(citizen_id, name): changes.removed_by.get((*at, item_key)),
                    source.row_format, rows_kept=source.rows_kept, now=now, fill_only=fill_only,
                    rows_only=rows_only)
                if rows_only and merged_list.rows == stored_rows.get(name):
                    continue  # nothing filled in: no write
                values.update({f"lists.{name}": Binary(merged_list.keys), f"rows.{name}": Binary(merged_list.rows),
                               f"gone.{name}": Binary(merged_list.gone)})
            elif not rows_only:
                values[f"lists.{name}"] = Binary(merged(keys, added.get(name, []), removed.get(name, []), fill_only))
        if rows_only and not values:
            continue
        if values:
            update["$set"] = values
        # upsert: a document whose version moved is a duplicate _id, reported by its position
        condition = {"version": document["version"]} if "version" in document else {"version": {"$exists": False}}
        requests.append(UpdateOne({"_id": citizen_id, **condition}, update, upsert=True))
        written.append(citizen_id)
    if not requests:
        return set()
    try:
        result = _collection().bulk_write(requests, ordered=False)
        lost: set[ObjectId] = set()
        upserted = list((result.upserted_ids or {}).values())
    except BulkWriteError as error:
        if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
            raise
        lost = {written[e["index"]] for e in error.details["writeErrors"]}
        upserted = [u["_id"] for u in error.details.get("upserted", [])]
    if upserted:  # removed between the read and the write: it stays removed
        _collection().delete_many({"_id": {"$in": upserted}, "built_at": {"$exists": False}})
    return lost


def built_since(citizen_ids: set[ObjectId], moment: datetime | None) -> set[ObjectId]:
    """Those of ``citizen_ids`` whose index was built after ``moment`` (less the clock skew)."""
    if moment is None:
        return set(citizen_ids)
    since = moment - CLOCK_SKEW
    recent = RecentBuild._get_collection().find({"at": {"$gte": since}}, {"_id": 1})
    return {document["_id"] for document in recent} & citizen_ids


def build(citizen_ids: Iterable[ObjectId], now: datetime) -> None:
    """Make these citizens' lists readable: create each index document, recorded as a recent
    build *before* the collections are read (see the module docstring), then add every item the
    index does not hold yet."""
    targets = list(dict.fromkeys(citizen_ids))
    if not targets:
        return
    RecentBuild._get_collection().bulk_write(
        [UpdateOne({"_id": c}, {"$set": {"at": now}}, upsert=True) for c in targets], ordered=False)
    _collection().bulk_write(
        [UpdateOne({"_id": c}, {"$setOnInsert": {"built_at": now, "lists": {}}, "$inc": {"version": 1}},
                   upsert=True) for c in targets], ordered=False)
    for source in SOURCES.values():
        if source.prepare is not None:
            for citizen_id in targets:
                source.prepare(citizen_id)
    changes = Changes()
    for source in SOURCES.values():
        projection = source.projection()
        for citizen_id in targets:
            for document in source.model._get_collection().find(
                    {source.citizen_field: citizen_id, **source.member_filter}, projection):
                if source.is_member(document):
                    changes.add(citizen_id, source.name, source.key_of(document), source.row_of(document))
    for citizen_id in targets:  # a citizen with no items yet still gets every list
        for name in SOURCES:
            changes.added[citizen_id].setdefault(name, [])
    apply(changes, fill_only=True)


@dataclass(frozen=True)
class Window:
    """The keys of one page (newest first), the next page's cursor, and the index's version."""

    keys: list[bytes]
    next_cursor: dict[str, str] | None
    version: int
    edge_ties: int = 0  # items not on the page sharing its newest or oldest time (any facility)
    positions: tuple[int, ...] = ()  # each key's position in the list it was cut from


def cursor_key(cursor: dict[str, str] | None) -> bytes | None:
    """The order bytes of a list cursor ``{"t": ISO time, "id": item id}``; a cursor this API
    did not make is :class:`InvalidCursor` (422)."""
    if not cursor:
        return None
    try:
        moment, item_id = datetime.fromisoformat(cursor["t"]), ObjectId(cursor["id"])
        return key(moment, item_id)[:ORDER_BYTES]
    except (KeyError, ValueError, TypeError, InvalidId, OverflowError, struct.error):
        raise InvalidCursor from None


@dataclass(frozen=True)
class StoredList:
    """One list of a citizen's index document as read: keys (ascending, one per item), rows
    (lists that keep them; None: none of the current format), the index version and counters."""

    source: ListSource
    keys: Sequence[bytes]
    rows: PackedRows | None
    version: int
    counters: dict[str, Any]

    def keeps_rows_of(self, page: Window) -> bool:
        """Whether the page's items (a window of these keys) are among those that keep their rows."""
        return not page.positions or page.positions[-1] >= len(self.keys) - self.source.rows_kept

    def rows_of(self, page: Window) -> list[dict[str, Any]] | None:
        """The stored fields of the page's items (a window of these keys: ``source.row_fields``),
        in the page's order, as the collection's documents would give them; None when any of them
        is missing."""
        if self.rows is None:
            return None
        codec = self.source.model._get_collection().codec_options
        found = []
        for item_key, position in zip(page.keys, page.positions, strict=True):
            row = self.rows.at(position)
            if not row_shown(row):
                return None
            fields = bson.decode(row[ROW_VERSION.size:], codec_options=codec)  # type: ignore[index]
            if fields.get("_id") != key_id(item_key):  # not this key's (rows written apart from keys)
                return None
            found.append(fields)
        return found


def read_list(citizen_id: ObjectId, list_name: str, now: datetime, *, with_rows: bool = True) -> StoredList:
    """The citizen's list ``list_name`` (with its rows, if it keeps them and ``with_rows``); an
    index that does not exist yet (a citizen readable before indexes existed) is built first."""
    projection = _list_projection({list_name}, with_rows)
    document = _collection().find_one({"_id": citizen_id}, projection)
    if document is None:
        build([citizen_id], now)
        document = _collection().find_one({"_id": citizen_id}, projection) or {}
    return _stored_list(SOURCES[list_name], document, with_rows)


def read_lists(wanted: list[tuple[ObjectId, str, datetime]]) -> list[StoredList | Failed]:
    """:func:`read_list` of each ``(citizen, list, now)`` with rows, in one query for all (the
    app's group commit of concurrent page requests: ``timeline.list_reads``); an index that had
    to be built and could not be fails its own request only."""
    projection = _list_projection({name for _, name, _ in wanted}, True)
    found = {document["_id"]: document for document in _collection().find(
        {"_id": {"$in": list({citizen_id for citizen_id, _, _ in wanted})}}, projection)}
    results: list[StoredList | Failed] = []
    for citizen_id, name, now in wanted:
        if citizen_id in found:
            results.append(_stored_list(SOURCES[name], found[citizen_id], True))
            continue
        try:
            results.append(read_list(citizen_id, name, now))
        except Exception as error:  # noqa: BLE001 (handed to its own caller by the group commit)
            results.append(Failed(error))
    return results


def _list_projection(names: set[str], with_rows: bool) -> dict[str, int]:
    return {"version": 1, "counters": 1, **{f"lists.{name}": 1 for name in names},
            **{f"rows.{name}": 1 for name in names if with_rows and SOURCES[name].row_fields}}


def _stored_list(source: ListSource, document: dict[str, Any], with_rows: bool) -> StoredList:
    keys = stored_keys(document.get("lists", {}).get(source.name))
    rows = None
    if with_rows and source.row_fields:
        rows = PackedRows.stored(document.get("rows", {}).get(source.name), len(keys), source.row_format)
    return StoredList(source, keys, rows, int(document.get("version", 0)), document.get("counters", {}))


def read_index(citizen_id: ObjectId, list_name: str, now: datetime
               ) -> tuple[Sequence[bytes], int, dict[str, Any]]:
    """The citizen's keys of one list (ascending, one per item), the index version and counters
    (:func:`read_list` without rows)."""
    stored = read_list(citizen_id, list_name, now, with_rows=False)
    return stored.keys, stored.version, stored.counters


def fill_rows(citizen_id: ObjectId, list_name: str, documents: Iterable[dict[str, Any]]) -> None:
    """Fill in the missing rows of these stored documents (a page fetched from the collection
    because its rows were missing): only rows of keys the list holds, unchanged, so an item a
    writer removed or moved meanwhile stays as the writer left it."""
    source = SOURCES[list_name]
    changes = Changes()
    for document in documents:
        changes.add(citizen_id, list_name, source.key_of(document), source.row_of(document))
    apply(changes, rows_only=True)


def _distinct(keys: list[bytes]) -> list[bytes]:
    """One key per item: a list written before keys were packed could hold both an item's old
    and new key (a writer and a build that overlapped), and a build may find an item a writer
    moved meanwhile; the newest order wins, and of one order the shorter tag (a message read,
    never unread again)."""
    newest: dict[bytes, bytes] = {}
    for k in keys:
        item = k[TIME_BYTES:ORDER_BYTES]
        kept = newest.get(item)
        if kept is None or (k[:ORDER_BYTES], -len(k)) > (kept[:ORDER_BYTES], -len(kept)):
            newest[item] = k
    return list(newest.values()) if len(newest) != len(keys) else keys


def tagged(keys: Iterable[bytes], tag: str) -> int:
    """How many distinct items of ``keys`` carry ``tag`` (the inbox's unread count: ``UNREAD``)."""
    return sum(1 for k in sorted_keys(keys) if key_facility(k) == tag)


def versions(citizen_ids: list[ObjectId]) -> list[int | None]:
    """The index ``version`` of each of ``citizen_ids`` (None: no index yet), in one query (for
    the app's group commit of concurrent page requests: ``timeline.index_versions``)."""
    found = {document["_id"]: int(document.get("version", 0))
             for document in _collection().find({"_id": {"$in": list(set(citizen_ids))}}, {"version": 1})}
    return [found.get(citizen_id) for citizen_id in citizen_ids]


def read_version(citizen_id: ObjectId, now: datetime) -> int:
    """The citizen's index ``version`` alone (what keys a cached page); built first if missing."""
    document = _collection().find_one({"_id": citizen_id}, {"version": 1})
    if document is None:
        build([citizen_id], now)
        document = _collection().find_one({"_id": citizen_id}, {"version": 1}) or {}
    return int(document.get("version", 0))


def _order(item_key: bytes) -> bytes:
    return item_key[:ORDER_BYTES]


def _time(item_key: bytes) -> bytes:
    return item_key[:TIME_BYTES]


def window(keys: Iterable[bytes], version: int, cursor: dict[str, str] | None, limit: int, *,
           start: datetime | None = None, end: datetime | None = None, facility: str | None = None) -> Window:
    """The page after ``cursor`` among ``keys``, within ``start`` (inclusive) and ``end`` (exclusive)
    and of ``facility`` when given: binary searches in the sorted keys, then a walk down from the
    newest that stops after ``limit + 1`` (further with a facility filter, past other facilities)."""
    ordered = sorted_keys(keys)
    after = cursor_key(cursor)
    top = len(ordered)
    if after is not None:
        top = bisect_left(ordered, after, key=_order)
    if end is not None:
        top = min(top, bisect_left(ordered, key(end, ObjectId(b"\x00" * 12))[:ORDER_BYTES], key=_order))
    bottom = bisect_left(ordered, key(start, ObjectId(b"\x00" * 12))[:ORDER_BYTES], key=_order) if start else 0
    chosen: list[bytes] = []
    positions: list[int] = []
    position = top - 1
    while position >= bottom and len(chosen) <= limit:
        candidate = ordered[position]
        if facility is None or key_facility(candidate) == facility:
            chosen.append(candidate)
            positions.append(position)
        position -= 1
    page = chosen[:limit]
    next_cursor = None
    if len(chosen) > limit:
        last = page[-1]
        next_cursor = {"t": key_time(last).replace(tzinfo=UTC).isoformat(), "id": str(key_id(last))}
    return Window(page, next_cursor, version, _edge_ties(ordered, page), tuple(positions[:limit]))


def _edge_ties(ordered: Sequence[bytes], page: list[bytes]) -> int:
    """How many items of ``ordered`` off ``page`` a range from its oldest to its newest time matches."""
    if not page:
        return 0
    on_page = set(page)
    ties = 0
    for moment in dict.fromkeys((_time(page[0]), _time(page[-1]))):
        low, high = bisect_left(ordered, moment, key=_time), bisect_right(ordered, moment, key=_time)
        ties += sum(1 for position in range(low, high) if ordered[position] not in on_page)
    return ties


def range_filters(source: ListSource, citizen_id: ObjectId, page: Window) -> list[dict[str, Any]]:
    """The filters that find a page's documents (none: no items): index ranges of the citizen.

    Usually one: ``{citizen, <time>: oldest..newest}``, which also matches the items sharing the
    page's end times that are not on it (``page.edge_ties``). When those are many (a bulk upload
    notifies hundreds of records at one instant), the ends are asked for by time and id instead:
    ``{<time>: t, _id: lowest..highest}`` on the list's ``(citizen, time, _id)`` index, plus the
    times strictly between (at most three ranges, each holding only the page's items).
    """
    if not page.keys:
        return []
    base: dict[str, Any] = {source.citizen_field: citizen_id, **source.member_filter}
    facilities = {key_facility(k) for k in page.keys}
    if source.facility_field and len(facilities) == 1:
        base[source.facility_field] = facilities.pop()
    newest, oldest = page.keys[0][:TIME_BYTES], page.keys[-1][:TIME_BYTES]
    if newest != oldest and page.edge_ties <= EDGE_TIES:
        return [{**base, source.time_field: inclusive_time_range(key_time(page.keys[-1]), key_time(page.keys[0]))}]
    filters = []
    for moment in dict.fromkeys((newest, oldest)):
        ids = [key_id(k) for k in page.keys if k[:TIME_BYTES] == moment]
        filters.append({**base, source.time_field: key_time(moment + bytes(ID_BYTES)),
                        "_id": {"$gte": min(ids), "$lte": max(ids)}})
    if any(oldest < k[:TIME_BYTES] < newest for k in page.keys):
        filters.append({**base, source.time_field: {"$gt": key_time(page.keys[-1]), "$lt": key_time(page.keys[0])}})
    return filters


def in_page_order(page: Window, items: Iterable[Any], id_of: Callable[[Any], ObjectId] = lambda item: item.id
                  ) -> list[Any]:
    """The fetched items that are on the page, in the page's order (items sharing the page's end
    times but not on it are dropped; a key whose item is gone is skipped)."""
    position = {key_id(k): n for n, k in enumerate(page.keys)}
    on_page = [item for item in items if id_of(item) in position]
    return sorted(on_page, key=lambda item: position[id_of(item)])
