"""Measured document and index sizes, and the sizing note they imply for Viet Nam's scale.

``python -m bench.sizing`` pushes visits and immunizations through the API on a fresh embedded
server, reads timeline pages (each read leaves its audit trail), measures, and prints the note;
``make bench`` (``bench.scale_bench``) prints the same from its own, larger, run.

Sizes come from the server's ``collStats`` (SecantusDB answers it: ``avgObjSize`` is the average
BSON size; its ``indexSizes`` are the keys' bytes without per-entry overhead, and it keeps no
compressed size) and, as a cross-check, from BSON-encoding a sample of stored documents. An index
entry is estimated as its key (a type byte and the BSON value per field, as MongoDB's KeyString
keeps it) plus ``ENTRY_OVERHEAD`` (an 8-byte record id and B-tree cell headers), before
WiredTiger's prefix and block compression: an upper bound for cache and disk.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
import pymongo

ENTRY_OVERHEAD = 16  # bytes per index entry beyond its key: record id (8) + cell headers (~8)
SAMPLE = 2_000
COLLECTIONS = ("visits", "immunizations", "record_keys", "audit_events", "access_log", "citizens", "list_index")

# The scale the note is written for, and the assumptions it states (see ``note``).
CITIZENS = 100_000_000
VISITS_PER_CITIZEN_YEAR = 10
IMMUNIZATIONS_PER_CITIZEN_YEAR = 0.3  # ~1.5 M births x ~15 doses early in life + adult campaigns
ACTIVE_SHARE = 0.3  # citizens who use the app in a year
PAGE_READS_PER_ACTIVE_YEAR = 50  # page reads (timeline, details, access log) per app user per year
RETENTION_YEARS = 10
WORKING_DAYS = 300  # outpatient clinics open Monday to Saturday
MORNING_SHARE, MORNING_HOURS = 0.6, 4  # 60% of a day's visits between 07:00 and 11:00
END_OF_DAY_SHARE, END_OF_DAY_MINUTES = 0.5, 30  # half sent as XML 130 in a 30-minute end-of-day burst
BURST = 3  # a minute's peak over the hour's average
SHARD_DATA = 2 * 10**12  # bytes of documents per shard
SHARD_RAM = 128 * 2**30
INDEX_SHARE_OF_RAM = 0.25  # WiredTiger's cache is half the RAM; indexes may take half of the cache
# a 32-byte packed key in the visits list and, when the visit prescribes, in the prescriptions list,
# and in the visits list the visit's version with its row offset (12 bytes)
LIST_INDEX_BYTES_PER_VISIT = 76
# and each active citizen's index keeps the rows of their 100 newest visits (list_index.SOURCES
# ["visits"].rows_kept): about 320 bytes each for the bench's visit (two diagnoses), measured
TIMELINE_ROWS_PER_ACTIVE_CITIZEN = 100 * 324


@dataclass
class IndexSize:
    name: str
    fields: list[str]
    entries_per_document: float
    stats_bytes_per_entry: float | None  # collStats indexSizes / entries (keys only)
    estimated_bytes_per_entry: float  # key bytes + ENTRY_OVERHEAD


@dataclass
class CollectionSize:
    name: str
    count: int
    average_bytes: float  # collStats avgObjSize
    sample_bytes: float  # BSON size of a sample of stored documents
    indexes: list[IndexSize] = field(default_factory=list)

    @property
    def index_bytes_per_document(self) -> float:
        return sum(index.entries_per_document * index.estimated_bytes_per_entry for index in self.indexes)


def value_at(document: Any, path: str) -> list[Any]:
    """The values a dotted ``path`` names in ``document`` (arrays fan out, as a multikey index does)."""
    values = [document]
    for part in path.split("."):
        found: list[Any] = []
        for value in values:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict) and part in item:
                    found.append(item[part])
        values = found
    flat: list[Any] = []
    for value in values:
        flat.extend(value if isinstance(value, list) and value else [value])
    return flat or [None]


def key_bytes(value: Any) -> int:
    """A key field's size: a type byte and the value as BSON encodes it (no field name)."""
    return len(bson.encode({"": value})) - 6  # minus the document's length, terminator and ``\\0`` name


