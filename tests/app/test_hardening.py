"""The findings of the outside attack (issue 12), one test each: every one failed before its fix."""

from __future__ import annotations

import json
import unicodedata
from datetime import timedelta

import pytest
from bson import ObjectId

from app.clock import utcnow
from app.infra.batching import Failed
from app.models.audit import AuditEvent
from app.models.citizen import Citizen
from app.models.notification import Notification
from app.models.records import Visit
from app.models.session import Session
from app.services import audit, support
from app.services.audit import InvalidAuditEvent
from tests.helpers import RESET, assert_problem, facility_token, support_url, system_context
from tests.records_data import identity, immunization_body, visit_body

V1 = "/api/v1"
SURROGATE = '"bad \\ud800 text"'  # valid JSON, not UTF-8 text


def with_raw(body: dict, field: str, raw_json_value: str) -> str:
    """``body`` as JSON text with ``field`` replaced by raw JSON (json.dumps would escape it)."""
    marker = "__RAW__"
    return json.dumps({**body, field: marker}, ensure_ascii=False).replace(f'"{marker}"', raw_json_value)


@pytest.fixture
def support_headers(staff) -> dict[str, str]:
    return staff.headers("support")


# 1. An action that escaped its audit event ------------------------------------------------------

@pytest.mark.parametrize("action", ["lock", "access-reset"])
def test_surrogate_in_a_support_reason_is_refused_and_changes_nothing(client, citizens, support_headers, action):
    account = citizens.enrol()
    events = AuditEvent.objects.count()
    body = with_raw(RESET if action == "access-reset" else {"reason": "x"}, "reason", SURROGATE)
    response = client.post(support_url(account.national_id, action), data=body,
                           content_type="application/json", headers=support_headers)
    assert_problem(response, 400)
    citizen = Citizen.objects.get(national_id=account.national_id)
    assert citizen.state == "active" and not citizen.locked and citizen.password_hash
    assert client.get(f"{V1}/me/sessions", headers=account.headers).status_code == 200
    assert AuditEvent.objects.count() == events


def test_a_change_whose_audit_event_cannot_be_stored_does_not_happen(client, citizens):
    """Below the HTTP edge too: the event is checked before the change (audit.recording)."""
    account = citizens.enrol()
    with pytest.raises(InvalidAuditEvent):
        support.lock(system_context(), account.national_id, "bad \ud800 reason")
    assert not Citizen.objects.get(national_id=account.national_id).locked
    assert client.get(f"{V1}/me/sessions", headers=account.headers).status_code == 200


# 2. One request's failure poisoned the others in its group commit -------------------------------

def test_an_unstorable_audit_event_fails_alone_in_its_batch(app):
    """The batch that group commit hands to the database, with one poisoned event among good ones."""
    good = [audit.event_document(system_context(), "test.good", details={"n": n}) for n in range(20)]
    poisoned = dict(good[0], action="test.poisoned", reason="\ud800")
    poisoned.pop("_id", None)
    results = audit._insert_events([*good[:10], poisoned, *good[10:]])
    assert isinstance(results.pop(10), Failed)
    assert all(isinstance(result, ObjectId) for result in results)
    assert AuditEvent.objects(action="test.good").count() == 20
    assert AuditEvent.objects(action="test.poisoned").count() == 0


def test_an_unstorable_rate_limit_key_fails_alone_in_its_batch(app):
    storage = app.extensions["hoso"].limiter._storage
    hits = [("test-good-a", 60, 1), ("test-bad-\ud800", 60, 1), ("test-good-a", 60, 1), ("test-good-b", 60, 1)]
    results = storage._incr_batch(hits)
    assert isinstance(results[1], Failed)
    assert [results[0][0], results[2][0], results[3][0]] == [1, 2, 1]


def test_staff_login_with_a_surrogate_username_is_a_400(client):
    body = with_raw({"password": "x", "totp_code": "123456"}, "username", SURROGATE)
    problem = assert_problem(client.post(f"{V1}/staff/login", data=body, content_type="application/json"), 400)
    assert "surrogate" in problem["detail"]


# 3. A surrogate in any stored string -------------------------------------------------------------

def _facility(client) -> dict[str, str]:
    return {"Authorization": f"Bearer {facility_token('01001')}"}


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/facility/visits/LK1", visit_body(), "reason"),
    ("/facility/immunizations/IM1", immunization_body(), "lot"),
    ("/facility/citizens", {**identity(), "phone": "0912345678"}, "full_name"),
])
def test_surrogates_in_pushed_strings_are_400(client, path, body, field):
    method = client.put if path.startswith("/facility/visits") or "immunizations" in path else client.post
    response = method(f"{V1}{path}", data=with_raw(body, field, SURROGATE), content_type="application/json",
                      headers=_facility(client))
    assert_problem(response, 400)
    assert Visit.objects.count() == 0


