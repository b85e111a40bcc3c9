"""The sizing helpers: key and index-entry sizes, collStats read as documented, audit growth, the note."""

from __future__ import annotations

from datetime import UTC, datetime

import bson
import pymongo
import pytest
from bson import ObjectId

from bench import sizing
from bench.sizing import CollectionSize, IndexSize


def test_value_at_fans_out_arrays_as_a_multikey_index_does():
    document = {"a": [{"b": 1}, {"b": 2}], "ids": ["x", "y"], "c": {"d": 3}}
    assert sizing.value_at(document, "a.b") == [1, 2]
    assert sizing.value_at(document, "ids") == ["x", "y"]
    assert sizing.value_at(document, "c.d") == [3]
    assert sizing.value_at(document, "missing") == [None]
    assert sizing.value_at(document, "c.d.e") == [None]


@pytest.mark.parametrize(("value", "size"), [
    (7, 5),  # type byte + int32
    (ObjectId(), 13),  # type byte + 12 bytes
    ("abc", 9),  # type byte + int32 length + 3 bytes + NUL
    (datetime(2026, 1, 1, tzinfo=UTC), 9),  # type byte + int64 milliseconds
    (None, 1),
])
def test_key_bytes_is_a_type_byte_and_the_bson_value(value, size):
    assert sizing.key_bytes(value) == size


def test_index_entries_has_one_entry_per_array_element():
    document = {"ids": [ObjectId(), ObjectId()], "access": "read", "at": datetime(2026, 1, 1, tzinfo=UTC)}
    assert sizing.index_entries(document, ["ids", "access", "at"]) == [13 + 10 + 9] * 2
    assert sizing.index_entries(document, ["at"]) == [9]


def test_collection_size_reads_the_server_and_a_sample(bench_uri):
    with pymongo.MongoClient(bench_uri) as client:
        db = client.get_default_database()
        assert sizing.collection_size(db, "nothing") is None
        db.create_collection("empty")
        assert sizing.collection_size(db, "empty") is None
        documents = [{"citizen_ids": [ObjectId(), ObjectId(), ObjectId()], "at": datetime(2026, 1, 1, tzinfo=UTC),
                      "text": "x" * n} for n in range(10)]
        db.events.insert_many(documents)
        db.events.create_index([("citizen_ids", 1), ("at", -1)], name="by_citizen")
        size = sizing.collection_size(db, "events")
    assert size is not None and size.count == 10
    expected = sum(len(bson.encode(document)) for document in documents) / 10
    assert size.sample_bytes == pytest.approx(expected)
    assert size.average_bytes == pytest.approx(expected, rel=0.05)
    by_name = {index.name: index for index in size.indexes}
    assert set(by_name) == {"_id_", "by_citizen"}
    assert by_name["by_citizen"].entries_per_document == 3
    assert by_name["by_citizen"].estimated_bytes_per_entry == 13 + 9 + sizing.ENTRY_OVERHEAD
    assert by_name["_id_"].estimated_bytes_per_entry == 13 + sizing.ENTRY_OVERHEAD
    assert size.index_bytes_per_document == 3 * (22 + sizing.ENTRY_OVERHEAD) + 13 + sizing.ENTRY_OVERHEAD


def test_growth_per_counts_what_the_operations_added(bench_uri):
    with pymongo.MongoClient(bench_uri) as client:
        events = client.get_default_database().audit_events
        events.insert_one({"action": "old", "citizen_ids": [ObjectId()] * 40})
        before = sizing.audit_totals(bench_uri)
        added = [{"action": "visits.list", "citizen_ids": [ObjectId()]} for _ in range(4)]
        events.insert_many(added)
    growth = sizing.growth_per("per_read", before, bench_uri, 2)
    per_read = growth["per_read"]["audit_events"]
    assert per_read["documents"] == 2
    assert per_read["bytes"] == pytest.approx(2 * len(bson.encode(added[0])), rel=0.05)
    # the new events' own entries (one citizen each), not the 40-citizen event's
    assert per_read["index_bytes"] == 2 * (13 + sizing.ENTRY_OVERHEAD)
    assert sizing.growth_per("per_read", before, bench_uri, 0) == {}


def _sizes(visit: float, visit_index: float) -> dict[str, CollectionSize]:
    index = IndexSize("timeline", ["citizen_id"], 1.0, None, visit_index)
    return {"visits": CollectionSize("visits", 100, visit, visit, [index])}


def test_note_states_the_arithmetic():
    growth = {"per_read": {"audit_events": {"documents": 1.0, "bytes": 300.0, "index_bytes": 100.0}}}
    text = "\n".join(sizing.note(_sizes(1000, 100), growth))
    # 10^9 visits x (1,000 + 60 list index) + 1.5 x 10^9 reads x 300 = 1.51 TB a year
    assert "Storage per year: 1.5 TB of documents" in text
    # index: 10^9 x 100 + 1.5 x 10^9 x 100 = 250 GB a year; hot: x (1 + 0.3 x 9) = 925 GB over 32 GiB -> 27
    assert "Storage per year: 1.5 TB of documents before compression" in text
    assert "250.0 GB of index entries" in text
    assert "need 27: plan 27 shards" in text
    assert "(1 in the first year)" not in text and "(8 in the first year)" in text
    assert "each page read adds 300 bytes" in text
    assert "417 visits/s" in text and "926 visits/s" in text


def test_note_without_audit_growth_or_collections_still_renders():
    text = "\n".join(sizing.note({}, {}))
    assert "A visit is 0 bytes" in text and "plan 1 shards" in text


def test_saved_sizes_render_the_same_note(tmp_path):
    growth = {"per_write": {"audit_events": {"documents": 0.01, "bytes": 222.0, "index_bytes": 50.0}}}
    path = str(tmp_path / "sizes.json")
    sizing.save(_sizes(1144, 129), growth, path)
    sizes, loaded = sizing.load(path)
    assert sizing.note(sizes, loaded) == sizing.note(_sizes(1144, 129), growth)
    assert sizing.describe(sizes, loaded) == sizing.describe(_sizes(1144, 129), growth)
