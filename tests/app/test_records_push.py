"""Facilities push visits and immunizations: idempotency, versions, voiding, identity, bad input."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from app.models.audit import AuditEvent
from app.models.citizen import Citizen
from app.models.records import Immunization, RecordKey, Visit
from tests.helpers import CitizenActions, assert_problem, facility_token, national_id_for
from tests.records_data import identity, immunization_body, visit_body


@pytest.fixture
def facility(client) -> dict[str, str]:
    return {"Authorization": f"Bearer {facility_token('01001')}"}


def put_visit(client, headers, source_id="LK001", body=None):
    return client.put(f"/api/v1/facility/visits/{source_id}", json=body or visit_body(), headers=headers)


def put_immunization(client, headers, source_id="IM001", body=None):
    return client.put(f"/api/v1/facility/immunizations/{source_id}", json=body or immunization_body(),
                      headers=headers)


def test_create_then_unchanged_then_updated(client, facility):
    created = put_visit(client, facility)
    assert created.status_code == 201
    assert created.json["version"] == 1 and created.json["outcome"] == "created"
    same = put_visit(client, facility)
    assert same.status_code == 200
    assert same.json == {"id": created.json["id"], "version": 1, "outcome": "unchanged"}
    changed = put_visit(client, facility, body=visit_body(notes="Uống nhiều nước"))
    assert changed.status_code == 200
    assert changed.json == {"id": created.json["id"], "version": 2, "outcome": "updated"}
    visit = Visit.objects.get(id=created.json["id"])
    assert visit.notes == "Uống nhiều nước" and visit.version == 2
    assert visit.provenance.client_id and visit.provenance.facility_code == "01001"
    assert visit.provenance.payload_hash == visit.payload_hash
    actions = [e.action for e in AuditEvent.objects(target_type="visit").order_by("at")]
    assert actions == ["visit.create", "visit.update"]  # the unchanged push wrote nothing


def test_same_content_with_another_time_zone_is_unchanged(client, facility):
    put_visit(client, facility)
    body = visit_body(started_at="2026-06-02T01:30:00Z")
    assert put_visit(client, facility, body=body).json["outcome"] == "unchanged"


def test_twenty_concurrent_identical_puts_make_one_record(app, facility):
    def push(_: int) -> int:
        with app.app_context():
            return put_visit(app.test_client(), facility).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(push, range(20)))
    assert statuses.count(201) == 1, statuses
    assert statuses.count(200) == 19
    assert Visit.objects.count() == 1 and RecordKey.objects.count() == 1
    assert AuditEvent.objects(action="visit.create").count() == 1


def test_unknown_citizen_is_created_without_an_account(client, facility):
    put_visit(client, facility)
    citizen = Citizen.objects.get(national_id=identity()["national_id"])
    assert citizen.state == "pending_activation" and citizen.activation is None
    assert citizen.password_hash is None


def test_identity_mismatch_is_409_and_writes_nothing(client, facility):
    CitizenActions(client).register()
    body = visit_body(date_of_birth="1985-07-01")
    problem = assert_problem(put_visit(client, facility, body=body), 409)
    assert problem["type"] == "/problems/identity-mismatch"
    assert Visit.objects.count() == 0 and RecordKey.objects.count() == 0


def test_replacement_removes_fields_the_new_push_omits(client, facility):
    record_id = put_visit(client, facility).json["id"]
    body = visit_body()
    del body["lab_results"], body["notes"]
    put_visit(client, facility, body=body)
    visit = Visit.objects.get(id=record_id)
    assert visit.lab_results == [] and visit.notes is None


def test_each_facility_has_its_own_source_ids(client, facility):
    other = {"Authorization": f"Bearer {facility_token('01002')}"}
    first = put_visit(client, facility).json["id"]
    second = put_visit(client, other, body=visit_body(notes="another hospital")).json["id"]
    assert first != second
    assert Visit.objects.get(id=first).notes == "Tái khám sau 1 tuần"  # untouched by the other


def test_voiding_keeps_the_record_and_marks_it(client, facility):
    record_id = put_visit(client, facility).json["id"]
    voided = put_visit(client, facility, body=visit_body(status="entered-in-error"))
    assert voided.json["version"] == 2
    assert Visit.objects.get(id=record_id).status == "entered-in-error"
    assert AuditEvent.objects(action="visit.void").count() == 1


def test_prescription_codes_are_case_insensitive(client, facility):
    body = visit_body()
    body["prescriptions"][0]["code"] = "79001ABCDEFG-C"
    record_id = put_visit(client, facility, body=body).json["id"]
    assert Visit.objects.get(id=record_id).prescriptions[0].code == "79001abcdefg-c"


def test_facility_repush_never_touches_citizen_reactions(client, facility):
    citizens = CitizenActions(client)
    account = citizens.enrol()
    record_id = put_immunization(client, facility).json["id"]
    client.post(f"/api/v1/me/immunizations/{record_id}/reactions", headers=account.headers,
                json={"onset_at": "2021-09-16T07:00:00+07:00", "description": "Đau tay", "severity": "mild"})
    put_immunization(client, facility, body=immunization_body(reactions=[]))
    record = Immunization.objects.get(id=record_id)
    assert record.reactions == [] and [r.description for r in record.citizen_reactions] == ["Đau tay"]


VISIT_ERRORS = [
    ({"diagnoses": [{"code": "J209", "principal": True}]}, "diagnoses"),
    ({"diagnoses": [{"code": "J20.9", "principal": True}, {"code": "I10", "principal": True}]}, "diagnoses"),
    ({"prescriptions": [{"code": "79001abcdefg", "items": [{"name": "x"}]}]}, "prescriptions"),
    ({"prescriptions": [{"code": "79001abcdefg-x", "items": [{"name": "x"}]}]}, "prescriptions"),
    ({"prescriptions": [{"items": []}]}, "prescriptions"),
    ({"started_at": "2099-01-01T08:00:00+07:00"}, "started_at"),
    ({"started_at": "2026-06-02T08:30:00"}, "started_at"),  # no time zone
    ({"ended_at": "2026-06-01T08:00:00+07:00"}, "ended_at"),
    ({"started_at": "1980-01-01T08:00:00+07:00", "ended_at": None, "follow_up_date": None,
      "lab_results": None}, "started_at"),  # before birth
    ({"lab_results": [{"name": "CRP", "value": 12.5}]}, "lab_results"),
    ({"visit_type": "1"}, "visit_type"),
    ({"national_id": "0010851234567"}, "national_id"),
    ({"national_id": national_id_for(1990)}, "national_id"),
    ({"national_id": {"$ne": ""}}, "national_id"),
    ({"notes": {"$gt": ""}}, "notes"),
    ({"status": "deleted"}, "status"),
    ({"colour": "blue"}, "colour"),
    ({"version": 7}, "version"),
]


@pytest.mark.parametrize("changes, field", VISIT_ERRORS, ids=[f for _, f in VISIT_ERRORS])
def test_bad_visits_are_422_and_change_nothing(client, facility, changes, field):
    problem = assert_problem(put_visit(client, facility, body=visit_body(**changes)), 422)
    assert field in problem["errors"]
    assert Visit.objects.count() == 0 and Citizen.objects.count() == 0


IMMUNIZATION_ERRORS = [
    ({"vaccine": {"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/9999", "ma": "ORG-100030215"}}, "vaccine"),
    ({"vaccine": {"tg": "123", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215"}}, "vaccine"),
    ({"dose_number": 0}, "dose_number"),
    ({"dose_number": 2.5}, "dose_number"),
    ({"dose_number": "2"}, "dose_number"),
    ({"series_doses": 21}, "series_doses"),
    ({"administered_at": "2099-01-01T08:00:00+07:00"}, "administered_at"),
    ({"administered_at": "1984-01-01T08:00:00+07:00", "reactions": []}, "administered_at"),
    ({"administered_at": "2021-09-15"}, "administered_at"),
    ({"country": "XX"}, "country"),
    ({"reactions": [{"onset_at": "2021-09-14T08:00:00+07:00", "description": "x", "severity": "mild"}]},
     "reactions"),
    ({"reactions": [{"onset_at": "2021-09-15T20:00:00+07:00", "description": "x", "severity": "deadly"}]},
     "reactions"),
]


@pytest.mark.parametrize("changes, field", IMMUNIZATION_ERRORS, ids=[f for _, f in IMMUNIZATION_ERRORS])
def test_bad_immunizations_are_422_and_change_nothing(client, facility, changes, field):
    problem = assert_problem(put_immunization(client, facility, body=immunization_body(**changes)), 422)
    assert field in problem["errors"]
    assert Immunization.objects.count() == 0


def test_dose_number_given_as_a_whole_float_is_accepted(client, facility):
    assert put_immunization(client, facility, body=immunization_body(dose_number=2.0)).status_code == 201


@pytest.mark.parametrize("source_id", ["a" * 65, "LK 001", "LK%00"])
def test_bad_source_ids_are_refused(client, facility, source_id):
    response = client.put(f"/api/v1/facility/visits/{source_id}", json=visit_body(), headers=facility)
    assert response.status_code in (404, 422)
    assert Visit.objects.count() == 0


def test_other_roles_cannot_push(client, staff):
    account = CitizenActions(client).enrol()
    for headers in (account.headers, staff.headers("admin"), {}):
        assert put_visit(client, headers).status_code in (401, 403)
