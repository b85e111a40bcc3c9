"""The list index: key order, the changes a write makes, and build/apply on the embedded server."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from app.clock import utcnow
from app.models.list_index import ListIndex
from app.models.records import Visit
from app.services import list_index, timeline
from app.services.ingest.writes import RecordWrites
from app.services.list_index import Changes, ListSource
from app.services.paging import InvalidCursor
from tests.helpers import system_context

# BSON keeps whole milliseconds, and so do keys
moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)).map(
    lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))


@given(moments, moments, st.binary(min_size=12, max_size=12), st.binary(min_size=12, max_size=12))
def test_key_order_is_time_then_id(first: datetime, second: datetime, id_a: bytes, id_b: bytes) -> None:
    a, b = list_index.key(first, ObjectId(id_a), "01001"), list_index.key(second, ObjectId(id_b))
    assert (a[:20] < b[:20]) == ((first, id_a) < (second, id_b))
    assert list_index.key_time(a) == first
    assert list_index.key_id(a) == ObjectId(id_a)
    assert list_index.key_facility(a) == "01001"


def _visit(citizen: ObjectId, moment: datetime, facility: str = "01001") -> dict:
    return {"_id": ObjectId(), "citizen_id": citizen, "started_at": moment, "facility_code": facility}


SOURCE = ListSource("test_visits", Visit, "started_at", "facility_code")


def test_a_correction_moves_the_key() -> None:
    citizen, other = ObjectId(), ObjectId()
    before = _visit(citizen, datetime(2026, 1, 1))
    list_index.register(SOURCE)
    try:
        changes = Changes()
        changes.replaced("visits", before, {**before, "started_at": datetime(2026, 1, 2)})
        assert changes.removed[citizen]["test_visits"] == [SOURCE.key_of(before)]
        assert list_index.key_time(changes.added[citizen]["test_visits"][0]) == datetime(2026, 1, 2)
        moved = Changes()
        moved.replaced("visits", before, {**before, "citizen_id": other})
        assert set(moved.removed) == {citizen} and set(moved.added) == {other}
        unchanged = Changes()
        unchanged.replaced("visits", before, dict(before))
        assert "test_visits" not in unchanged.added.get(citizen, {}) and not unchanged.removed
        assert unchanged.touched == {citizen}  # no key moved, but its cached pages are stale
        # the timeline keeps rows: its unchanged key comes again with the row written now
        again = unchanged.added[citizen]["visits"]
        assert again == [list_index.SOURCES["visits"].key_of(before)]
        assert unchanged.rows[(citizen, "visits", again[0])]
    finally:
        list_index.SOURCES.pop("test_visits")


def test_build_then_apply_then_page(app: Flask) -> None:
    citizen, pending = ObjectId(), ObjectId()
    base = datetime(2026, 1, 1)
    stored = [_visit(citizen, base + timedelta(days=n), "01001" if n % 2 else "79002") for n in range(30)]
    Visit._get_collection().insert_many([{**doc, "source_id": str(doc["_id"])} for doc in stored])
    list_index.build([citizen], utcnow())
    keys, version, _ = list_index.read_index(citizen, "visits", utcnow())
    assert len(keys) == 30 and version >= 1

    later = _visit(citizen, base + timedelta(days=40))
    changes = Changes()
    changes.inserted("visits", later)
    changes.inserted("visits", _visit(pending, base))
    read_at = utcnow()
    list_index.apply(changes, not_indexed=[pending], read_at=read_at)
    keys, newer, _ = list_index.read_index(citizen, "visits", utcnow())
    assert len(keys) == 31 and newer > version
    assert ListIndex.objects(id=pending).first() is None  # skipped: not readable, not built since

    first = list_index.window(keys, newer, None, 20)
    assert list_index.key_id(first.keys[0]) == later["_id"] and first.next_cursor is not None
    second = list_index.window(keys, newer, first.next_cursor, 20)
    assert len(second.keys) == 11 and second.next_cursor is None
    assert not set(first.keys) & set(second.keys)
    by_facility = list_index.window(keys, newer, None, 50, facility="79002")
    assert len(by_facility.keys) == 15
    [query] = list_index.range_filters(list_index.SOURCES["visits"], citizen, second)
    found = list(Visit._get_collection().find(query))
    assert len(found) == 11
    assert [d["_id"] for d in list_index.in_page_order(second, found, lambda d: d["_id"])] == [
        list_index.key_id(k) for k in second.keys]

    # a removal and a re-add in one unit (a corrected time) both land
    moved = Changes()
    moved.replaced("visits", later, {**later, "started_at": base - timedelta(days=1)})
    list_index.apply(moved)
    keys, _, _ = list_index.read_index(citizen, "visits", utcnow())
    assert len(keys) == 31 and min(keys)[:20] == list_index.key(base - timedelta(days=1), later["_id"])[:20]


def test_a_batch_that_began_before_a_build_adds_its_items(app: Flask) -> None:
    citizen = ObjectId()
    read_at = utcnow()  # the batch read the citizen as pending here ...
    list_index.build([citizen], read_at + timedelta(seconds=1))  # ... then they activated
    changes = Changes()
    changes.inserted("visits", _visit(citizen, datetime(2026, 3, 1, tzinfo=UTC).replace(tzinfo=None)))
    list_index.apply(changes, not_indexed=[citizen], read_at=read_at)
    keys, _, _ = list_index.read_index(citizen, "visits", utcnow())
    assert len(keys) == 1


def test_a_page_across_a_large_tie_asks_for_its_ends_by_time_and_id() -> None:
    citizen, base = ObjectId(), datetime(2026, 1, 1)
    tied = [list_index.key(base, ObjectId()) for _ in range(30)]
    others = [list_index.key(base + timedelta(days=n), ObjectId()) for n in range(1, 4)]
    keys = tied + others
    source = list_index.SOURCES["immunizations"]
    page = list_index.window(keys, 1, None, 5)  # three days, then two of the thirty tied
    assert page.edge_ties == 28
    filters = list_index.range_filters(source, citizen, page)
    assert len(filters) == 3
    newest, oldest, between = filters
    assert newest["administered_at"] == base + timedelta(days=3) and newest["_id"]["$gte"] == newest["_id"]["$lte"]
    assert oldest["administered_at"] == base
    assert {oldest["_id"]["$gte"], oldest["_id"]["$lte"]} == {list_index.key_id(k) for k in page.keys[-2:]}
    assert between["administered_at"] == {"$gt": base, "$lt": base + timedelta(days=3)}
    inside = list_index.window(keys, 1, page.next_cursor, 5)  # all five at one instant: one range
    [only] = list_index.range_filters(source, citizen, inside)
    assert only["administered_at"] == base and set(only["_id"]) == {"$gte", "$lte"}
    few = list_index.window(others + tied[:2], 1, None, 4)  # one item off the page shares its end
    assert few.edge_ties == 1 and len(list_index.range_filters(source, citizen, few)) == 1
    assert list_index.range_filters(source, citizen, list_index.window([], 1, None, 5)) == []


def test_an_item_with_two_keys_shows_once() -> None:
    item, moment = ObjectId(), datetime(2026, 1, 1)
    unread, read = list_index.key(moment, item, list_index.UNREAD), list_index.key(moment, item)
    older = list_index.key(moment - timedelta(days=1), item)
    page = list_index.window([unread, read, older], 1, None, 10)
    assert page.keys == [read]  # the newest time; of one time, the message read
    assert list_index.tagged([unread, read], list_index.UNREAD) == 0
    assert list_index.tagged([unread], list_index.UNREAD) == 1


@pytest.mark.parametrize("cursor", [{"t": "yesterday", "id": str(ObjectId())}, {"t": "2026-01-01T00:00:00"},
                                    {"t": "2026-01-01T00:00:00", "id": "not-an-id"}, {"t": "9999-12-31", "id": 5}])
def test_a_cursor_this_api_did_not_make_is_refused(cursor) -> None:
    with pytest.raises(InvalidCursor):
        list_index.window([], 1, cursor, 5)


def test_a_change_that_moves_no_key_still_changes_the_version(app: Flask) -> None:
    citizen = ObjectId()
    list_index.build([citizen], utcnow())
    _, version, _ = list_index.read_index(citizen, "immunizations", utcnow())
    record = {"_id": ObjectId(), "citizen_id": citizen, "administered_at": datetime(2026, 1, 1)}
    changes = Changes()
    changes.replaced("immunizations", record, {**record, "status": "entered-in-error"})
    list_index.apply(changes)
    keys, newer, _ = list_index.read_index(citizen, "immunizations", utcnow())
    assert newer == version + 1 and list(keys) == []  # (the record was never added: only the version moved)


def test_a_build_backfills_prescribed_at_and_lists_only_prescribing_visits(app: Flask) -> None:
    citizen = ObjectId()
    moment = datetime(2026, 2, 1)
    shapes = [("final", [{"code": "a"}]), ("entered-in-error", [{"code": "b"}]), ("final", []),
              ("final", [{"code": "c"}])]
    stored = [{**_visit(citizen, moment + timedelta(days=n)), "source_id": f"B{n}", "status": status,
               "prescriptions": prescriptions} for n, (status, prescriptions) in enumerate(shapes)]
    Visit._get_collection().insert_many(stored)  # as stored before Visit.prescribed_at existed
    keys, _, _ = list_index.read_index(citizen, "prescriptions", utcnow())  # built on first read
    assert sorted(list_index.key_id(k) for k in keys) == sorted([stored[0]["_id"], stored[3]["_id"]])
    assert Visit.objects(id=stored[3]["_id"]).first().prescribed_at == (moment + timedelta(days=3)).replace(tzinfo=UTC)
    assert Visit.objects(id=stored[1]["_id"]).first().prescribed_at is None


def test_record_writes_add_to_a_citizen_who_activated_during_the_batch(app: Flask) -> None:
    pending, never = ObjectId(), ObjectId()
    writes = RecordWrites(not_active=[pending, never], citizens_read_at=time.monotonic() - 1)
    list_index.build([pending], utcnow())  # activated after the batch read them as pending
    visit = {**_visit(pending, datetime(2026, 4, 1)), "source_id": "MID"}
    writes.insert(Visit, [visit, {**_visit(never, datetime(2026, 4, 1)), "source_id": "NEVER"}])
    writes.flush()
    keys, _, _ = list_index.read_index(pending, "visits", utcnow())
    assert [list_index.key_id(k) for k in keys] == [visit["_id"]]
    assert ListIndex.objects(id=never).first() is None  # still pending: no index to keep


def test_a_second_build_adds_only_what_is_new(app: Flask) -> None:
    citizen = ObjectId()
    first = {**_visit(citizen, datetime(2026, 5, 1)), "source_id": "R1"}
    Visit._get_collection().insert_one(first)
    list_index.build([citizen], utcnow())
    second = {**_visit(citizen, datetime(2026, 5, 2)), "source_id": "R2"}
    Visit._get_collection().insert_one(second)  # (written while the index was not kept: a re-activation)
    list_index.build([citizen], utcnow())
    keys, _, _ = list_index.read_index(citizen, "visits", utcnow())
    assert sorted(list_index.key_id(k) for k in keys) == sorted([first["_id"], second["_id"]])


def test_the_version_alone_builds_a_missing_index_too(app: Flask) -> None:
    citizen = ObjectId()
    Visit._get_collection().insert_one({**_visit(citizen, datetime(2026, 5, 1)), "source_id": "V1"})
    assert list_index.read_version(citizen, utcnow()) >= 1  # a citizen active before indexes existed
    keys, version, _ = list_index.read_index(citizen, "visits", utcnow())
    assert len(keys) == 1 and version == list_index.read_version(citizen, utcnow())


def test_the_apps_recent_index_versions_are_forgotten_on_its_writes(app: Flask) -> None:
    versions = app.extensions["hoso"].index_versions
    citizen = ObjectId()
    assert versions.get(citizen) is None  # no index yet (the timeline then builds it)
    list_index.build([citizen], utcnow())
    first = versions.get(citizen)
    assert first is not None and versions.get(citizen) == first
    changes = Changes()
    changes.touched.add(citizen)
    list_index.apply(changes)  # a write to list indexes on this app's connection
    assert versions.get(citizen) == first + 1


# --- packed keys: the stored form, documents written before it, and writers racing -------------

key_lists = st.lists(st.tuples(moments, st.binary(min_size=12, max_size=12),
                               st.sampled_from(["", list_index.UNREAD, "01001", "79001"])), max_size=40)


@given(key_lists)
def test_packed_keys_read_back_sorted_one_per_item(entries) -> None:
    keys = [list_index.key(moment, ObjectId(raw), tag) for moment, raw, tag in entries]
    packed = list_index.PackedKeys(list_index.merged([], keys, []))
    expected = list_index.sorted_keys(keys)
    assert list(packed) == list(expected) and len(packed) == len(expected)
    assert len({list_index.key_id(k) for k in packed}) == len(packed)
    assert all(packed[n][:20] < packed[n + 1][:20] for n in range(len(packed) - 1))
    if keys:
        gone = keys[0]
        assert gone not in list_index.PackedKeys(list_index.merged(packed, [], [gone]))


def test_a_tag_that_does_not_fit_a_slot_is_refused() -> None:
    with pytest.raises(ValueError):
        list_index.key(datetime(2026, 1, 1), ObjectId(), "x" * (list_index.TAG_BYTES + 1))
    with pytest.raises(ValueError):
        list_index.PackedKeys(b"\0" * (list_index.SLOT_BYTES + 1))


def test_an_index_written_before_keys_were_packed_is_read_and_packed_by_its_next_write(app: Flask) -> None:
    citizen, moment = ObjectId(), datetime(2026, 2, 1)
    old = [list_index.key(moment + timedelta(days=n), ObjectId(), "01001") for n in range(3)]
    ListIndex._get_collection().insert_one(
        {"_id": citizen, "version": 4, "built_at": moment, "lists": {"visits": old + [old[0]]}})  # a duplicate too
    keys, version, _ = list_index.read_index(citizen, "visits", utcnow())
    assert list(keys) == sorted(old) and version == 4
    changes = Changes()
    changes.add(citizen, "visits", newer := list_index.key(moment + timedelta(days=9), ObjectId(), "79001"))
    list_index.apply(changes)
    stored = ListIndex._get_collection().find_one({"_id": citizen})
    assert isinstance(stored["lists"]["visits"], bytes) and stored["version"] == 5
    assert list(list_index.stored_keys(stored["lists"]["visits"])) == sorted([*old, newer])


def test_writers_racing_on_one_citizen_lose_nothing(app: Flask) -> None:
    import threading

    citizen = ObjectId()
    list_index.build([citizen], utcnow())
    before = list_index.read_version(citizen, utcnow())
    made: list[bytes] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for m in range(5):
            changes = Changes()
            item = list_index.key(datetime(2026, 1, 1) + timedelta(minutes=n * 10 + m), ObjectId())
            changes.add(citizen, "immunizations", item)
            list_index.apply(changes)
            with lock:
                made.append(item)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys, version, _ = list_index.read_index(citizen, "immunizations", utcnow())
    assert list(keys) == sorted(made) and len(made) == 30
    assert version == before + 30  # every write changed it once


def test_a_build_keeps_the_key_a_writer_added_meanwhile(app: Flask) -> None:
    citizen, moment, item = ObjectId(), datetime(2026, 3, 1), ObjectId()
    list_index.build([citizen], utcnow())
    moved = Changes()  # a writer corrected the visit to a day earlier after a build had read it
    moved.add(citizen, "visits", earlier := list_index.key(moment - timedelta(days=1), item, "01001"))
    list_index.apply(moved)
    stale = Changes()  # the build's key, from before the correction: the newer time of the two
    stale.add(citizen, "visits", list_index.key(moment, item, "01001"))
    list_index.apply(stale, fill_only=True)
    keys, _, _ = list_index.read_index(citizen, "visits", utcnow())
    assert list(keys) == [earlier]  # (one key per item would keep the newer time: the stale one)


def test_a_write_that_lost_the_race_reads_and_merges_again(app: Flask) -> None:
    citizen = ObjectId()
    list_index.build([citizen], utcnow())
    collection = ListIndex._get_collection()
    mine, theirs = (list_index.key(datetime(2026, 1, day), ObjectId()) for day in (1, 2))
    original = list_index._collection
    interfered: list[bool] = []

    class AnotherWriterAfterTheRead:  # another writer of the citizen writes between this read and write
        def __getattr__(self, name):
            return getattr(collection, name)

        def find(self, *args, **kwargs):
            found = list(collection.find(*args, **kwargs))
            if not interfered:
                interfered.append(True)
                other = Changes()
                other.add(citizen, "immunizations", theirs)
                list_index.apply(other)
            return found

    changes = Changes()
    changes.add(citizen, "immunizations", mine)
    list_index._collection = lambda: AnotherWriterAfterTheRead()  # type: ignore[assignment]
    try:
        list_index.apply(changes)
    finally:
        list_index._collection = original  # type: ignore[assignment]
    keys, _, _ = list_index.read_index(citizen, "immunizations", utcnow())
    assert interfered and list(keys) == sorted([mine, theirs])  # neither write lost


def test_an_index_removed_while_a_write_read_it_stays_removed(app: Flask) -> None:
    citizen = ObjectId()
    list_index.build([citizen], utcnow())
    collection = ListIndex._get_collection()
    real_find = collection.find

    class RemovedAfterRead:  # the index document goes away between the write's read and its write
        def __getattr__(self, name):
            return getattr(collection, name)

        def find(self, *args, **kwargs):
            found = list(real_find(*args, **kwargs))
            collection.delete_one({"_id": citizen})
            return found

    changes = Changes()
    changes.add(citizen, "visits", list_index.key(datetime(2026, 1, 1), ObjectId()))
    original = list_index._collection
    list_index._collection = lambda: RemovedAfterRead()  # type: ignore[assignment]
    try:
        list_index.apply(changes)
    finally:
        list_index._collection = original  # type: ignore[assignment]
    assert collection.find_one({"_id": citizen}) is None


def test_the_page_cache_knows_which_pages_it_holds() -> None:
    from app.services.timeline import Page, PageCache

    cache = PageCache(size=2)
    first, other = ("visits", ObjectId(), 20, None), ("visits", ObjectId(), 20, None)
    assert not cache.holds(first)  # a first read need not ask for the version apart from the keys
    cache.put((*first, 1), Page([], None))
    cache.put((*first, 2), Page([], None))
    assert cache.holds(first) and not cache.holds(other)
    assert not cache.holds((*first[:3], b"later"))  # another page of the same citizen is not held
    cache.put((*other, 1), Page([], None))  # evicts the oldest of the two
    cache.put((*other, 2), Page([], None))  # and the other
    assert not cache.holds(first) and cache.holds(other) and len(cache) == 2


# ---------------------------------------------------------------- rows (the timeline's)

VISITS = list_index.SOURCES["visits"]


def _row(visit: dict, version: int, reason: str = "") -> bytes:
    return VISITS.row_of({**visit, "version": version, "reason": reason})  # type: ignore[return-value]


@given(st.lists(st.one_of(st.none(), st.binary(min_size=1, max_size=40)), max_size=30), st.integers(1, 9))
def test_packed_rows_read_back_in_their_keys_order(rows, row_format) -> None:
    packed = list_index.pack_rows(rows, row_format)
    stored = list_index.PackedRows.stored(packed, len(rows), row_format)
    assert stored is not None and [stored.at(n) for n in range(len(rows))] == rows
    assert list_index.PackedRows.stored(packed, len(rows), row_format + 1) is None  # another format: missing
    assert list_index.PackedRows.stored(packed, len(rows) + 1, row_format) is None  # not one per key
    assert list_index.PackedRows.stored(None, len(rows), row_format) is None


def _merge(stored: list[tuple[bytes, bytes | None]], added=(), removed=(), gone=b"", now=1e9, **mode):
    """``merged_with_rows`` on (key, row) pairs and (key, removing version) pairs; answers the
    merged (key, row) pairs and the removed items' entries."""
    stored = sorted(stored)
    rows = list_index.PackedRows.stored(list_index.pack_rows([r for _, r in stored], 1), len(stored), 1)
    result = list_index.merged_with_rows(
        list_index.PackedKeys(list_index.pack(k for k, _ in stored)), rows, gone, [k for k, _ in added],
        [k for k, _ in removed], dict(added).get, dict(removed).get, 1,
        rows_kept=mode.pop("rows_kept", 100), now=now, **mode)
    merged_keys = list_index.PackedKeys(result.keys)
    merged_rows = list_index.PackedRows.stored(result.rows, len(merged_keys), 1)
    return [(k, merged_rows.at(n)) for n, k in enumerate(merged_keys)], result.gone


