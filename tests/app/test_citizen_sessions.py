"""Citizen sign-in, refresh rotation and reuse detection, sign-out, sessions (SECURITY 6-17)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from app import create_app
from app.models.audit import AuditEvent
from app.models.notification import Notification
from app.models.session import Session
from app.runtime import runtime
from tests.conftest import drop_database, make_settings
from tests.helpers import CitizenActions, assert_problem

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"


def refresh(client, token):
    return client.post(REFRESH, json={"refresh_token": token})


def test_login_with_password_and_totp(citizens, account):
    response = citizens.login(account, device="Laptop")
    assert response.status_code == 200
    assert set(response.json) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert response.json["expires_in"] <= 900
    event = AuditEvent.objects(action="citizen.login", outcome="success").first()
    assert event.details == {"method": "totp", "new_device": True}
    assert Notification.objects(kind="new_device_login", channel="sms").count() == 1


def test_login_from_a_known_device_sends_no_new_device_message(citizens, account):
    assert citizens.login(account, device="Pixel 8").status_code == 200
    assert Notification.objects(kind="new_device_login").count() == 0


def test_totp_code_is_refused_the_second_time(citizens, account):
    assert citizens.login(account).status_code == 200
    assert_problem(citizens.login(account), 401)


def test_twenty_concurrent_logins_with_one_code_succeed_once(mongodb_server, tmp_path):
    settings = make_settings(mongodb_server, tmp_path, login_max_failures=100,
                             rate_limit_auth_per_ip="1000 per minute")
    app = create_app(settings)
    try:
        with app.app_context():
            account = CitizenActions(app.test_client()).enrol()
            code = account.code(1)

            def attempt(_: int) -> int:
                with app.app_context():
                    return app.test_client().post(LOGIN, json={
                        "national_id": account.national_id, "password": account.password,
                        "totp_code": code}).status_code

            with ThreadPoolExecutor(max_workers=20) as pool:
                statuses = list(pool.map(attempt, range(20)))
            assert statuses.count(200) == 1, statuses
            assert statuses.count(401) == 19
    finally:
        drop_database(settings)


def test_recovery_code_works_once(citizens, account):
    body = {"national_id": account.national_id, "password": account.password,
            "recovery_code": account.recovery_codes[0]}
    assert citizens.client.post(LOGIN, json=body).status_code == 200
    assert_problem(citizens.client.post(LOGIN, json=body), 401)
    body["recovery_code"] = account.recovery_codes[1].lower().replace("-", "")
    assert citizens.client.post(LOGIN, json=body).status_code == 200


def test_password_without_second_factor_or_with_both_is_422(citizens, account):
    base = {"national_id": account.national_id, "password": account.password}
    assert_problem(citizens.client.post(LOGIN, json=base), 422)
    both = dict(base, totp_code=account.code(1), recovery_code=account.recovery_codes[0])
    assert_problem(citizens.client.post(LOGIN, json=both), 422)


def test_all_failures_look_the_same(client, citizens, account, staff):
    other = citizens.enrol(serial=555555)
    client.post(f"/api/v1/support/citizens/{other.national_id}/lock", json={"reason": "fraud"},
                headers=staff.headers("support"))
    attempts = [
        {"national_id": "001085999999", "password": account.password, "totp_code": account.code(1)},
        {"national_id": account.national_id, "password": "wrong password!", "totp_code": account.code(1)},
        {"national_id": account.national_id, "password": account.password, "totp_code": "000000"},
        {"national_id": other.national_id, "password": other.password, "totp_code": other.code(1)},
    ]
    bodies = []
    for body in attempts:
        problem = assert_problem(client.post(LOGIN, json=body), 401)
        problem.pop("request_id")
        bodies.append(problem)
    assert all(body == bodies[0] for body in bodies)


def test_lockout_refuses_correct_credentials_then_ends(mongodb_server, tmp_path):
    import time

    settings = make_settings(mongodb_server, tmp_path, login_max_failures=3,
                             login_lockout_seconds=2)
    app = create_app(settings)
    try:
        with app.app_context():
            actions = CitizenActions(app.test_client())
            account = actions.enrol()
            wrong = {"national_id": account.national_id, "password": "not the password",
                     "totp_code": "123456"}
            for _ in range(3):
                assert actions.client.post(LOGIN, json=wrong).status_code == 401
            locked = actions.login(account)
            assert_problem(locked, 429)
            assert 1 <= int(locked.headers["Retry-After"]) <= 2
            time.sleep(2.1)
            assert actions.login(account).status_code == 200
    finally:
        drop_database(settings)


def test_refresh_rotates_and_reuse_revokes_the_family(client, account):
    first = refresh(client, account.refresh_token)
    assert first.status_code == 200
    new_refresh, new_access = first.json["refresh_token"], first.json["access_token"]
    assert new_refresh != account.refresh_token
    assert client.get("/api/v1/me/sessions",
                      headers={"Authorization": f"Bearer {new_access}"}).status_code == 200
    # the spent token comes back: the whole family ends, the newest tokens too
    assert_problem(refresh(client, account.refresh_token), 401)
    assert_problem(refresh(client, new_refresh), 401)
    assert_problem(client.get("/api/v1/me/sessions",
                              headers={"Authorization": f"Bearer {new_access}"}), 401)
    assert AuditEvent.objects(action="citizen.refresh_reuse").count() == 1
    assert Notification.objects(kind="refresh_reuse_detected", channel="in_app").count() == 1


def test_ten_parallel_refreshes_with_one_token_give_at_most_one_success(app, account):
    def attempt(_: int) -> int:
        with app.app_context():
            return refresh(app.test_client(), account.refresh_token).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(attempt, range(10)))
    assert statuses.count(200) <= 1, statuses
    assert set(statuses) <= {200, 401}


def test_refresh_stops_after_idle_and_absolute_limits(app, client, citizens, account):
    real_clock = runtime().clock
    try:
        runtime().clock = lambda: real_clock() + timedelta(days=7, minutes=1)
        assert_problem(refresh(client, account.refresh_token), 401)
    finally:
        runtime().clock = real_clock
    # a session used every few days still ends 30 days after it began
    second = citizens.login(account).json
    token = second["refresh_token"]
    try:
        for days in (6, 12, 18, 24):
            runtime().clock = lambda days=days: real_clock() + timedelta(days=days)
            response = refresh(client, token)
            assert response.status_code == 200
            token = response.json["refresh_token"]
        runtime().clock = lambda: real_clock() + timedelta(days=30, minutes=1)
        assert_problem(refresh(client, token), 401)
    finally:
        runtime().clock = real_clock


def test_logout_ends_this_session_only(client, citizens, account):
    laptop = citizens.login(account, device="Laptop").json
    bearer = {"Authorization": f"Bearer {account.access_token}"}
    assert client.post("/api/v1/auth/logout", headers=bearer).status_code == 204
    assert_problem(client.get("/api/v1/me/sessions", headers=bearer), 401)
    assert_problem(refresh(client, account.refresh_token), 401)
    laptop_bearer = {"Authorization": f"Bearer {laptop['access_token']}"}
    sessions = client.get("/api/v1/me/sessions", headers=laptop_bearer)
    assert sessions.status_code == 200
    assert [item["device_label"] for item in sessions.json["items"]] == ["Laptop"]
    assert refresh(client, laptop["refresh_token"]).status_code == 200


def test_sessions_list_and_end_another_device(client, citizens, account):
    laptop = citizens.login(account, device="Laptop").json
    bearer = {"Authorization": f"Bearer {account.access_token}"}
    items = client.get("/api/v1/me/sessions", headers=bearer).json["items"]
    assert {item["device_label"]: item["current"] for item in items} == {"Pixel 8": True,
                                                                         "Laptop": False}
    laptop_id = next(item["id"] for item in items if item["device_label"] == "Laptop")
    assert client.delete(f"/api/v1/me/sessions/{laptop_id}", headers=bearer).status_code == 204
    assert_problem(client.get("/api/v1/me/sessions",
                              headers={"Authorization": f"Bearer {laptop['access_token']}"}), 401)
    assert_problem(refresh(client, laptop["refresh_token"]), 401)
    assert client.get("/api/v1/me/sessions", headers=bearer).status_code == 200


def test_another_citizens_session_is_404(client, citizens, account):
    other = citizens.enrol(serial=654321)
    other_session = Session.objects(citizen_id__ne=None).order_by("-created_at").first()
    assert other_session is not None
    response = client.delete(f"/api/v1/me/sessions/{other_session.family_id}",
                             headers=account.headers)
    assert_problem(response, 404)
    assert client.get("/api/v1/me/sessions", headers=other.headers).status_code == 200


def test_refresh_tokens_are_stored_only_as_hashes(account):
    for session in Session.objects:
        assert account.refresh_token not in session.to_json()
