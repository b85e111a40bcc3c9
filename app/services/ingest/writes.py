"""The one way to write a health collection (visits, immunizations, every later kind).

A citizen's timeline pages are cached keyed on ``Citizen.records_version`` (see
``app.services.timeline.PageCache``), so every write to a citizen's records must bump it, or a
cached page goes on showing the old record. Writes go through :class:`RecordWrites`, which
remembers the citizens each write concerned and bumps every one of them once when the unit of
work ends (also when it ends with an error: what was written is written). A new write path that
uses it cannot forget the bump.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any

from bson import ObjectId
from pymongo.errors import BulkWriteError

from app.infra.embedded_quirks import in_chunks
from app.models.citizen import Citizen


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
    their ``records_version`` bumped once, at the end, whatever their state.
    """

    def __init__(self) -> None:
        self.citizens: set[ObjectId] = set()

    def __enter__(self) -> RecordWrites:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.flush()

    def flush(self) -> None:
        """Bump the citizens written so far."""
        citizens, self.citizens = self.citizens, set()
        bump_records_versions(citizens)

    def insert(self, model: Any, documents: list[dict]) -> set[int]:
        """Insert new records (each names its ``citizen_id``); returns the positions that were duplicates."""
        duplicates = insert_ignoring_duplicates(model._get_collection(), documents)
        self.citizens.update(doc["citizen_id"] for i, doc in enumerate(documents) if i not in duplicates)
        return duplicates

    def update(self, queryset: Any, citizens: Iterable[ObjectId | None], **updates: Any) -> int:
        """``queryset.update_one(**updates)``; when it changed a record, ``citizens`` are bumped."""
        updated: int = queryset.update_one(**updates)
        if updated:
            self.citizens.update(citizen for citizen in citizens if citizen is not None)
        return updated
