"""Keyset paging shared by every list: newest first by a time field, ties broken by id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from mongoengine import Q

from app.services.errors import InvalidInput


def after(cursor: dict[str, str] | None, field: str) -> Q:
    """The filter for the items after ``cursor`` (``{"t": ISO time, "id": object id}``)."""
    if not cursor:
        return Q()
    try:
        moment, last = datetime.fromisoformat(cursor["t"]), ObjectId(cursor["id"])
    except (KeyError, ValueError, InvalidId, TypeError):
        raise InvalidInput({"cursor": ["Not a valid cursor."]}) from None
    return Q(**{f"{field}__lt": moment}) | Q(**{field: moment, "id__lt": last})


def newest_first(query: Any, field: str, limit: int) -> tuple[list[Any], dict[str, str] | None]:
    """One page of ``query`` and the cursor of the next page (None on the last one)."""
    items = list(query.order_by(f"-{field}", "-id").limit(limit + 1))
    if len(items) <= limit:
        return items, None
    items = items[:limit]
    return items, {"t": getattr(items[-1], field).isoformat(), "id": str(items[-1].id)}
