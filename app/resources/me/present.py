"""Records as the citizen (or a share holder) sees them: withdrawn records show no content."""

from __future__ import annotations

import json
from typing import Any

from app.models.records import Immunization, Visit
from app.resources.me.schemas import VisitPageSchema
from app.services.paging import encode_cursor
from app.services.timeline import WITHDRAWN_NOTE, Page, withdrawn

_VISIT_PAGE = VisitPageSchema()


def _facility(code: str, names: dict[str, str]) -> dict[str, Any]:
    return {"code": code, "name": names.get(code)}


def visit_summary(visit: Visit, names: dict[str, str]) -> dict[str, Any]:
    """A timeline entry."""
    base = {"id": str(visit.id), "facility": _facility(visit.facility_code, names),
            "started_at": visit.started_at, "status": visit.status, "withdrawn": withdrawn(visit)}
    if withdrawn(visit):
        return {**base, "note": WITHDRAWN_NOTE}
    return {**base, "visit_type": visit.visit_type, "ended_at": visit.ended_at,
            "department": visit.department, "reason": visit.reason,
            "diagnoses": [d.to_mongo().to_dict() for d in visit.diagnoses],
            "follow_up_date": visit.follow_up_date}


def visit_page(page: Page, names: dict[str, str]) -> bytes:
    """A page of the timeline (``GET /me/visits``) as its JSON body (compact, UTF-8)."""
    body = _VISIT_PAGE.dump({"items": [visit_summary(v, names) for v in page.items],
                             "next_cursor": encode_cursor(page.next_cursor) if page.next_cursor else None})
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def visit_detail(visit: Visit, names: dict[str, str], with_prescriptions: bool = True) -> dict[str, Any]:
    """One visit in full."""
    summary = visit_summary(visit, names)
    if withdrawn(visit):
        return summary
    return {**summary, "practitioner": visit.practitioner.to_mongo().to_dict() if visit.practitioner else None,
            "lab_results": [r.to_mongo().to_dict() for r in visit.lab_results],
            "prescriptions": [p.to_mongo().to_dict() for p in visit.prescriptions] if with_prescriptions else [],
            "notes": visit.notes, "version": visit.version}


def immunization(record: Immunization, names: dict[str, str]) -> dict[str, Any]:
    """A vaccination with the facility's and the citizen's reactions."""
    base = {"id": str(record.id), "facility": _facility(record.facility_code, names),
            "status": record.status, "withdrawn": withdrawn(record),
            "administered_at": record.administered_at}
    if withdrawn(record):
        return {**base, "note": WITHDRAWN_NOTE}
    vaccine = record.vaccine
    return {**base,
            "vaccine": {"name": vaccine.name, "target_disease": vaccine.tg, "type": vaccine.vp,
                        "product": vaccine.mp, "manufacturer": vaccine.ma},
            "dose_number": record.dose_number, "series_doses": record.series_doses,
            "lot": record.lot, "site": record.site, "route": record.route, "country": record.country,
            "primary_source": record.primary_source,
            "reactions": [r.to_mongo().to_dict() for r in [*record.reactions, *record.citizen_reactions]]}


def prescription_entries(visit: Visit, names: dict[str, str]) -> list[dict[str, Any]]:
    """Each prescription of a visit, ready to show at a pharmacy."""
    practitioner = visit.practitioner.to_mongo().to_dict() if visit.practitioner else None
    return [{"visit_id": str(visit.id), "facility": _facility(visit.facility_code, names),
             "prescribed_at": visit.started_at, "practitioner": practitioner, "code": p.code,
             "items": [item.to_mongo().to_dict() for item in p.items]} for p in visit.prescriptions]
