"""The one way to write a health collection (visits, immunizations, every later kind).

A citizen's timeline pages are cached keyed on ``Citizen.records_version`` (see
``app.services.timeline.PageCache``), so every write to a citizen's records must bump it, or a
cached page goes on showing the old record. Writes go through :class:`RecordWrites`, which
remembers the citizens each write concerned and bumps them once when the unit of work ends (also
when it ends with an error: what was written is written). A new write path that uses it cannot
forget the bump.

The one exception, measured: a batch does not bump the citizens it read as not yet active (the
citizens a bulk upload creates, by the thousand; bumping them too made ``make bench``'s bulk
ratio fall from 0.58 to 0.15-0.35 on the embedded database). They cannot have read a timeline
when they were read; one who activates while the batch is in flight is covered by the timeline
not caching pages in the first minutes after activation (``timeline.ACTIVATION_SETTLE``) and by a
batch slower than ``SLOW_BATCH_SECONDS`` bumping everyone it wrote for.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from bson import ObjectId
from pymongo.errors import BulkWriteError

from app.infra.embedded_quirks import in_chunks
from app.models.citizen import Citizen

# Well inside ``timeline.ACTIVATION_SETTLE`` (five minutes).
SLOW_BATCH_SECONDS = 60.0


def insert_ignoring_duplicates(collection: Any, documents: list[dict]) -> set[int]:
    """Insert, ignoring duplicates; returns the positions that were duplicates."""
    if not documents:
        return set()
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        duplicates = {e["index"] for e in error.details.get("writeErrors", []) if e.get("code") == 11000}
        if len(duplicates) != len(error.details.get("writeErrors", [])):
            raise
        return duplicates
    return set()


def bump_records_versions(citizen_ids: Iterable[ObjectId]) -> None:
    """Invalidate the cached timeline pages of these citizens (a few round trips per hundred)."""
    targets = list(dict.fromkeys(citizen_ids))
    for chunk in in_chunks(targets):
        Citizen._get_collection().update_many({"_id": {"$in": chunk}}, {"$inc": {"records_version": 1}})


class RecordWrites:
    """A unit of work on health collections: ``with RecordWrites() as writes: writes.insert(...)``.

    Every citizen a write changed (and the citizen a correction moved a record away from) has
    their ``records_version`` bumped once, at the end (and the citizens a correction moved a record
    from, whatever their state), except ``not_active``: the citizens the
    caller read as not yet active, ``citizens_read_at`` (``time.monotonic()``) at the oldest;
    when that was more than ``SLOW_BATCH_SECONDS`` ago, they are bumped too.
    """

    def __init__(self, not_active: Iterable[ObjectId] = (), citizens_read_at: float | None = None) -> None:
        self.citizens: set[ObjectId] = set()
        self.moved_from: set[ObjectId] = set()  # always bumped: their state was not read
        self._not_active = set(not_active)
        self._read_at = time.monotonic() if citizens_read_at is None else citizens_read_at

    def __enter__(self) -> RecordWrites:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.flush()

    def flush(self) -> None:
        """Bump the citizens written so far."""
        citizens, self.citizens = self.citizens, set()
        if time.monotonic() - self._read_at <= SLOW_BATCH_SECONDS:
            citizens -= self._not_active
        bump_records_versions(citizens | self.moved_from)
        self.moved_from = set()

    def insert(self, model: Any, documents: list[dict]) -> set[int]:
        """Insert new records (each names its ``citizen_id``); returns the positions that were duplicates."""
        duplicates = insert_ignoring_duplicates(model._get_collection(), documents)
        self.citizens.update(doc["citizen_id"] for i, doc in enumerate(documents) if i not in duplicates)
        return duplicates

    def update(self, queryset: Any, citizens: Iterable[ObjectId | None], *, moved_from: ObjectId | None = None,
               **updates: Any) -> int:
        """``queryset.update_one(**updates)``; when it changed a record, ``citizens`` are bumped, and
        ``moved_from`` (the citizen a correction took the record from) whatever their state."""
        updated: int = queryset.update_one(**updates)
        if updated:
            self.citizens.update(citizen for citizen in citizens if citizen is not None)
            if moved_from is not None:
                self.moved_from.add(moved_from)
        return updated