def test_surrogates_in_citizen_strings_are_400(client, citizens):
    account = citizens.enrol()
    hanoi = _facility(client)
    pushed = client.put(f"{V1}/facility/immunizations/IM1", json=immunization_body(), headers=hanoi)
    immunization = pushed.json["id"]
    reaction = with_raw({"onset_at": "2021-09-15T21:00:00+07:00", "severity": "mild"}, "description", SURROGATE)
    assert_problem(client.post(f"{V1}/me/immunizations/{immunization}/reactions", data=reaction,
                               content_type="application/json", headers=account.headers), 400)
    device = with_raw({"platform": "android"}, "push_token", SURROGATE)
    assert_problem(client.post(f"{V1}/me/devices", data=device, content_type="application/json",
                               headers=account.headers), 400)
    address = '{"address": {"line": "S\\udc00 1"}}'
    assert_problem(client.patch(f"{V1}/me", data=address, content_type="application/json",
                                headers=account.headers), 400)


def test_surrogate_in_a_facility_name_is_400(client, staff):
    body = with_raw({"code": "01009", "province": "Hà Nội"}, "name", SURROGATE)
    assert_problem(client.post(f"{V1}/admin/facilities", data=body, content_type="application/json",
                               headers=staff.headers("admin")), 400)


def bulk(client, headers, lines: list[str]) -> list[dict]:
    response = client.post(f"{V1}/facility/bulk", data="\n".join(lines) + "\n",
                           content_type="application/x-ndjson", headers=headers)
    assert response.status_code == 200
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def test_hostile_bulk_lines_fail_alone(client):
    hanoi = _facility(client)

    def line(n: int) -> str:
        return json.dumps({"type": "visit", "source_id": f"LK{n}", **visit_body()}, ensure_ascii=False)

    hostile = [
        with_raw({"type": "visit", "source_id": "BAD1", **visit_body()}, "reason", SURROGATE),
        "[" * 5000 + "]" * 5000,
        with_raw({"type": "visit", "source_id": "BAD3", **visit_body()}, "reason", "1" * 5000),
        '{"type": "visit", "source_id": "BAD4", "n": 1e999}',
        with_raw({"type": "visit", "source_id": "BAD5", **visit_body()}, "full_name", json.dumps("N" * 201)),
    ]
    lines = [line(n) for n in range(250)]
    for offset, bad in enumerate(hostile):
        lines.insert(10 + 50 * offset, bad)
    answers = bulk(client, hanoi, lines)
    assert len(answers) == len(lines)
    statuses = [answer["status"] for answer in answers]
    assert [statuses[10 + 50 * offset] for offset in range(len(hostile))] == [400, 400, 400, 400, 422]
    assert statuses.count(201) == 250
    assert Visit.objects.count() == 250


# 4. Deep JSON and huge numbers ------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["[" * 1000 + "]" * 1000, "[" * 100_000 + "]" * 100_000, "1" * 5000,
                                 "1e999", "NaN", "-Infinity"])
def test_deep_json_and_huge_numbers_are_400_for_anonymous_login(client, raw):
    body = with_raw({"national_id": "001085123456", "totp_code": "123456"}, "password", raw)
    problem = assert_problem(client.post(f"{V1}/auth/login", data=body, content_type="application/json"), 400)
    assert problem["detail"]


# 5. Names the API accepts must be names the model stores ------------------------------------------

@pytest.mark.parametrize("full_name", ["Nguyễn" + "a" * 194, "A" * 120 + " " + "B" * 79, "Ánh " + "Thị " * 49])
def test_every_accepted_name_can_be_stored(client, full_name):
    hanoi = _facility(client)
    registered = client.post(f"{V1}/facility/citizens", json={**identity(), "full_name": full_name.strip(),
                                                               "phone": "0912345678"}, headers=hanoi)
    assert registered.status_code == 201, registered.json
    pushed = client.put(f"{V1}/facility/visits/LK1", json=visit_body(serial=222222, full_name=full_name.strip()),
                        headers=hanoi)
    assert pushed.status_code == 201, pushed.json


# 12. Decomposed (NFD) names ------------------------------------------------------------------------

