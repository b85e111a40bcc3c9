"""What the three channels (PUT, NDJSON, XML 130) share: the item, its result, its answer.

One rule for a facility's source id, one ``parse_item`` (raw document + kind + source id -> a
validated :class:`PushItem` or the item's refusal) and one per-item answer, so that a record
pushed by any channel is checked and answered alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import marshmallow as ma

from app.schemas.base import app_clock
from app.services.errors import DomainError, InvalidInput
from app.services.ingest.kinds import KINDS, names_text

SOURCE_ID = re.compile(r"^[A-Za-z0-9._:/-]{1,64}$")
SOURCE_ID_RULE = "1-64 letters, digits, '.', '_', ':', '/' or '-'."


@dataclass(frozen=True)
class PushItem:
    """One validated record to push (``data`` is what the push schema loaded)."""

    kind: str
    source_id: str
    data: dict[str, Any]
    channel: str = "api"


@dataclass
class PushResult:
    """What happened to one item (or why it was refused): HTTP-like status, the record id and version, or errors."""

    status: int
    outcome: str | None = None
    id: str | None = None
    version: int | None = None
    problem: str | None = None
    errors: dict[str, Any] | None = None
    error: DomainError | None = None


def valid_source_id(source_id: object) -> bool:
    """A facility's own record id: 1-64 letters, digits and ``._:/-``."""
    return isinstance(source_id, str) and SOURCE_ID.match(source_id) is not None


def check_source_id(source_id: str) -> None:
    """The source id rule as a domain error (the PUT's path parameter)."""
    if not valid_source_id(source_id):
        raise InvalidInput({"source_id": [SOURCE_ID_RULE]})


def refused(status: int, errors: dict[str, Any]) -> PushResult:
    """An item refused before it reached the database."""
    return PushResult(status, errors=errors)


def parse_item(document: dict[str, Any], kind: object, source_id: object, *, now: datetime, channel: str,
               source_field: str = "source_id") -> PushItem | PushResult:
    """A validated push item, or the refusal of this item (422; kind and source id checked together).

    ``now`` is the app's clock, against which clinical times are checked ("not in the future").
    ``source_field`` names the source id in the errors (``MA_LK`` in an XML 130 envelope).
    """
    errors: dict[str, Any] = {}
    if not isinstance(kind, str) or kind not in KINDS:
        errors["type"] = [f"{names_text()}."]
    if not valid_source_id(source_id):
        errors[source_field] = [SOURCE_ID_RULE]
    if errors:
        return refused(422, errors)
    assert isinstance(kind, str) and isinstance(source_id, str)
    try:
        with app_clock(now):
            data = KINDS[kind].push_schema.load(document)
    except ma.ValidationError as error:
        return refused(422, error.normalized_messages())
    return PushItem(kind, source_id, data, channel=channel)


def answer(result: PushResult) -> dict[str, Any]:
    """The per-item answer of every channel (an NDJSON line, an XML 130 result entry)."""
    entry: dict[str, Any] = {"status": result.status}
    if result.id:
        entry.update(id=result.id, version=result.version, outcome=result.outcome)
    if result.problem:
        entry["problem"] = result.problem
    if result.errors:
        entry["errors"] = result.errors
    return entry