def test_of_two_writers_of_one_record_the_newer_version_stays_whatever_the_order() -> None:
    citizen = ObjectId()
    visit = _visit(citizen, datetime(2026, 1, 1))
    k0, k1 = VISITS.key_of(visit), VISITS.key_of({**visit, "started_at": datetime(2026, 1, 2)})
    v1, v5, v6 = _row(visit, 1), _row(visit, 5, "moved"), _row(visit, 6, "voided")
    # version 5 moves the visit (k0 -> k1), version 6 then voids it (k1, key kept); either order
    late_five = _merge(_merge([(k0, v1)], added=[(k1, v6)])[0], added=[(k1, v5)], removed=[(k0, 5)])[0]
    in_order = _merge(_merge([(k0, v1)], added=[(k1, v5)], removed=[(k0, 5)])[0], added=[(k1, v6)])[0]
    assert late_five == in_order == [(k1, v6)]
    # version 5 moves it, version 6 moves it back (k1 -> k0): the late removal of k1 keeps k0
    assert _merge([(k0, _row(visit, 6))], added=[(k1, v5)], removed=[(k1, 5)])[0] == [(k0, _row(visit, 6))]
    assert _merge([(k0, _row(visit, 6))], removed=[(k0, 5)])[0] == [(k0, _row(visit, 6))]