def test_decomposed_names_are_accepted_and_stored_composed(client):
    nfd = unicodedata.normalize("NFD", "Đặng Thị Ngọc Ánh")
    assert nfd != "Đặng Thị Ngọc Ánh"
    hanoi = _facility(client)
    response = client.put(f"{V1}/facility/visits/LK1",
                          json=visit_body(full_name=nfd, reason=unicodedata.normalize("NFD", "Ho kéo dài")),
                          headers=hanoi)
    assert response.status_code == 201, response.json
    citizen = Citizen.objects.get(national_id=identity()["national_id"])
    assert (citizen.full_name, citizen.family_name, citizen.given_name) == ("Đặng Thị Ngọc Ánh", "Đặng", "Thị Ngọc Ánh")
    assert Visit.objects.get().reason == "Ho kéo dài"


@pytest.mark.parametrize("value", ["Ho\x00 kéo dài", "Ho\x1bkéo", "Ho\u0085"])
def test_control_characters_are_422(client, value):
    response = client.put(f"{V1}/facility/visits/LK1", json=visit_body(department=value), headers=_facility(client))
    assert assert_problem(response, 422)["errors"]["department"]


def test_line_breaks_are_allowed_in_free_text_only(client):
    hanoi = _facility(client)
    assert client.put(f"{V1}/facility/visits/LK1", json=visit_body(notes="Dòng 1\nDòng 2\ttab"),
                      headers=hanoi).status_code == 201
    assert_problem(client.put(f"{V1}/facility/visits/LK2", json=visit_body(department="Khoa\nNội"),
                              headers=hanoi), 422)


# 6. Contact changes -----------------------------------------------------------------------------

def _age_session(account) -> None:
    """Make the session's sign-in older than the step-up window."""
    Session.objects(revoked_at=None).update(set__created_at=utcnow() - timedelta(minutes=10),
                                            unset__authenticated_at=True)


def test_changing_the_phone_needs_a_recent_password_and_code(client, citizens):
    account = citizens.enrol()
    _age_session(account)
    problem = assert_problem(client.patch(f"{V1}/me", json={"phone": "0987654321"}, headers=account.headers), 401)
    assert problem["type"] == "/problems/reauthentication-required"
    response = client.patch(f"{V1}/me", json={"phone": "0987654321"}, headers=account.headers)
    assert 'error="insufficient_user_authentication"' in response.headers["WWW-Authenticate"]
    assert "max_age=300" in response.headers["WWW-Authenticate"]
    assert Citizen.objects.get(national_id=account.national_id).phone == "0912345678"
    # preferences and the address need no step-up
    assert client.patch(f"{V1}/me", json={"language": "en"}, headers=account.headers).status_code == 200
    wrong = client.post(f"{V1}/auth/reauthenticate", json={"password": "not it at all", "totp_code": account.code(1)},
                        headers=account.headers)
    assert_problem(wrong, 401)
    confirmed = client.post(f"{V1}/auth/reauthenticate", json={"password": account.password,
                                                             "totp_code": account.code(1)}, headers=account.headers)
    assert confirmed.status_code == 200 and confirmed.json["valid_for_seconds"] == 300
    changed = client.patch(f"{V1}/me", json={"phone": "0987654321"}, headers=account.headers)
    assert changed.status_code == 200 and changed.json["phone"] == "0987654321"
    assert AuditEvent.objects(action="citizen.reauthenticate", outcome="success").count() == 1
    assert AuditEvent.objects(action="citizen.reauthenticate", outcome="failure").count() == 1


def test_a_fresh_sign_in_may_change_the_phone_and_the_warning_goes_to_the_old_one(client, citizens):
    account = citizens.enrol()
    response = client.patch(f"{V1}/me", json={"phone": "0987654321", "email": "new@example.org"},
                            headers=account.headers)
    assert response.status_code == 200
    warnings = {message.channel: message.address for message in Notification.objects(kind="contact_changed")}
    assert warnings["sms"] == "0912345678" and warnings["email"] == "nam@example.org"


def test_support_reset_sends_no_code_to_a_channel_changed_lately(client, citizens, support_headers):
    account = citizens.enrol()
    assert client.patch(f"{V1}/me", json={"phone": "0987654321"}, headers=account.headers).status_code == 200
    # e-mail is unchanged: the code goes there, never to the new phone
    assert client.post(support_url(account.national_id, "access-reset"), json=RESET,
                       headers=support_headers).status_code == 200
    delivery = Notification.objects.get(kind="activation_code_delivery")
    assert delivery.channel == "email"