def index_entries(document: dict[str, Any], fields: list[str]) -> list[int]:
    """The key sizes of the entries ``document`` has in an index on ``fields`` (one per array element)."""
    sizes = [0]
    for name in fields:
        values = value_at(document, name)
        sizes = [size + key_bytes(value) for size in sizes for value in values]
    return sizes


def collection_size(db: Any, name: str) -> CollectionSize | None:
    """The measured sizes of one collection, None when it has no documents."""
    if name not in db.list_collection_names():
        return None
    stats = db.command("collStats", name)
    count = int(stats.get("count", 0))
    if not count:
        return None
    sample = list(db[name].find().limit(SAMPLE))
    sample_bytes = sum(len(bson.encode(document)) for document in sample) / len(sample)
    indexes = []
    for index_name, info in db[name].index_information().items():
        fields = [key for key, _ in info["key"]]
        entries = [size for document in sample for size in index_entries(document, fields)]
        stats_bytes = stats.get("indexSizes", {}).get(index_name)
        per_document = len(entries) / len(sample)
        indexes.append(IndexSize(index_name, fields, per_document,
                                 stats_bytes / (count * per_document) if stats_bytes else None,
                                 sum(entries) / len(entries) + ENTRY_OVERHEAD))
    return CollectionSize(name, count, float(stats.get("avgObjSize") or sample_bytes), sample_bytes, indexes)


AuditTotals = dict[str, tuple[int, int, Any]]  # collection -> (documents, bytes, largest _id)


def audit_totals(uri: str) -> AuditTotals:
    """The audit collections' documents, bytes and newest ``_id`` now, to take the growth of some
    reads or writes (see :func:`growth_per`)."""
    totals: AuditTotals = {}
    with pymongo.MongoClient(uri) as client:
        db = client.get_default_database()
        names = set(db.list_collection_names())
        for name in ("audit_events", "access_log"):
            if name in names:
                stats = db.command("collStats", name)
                last = db[name].find_one({}, {"_id": 1}, sort=[("_id", -1)])
                totals[name] = (int(stats.get("count", 0)), int(stats.get("size", 0)), last and last["_id"])
    return totals


def index_bytes(db: Any, name: str, documents: list[dict[str, Any]]) -> float:
    """The average estimated index bytes of ``documents`` over every index of collection ``name``."""
    if not documents:
        return 0.0
    total = 0
    for info in db[name].index_information().values():
        fields = [key for key, _ in info["key"]]
        total += sum(size + ENTRY_OVERHEAD for document in documents for size in index_entries(document, fields))
    return total / len(documents)


def growth_per(key: str, before: AuditTotals, uri: str, operations: int) -> dict[str, Any]:
    """``{key: {collection: {documents, bytes, index_bytes}}}``: what each of ``operations`` (reads,
    or written records) added to each audit collection since ``before``; empty when there were none.
    Index bytes are estimated on the documents added (a read's event names one citizen, a batch's
    many: their multikey entries differ), not on the collection's average."""
    if not operations:
        return {}
    after = audit_totals(uri)
    growth = {}
    with pymongo.MongoClient(uri) as client:
        db = client.get_default_database()
        for name, (count, size, _) in after.items():
            count_before, size_before, last = before.get(name, (0, 0, None))
            added = list(db[name].find({"_id": {"$gt": last}} if last is not None else {}).limit(SAMPLE))
            documents = (count - count_before) / operations
            growth[name] = {"documents": documents, "bytes": (size - size_before) / operations,
                            "index_bytes": documents * index_bytes(db, name, added)}
    return {key: growth}


