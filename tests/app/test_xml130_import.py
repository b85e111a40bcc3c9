"""POST /facility/xml130 and `flask import-xml130`: QĐ 130 envelopes become visits, keyed by MA_LK."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.models.records import Visit
from tests.helpers import facility_token

DATA = Path(__file__).parents[1] / "data" / "xml130"
XML = {"Content-Type": "application/xml"}


@pytest.fixture
def clinic(app) -> dict[str, str]:
    """The facility the fixtures name (MACSKCB 79012)."""
    return {"Authorization": f"Bearer {facility_token('79012')}", **XML}


def post(client, headers, name: str):
    return client.post("/api/v1/facility/xml130", data=(DATA / name).read_bytes(), headers=headers)


def test_envelope_becomes_visits_and_repeats_are_unchanged(client, clinic):
    response = post(client, clinic, "two_visits.xml")
    assert response.status_code == 200, response.json
    assert response.json["summary"] == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    assert [r["source_id"] for r in response.json["records"]] == ["KB2606020001", "DT2606030007"]
    visit = Visit.objects.get(source_id="KB2606020001")
    assert visit.facility_code == "79012" and visit.provenance.channel == "xml130"
    principal = [d for d in visit.diagnoses if d.principal]
    assert principal[0].code == "J20.9" and principal[0].text == "Viêm phế quản cấp"
    assert {d.code for d in visit.diagnoses if not d.principal} == {"I10", "E11.9"}
    assert visit.lab_results[0].value == "12.50"  # kept exactly as sent
    assert visit.prescriptions and visit.prescriptions[0].code is None
    assert visit.started_at.isoformat().startswith("2026-06-02T01:30:00")  # 08:30 in Vietnam
    again = post(client, clinic, "two_visits.xml")
    assert again.json["summary"]["unchanged"] == 2


def test_a_bad_record_is_rejected_alone(client, clinic):
    response = post(client, clinic, "bad_record.xml")
    assert response.status_code == 200
    statuses = [r["status"] for r in response.json["records"]]
    assert 201 in statuses and any(status >= 400 for status in statuses)
    assert Visit.objects.count() == statuses.count(201)


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml", "not_giamdinhhs.xml"])
def test_hostile_or_foreign_documents_are_refused_whole(client, clinic, name):
    response = post(client, clinic, name)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "root:" not in response.get_data(as_text=True)  # nothing of /etc/passwd
    assert Visit.objects.count() == 0


def test_records_of_another_facility_are_refused(client):
    other = {"Authorization": f"Bearer {facility_token('01001')}", **XML}
    response = post(client, other, "two_visits.xml")
    assert [r["status"] for r in response.json["records"]] == [403, 403]
    assert Visit.objects.count() == 0


def test_json_body_is_415(client, clinic):
    response = client.post("/api/v1/facility/xml130", json={}, headers={"Authorization": clinic["Authorization"]})
    assert response.status_code == 415


def test_cli_import_with_progress(app):
    facility_token("79012")  # registers the facility
    result = app.test_cli_runner().invoke(args=["import-xml130", str(DATA / "two_visits.xml")])
    assert result.exit_code == 0, result.output
    assert "2 created" in result.output
    assert Visit.objects.count() == 2
    bad = app.test_cli_runner().invoke(args=["import-xml130", str(DATA / "billion_laughs.xml")])
    assert bad.exit_code == 1