def test_an_item_moved_away_by_a_newer_version_is_not_put_back() -> None:
    citizen = ObjectId()
    visit = _visit(citizen, datetime(2026, 1, 1))
    k0, k1 = VISITS.key_of(visit), VISITS.key_of({**visit, "started_at": datetime(2026, 1, 2)})
    # version 6 moved the visit to another citizen (its removal reached this index first: k1 was
    # not held yet); version 5's late move (k0 -> k1) must not bring it back here
    after_six, gone = _merge([(k0, _row(visit, 1))], removed=[(k1, 6)])
    assert after_six == [] and gone  # (the version-1 key is older than the removal: gone too)
    assert _merge(after_six, added=[(k1, _row(visit, 5))], removed=[(k0, 5)], gone=gone)[0] == []
    # a newer version (the visit corrected back to this citizen) comes in; a day later, no trace
    assert _merge([], added=[(k1, _row(visit, 7))], gone=gone)[0] == [(k1, _row(visit, 7))]
    assert _merge([], added=[(k1, _row(visit, 5))], gone=gone, now=1e9 + list_index.GONE_SECONDS)[1] == b""


def test_a_build_and_a_fetched_page_only_fill_in_missing_rows() -> None:
    citizen = ObjectId()
    first, second = _visit(citizen, datetime(2026, 1, 1)), _visit(citizen, datetime(2026, 1, 2))
    a, b = VISITS.key_of(first), VISITS.key_of(second)
    ra, rb = _row(first, 1), _row(second, 1)
    newer = _row(first, 5, "newer")
    assert _merge([(a, None), (b, rb)], added=[(a, ra), (b, newer)], fill_only=True)[0] == [(a, ra), (b, rb)]
    assert _merge([(a, newer)], added=[(a, ra)], fill_only=True)[0] == [(a, newer)]
    # a page fetched from the collection fills rows of keys held, and adds no item
    assert _merge([(a, None)], added=[(a, ra), (b, rb)], rows_only=True)[0] == [(a, ra)]
    moved = VISITS.key_of({**first, "started_at": datetime(2026, 1, 3)})
    assert _merge([(moved, None)], added=[(a, ra)], rows_only=True)[0] == [(moved, None)]
    # nor an older row than the version the index keeps for an item beyond the newest, build or page
    for mode in ("rows_only", "fill_only"):
        assert _merge([(a, newer[:8])], added=[(a, ra)], **{mode: True})[0] == [(a, newer[:8])]
        assert _merge([(a, ra[:8])], added=[(a, newer)], **{mode: True})[0] == [(a, newer)]


