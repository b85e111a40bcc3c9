"""Citizen accounts: registration by a facility, activation codes, TOTP enrolment (SECURITY 1-8)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from app.models.audit import AuditEvent
from app.models.citizen import Citizen
from app.models.notification import Notification
from app.services.mfa import READABLE_ALPHABET
from tests.helpers import DEFAULT_PASSWORD, CitizenActions, assert_problem, citizen_body, national_id_for


def test_registration_creates_citizen_and_issues_a_code(citizens):
    response = citizens.register()
    assert response.status_code == 201
    assert set(response.json) == {"citizen_id", "activation_code", "expires_at"}
    code = response.json["activation_code"]
    assert re.fullmatch(rf"[{READABLE_ALPHABET}]{{5}}-[{READABLE_ALPHABET}]{{5}}", code)
    citizen = Citizen.objects.get(national_id=citizen_body()["national_id"])
    assert (citizen.family_name, citizen.given_name) == ("Nguyễn", "Văn Nam")
    assert citizen.registered_by_facility == "01001"
    assert citizen.state == "pending_activation"
    delta = citizen.activation.expires_at - citizen.activation.issued_at
    assert delta == timedelta(hours=72)
    issued = AuditEvent.objects(action="activation_code.issue").first()
    assert issued.facility_code == "01001" and code not in issued.to_json()
    messages = Notification.objects(kind="activation_code_issued")
    assert {m.channel for m in messages} == {"in_app", "sms", "email"}
    assert all(code not in m.body for m in messages)


def test_alphabet_has_no_ambiguous_characters_and_code_has_40_bits():
    import math

    assert not set("0O1IL") & set(READABLE_ALPHABET)
    assert 10 * math.log2(len(READABLE_ALPHABET)) >= 40


def test_existing_inactive_citizen_gets_200_and_new_code_cancels_old(citizens):
    first = citizens.register().json["activation_code"]
    again = citizens.register()
    assert again.status_code == 200
    national_id = citizen_body()["national_id"]
    assert_problem(citizens.activate(national_id, first), 401)
    assert citizens.activate(national_id, again.json["activation_code"]).status_code == 200


def test_active_account_gets_409_account_active(citizens):
    citizens.enrol()
    problem = assert_problem(citizens.register(), 409)
    assert problem["type"] == "/problems/account-active"


def test_identity_mismatch_changes_nothing(citizens):
    citizens.register()
    before = Citizen.objects.get(national_id=citizen_body()["national_id"]).to_mongo()
    problem = assert_problem(citizens.register(citizen_body(date_of_birth="1985-03-15",
                                                            phone="0987654321")), 409)
    assert problem["type"] == "/problems/identity-mismatch"
    after = Citizen.objects.get(national_id=citizen_body()["national_id"]).to_mongo()
    assert before == after


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"national_id": "0010851234567"}, "national_id"),  # 13 digits
        ({"national_id": "00108512345"}, "national_id"),
        ({"national_id": national_id_for(1995)}, "national_id"),  # year differs
        ({"national_id": national_id_for(1985, "female")}, "national_id"),  # sex digit differs
        ({"national_id": national_id_for(2085)}, "national_id"),  # century differs
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"date_of_birth": "1985-02-30"}, "date_of_birth"),
        ({"sex": "M"}, "sex"),
        ({"phone": "12345"}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({"full_name": "Robert'); DROP"}, "full_name"),
        ({"national_id": {"$ne": ""}}, "national_id"),
        ({"full_name": {"$gt": ""}}, "full_name"),
        ({"role": "admin"}, "role"),
    ],
)
def test_bad_registrations_are_422_and_change_nothing(citizens, changes, field):
    problem = assert_problem(citizens.register(citizen_body(**changes)), 422)
    assert field in problem["errors"]
    assert Citizen.objects.count() == 0


def test_women_born_after_2000_and_other_sex_are_accepted(citizens):
    body = citizen_body(national_id=national_id_for(2003, "female"), date_of_birth="2003-07-01",
                        sex="female")
    assert citizens.register(body).status_code == 201
    body = citizen_body(national_id=national_id_for(1990, "female", 42), date_of_birth="1990-01-01",
                        sex="unknown")
    assert citizens.register(body).status_code == 201


def test_code_is_bound_to_its_national_id(citizens):
    code = citizens.register().json["activation_code"]
    other = citizen_body(777777)
    citizens.register(other)
    assert_problem(citizens.activate(other["national_id"], code), 401)


def test_code_works_once_and_second_use_looks_like_a_wrong_code(citizens):
    national_id = citizen_body()["national_id"]
    code = citizens.register().json["activation_code"]
    assert citizens.activate(national_id, code).status_code == 200
    reused = assert_problem(citizens.activate(national_id, code), 401)
    wrong = assert_problem(citizens.activate(national_id, "AAAAA-BBBBB"), 401)
    unknown = assert_problem(citizens.activate(national_id_for(1970), code), 401)
    for body in (reused, wrong, unknown):
        body.pop("request_id")
    assert reused == wrong == unknown


def test_code_is_case_and_dash_insensitive(citizens):
    code = citizens.register().json["activation_code"]
    typed = code.replace("-", " ").lower()
    assert citizens.activate(citizen_body()["national_id"], typed).status_code == 200


def test_expired_code_fails(app, citizens):
    from app.runtime import runtime

    code = citizens.register().json["activation_code"]
    real_clock = runtime().clock
    runtime().clock = lambda: real_clock() + timedelta(hours=73)
    try:
        assert_problem(citizens.activate(citizen_body()["national_id"], code), 401)
    finally:
        runtime().clock = real_clock


@pytest.mark.parametrize(
    "password, reason",
    [("short", "12"), ("password1234", "common"), ("matkhau123456", "common"),
     ("aaaaaaaaaaaaaaaa", "different"), (f"x{national_id_for(1985)}x", "identity")],
)
def test_weak_passwords_are_refused_without_spending_the_code(citizens, password, reason):
    national_id = citizen_body()["national_id"]
    code = citizens.register().json["activation_code"]
    problem = assert_problem(citizens.activate(national_id, code, password), 422)
    assert reason in " ".join(problem["errors"]["password"])
    assert citizens.activate(national_id, code).status_code == 200


def test_twenty_concurrent_redeems_of_one_code_succeed_once(app, citizens):
    national_id = citizen_body()["national_id"]
    code = citizens.register().json["activation_code"]

    def redeem(_: int) -> int:
        with app.app_context():
            return CitizenActions(app.test_client()).activate(national_id, code).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(redeem, range(20)))
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 401, 429}


def test_enrolment_gives_totp_uri_and_confirm_activates(citizens):
    national_id = citizen_body()["national_id"]
    code = citizens.register().json["activation_code"]
    enrolment = citizens.activate(national_id, code).json
    assert enrolment["totp_uri"].startswith("otpauth://totp/HoSo:")
    assert "issuer=HoSo" in enrolment["totp_uri"]
    stored = Citizen.objects.get(national_id=national_id)
    assert enrolment["totp_secret"] not in stored.to_json()
    assert stored.state == "pending_activation"
    confirmed = citizens.confirm(enrolment["enrollment_token"], enrolment["totp_secret"])
    assert confirmed.status_code == 200
    assert len(confirmed.json["recovery_codes"]) == 10
    assert len(set(confirmed.json["recovery_codes"])) == 10
    assert Citizen.objects.get(national_id=national_id).state == "active"
    me = citizens.client.get("/api/v1/me/sessions",
                             headers={"Authorization": f"Bearer {confirmed.json['access_token']}"})
    assert me.status_code == 200 and me.json["items"][0]["current"] is True


def test_confirm_with_a_wrong_code_fails_and_account_stays_pending(citizens):
    national_id = citizen_body()["national_id"]
    enrolment = citizens.activate(national_id, citizens.register().json["activation_code"]).json
    response = citizens.client.post("/api/v1/auth/activate/confirm", json={
        "enrollment_token": enrolment["enrollment_token"], "totp_code": "000000"})
    assert_problem(response, 401)
    assert Citizen.objects.get(national_id=national_id).state == "pending_activation"


def test_enrolment_token_reads_nothing_refreshes_nothing_and_works_once(citizens):
    national_id = citizen_body()["national_id"]
    enrolment = citizens.activate(national_id, citizens.register().json["activation_code"]).json
    token = enrolment["enrollment_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert_problem(citizens.client.get("/api/v1/me/sessions", headers=bearer), 401)
    assert_problem(citizens.client.post("/api/v1/auth/logout", headers=bearer), 401)
    assert_problem(citizens.client.post("/api/v1/auth/refresh", json={"refresh_token": token}), 401)
    assert citizens.confirm(token, enrolment["totp_secret"]).status_code == 200
    # once the account is active the enrolment token does nothing any more
    assert_problem(citizens.confirm(token, enrolment["totp_secret"]), 401)


def test_a_second_activation_invalidates_the_first_enrolment(citizens):
    national_id = citizen_body()["national_id"]
    first = citizens.activate(national_id, citizens.register().json["activation_code"]).json
    second = citizens.activate(national_id, citizens.register().json["activation_code"]).json
    assert_problem(citizens.confirm(first["enrollment_token"], first["totp_secret"]), 401)
    assert citizens.confirm(second["enrollment_token"], second["totp_secret"]).status_code == 200


def test_activation_attempts_are_limited_per_national_id(mongodb_server, tmp_path):
    from app import create_app
    from tests.conftest import drop_database, make_settings

    settings = make_settings(mongodb_server, tmp_path, login_max_failures=3)
    app = create_app(settings)
    try:
        with app.app_context():
            actions = CitizenActions(app.test_client())
            national_id = citizen_body()["national_id"]
            code = actions.register().json["activation_code"]
            for _ in range(3):
                assert actions.activate(national_id, "WRONG-CODES").status_code == 401
            locked = actions.activate(national_id, code)
            assert_problem(locked, 429)
            assert int(locked.headers["Retry-After"]) > 0
    finally:
        drop_database(settings)


def test_password_is_stored_as_argon2id(citizens):
    account = citizens.enrol()
    stored = Citizen.objects.get(national_id=account.national_id)
    assert stored.password_hash.startswith("$argon2id$")
    assert DEFAULT_PASSWORD not in stored.to_json()
