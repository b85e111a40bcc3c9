"""Staff login with password + TOTP: replay refused (also concurrently), lockout that ends."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from app import create_app
from app.models.audit import AuditEvent
from app.models.staff import StaffUser
from tests.conftest import drop_database, make_settings
from tests.helpers import StaffActions, assert_problem


def test_login_with_password_and_totp_gives_a_staff_token(client, staff):
    account = staff.create("alice", "admin")
    response = staff.login(account)
    assert response.status_code == 200, response.json
    assert response.json["token_type"] == "Bearer"
    assert response.json["expires_in"] <= 900
    me = client.get("/api/v1/staff/me",
                    headers={"Authorization": f"Bearer {response.json['access_token']}"})
    assert me.status_code == 200
    assert me.json["username"] == "alice" and me.json["role"] == "admin"
    assert AuditEvent.objects(action="staff.login", outcome="success").count() == 1


def test_same_totp_code_twice_is_refused(staff):
    account = staff.create("bob", "support")
    code = account.code()
    body = {"username": "bob", "password": account.password, "totp_code": code}
    assert staff._client.post("/api/v1/staff/login", json=body).status_code == 200
    replay = staff._client.post("/api/v1/staff/login", json=body)
    assert_problem(replay, 401)


def test_wrong_password_wrong_code_and_unknown_user_look_the_same(client, staff):
    account = staff.create("carol", "admin")
    attempts = [
        {"username": "carol", "password": "wrong password", "totp_code": account.code()},
        {"username": "carol", "password": account.password, "totp_code": "000000"},
        {"username": "nobody", "password": account.password, "totp_code": account.code()},
    ]
    bodies = []
    for body in attempts:
        response = client.post("/api/v1/staff/login", json=body)
        assert response.status_code == 401
        problem = dict(response.json)
        problem.pop("request_id")
        bodies.append(problem)
    assert bodies[0] == bodies[1] == bodies[2]
    assert AuditEvent.objects(action="staff.login", outcome="failure").count() == 3


def test_twenty_concurrent_logins_with_one_code_succeed_once(mongodb_server, tmp_path):
    settings = make_settings(mongodb_server, tmp_path, login_max_failures=100,
                             rate_limit_auth_per_ip="1000 per minute")
    app = create_app(settings)
    try:
        with app.app_context():
            actions = StaffActions(app, app.test_client())
            account = actions.create("dave", "admin")
            body = {"username": "dave", "password": account.password,
                    "totp_code": account.code()}

            def attempt(_: int) -> int:
                with app.app_context():
                    return app.test_client().post("/api/v1/staff/login", json=body).status_code

            with ThreadPoolExecutor(max_workers=20) as pool:
                statuses = list(pool.map(attempt, range(20)))
            assert statuses.count(200) == 1, statuses
            assert statuses.count(401) == 19
    finally:
        drop_database(settings)


def test_lockout_refuses_even_correct_credentials_then_ends(mongodb_server, tmp_path):
    settings = make_settings(mongodb_server, tmp_path, login_max_failures=3,
                             login_lockout_seconds=2)
    app = create_app(settings)
    try:
        with app.app_context():
            client = app.test_client()
            actions = StaffActions(app, client)
            account = actions.create("erin", "admin")
            wrong = {"username": "erin", "password": "nope", "totp_code": "123456"}
            assert [client.post("/api/v1/staff/login", json=wrong).status_code
                    for _ in range(3)] == [401, 401, 401]
            locked = actions.login(account)
            assert_problem(locked, 429)
            assert 1 <= int(locked.headers["Retry-After"]) <= 2
            assert StaffUser.objects(username="erin").first().last_login_at is None
            time.sleep(2.1)
            assert actions.login(account, steps_ahead=0).status_code == 200
    finally:
        drop_database(settings)


def test_lockout_is_per_username(mongodb_server, tmp_path):
    settings = make_settings(mongodb_server, tmp_path, login_max_failures=2)
    app = create_app(settings)
    try:
        with app.app_context():
            client = app.test_client()
            actions = StaffActions(app, client)
            other = actions.create("frank", "support")
            for _ in range(3):
                client.post("/api/v1/staff/login",
                            json={"username": "grace", "password": "x", "totp_code": "123456"})
            assert actions.login(other).status_code == 200
    finally:
        drop_database(settings)


def test_disabled_staff_token_stops_working(client, staff):
    headers = staff.headers("support")
    assert client.get("/api/v1/staff/me", headers=headers).status_code == 200
    StaffUser.objects(role="support").update(set__active=False)
    assert_problem(client.get("/api/v1/staff/me", headers=headers), 401)


def test_totp_secret_is_encrypted_at_rest(staff):
    account = staff.create("heidi", "admin")
    stored = StaffUser.objects(username="heidi").first()
    assert account.totp_secret not in stored.to_json()
    assert account.password not in stored.to_json()
    assert stored.password_hash.startswith("$argon2id$")


def test_admin_creates_staff_with_one_time_password(client, staff):
    response = client.post("/api/v1/admin/staff", json={"username": "ivan", "role": "support"},
                           headers=staff.headers())
    assert response.status_code == 201
    assert set(response.json) == {"username", "role", "password", "totp_uri"}
    assert response.json["totp_uri"].startswith("otpauth://totp/HoSo:staff%3Aivan?")
    assert "issuer=HoSo" in response.json["totp_uri"]
    again = client.post("/api/v1/admin/staff", json={"username": "ivan", "role": "admin"},
                        headers=staff.headers())
    assert_problem(again, 409)
    assert AuditEvent.objects(action="staff.create", target_id="ivan").count() == 2
