"""No identity oracle: a facility without a relationship to a citizen cannot learn a birth date or account state."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest

from app.models.audit import AuditEvent
from app.models.citizen import Citizen
from app.services import citizens as citizen_service
from tests.helpers import CitizenActions, assert_problem, citizen_body, facility_token
from tests.records_data import visit_body

REGISTER = "/api/v1/facility/citizens"
RIGHT_DOB = citizen_body()["date_of_birth"]


def wrong_dob(n: int) -> str:
    """Another day of the same year (the CCCD carries the year, so a guesser knows it)."""
    return (date.fromisoformat(RIGHT_DOB) + timedelta(days=n + 1)).isoformat()


@pytest.fixture
def home(client):  # type: ignore[no-untyped-def]
    """The facility that registers the citizen (01001)."""
    return CitizenActions(client)


@pytest.fixture
def stranger(client):  # type: ignore[no-untyped-def]
    """Another facility's headers (79001): it has never seen the citizen."""
    return {"Authorization": f"Bearer {facility_token('79001')}"}


def _comparable(response):  # type: ignore[no-untyped-def]
    body = dict(response.json)
    body.pop("request_id"), body.pop("instance")
    return response.status_code, body


def test_registration_by_a_stranger_answers_alike_for_wrong_birth_date_and_active_account(client, home, stranger):
    home.enrol()
    wrong = client.post(REGISTER, json=citizen_body(date_of_birth=wrong_dob(0)), headers=stranger)
    active = client.post(REGISTER, json=citizen_body(), headers=stranger)
    assert _comparable(wrong) == _comparable(active)
    assert assert_problem(active, 409)["type"] == "/problems/registration-refused"
    refused = AuditEvent.objects(action="citizen.identity_check", outcome="failure")
    assert sorted(event.reason for event in refused) == ["account active", "date of birth differs"]


def test_registration_by_the_registering_facility_keeps_its_answers(client, home):
    home.enrol()
    assert assert_problem(home.register(), 409)["type"] == "/problems/account-active"
    mismatch = home.register(citizen_body(date_of_birth=wrong_dob(0)))
    assert assert_problem(mismatch, 409)["type"] == "/problems/identity-mismatch"


def test_a_stranger_with_the_right_identity_still_registers_a_pending_citizen(client, home, stranger):
    assert home.register().status_code == 201
    wrong = client.post(REGISTER, json=citizen_body(date_of_birth=wrong_dob(0)), headers=stranger)
    assert assert_problem(wrong, 409)["type"] == "/problems/registration-refused"
    assert client.post(REGISTER, json=citizen_body(), headers=stranger).status_code == 200
    # having given the right identity (and issued the code) it is related: the plain answers again
    again = client.post(REGISTER, json=citizen_body(date_of_birth=wrong_dob(1)), headers=stranger)
    assert assert_problem(again, 409)["type"] == "/problems/identity-mismatch"


def test_a_stranger_guessing_a_birth_date_is_stopped_before_the_right_one(client, home, stranger):
    home.enrol()
    for n in range(citizen_service.IDENTITY_REFUSALS_PER_CITIZEN):
        client.post(REGISTER, json=citizen_body(date_of_birth=wrong_dob(n)), headers=stranger)
    locked = client.post(REGISTER, json=citizen_body(), headers=stranger)
    assert_problem(locked, 429)
    assert int(locked.headers["Retry-After"]) > 3600
    assert AuditEvent.objects(action="citizen.identity_check", outcome="denied").count() == 1