def test_only_the_newest_items_keep_their_rows_and_every_item_its_version() -> None:
    citizen = ObjectId()
    visits = [_visit(citizen, datetime(2026, 1, 1) + timedelta(days=n)) for n in range(5)]
    pairs = [(VISITS.key_of(visit), _row(visit, 1)) for visit in visits]
    merged, _ = _merge(pairs[:4], added=[pairs[4]], rows_kept=3)
    assert merged == [(pairs[0][0], pairs[0][1][:8]), (pairs[1][0], pairs[1][1][:8]), *pairs[2:]]
    assert not list_index.row_shown(merged[0][1]) and list_index.row_version(merged[0][1]) == 1
    # the newest removed: the next one is among the newest again, without its row until a page fills it
    assert _merge(merged, removed=[(pairs[4][0], 2)], rows_kept=3)[0] == merged[:4]


def _timeline(citizen: ObjectId, limit: int = 20, cursor=None):
    return list_index.read_list(citizen, "visits", utcnow()), timeline.list_visits(
        system_context(), citizen, limit, cursor)


def test_a_timeline_page_is_read_from_its_rows_and_follows_every_write(app: Flask, monkeypatch) -> None:
    citizen = ObjectId()
    list_index.build([citizen], utcnow())
    visits = [{**_visit(citizen, datetime(2026, 3, 1) + timedelta(hours=n)), "source_id": f"R{n}",
               "payload_hash": "x", "version": 1, "reason": f"visit {n}",
               "diagnoses": [{"code": "J20.9", "display": "Viêm phế quản cấp", "principal": True}]}
              for n in range(5)]
    with RecordWrites() as writes:
        writes.insert(Visit, visits)
    fetched: list[dict] = []
    monkeypatch.setattr(timeline, "_timeline_rows", lambda query: fetched.append(query) or [])
    _, page = _timeline(citizen)
    assert fetched == [] and [row["reason"] for row in page.items] == [f"visit {n}" for n in reversed(range(5))]
    stored = Visit._get_collection().find_one({"_id": visits[0]["_id"]}, {"_id": 1, "started_at": 1})
    assert page.items[-1]["started_at"] == stored["started_at"]  # as the collection gives it (aware UTC)
    assert page.items[-1]["diagnoses"] == visits[0]["diagnoses"]
    # an update that keeps the key (a void) and one that moves it (a new time) both show
    with RecordWrites() as writes:
        writes.update(Visit.objects(id=visits[0]["_id"], citizen_id=citizen), set__status="entered-in-error",
                      inc__version=1)
        writes.update(Visit.objects(id=visits[1]["_id"], citizen_id=citizen),
                      set__started_at=datetime(2026, 4, 1), set__reason="moved", inc__version=1)
    _, page = _timeline(citizen)
    assert fetched == []
    assert [row["reason"] for row in page.items] == ["moved", "visit 4", "visit 3", "visit 2", "visit 0"]
    assert page.items[-1]["status"] == "entered-in-error"


