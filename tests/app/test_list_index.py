"""The list index: key order, the changes a write makes, and build/apply on the embedded server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from app.clock import utcnow
from app.models.list_index import ListIndex
from app.models.records import Visit
from app.services import list_index
from app.services.list_index import Changes, ListSource

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
        assert not unchanged.added and not unchanged.removed
        assert unchanged.touched == {citizen}  # no key moved, but its cached pages are stale
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
