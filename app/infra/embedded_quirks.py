"""Workarounds that exist only for the embedded development database (SecantusDB).

Production runs on MongoDB, where none of these is needed; each is harmless there. Keeping them
here, under names, lets a reader of production code see which lines exist for the development
server and what each costs or prevents (measurements in ``../shared/FIELD-NOTES.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pymongo.collection import Collection

T = TypeVar("T")

# SecantusDB checks each candidate of an ``$in`` against the whole list: 200 values cost 30 ms
# in one query and 12 ms in chunks of 25 (measured; MongoDB is indifferent).
IN_CHUNK = 25


def in_chunks(values: Sequence[T]) -> Iterator[list[T]]:
    """``values`` in slices of ``IN_CHUNK``, for ``$in`` queries and updates."""
    for start in range(0, len(values), IN_CHUNK):
        yield list(values[start:start + IN_CHUNK])


# Retryable writes guard against a failover or a dropped connection between driver and replica set;
# neither exists for a server on loopback, and SecantusDB keeps up to 10,000 retryable-write records
# that it scans in full on every write (measured: a quarter of its time under the timeline benchmark,
# 400 -> 510 req/s without). So the development database's URI turns them off
# (``app.infra.embedded_db.uri_with_database``); production (MongoDB) turns them on in ``app.infra.db.connect``.
CLIENT_URI_OPTIONS = "retryWrites=false"


def pipeline_now() -> datetime:
    """The current time, to send as a value in an update pipeline instead of ``$$NOW``.

    SecantusDB evaluates ``$lt`` against ``$$NOW`` as always false, so a rate-limit window compared
    with it would never end there; on MongoDB the value and ``$$NOW`` behave the same (up to the
    clock difference between this host and the server).
    """
    return datetime.now(UTC)


# SecantusDB answers null (no document) to a ``find_one_and_update(upsert=True, return_document=AFTER)``
# that raced another upsert creating the same document, although its update was applied; MongoDB
# always returns the document. Callers read the document back (``read_back_if_null``).
UPSERT_MAY_ANSWER_NULL = True


# SecantusDB's findAndModify of an existing document reads its collection: 15 ms at 400 rate-limit
# counters against 2.7 ms for ``update_one`` of the same update plus 1.3 ms to read it back
# (measured 2026-12-01; 2.5 ms when it creates the document). So the rate limiter counts with a
# write and a read (``SharedClientMongoDBStorage._incr_many``), which on MongoDB costs one more
# round trip and may read a count that includes other processes' later hits: it refuses earlier,
# never later. (The audit numbers' counter is one document in a tiny collection: 1.5 ms, kept.)
FIND_AND_MODIFY_SCANS = True


def read_back_if_null(answer: Mapping[str, Any] | None, collection: Collection[Any],
                      query: Mapping[str, Any], projection: list[str]) -> Mapping[str, Any] | None:
    """``answer`` of an upsert, or (SecantusDB's null after a race) the document as it is now."""
    if answer is None and UPSERT_MAY_ANSWER_NULL:
        return collection.find_one(query, projection=projection)
    return answer


def inclusive_time_range(oldest: datetime, newest: datetime) -> dict[str, datetime]:
    """``{$gte: oldest, $lte: newest}`` for a time field, written so the embedded server keeps the
    lower bound.

    SecantusDB 0.7 treats ``$gte`` as ``$gt`` on a descending index field followed by another
    field (the timeline index ``(citizen_id, -started_at, -_id)``): measured 2026-12-01, 30 visits
    a day apart, ``$gte`` day 0 with ``$lte`` day 10 found 10, not 11. BSON times are whole
    milliseconds, so ``$gt`` one millisecond earlier is the same set on any server.
    """
    return {"$gt": oldest - timedelta(milliseconds=1), "$lte": newest}