def measure(uri: str, port: int, facility_token: str) -> dict[str, CollectionSize]:
    """Push some immunizations (so that they are measured too), then measure every collection."""
    from bench.records_bench import _stream_bulk, national_id

    lines = [(json.dumps({"type": "immunization", "source_id": f"SZI{n:05d}", **immunization(n, national_id(n % 500))},
                         ensure_ascii=False) + "\n").encode() for n in range(300)]
    _stream_bulk(port, facility_token, lines)
    with pymongo.MongoClient(uri) as client:
        db = client.get_default_database()
        return {name: size for name in COLLECTIONS if (size := collection_size(db, name)) is not None}


def immunization(number: int, national_id: str) -> dict[str, Any]:
    """An immunization push body as the contract's example (``tests/records_data.py``)."""
    given = datetime(2021, 9, 15, 10, 20, tzinfo=UTC) + timedelta(hours=number)
    return {
        "national_id": national_id, "full_name": "Nguyễn Văn Nam", "date_of_birth": "1985-03-14", "sex": "male",
        "vaccine": {"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
                    "name": "Comirnaty"},
        "dose_number": 2, "series_doses": 2, "administered_at": given.isoformat(), "lot": "FF2593",
        "site": "left deltoid", "route": "intramuscular", "country": "VN",
        "reactions": [{"onset_at": (given + timedelta(hours=10)).isoformat(), "description": "Sốt nhẹ",
                       "severity": "mild"}],
        "status": "completed",
    }


def describe(sizes: dict[str, CollectionSize], growth: dict[str, Any]) -> list[str]:
    """The measured sizes, one line per collection and index."""
    lines = ["sizes measured (collStats avgObjSize; BSON of a sample; index entry = key + "
             f"{ENTRY_OVERHEAD} bytes, collStats key bytes in brackets):"]
    for size in sizes.values():
        lines.append(f"  {size.name}: {size.count:,} documents, {size.average_bytes:,.0f} bytes each "
                     f"(sample {size.sample_bytes:,.0f}); indexes {size.index_bytes_per_document:,.0f} bytes "
                     "per document")
        for index in size.indexes:
            stats = f" [{index.stats_bytes_per_entry:.0f}]" if index.stats_bytes_per_entry is not None else ""
            lines.append(f"    {index.name} ({', '.join(index.fields)}): {index.entries_per_document:.2f} entries "
                         f"per document x {index.estimated_bytes_per_entry:.0f} bytes{stats}")
    for label, key in (("read", "per_read"), ("written record", "per_write")):
        if key in growth:
            parts = [f"{name} +{g['documents']:.2f} documents, +{g['bytes']:,.0f} bytes, "
                     f"+{g['index_bytes']:,.0f} bytes of index"
                     for name, g in growth[key].items()]
            lines.append(f"  audit growth per {label}: " + "; ".join(parts))
    return lines