def test_a_timeline_without_rows_is_fetched_then_filled_in(app: Flask, monkeypatch) -> None:
    citizen = ObjectId()
    list_index.build([citizen], utcnow())
    visits = [{**_visit(citizen, datetime(2026, 3, 1) + timedelta(hours=n)), "source_id": f"F{n}",
               "payload_hash": "x", "version": 1, "reason": f"visit {n}"} for n in range(5)]
    with RecordWrites() as writes:
        writes.insert(Visit, visits)
    with_rows = [row["reason"] for row in _timeline(citizen)[1].items]
    ListIndex._get_collection().update_one({"_id": citizen}, {"$unset": {"rows": 1}})  # written before rows
    fetched: list[dict] = []
    original = timeline._timeline_rows
    monkeypatch.setattr(timeline, "_timeline_rows", lambda query: fetched.append(query) or original(query))
    stored, page = _timeline(citizen, 3)
    assert stored.rows is None and fetched and [row["reason"] for row in page.items] == with_rows[:3]
    fetched.clear()
    stored, page = _timeline(citizen, 3)  # the first page's rows were filled in; the rest still missing
    assert stored.rows is not None and fetched == [] and [row["reason"] for row in page.items] == with_rows[:3]
    _, page = _timeline(citizen, 3, page.next_cursor)
    assert fetched and [row["reason"] for row in page.items] == with_rows[3:]