def test_push_by_a_stranger_cannot_walk_the_birth_dates(client, home, stranger):
    home.register()
    for n in range(citizen_service.IDENTITY_REFUSALS_PER_CITIZEN):
        refused = client.put(f"/api/v1/facility/visits/G{n}", json=visit_body(date_of_birth=wrong_dob(n)),
                             headers=stranger)
        assert assert_problem(refused, 409)["type"] == "/problems/identity-mismatch"
    right = client.put("/api/v1/facility/visits/G-right", json=visit_body(), headers=stranger)
    assert_problem(right, 429)  # the right date is not even compared
    assert int(right.headers["Retry-After"]) > 0
    refusals = AuditEvent.objects(action="citizen.identity_check").count()
    assert refusals == citizen_service.IDENTITY_REFUSALS_PER_CITIZEN + 1


def test_push_by_the_registering_facility_is_not_counted(client, home):
    home.register()
    for n in range(citizen_service.IDENTITY_REFUSALS_PER_CITIZEN + 2):
        refused = client.put(f"/api/v1/facility/visits/H{n}", json=visit_body(date_of_birth=wrong_dob(n)),
                             headers=home.facility_headers)
        assert_problem(refused, 409)
    assert client.put("/api/v1/facility/visits/H-right", json=visit_body(),
                      headers=home.facility_headers).status_code == 201


def test_a_stranger_that_gave_the_right_identity_pushes_without_counting(client, home, stranger):
    home.register()
    assert client.put("/api/v1/facility/visits/S0", json=visit_body(), headers=stranger).status_code == 201
    for n in range(citizen_service.IDENTITY_REFUSALS_PER_CITIZEN + 1):
        assert_problem(client.put(f"/api/v1/facility/visits/S{n + 1}", json=visit_body(date_of_birth=wrong_dob(n)),
                                  headers=stranger), 409)
    assert client.put("/api/v1/facility/visits/S-right", json=visit_body(), headers=stranger).status_code == 201


def test_twenty_parallel_guesses_compare_at_most_the_limit(app, client, home, stranger):
    home.register()

    def guess(n: int) -> int:
        with app.app_context():
            dob = RIGHT_DOB if n == 19 else wrong_dob(n)
            return app.test_client().put(f"/api/v1/facility/visits/P{n}", json=visit_body(date_of_birth=dob),
                                         headers=stranger).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(guess, range(20)))
    assert statuses.count(409) <= citizen_service.IDENTITY_REFUSALS_PER_CITIZEN
    assert statuses.count(429) >= 20 - citizen_service.IDENTITY_REFUSALS_PER_CITIZEN - 1
    assert set(statuses) <= {201, 409, 429}


def test_refusals_are_limited_per_facility_across_citizens(client, home, stranger):
    limit = citizen_service.IDENTITY_REFUSALS_PER_FACILITY
    for serial in range(limit + 1):  # citizens created by the home facility's pushes
        assert client.put(f"/api/v1/facility/visits/C{serial}", json=visit_body(serial=100000 + serial),
                          headers=home.facility_headers).status_code == 201
    for serial in range(limit):
        refused = client.put(f"/api/v1/facility/visits/X{serial}",
                             json=visit_body(serial=100000 + serial, date_of_birth=wrong_dob(0)), headers=stranger)
        assert_problem(refused, 409)
    last = client.put("/api/v1/facility/visits/X-last", json=visit_body(serial=100000 + limit), headers=stranger)
    assert_problem(last, 429)
    assert Citizen.objects.count() == limit + 1


def test_one_upload_cannot_walk_the_birth_dates(client, home, stranger):
    home.register()
    lines = [json.dumps({"type": "visit", "source_id": f"B{n}", **visit_body(date_of_birth=wrong_dob(n))})
             for n in range(40)] + [json.dumps({"type": "visit", "source_id": "B-right", **visit_body()})]
    response = client.post("/api/v1/facility/bulk", data="\n".join(lines) + "\n",
                           content_type="application/x-ndjson", headers=stranger)
    statuses = [json.loads(text)["status"] for text in response.get_data(as_text=True).splitlines()]
    assert statuses == [409] * citizen_service.IDENTITY_REFUSALS_PER_CITIZEN + [429] * (
        41 - citizen_service.IDENTITY_REFUSALS_PER_CITIZEN)
