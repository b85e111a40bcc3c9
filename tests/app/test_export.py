"""GET /me/export: the whole record as a FHIR R4 Bundle that fhir.resources validates."""

from __future__ import annotations

from collections import Counter

from fhir.resources.R4B.bundle import Bundle

from tests.records_data import immunization_body

V1 = "/api/v1"


def export(client, account, query=""):
    response = client.get(f"{V1}/me/export{query}", headers=account.headers)
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    return response.json


def test_export_is_a_valid_r4_bundle_with_every_resource(client, world):
    alice = world["alice"]
    record_id = client.get(f"{V1}/me/immunizations", headers=alice.headers).json["items"][0]["id"]
    client.post(f"{V1}/me/immunizations/{record_id}/reactions", headers=alice.headers,
                json={"onset_at": "2021-09-16T07:00:00+07:00", "description": "Đau tay", "severity": "mild"})
    bundle = export(client, alice)
    Bundle.model_validate(bundle)  # raises on any R4 violation
    kinds = Counter(entry["resource"]["resourceType"] for entry in bundle["entry"])
    assert kinds["Patient"] == 1 and kinds["Encounter"] == 6 and kinds["Immunization"] == 1
    assert kinds["Condition"] == 5 and kinds["MedicationRequest"] == 5 and kinds["Provenance"] == 7
    assert kinds["Observation"] == 5 + 2  # lab results + two reactions
    resources = [entry["resource"] for entry in bundle["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    assert patient["identifier"][0]["value"] == alice.national_id and patient["birthDate"] == "1985-03-14"
    immunization = next(r for r in resources if r["resourceType"] == "Immunization")
    assert immunization["protocolApplied"][0]["doseNumberPositiveInt"] == 2
    assert [r["reported"] for r in immunization["reaction"]] == [False, True]
    statuses = Counter(r["status"] for r in resources if r["resourceType"] == "Encounter")
    assert statuses == {"finished": 5, "entered-in-error": 1}
    request = next(r for r in resources if r["resourceType"] == "MedicationRequest")
    assert request["groupIdentifier"]["value"] == "79001abcdefg-c"
    condition = next(r for r in resources if r["resourceType"] == "Condition")
    assert condition["code"]["coding"][0] == {"system": "http://hl7.org/fhir/sid/icd-10", "code": "J20.9",
                                              "display": "Viêm phế quản cấp"}
    full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
    for resource in resources:  # every internal reference resolves inside the bundle
        for reference in _references(resource):
            assert reference in full_urls


def test_ids_are_stable_and_since_returns_changes(client, world):
    alice = world["alice"]
    first = export(client, alice)
    second = export(client, alice)
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in second["entry"]]
    moment = first["timestamp"].replace("+00:00", "Z")
    client.put(f"{V1}/facility/immunizations/IM1", json=immunization_body(lot="NEW123"), headers=world["hanoi"])
    changes = export(client, alice, f"?since={moment}")
    Bundle.model_validate(changes)
    kinds = Counter(entry["resource"]["resourceType"] for entry in changes["entry"])
    assert kinds["Immunization"] == 1 and kinds["Encounter"] == 0


def _references(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)
