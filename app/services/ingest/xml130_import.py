"""Import Vietnam's insurance XML (QĐ 130/4750) as visits: shared by the HTTP route and the CLI."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.errors import PyMongoError

from app.services.audit import RequestContext
from app.services.errors import InvalidInput
from app.services.ingest.items import PushItem, PushResult, answer, parse_item, refused
from app.services.ingest.records import ingest
from app.services.ingest.xml130 import Xml130Error, Xml130Record, parse_envelope

log = logging.getLogger("hoso.xml130")
BATCH_SIZE = 200
UNCONFIRMED = PushResult(503, errors={"record": [
    "Not confirmed: the database was unavailable. Send the envelope again (imports are idempotent)."]})


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


def _check(record: Xml130Record, facility_code: str, now: datetime) -> PushItem | PushResult:
    """A push item for a record, or its refusal."""
    if record.problems:
        return refused(422, {"record": record.problems})
    if record.facility_code and record.facility_code != facility_code:
        return refused(403, {"MA_CSKCB": [
            f"This record belongs to facility {record.facility_code}; a facility pushes only its own."]})
    return parse_item(record.visit, "visit", record.source_id, now=now, channel="xml130", source_field="MA_LK")


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
        checked = [(record, _check(record, facility_code, ctx.now)) for record in chunk]
        items = [entry for _, entry in checked if isinstance(entry, PushItem)]
        try:
            results = iter([] if stopped else ingest(ctx, items))
        except PyMongoError as error:  # the database went away: this batch is unconfirmed, later ones are not tried
            log.error("xml130 batch failed", exc_info=error)
            stopped = True
        for record, entry in checked:
            result = (UNCONFIRMED if stopped else next(results)) if isinstance(entry, PushItem) else entry
            report.records.append({"index": record.index, "source_id": record.source_id, **answer(result)})
        if progress:
            progress(len(chunk))
    return report
