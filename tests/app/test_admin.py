"""Administration: facilities, API clients (secret shown once), the audit log."""

from __future__ import annotations

from app.models.audit import AuditEvent
from app.models.facility import FacilityClient
from tests.helpers import assert_problem

FACILITY = {"code": "01001", "name": "Bệnh viện Bạch Mai", "province": "Hà Nội", "level": "central"}


def test_register_facility_and_issue_a_client(client, staff):
    headers = staff.headers()
    created = client.post("/api/v1/admin/facilities", json=FACILITY, headers=headers)
    assert created.status_code == 201
    assert created.json["code"] == "01001" and created.json["active"] is True
    issued = client.post("/api/v1/admin/facilities/01001/clients", json={"label": "HIS"},
                         headers=headers)
    assert issued.status_code == 201
    secret = issued.json["client_secret"]
    stored = FacilityClient.objects(client_id=issued.json["client_id"]).first()
    assert secret not in stored.to_json() and stored.secret_hash.startswith("$argon2id$")
    listed = client.get("/api/v1/admin/facilities/01001/clients", headers=headers)
    assert listed.status_code == 200
    assert [item["client_id"] for item in listed.json["items"]] == [issued.json["client_id"]]
    assert secret not in listed.get_data(as_text=True)
    assert "secret_hash" not in listed.get_data(as_text=True)


def test_client_for_unknown_facility_is_404(client, staff):
    assert_problem(client.post("/api/v1/admin/facilities/99999/clients", json={},
                               headers=staff.headers()), 404)


def test_revoking_unknown_client_is_404(client, staff):
    headers = staff.headers()
    client.post("/api/v1/admin/facilities", json=FACILITY, headers=headers)
    assert_problem(client.delete("/api/v1/admin/facilities/01001/clients/nope", headers=headers),
                   404)


def test_facility_list_pages_with_a_cursor(client, staff):
    headers = staff.headers()
    for number in range(5):
        body = dict(FACILITY, code=f"0100{number}")
        assert client.post("/api/v1/admin/facilities", json=body, headers=headers).status_code == 201
    first = client.get("/api/v1/admin/facilities?limit=2", headers=headers).json
    assert [item["code"] for item in first["items"]] == ["01000", "01001"]
    second = client.get(f"/api/v1/admin/facilities?limit=2&cursor={first['next_cursor']}",
                        headers=headers).json
    assert [item["code"] for item in second["items"]] == ["01002", "01003"]
    third = client.get(f"/api/v1/admin/facilities?limit=2&cursor={second['next_cursor']}",
                       headers=headers).json
    assert [item["code"] for item in third["items"]] == ["01004"]
    assert third["next_cursor"] is None
    # The cursor is URL-safe base64 of compact JSON naming the last key (clients may have stored one).
    assert first["next_cursor"] == "eyJjb2RlIjoiMDEwMDEifQ=="


def test_a_bad_cursor_is_the_same_422_on_every_list(client, staff):
    headers = staff.headers()
    for path in ("/admin/facilities", "/admin/notifications", "/admin/audit"):
        answer = client.get(f"/api/v1{path}?cursor=eyJ4IjoxfQ", headers=headers)
        assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
        assert answer.json == {
            "type": "/problems/validation-error", "title": "Unprocessable Entity", "status": 422,
            "detail": "The request has invalid fields; see errors.", "instance": f"/api/v1{path}",
            "request_id": answer.headers["X-Request-ID"], "errors": {"cursor": ["Not a valid cursor."]},
        }


def test_bad_cursor_and_limit_are_422(client, staff):
    headers = staff.headers()
    assert_problem(client.get("/api/v1/admin/facilities?cursor=%%%", headers=headers), 422)
    assert_problem(client.get("/api/v1/admin/facilities?limit=101", headers=headers), 422)
    assert_problem(client.get("/api/v1/admin/audit?cursor=eyJ4IjoxfQ", headers=headers), 422)


def test_audit_log_filters_and_pages(client, staff):
    headers = staff.headers()
    client.post("/api/v1/admin/facilities", json=FACILITY, headers=headers)
    client.post("/api/v1/admin/facilities", json=FACILITY, headers=headers)  # 409, audited
    client.post("/api/v1/admin/facilities/01001/clients", json={}, headers=headers)
    everything = client.get("/api/v1/admin/audit?limit=100", headers=headers).json["items"]
    actions = [event["action"] for event in everything]
    assert actions[:3] == ["facility_client.issue", "facility.register", "facility.register"]
    failures = client.get("/api/v1/admin/audit?outcome=failure", headers=headers).json["items"]
    assert [event["action"] for event in failures] == ["facility.register"]
    page = client.get("/api/v1/admin/audit?limit=1", headers=headers).json
    rest = client.get(f"/api/v1/admin/audit?limit=100&cursor={page['next_cursor']}",
                      headers=headers).json
    assert [e["id"] for e in page["items"] + rest["items"]] == [e["id"] for e in everything]
    assert everything[0]["actor_type"] == "staff"
    assert everything[0]["request_id"]


def test_audit_events_are_append_only(app):
    import pytest

    from app.models.audit import AppendOnlyError
    from app.services import audit
    from tests.helpers import system_context

    event = AuditEvent.objects.get(id=audit.record(system_context(), "test.event"))
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        event.update(set__action="changed")
    assert AuditEvent.objects(action="test.event").count() == 1


def test_audit_events_are_checked_and_stored_as_the_model_would_store_them(app):
    import pytest
    from bson import ObjectId

    from app.services import audit
    from tests.helpers import system_context

    ctx = system_context()
    for bad in ({"outcome": "maybe"}, {"access": "delete"}, {"reason": "x" * 501}, {"action": ""},
                {"citizen_id": str(ObjectId())}, {"citizen_ids": [str(ObjectId())]}, {"details": {"a.b": 1}},
                {"details": {"$where": 1}}):
        with pytest.raises(ValueError):
            audit.event_document(ctx, **{"action": "test.bad", **bad})
    citizen = ObjectId()
    stored = audit.event_document(ctx, "test.read", citizen_id=citizen, access="read", details={"n": 1})
    assert None not in stored.values()  # unset fields are left out, as mongoengine leaves them
    assert stored == AuditEvent(**stored).to_mongo().to_dict()  # what the model itself would store
    event = AuditEvent.objects.get(id=audit.record(ctx, "test.read", citizen_id=citizen, access="read"))
    event.validate()
    assert (event.citizen_ids, event.access, event.reason) == ([citizen], "read", None)


def test_support_staff_cannot_administer(client, staff):
    headers = staff.headers("support")
    assert_problem(client.post("/api/v1/admin/facilities", json=FACILITY, headers=headers), 403)
    assert_problem(client.post("/api/v1/admin/staff", json={"username": "x1x", "role": "admin"},
                               headers=headers), 403)
