"""POST /facility/bulk: NDJSON in and out, line by line, bad lines alone refused, memory flat."""

from __future__ import annotations

import json

import pytest

from app.models.audit import AuditEvent
from app.models.records import Immunization, Visit
from tests.helpers import facility_token
from tests.records_data import immunization_body, visit_body

NDJSON = "application/x-ndjson"


@pytest.fixture
def facility(client) -> dict[str, str]:
    return {"Authorization": f"Bearer {facility_token('01001')}"}


def line(kind: str, source_id: str, body: dict) -> str:
    return json.dumps({"type": kind, "source_id": source_id, **body}, ensure_ascii=False)


def upload(client, headers, lines: list[str]) -> list[dict]:
    response = client.post("/api/v1/facility/bulk", data="\n".join(lines) + "\n", content_type=NDJSON,
                           headers=headers)
    assert response.status_code == 200
    assert response.mimetype == NDJSON
    return [json.loads(text) for text in response.get_data(as_text=True).splitlines()]


def test_each_line_is_answered_in_order_and_bad_lines_alone_fail(client, facility):
    too_long = line("visit", "LONG", visit_body(notes="x" * 3000, reason="y" * 900)) + " " * 70_000
    lines = [
        line("visit", "LK1", visit_body()),
        "{not json",
        line("immunization", "IM1", immunization_body()),
        too_long,
        line("visit", "LK2", visit_body(diagnoses=[{"code": "BAD", "principal": True}])),
        json.dumps({"type": "x-ray", "source_id": "X1"}),
        "[1, 2]",
        line("visit", "LK1", visit_body()),  # the same record again: unchanged
        line("visit", "LK1", visit_body(notes="đổi")),  # then changed
        line("visit", "LK3", visit_body(serial=222222)),
    ]
    results = upload(client, facility, lines)
    assert [r["line"] for r in results] == list(range(1, 11))
    assert [r["status"] for r in results] == [201, 400, 201, 413, 422, 422, 422, 200, 200, 201]
    assert results[7]["outcome"] == "unchanged" and results[8]["outcome"] == "updated"
    assert results[8]["version"] == 2 and results[0]["id"] == results[8]["id"]
    assert "diagnoses" in results[4]["errors"] and "type" in results[5]["errors"]
    assert Visit.objects.count() == 2 and Immunization.objects.count() == 1
    assert AuditEvent.objects(action__in=["visit.create", "visit.update", "immunization.create"]).count() == 4


def test_identity_mismatch_is_one_line(client, facility):
    results = upload(client, facility, [
        line("visit", "LK1", visit_body()),
        line("visit", "LK2", visit_body(date_of_birth="1985-12-31")),
        line("visit", "LK3", visit_body()),
    ])
    assert [r["status"] for r in results] == [201, 409, 201]
    assert results[1]["problem"] == "identity-mismatch"


def test_wrong_content_type_and_roles(client, facility, staff):
    response = client.post("/api/v1/facility/bulk", json=[visit_body()], headers=facility)
    assert response.status_code == 415
    response = client.post("/api/v1/facility/bulk", data="{}", content_type=NDJSON, headers=staff.headers())
    assert response.status_code == 403


def test_empty_upload_answers_nothing(client, facility):
    response = client.post("/api/v1/facility/bulk", data="", content_type=NDJSON, headers=facility)
    assert response.status_code == 200 and response.data == b""