def test_older_pages_than_the_kept_rows_are_fetched_and_leave_the_index_alone(app: Flask, monkeypatch) -> None:
    citizen = ObjectId()
    list_index.build([citizen], utcnow())
    kept = VISITS.rows_kept
    visits = [{**_visit(citizen, datetime(2025, 1, 1) + timedelta(hours=n)), "source_id": f"O{n}",
               "payload_hash": "x", "version": 1, "reason": f"visit {n}"} for n in range(kept + 30)]
    with RecordWrites() as writes:
        writes.insert(Visit, visits)
    fetched: list[dict] = []
    original = timeline._timeline_rows
    monkeypatch.setattr(timeline, "_timeline_rows", lambda query: fetched.append(query) or original(query))
    filled: list[object] = []
    monkeypatch.setattr(list_index, "fill_rows", lambda *arguments: filled.append(arguments))
    reasons, cursor, fetched_pages = [], None, []
    while True:
        _, page = _timeline(citizen, 20, cursor)
        reasons += [row["reason"] for row in page.items]
        fetched_pages.append(bool(fetched))
        fetched.clear()
        cursor = page.next_cursor
        if cursor is None:
            break
    assert reasons == [f"visit {n}" for n in reversed(range(kept + 30))]
    assert fetched_pages == [False] * (kept // 20) + [True, True]  # the newest from rows, the rest fetched
    assert filled == []  # rows are kept for the newest only: the older pages' are not written


def test_concurrent_pages_read_their_index_documents_together(app: Flask) -> None:
    built, missing = ObjectId(), ObjectId()
    list_index.build([built], utcnow())
    with RecordWrites() as writes:
        writes.insert(Visit, [{**_visit(built, datetime(2026, 5, 1)), "source_id": "G1", "payload_hash": "x"}])
    now = utcnow()
    together = list_index.read_lists([(built, "visits", now), (missing, "visits", now), (built, "visits", now)])
    alone = [list_index.read_list(citizen, "visits", now) for citizen in (built, missing, built)]
    assert [(list(s.keys), s.version, s.rows is not None) for s in together] == [
        (list(s.keys), s.version, s.rows is not None) for s in alone]
    assert len(together[0].keys) == 1 and ListIndex.objects(id=missing).count() == 1  # the missing one was built


def test_a_row_that_is_not_its_keys_is_read_as_missing(app: Flask) -> None:
    citizen = ObjectId()
    first, second = _visit(citizen, datetime(2026, 1, 1)), _visit(citizen, datetime(2026, 1, 2))
    keys = list_index.PackedKeys(list_index.pack([VISITS.key_of(first), VISITS.key_of(second)]))
    swapped = list_index.pack_rows([_row(second, 1), _row(first, 1)], VISITS.row_format)  # written apart
    right = list_index.pack_rows([_row(first, 1), _row(second, 1)], VISITS.row_format)
    page = list_index.window(keys, 1, None, 20)
    for packed, expected in ((swapped, None), (right, [second["_id"], first["_id"]])):
        stored = list_index.StoredList(VISITS, keys, list_index.PackedRows.stored(packed, 2, VISITS.row_format), 1, {})
        rows = stored.rows_of(page)
        assert (rows if rows is None else [row["_id"] for row in rows]) == expected


def test_filling_rows_that_cannot_be_filled_writes_nothing(app: Flask) -> None:
    citizen = ObjectId()
    list_index.build([citizen], utcnow())
    version = list_index.read_list(citizen, "visits", utcnow()).version
    list_index.fill_rows(citizen, "visits", [{**_visit(citizen, datetime(2026, 1, 1)), "version": 1}])  # not held
    assert list_index.read_list(citizen, "visits", utcnow()).version == version
