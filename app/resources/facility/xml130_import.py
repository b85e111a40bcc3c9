"""Import Vietnam's insurance XML (QĐ 130/4750) as visits: shared by the HTTP route and the CLI."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import marshmallow as ma
from pymongo.errors import PyMongoError

from app.resources.facility.records_schemas import VisitPushSchema
from app.services.audit import RequestContext
from app.services.errors import InvalidInput
from app.services.records import SOURCE_ID, PushItem, ingest
from app.services.xml130 import Xml130Error, Xml130Record, parse_envelope

log = logging.getLogger("hoso.xml130")
BATCH_SIZE = 200
_SCHEMA = VisitPushSchema()


@dataclass
class ImportReport:
    """What happened to each record of one envelope."""

    facility_code: str | None
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        counts = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
        for record in self.records:
            counts[record.get("outcome") or "rejected"] += 1
        return counts


def _check(record: Xml130Record, facility_code: str) -> PushItem | dict[str, Any]:
    """A push item for a record, or its rejection."""
    if record.problems:
        return {"status": 422, "errors": {"record": record.problems}}
    if record.facility_code and record.facility_code != facility_code:
        return {"status": 403, "errors": {"MA_CSKCB": [
            f"This record belongs to facility {record.facility_code}; a facility pushes only its own."]}}
    if not record.source_id or not SOURCE_ID.match(record.source_id):
        return {"status": 422, "errors": {"MA_LK": ["1-64 letters, digits, '.', '_', ':', '/' or '-'."]}}
    try:
        data = _SCHEMA.load(record.visit)
    except ma.ValidationError as error:
        return {"status": 422, "errors": error.normalized_messages()}
    return PushItem("visit", record.source_id, data, channel="xml130")


def import_envelope(
    ctx: RequestContext, data: bytes, progress: Callable[[int], None] | None = None
) -> ImportReport:
    """Parse an envelope and push its visits as ``ctx.actor.facility_code``, keyed by MA_LK."""
    facility_code = ctx.actor.facility_code or ""
    try:
        envelope_facility, records = parse_envelope(data)
    except Xml130Error as error:
        raise InvalidInput({"body": [str(error)]}) from None
    report = ImportReport(envelope_facility)
    stopped = False
    for start in range(0, len(records), BATCH_SIZE):
        chunk = records[start:start + BATCH_SIZE]
        checked = [(record, _check(record, facility_code)) for record in chunk]
        items = [entry for _, entry in checked if isinstance(entry, PushItem)]
        try:
            results = iter([] if stopped else ingest(ctx, items))
        except PyMongoError as error:  # the database went away: this batch is unconfirmed, later ones are not tried
            log.error("xml130 batch failed", exc_info=error)
            stopped = True
        for record, entry in checked:
            answer: dict[str, Any] = {"index": record.index, "source_id": record.source_id}
            if isinstance(entry, PushItem) and stopped:
                answer.update(status=503, errors={"record": [
                    "Not confirmed: the database was unavailable. Send the envelope again (imports are idempotent)."]})
            elif isinstance(entry, PushItem):
                result = next(results)
                answer["status"] = result.status
                if result.id:
                    answer.update(id=result.id, version=result.version, outcome=result.outcome)
                if result.errors:
                    answer["errors"] = result.errors
            else:
                answer.update(entry)
            report.records.append(answer)
        if progress:
            progress(len(chunk))
    return report
