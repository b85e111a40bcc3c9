"""The whole record as a FHIR R4 Bundle (Patient, Encounter, Condition, Observation,
MedicationRequest, Immunization, Provenance): every kind of the kind table, through its builder.

Records a facility withdrew are exported as ``entered-in-error`` without their content, so a
system that imported an earlier export (or uses ``since``) learns to drop them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from app.models.citizen import Citizen
from app.services import audit
from app.services.audit import RequestContext
from app.services.fhir_resources import clean, patient, provenance, urn
from app.services.ingest.kinds import kinds
from app.services.timeline import FacilityNames

EXPORT_LIMIT = 5000


def export_bundle(ctx: RequestContext, citizen: Citizen, since: datetime | None = None, *,
                  facility_names: FacilityNames | None = None) -> dict[str, Any]:
    """The citizen's record as a FHIR R4 ``collection`` Bundle (changes since ``since`` if given).

    ``facility_names`` is the app's cache of facility names (without one, names are read).
    """
    filters: dict[str, Any] = {"citizen_id": citizen.id}
    if since:
        filters["updated_at__gte"] = since
    records = [(kind, list(kind.model.objects(**filters).order_by(f"-{kind.time_field}").limit(EXPORT_LIMIT)))
               for kind in kinds()]
    names = (facility_names or FacilityNames()).names({r.facility_code for _, found in records for r in found})
    subject = urn("patient", citizen.id)
    entries: list[tuple[str, dict]] = [(subject, patient(citizen))]
    for kind, found in records:
        for record in found:
            resources = kind.fhir_resources(record, subject, names)
            entries += resources + [(urn("provenance", record.id), provenance(resources[0][0], record, names))]
    audit.record(ctx, "record.export", citizen_id=citizen.id, target_type="citizen",
                 target_id=str(citizen.id), access="read",
                 details={**{kind.plural: len(found) for kind, found in records},
                          "since": since.isoformat() if since else None})
    return clean({
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "collection",
        "timestamp": ctx.now.isoformat(),
        "entry": [{"fullUrl": full_url, "resource": resource} for full_url, resource in entries],
    })
