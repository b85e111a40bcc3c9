"""Realistic push bodies (the contract's examples) for record tests."""

from __future__ import annotations

import copy
from typing import Any

from tests.helpers import citizen_body

VISIT: dict[str, Any] = {
    "visit_type": "01", "started_at": "2026-06-02T08:30:00+07:00", "ended_at": "2026-06-02T09:10:00+07:00",
    "department": "Khoa Nội", "practitioner": {"code": "BS001", "name": "BS. Trần Thị Hoa"},
    "reason": "Ho kéo dài",
    "diagnoses": [{"code": "J20.9", "display": "Viêm phế quản cấp", "text": "Viêm phế quản cấp",
                   "principal": True}],
    "lab_results": [{"code": "CRP", "name": "CRP", "value": "12.5", "unit": "mg/L", "conclusion": "Tăng nhẹ",
                     "at": "2026-06-02T08:50:00+07:00"}],
    "prescriptions": [{"code": "79001abcdefg-c", "items": [{
        "drug_code": "40.17", "name": "Amoxicillin", "strength": "500mg", "dose_text": "1 viên x 3 lần/ngày",
        "quantity": 21, "route": "uống"}]}],
    "follow_up_date": "2026-06-09", "notes": "Tái khám sau 1 tuần", "status": "final",
}

IMMUNIZATION: dict[str, Any] = {
    "vaccine": {"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
                "name": "Comirnaty"},
    "dose_number": 2, "series_doses": 2, "administered_at": "2021-09-15T10:20:00+07:00", "lot": "FF2593",
    "site": "left deltoid", "route": "intramuscular", "country": "VN",
    "reactions": [{"onset_at": "2021-09-15T20:00:00+07:00", "description": "Sốt nhẹ", "severity": "mild"}],
    "status": "completed",
}


def identity(serial: int = 123456) -> dict[str, Any]:
    """The identity part of a push body (matches ``citizen_body(serial)``)."""
    body = citizen_body(serial)
    return {key: body[key] for key in ("national_id", "full_name", "date_of_birth", "sex")}


def visit_body(serial: int = 123456, **changes: Any) -> dict[str, Any]:
    body = {**identity(serial), **copy.deepcopy(VISIT), **changes}
    return {key: value for key, value in body.items() if value is not None}


def immunization_body(serial: int = 123456, **changes: Any) -> dict[str, Any]:
    body = {**identity(serial), **copy.deepcopy(IMMUNIZATION), **changes}
    return {key: value for key, value in body.items() if value is not None}