def test_support_reset_refuses_when_every_channel_changed_lately(client, citizens, support_headers):
    account = citizens.enrol()
    assert client.patch(f"{V1}/me", json={"phone": "0987654321", "email": "new@example.org"},
                        headers=account.headers).status_code == 200
    problem = assert_problem(client.post(support_url(account.national_id, "access-reset"), json=RESET,
                                         headers=support_headers), 409)
    assert problem["type"] == "/problems/contact-recently-changed"
    assert Citizen.objects.get(national_id=account.national_id).state == "active"
    # a facility that checks the new phone in person makes it trusted again
    Citizen.objects(national_id=account.national_id).update_one(set__state="pending_activation")
    citizens.register({**identity(), "phone": "0987654321"})
    assert Citizen.objects.get(national_id=account.national_id).phone_changed_at is None
    Citizen.objects(national_id=account.national_id).update_one(set__state="active")
    assert client.post(support_url(account.national_id, "access-reset"), json=RESET,
                       headers=support_headers).status_code == 200


@pytest.mark.parametrize(("document_type", "last4", "status"), [
    ("birth_certificate", "3456", 200), ("birth_certificate", "0000", 409),
    ("passport", "3456", 409), ("cmnd", "3456", 409),
])
def test_every_document_type_checks_its_last_four(client, citizens, support_headers, document_type, last4, status):
    account = citizens.enrol()
    body = {**RESET, "identity_check": {**RESET["identity_check"], "document_type": document_type,
                                        "document_number_last4": last4}}
    response = client.post(support_url(account.national_id, "access-reset"), json=body, headers=support_headers)
    assert response.status_code == status, response.json
    if status == 409:
        assert response.json["type"] == "/problems/identity-check-failed"
        assert Citizen.objects.get(national_id=account.national_id).state == "active"


# 11. A record moved to another citizen leaves the first one's cached timeline ----------------------

def test_a_record_moved_to_another_citizen_leaves_both_timelines_current(client, citizens):
    alice = citizens.enrol()
    bob = citizens.enrol(serial=222222)
    hanoi = _facility(client)
    assert client.put(f"{V1}/facility/visits/LK1", json=visit_body(), headers=hanoi).status_code == 201
    Citizen.objects.update(set__activated_at=utcnow() - timedelta(days=30))  # pages are cached
    assert len(client.get(f"{V1}/me/visits", headers=alice.headers).json["items"]) == 1
    assert len(client.get(f"{V1}/me/visits", headers=alice.headers).json["items"]) == 1  # a cached page
    assert client.put(f"{V1}/facility/visits/LK1", json=visit_body(serial=222222), headers=hanoi).status_code == 200
    assert client.get(f"{V1}/me/visits", headers=alice.headers).json["items"] == []
    assert len(client.get(f"{V1}/me/visits", headers=bob.headers).json["items"]) == 1
    alice_id = Citizen.objects.get(national_id=alice.national_id).id
    assert AuditEvent.objects(action="visit.update", citizen_ids=alice_id).count() == 1


# 13. Edges ---------------------------------------------------------------------------------------

def test_the_root_redirects_to_the_docs(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/api/docs")


def test_hostile_xml130_records_fail_alone(client):
    """Over-long and decomposed names, and a control character, inside QĐ 130 tables."""
    from tests.data.xml130 import make_fixtures as fixtures

    clinic = {"Authorization": f"Bearer {facility_token('79012')}", "Content-Type": "application/xml"}
    long_name = {**fixtures.NAM_XML1, "MA_LK": "KB0000000002", "HO_TEN": "Nguyễn " + "A" * 250}
    nfd_name = {**fixtures.NAM_XML1, "MA_LK": "KB0000000003",
                "HO_TEN": unicodedata.normalize("NFD", fixtures.NAM_XML1["HO_TEN"])}
    control = fixtures.summary({**fixtures.NAM_XML1, "MA_LK": "KB0000000004"}).replace(
        b"</TONG_HOP>", b"<LY_DO_VV>Ho &#x1; k\xc3\xa9o</LY_DO_VV></TONG_HOP>")
    envelope = fixtures.envelope([[("XML1", fixtures.summary(fixtures.NAM_XML1))],
                                  [("XML1", fixtures.summary(long_name))],
                                  [("XML1", fixtures.summary(nfd_name))],
                                  [("XML1", control)]])
    response = client.post(f"{V1}/facility/xml130", data=envelope, headers=clinic)
    assert response.status_code == 200, response.json
    statuses = [record["status"] for record in response.json["records"]]
    assert statuses[0] == 201 and statuses[1] == 422 and statuses[2] == 201 and statuses[3] >= 400
    assert Visit.objects.count() == 2
    assert Citizen.objects.get(national_id=fixtures.NAM_XML1["SO_CCCD"]).full_name == fixtures.NAM_XML1["HO_TEN"]