def _bytes(amount: float) -> str:
    for unit, scale in (("PB", 10**15), ("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if amount >= scale:
            return f"{amount / scale:,.1f} {unit}"
    return f"{amount:,.0f} bytes"


def _per_record(sizes: dict[str, CollectionSize], name: str, default: float = 0.0) -> tuple[float, float]:
    size = sizes.get(name)
    return (size.average_bytes, size.index_bytes_per_document) if size else (default, 0.0)


def _audit(growth: dict[str, Any], key: str) -> tuple[float, float]:
    """Audit bytes and index bytes one read (or one written record) adds, from the measured growth."""
    parts = growth.get(key, {}).values()
    return sum(g["bytes"] for g in parts), sum(g["index_bytes"] for g in parts)


def note(sizes: dict[str, CollectionSize], growth: dict[str, Any]) -> list[str]:
    """The README's sizing note for 100 million citizens and 10 visits each a year, from ``sizes``."""
    visits_year = CITIZENS * VISITS_PER_CITIZEN_YEAR
    immunizations_year = CITIZENS * IMMUNIZATIONS_PER_CITIZEN_YEAR
    reads_year = CITIZENS * ACTIVE_SHARE * PAGE_READS_PER_ACTIVE_YEAR
    visit, visit_index = _per_record(sizes, "visits")
    key, key_index = _per_record(sizes, "record_keys")
    shot, shot_index = _per_record(sizes, "immunizations")
    citizen, citizen_index = _per_record(sizes, "citizens")
    read_data, read_index = _audit(growth, "per_read")
    write_data, write_index = _audit(growth, "per_write")
    listed = LIST_INDEX_BYTES_PER_VISIT
    records = visits_year + immunizations_year
    data_year = (visits_year * (visit + key + listed) + immunizations_year * (shot + key)
                 + records * write_data + reads_year * read_data)
    index_year = (visits_year * (visit_index + key_index) + immunizations_year * (shot_index + key_index)
                  + records * write_index + reads_year * read_index)
    accounts = CITIZENS * (citizen + citizen_index)
    rows = CITIZENS * ACTIVE_SHARE * TIMELINE_ROWS_PER_ACTIVE_CITIZEN  # bounded: does not grow with the years
    data_total = RETENTION_YEARS * data_year + CITIZENS * citizen + rows
    index_total = RETENTION_YEARS * index_year + CITIZENS * citizen_index
    by_data = math.ceil(data_total / SHARD_DATA)
    index_room = SHARD_RAM * INDEX_SHARE_OF_RAM
    # in memory: this year's entries (every write lands there, at random places of citizen-keyed
    # indexes) and the older years' entries of the citizens who use the app (their reads)
    hot_index = index_year * (1 + ACTIVE_SHARE * (RETENTION_YEARS - 1))
    by_index = math.ceil(hot_index / index_room)
    first_year = max(1, math.ceil(max(data_year / SHARD_DATA, index_year / index_room)))
    per_day = visits_year / WORKING_DAYS
    morning = per_day * MORNING_SHARE / (MORNING_HOURS * 3600) * BURST
    evening = per_day * END_OF_DAY_SHARE / (END_OF_DAY_MINUTES * 60)
    audit_share = (reads_year * read_data) / data_year if data_year else 0.0
    return [
        f"Sizing for {CITIZENS / 1e6:,.0f} million citizens and {VISITS_PER_CITIZEN_YEAR} visits each a year "
        f"({visits_year / 1e9:,.0f} billion visits a year), from the sizes `make bench` measures:",
        f"- A visit is {visit:,.0f} bytes of BSON and {visit_index:,.0f} bytes of index entries (its `_id`, "
        f"timeline and by-facility indexes); its record key {key:,.0f} + {key_index:,.0f}; its entries in the "
        f"list index ~{listed} (estimate); an immunization {shot:,.0f} + {shot_index:,.0f} (at "
        f"{IMMUNIZATIONS_PER_CITIZEN_YEAR} a citizen a year); a written record adds {write_data:,.0f} bytes of "
        f"audit; a citizen {citizen:,.0f} + {citizen_index:,.0f} bytes ({_bytes(accounts)} for all, once), and "
        f"an active citizen's list index the rows of their 100 newest visits, about "
        f"{TIMELINE_ROWS_PER_ACTIVE_CITIZEN // 1000} KB ({_bytes(rows)} for the {ACTIVE_SHARE:.0%}, once).",
        f"- Storage per year: {_bytes(data_year)} of documents before compression (WiredTiger's snappy "
        f"typically halves it on disk), {_bytes(index_year)} of index entries.",
        f"- Audit: each page read adds {read_data:,.0f} bytes of audit documents (+{read_index:,.0f} of index); "
        f"at {ACTIVE_SHARE:.0%} of citizens using the app and {PAGE_READS_PER_ACTIVE_YEAR} page reads each a year "
        f"({reads_year / 1e9:,.1f} billion reads) that is {_bytes(reads_year * read_data)} a year, "
        f"{audit_share:.0%} of the year's growth.",
        f"- Retention: records are kept {RETENTION_YEARS} years (and the audit of who read them as long), so "
        f"the steady state holds {RETENTION_YEARS} years: {_bytes(data_total)} of documents and "
        f"{_bytes(index_total)} of indexes. Nothing expires before then: a TTL on health data would be wrong, "
        "and a purge after the period is a scheduled job per shard (by time, on each citizen's range).",
        f"- Shards: at {_bytes(SHARD_DATA)} of documents and {SHARD_RAM // 2**30} GB of RAM per shard (indexes in "
        f"{INDEX_SHARE_OF_RAM:.0%} of RAM: half of WiredTiger's cache, itself half the RAM), {by_data} shards "
        f"hold the data; the indexes that must be in memory ({_bytes(hot_index)}: the current year's, which "
        "every write reaches at a random place since the keys start with a hashed-spread citizen, and the "
        f"older years' of the {ACTIVE_SHARE:.0%} of citizens who read their records) need {by_index}: plan "
        f"{max(by_data, by_index)} shards at {RETENTION_YEARS} years ({first_year} in the first year), each "
        "a 3-member replica set. Index sizes are before WiredTiger's prefix compression, which shrinks keys "
        "that share a citizen: an upper bound.",
        f"- Peak writes: {per_day / 1e6:,.1f} million visits on a working day ({WORKING_DAYS} a year). Pushed as they "
        f"happen, {MORNING_SHARE:.0%} fall in the {MORNING_HOURS} morning outpatient hours: {morning:,.0f} "
        f"visits/s at a {BURST}x minute peak. Sent as XML 130 at the end of the day (the insurance upload "
        f"is daily), if {END_OF_DAY_SHARE:.0%} arrive in a {END_OF_DAY_MINUTES}-minute burst: {evening:,.0f} "
        f"visits/s. Plan for {max(morning, evening):,.0f} visits/s, each 3-4 document writes (visit, record key, "
        "list index when the citizen is active, its share of an audit event), spread over the shards by citizen.",
    ]


SAVED = os.environ.get("HOSO_BENCH_SIZES", os.path.join(tempfile.gettempdir(), "hoso-bench-sizes.json"))


def save(sizes: dict[str, CollectionSize], growth: dict[str, Any], path: str = SAVED) -> None:
    """Keep what was measured, so that ``python -m bench.sizing --saved`` renders the note again."""
    with open(path, "w") as file:
        json.dump({"sizes": {name: asdict(size) for name, size in sizes.items()}, "growth": growth}, file, indent=1)


def load(path: str = SAVED) -> tuple[dict[str, CollectionSize], dict[str, Any]]:
    """What :func:`save` kept."""
    with open(path) as file:
        saved = json.load(file)
    sizes = {name: CollectionSize(**{**size, "indexes": [IndexSize(**index) for index in size["indexes"]]})
             for name, size in saved["sizes"].items()}
    return sizes, saved["growth"]


def main(argv: list[str]) -> int:
    """A small run of its own (push, read, measure, print), or ``--saved``: the last run's sizes again."""
    if argv[1:] == ["--saved"]:
        measured, growth = load()
        print("\n".join([*describe(measured, growth), "", *note(measured, growth)]))
        return 0
    from bench import scale_bench
    from bench.records_bench import SETUP, _in_app, _secrets_env, api_server, database

    with database() as uri, tempfile.TemporaryDirectory() as var_dir:
        env = _secrets_env(uri, var_dir)
        token = _in_app(env, SETUP)
        with api_server(env, workers=2, threads=8) as port:
            setting = scale_bench._setting(uri, env, port, token)
            growth = scale_bench.sizing_growth(setting)
            measured = measure(uri, port, token)
    save(measured, growth)
    print("\n".join([*describe(measured, growth), "", *note(measured, growth)]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
