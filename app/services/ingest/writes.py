"""The one way to write a health collection (visits, immunizations, every later kind).

A citizen's lists (timeline, vaccinations, prescriptions) are paged through their list index
(``app.services.list_index``), and the app's page cache is keyed on that index's ``version``. So
every write to a health collection must report what it added to and removed from the lists, or
a page goes on missing the new record (or showing a moved one). Writes go through
:class:`RecordWrites`, which collects each insert's and update's keys in a ``list_index.Changes``
and applies them once when the unit of work ends (also when it ends with an error: what was
written is written): one update of the index per citizen. A new write path that uses it cannot
forget the index.

Citizens the caller read as not yet active (the citizens a bulk upload creates, by the thousand)
have no index: ``list_index.apply`` skips them, except one whose index was built (they activated)
since the caller read them, whose items are then added like the others (see ``list_index``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from bson import ObjectId
from pymongo.errors import BulkWriteError

from app.clock import utcnow
from app.services import list_index


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


class RecordWrites:
    """A unit of work on health collections: ``with RecordWrites() as writes: writes.insert(...)``.

    What each write added to and removed from the citizens' lists is applied to their list
    indexes at the end (:meth:`flush`). ``not_active``: the citizens the caller read as not yet
    active, ``citizens_read_at`` (``time.monotonic()``) at the oldest: they have no index unless
    they activated since (``list_index.apply``).
    """

    def __init__(self, not_active: Iterable[ObjectId] = (), citizens_read_at: float | None = None) -> None:
        self.changes = list_index.Changes()
        self._not_active = set(not_active)
        self._read_at = time.monotonic() if citizens_read_at is None else citizens_read_at

    def __enter__(self) -> RecordWrites:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.flush()

    def read_at(self) -> datetime:
        """When the caller read its citizens, on the clock that ``list_index.build`` records."""
        return utcnow() - timedelta(seconds=time.monotonic() - self._read_at)

    def flush(self) -> None:
        """Apply the changes written so far to the citizens' list indexes."""
        changes, self.changes = self.changes, list_index.Changes()
        list_index.apply(changes, not_indexed=self._not_active, read_at=self.read_at())

    def insert(self, model: Any, documents: list[dict]) -> set[int]:
        """Insert new records (each names its ``citizen_id``); returns the positions that were duplicates."""
        collection = model._get_collection()
        duplicates = insert_ignoring_duplicates(collection, documents)
        for position, document in enumerate(documents):
            if position not in duplicates:
                self.changes.inserted(collection.name, document)
        return duplicates

    def update(self, queryset: Any, **updates: Any) -> int:
        """``queryset.update_one(**updates)``; a record it changed has its keys moved in the lists
        (its time, facility, citizen or membership may have changed).

        The record is read before (with the queryset's own filter) and after (by id and its
        citizen after the update), only the fields that decide its keys: two reads by id.
        """
        collection = queryset._document._get_collection()
        projection = list_index.projection_of(collection.name)
        before = collection.find_one(queryset._query, projection)
        if before is None:
            return 0  # nothing matches the filter (the caller's optimistic check failed)
        updated: int = queryset.update_one(**updates)
        if updated:
            citizen_id = updates.get("set__citizen_id", before["citizen_id"])
            after = collection.find_one({"_id": before["_id"], "citizen_id": citizen_id}, projection)
            self.changes.replaced(collection.name, before, after)
        return updated
