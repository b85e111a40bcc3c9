"""Lockout without denial of service: an attacker's failures do not lock the owner's known addresses."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from app.models.login_origin import LoginOrigin
from tests.app.helpers import describe, shapes_sent
from tests.conftest import encode_basic, make_settings
from tests.helpers import DEFAULT_PASSWORD, CitizenActions, assert_problem, citizen_body, create_facility_client

OWNER, ATTACKER, STRANGER = "198.51.100.7", "203.0.113.66", "192.0.2.9"
LOGIN, STAFF_LOGIN, TOKEN = "/api/v1/auth/login", "/api/v1/staff/login", "/api/v1/oauth/token"
MAX_FAILURES = 3


@pytest.fixture
def settings(mongodb_server, tmp_path):  # type: ignore[no-untyped-def]
    """Three failures per window; the per-address limit high enough to be out of the way."""
    return make_settings(mongodb_server, tmp_path / "var", login_max_failures=MAX_FAILURES,
                         rate_limit_auth_per_ip="1000 per minute")


def at(address: str) -> dict:
    """Keyword arguments that make a test-client request come from ``address``."""
    return {"environ_base": {"REMOTE_ADDR": address}}


def citizen_login(client, account, address, *, totp_code=None, recovery_code=None, password=None):  # type: ignore[no-untyped-def]
    body = {"national_id": account.national_id, "password": password or account.password}
    body.update({"totp_code": totp_code} if totp_code else {"recovery_code": recovery_code or "AAAAA-AAAAA"})
    return client.post(LOGIN, json=body, **at(address))


def test_citizen_attacker_elsewhere_does_not_lock_out_the_owners_known_address(client):
    account = CitizenActions(client).enrol()
    assert citizen_login(client, account, OWNER, recovery_code=account.recovery_codes[0]).status_code == 200
    for _ in range(MAX_FAILURES):
        assert_problem(citizen_login(client, account, ATTACKER, password="wrong password 1234"), 401)

    # the attacker's own address is locked, even with the right credentials
    locked = citizen_login(client, account, ATTACKER, recovery_code=account.recovery_codes[1])
    assert_problem(locked, 429)
    assert int(locked.headers["Retry-After"]) > 0
    # so is every address the account never signed in from
    stranger = citizen_login(client, account, STRANGER, recovery_code=account.recovery_codes[1])
    assert_problem(stranger, 429)
    assert int(stranger.headers["Retry-After"]) > 0
    # the owner's address still signs in, with TOTP (recovery codes too: the same path)
    assert citizen_login(client, account, OWNER, totp_code=account.code(1)).status_code == 200


def test_citizen_known_address_is_limited_by_its_own_counter(client):
    account = CitizenActions(client).enrol()  # enrolment signed in from the test client's address
    for _ in range(MAX_FAILURES):
        assert_problem(citizen_login(client, account, "127.0.0.1", password="wrong password 1234"), 401)
    assert_problem(citizen_login(client, account, "127.0.0.1", totp_code=account.code(1)), 429)
    # failures from a known address do not count against the account: a new address may sign in
    assert citizen_login(client, account, OWNER, totp_code=account.code(1)).status_code == 200


def _parallel(app, requests):  # type: ignore[no-untyped-def]
    def send(request):  # type: ignore[no-untyped-def]
        with app.app_context():
            return request(app.test_client()).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        return list(pool.map(send, requests))


def test_twenty_parallel_guesses_from_twenty_addresses_stay_under_the_limit(app, client):
    account = CitizenActions(client).enrol()
    statuses = _parallel(app, [
        lambda http, n=n: citizen_login(http, account, f"203.0.113.{n}", password="wrong password 1234")
        for n in range(20)
    ])
    assert statuses.count(401) == MAX_FAILURES
    assert statuses.count(429) == 20 - MAX_FAILURES


def test_twenty_parallel_guesses_from_a_known_address_stay_under_the_limit(app, client):
    account = CitizenActions(client).enrol()
    statuses = _parallel(app, [
        lambda http: citizen_login(http, account, "127.0.0.1", password="wrong password 1234")
    ] * 20)
    assert statuses.count(401) == MAX_FAILURES
    assert statuses.count(429) == 20 - MAX_FAILURES


def test_activation_is_limited_per_address_and_the_confirmation_per_enrolment(client):
    citizens = CitizenActions(client)
    body = citizen_body()
    code = citizens.register(body).json["activation_code"]
    wrong = {"national_id": body["national_id"], "activation_code": "BBBBB-BBBBB", "password": DEFAULT_PASSWORD}
    for _ in range(MAX_FAILURES):
        assert_problem(client.post("/api/v1/auth/activate", json=wrong, **at(ATTACKER)), 401)
    right = {**wrong, "activation_code": code}
    assert_problem(client.post("/api/v1/auth/activate", json=right, **at(ATTACKER)), 429)
    # a citizen who never signed in has no known address: the account-wide counter decides
    assert_problem(client.post("/api/v1/auth/activate", json=right, **at(OWNER)), 429)


def test_enrolment_confirmation_is_not_blocked_by_login_failures_of_others(client):
    citizens = CitizenActions(client)
    body = citizen_body()
    code = citizens.register(body).json["activation_code"]
    activated = client.post("/api/v1/auth/activate", json={
        "national_id": body["national_id"], "activation_code": code, "password": DEFAULT_PASSWORD}, **at(OWNER))
    assert activated.status_code == 200
    for n in range(MAX_FAILURES + 1):  # the account-wide login counter is now over its limit
        client.post(LOGIN, json={"national_id": body["national_id"], "password": "wrong password 1234",
                                 "totp_code": "000000"}, **at(f"203.0.113.{n}"))
    assert citizens.confirm(activated.json["enrollment_token"], activated.json["totp_secret"]).status_code == 200


def test_staff_attacker_elsewhere_does_not_lock_out_the_owners_known_address(client, staff):
    account = staff.create("linh", "support")

    def login(address, password=None, steps_ahead=0):  # type: ignore[no-untyped-def]
        return client.post(STAFF_LOGIN, json={"username": account.username, "password": password or account.password,
                                              "totp_code": account.code(steps_ahead)}, **at(address))

    assert login(OWNER).status_code == 200
    for _ in range(MAX_FAILURES):
        assert_problem(login(ATTACKER, password="wrong password"), 401)
    assert_problem(login(ATTACKER, steps_ahead=1), 429)
    stranger = login(STRANGER, steps_ahead=1)
    assert_problem(stranger, 429)
    assert int(stranger.headers["Retry-After"]) > 0
    assert login(OWNER, steps_ahead=1).status_code == 200


def test_facility_client_attacker_elsewhere_does_not_lock_out_its_known_address(client):
    client_id, secret = create_facility_client("01002")

    def token(address, client_secret=secret):  # type: ignore[no-untyped-def]
        return client.post(TOKEN, data={"grant_type": "client_credentials"},
                           headers={"Authorization": encode_basic(client_id, client_secret)}, **at(address))

    assert token(OWNER).status_code == 200
    for _ in range(MAX_FAILURES):
        assert token(ATTACKER, "wrong secret").status_code == 401
    assert token(ATTACKER).status_code == 429
    stranger = token(STRANGER)
    assert stranger.status_code == 429
    assert int(stranger.headers["Retry-After"]) > 0
    assert token(OWNER).status_code == 200


def test_known_addresses_are_keyed_hashes_and_bounded(mongodb_server, tmp_path):
    from app import create_app
    from tests.conftest import drop_database

    settings = make_settings(mongodb_server, tmp_path, login_known_addresses=2)
    app = create_app(settings)
    try:
        with app.app_context():
            client = app.test_client()
            client_id, secret = create_facility_client("01003")
            for address in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
                assert client.post(TOKEN, data={"grant_type": "client_credentials"},
                                   headers={"Authorization": encode_basic(client_id, secret)},
                                   **at(address)).status_code == 200
            stored = list(LoginOrigin._get_collection().find())
            assert len(stored) == 2
            assert "198.51.100" not in repr(stored) and client_id not in repr(stored)
    finally:
        drop_database(settings)


def _lock_account_from_elsewhere(client, account):  # type: ignore[no-untyped-def]
    for n in range(MAX_FAILURES + 1):
        citizen_login(client, account, f"203.0.113.{n}", password="wrong password 1234")


def test_a_device_that_signed_in_before_proves_itself_from_a_new_address(client):
    account = CitizenActions(client).enrol()
    _lock_account_from_elsewhere(client, account)
    body = {"national_id": account.national_id, "password": account.password, "totp_code": account.code(1)}
    assert_problem(client.post(LOGIN, json=body, **at(OWNER)), 429)  # a new address, no proof
    # the app still holds the refresh token of its earlier session (here: ended by logout)
    assert client.post("/api/v1/auth/logout", headers=account.headers).status_code == 204
    proven = client.post(LOGIN, json={**body, "device_proof": account.refresh_token}, **at(OWNER))
    assert proven.status_code == 200


def test_a_rotated_or_foreign_refresh_token_is_no_device_proof(client):
    citizens = CitizenActions(client)
    account = citizens.enrol()
    other = citizens.enrol(serial=222222)
    rotated = client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert rotated.status_code == 200
    _lock_account_from_elsewhere(client, account)
    body = {"national_id": account.national_id, "password": account.password, "totp_code": account.code(1)}
    for proof in (account.refresh_token, other.refresh_token, "not a token"):
        assert_problem(client.post(LOGIN, json={**body, "device_proof": proof}, **at(OWNER)), 429)


def test_a_proven_device_is_limited_by_its_own_counter(client):
    account = CitizenActions(client).enrol()
    body = {"national_id": account.national_id, "password": "wrong password 1234", "totp_code": "000000",
            "device_proof": account.refresh_token}
    for _ in range(MAX_FAILURES):
        assert_problem(client.post(LOGIN, json=body, **at(ATTACKER)), 401)
    assert_problem(client.post(LOGIN, json=body, **at(STRANGER)), 429)
    # the device's failures did not count against the account: the owner's address still signs in
    assert citizen_login(client, account, "127.0.0.1", totp_code=account.code(1)).status_code == 200


def test_after_a_support_reset_the_citizen_activates_from_a_known_address(client, staff):
    from app.models.notification import Notification
    from app.runtime import runtime
    from app.services.outbox import secret_context
    from tests.helpers import RESET

    account = CitizenActions(client).enrol()  # signed in from the test client's address
    reset = client.post(f"/api/v1/support/citizens/{account.national_id}/access-reset", json=RESET,
                        headers=staff.headers("support"))
    assert reset.status_code == 200
    delivery = Notification.objects.get(kind="activation_code_delivery")
    code = runtime().box.decrypt(delivery.secret_encrypted, secret_context(delivery.dedupe_key))
    wrong = {"national_id": account.national_id, "activation_code": "BBBBB-BBBBB", "password": DEFAULT_PASSWORD}
    for n in range(MAX_FAILURES + 1):
        client.post("/api/v1/auth/activate", json=wrong, **at(f"203.0.113.{n}"))
    right = {**wrong, "activation_code": code}
    assert_problem(client.post("/api/v1/auth/activate", json=right, **at(STRANGER)), 429)
    assert client.post("/api/v1/auth/activate", json=right, **at("127.0.0.1")).status_code == 200


def test_every_login_origin_query_names_the_account(request, mongodb_server, tmp_path):
    """login_origins is sharded by account: the look-up, the upsert and the trimming name it."""
    from app import create_app
    from tests.conftest import drop_database

    settings = make_settings(mongodb_server, tmp_path, login_known_addresses=1)
    app = create_app(settings)
    try:
        with app.app_context():
            client = app.test_client()
            client_id, secret = create_facility_client("01003")
            basic = {"Authorization": encode_basic(client_id, secret)}

            def sign_ins() -> None:
                for address in ("198.51.100.1", "198.51.100.2", "198.51.100.2"):  # new, new (trims), known
                    assert client.post(TOKEN, data={"grant_type": "client_credentials"}, headers=basic,
                                       **at(address)).status_code == 200
                assert client.post(TOKEN, data={"grant_type": "client_credentials"},
                                   headers={"Authorization": encode_basic(client_id, "wrong")},
                                   **at("198.51.100.3")).status_code == 401

            shapes = shapes_sent(request.config, "login_origins", sign_ins)
    finally:
        drop_database(settings)
    assert {shape.command for shape in shapes} >= {"update", "delete", "aggregate", "find"}
    assert [shape for shape in shapes if not shape.pinned] == [], describe(shapes)


def test_trimming_known_addresses_keeps_the_newest_of_that_account_only(mongodb_server, tmp_path):
    from app import create_app
    from tests.conftest import drop_database

    settings = make_settings(mongodb_server, tmp_path, login_known_addresses=2, login_max_failures=MAX_FAILURES,
                             rate_limit_auth_per_ip="1000 per minute")
    app = create_app(settings)
    try:
        with app.app_context():
            client = app.test_client()
            first, other = (create_facility_client(code) for code in ("01003", "01004"))

            def token(account: tuple[str, str], address: str, secret: str | None = None) -> int:
                client_id, right = account
                return client.post(TOKEN, data={"grant_type": "client_credentials"},
                                   headers={"Authorization": encode_basic(client_id, secret or right)},
                                   **at(address)).status_code

            for address in ("198.51.100.1", "198.51.100.2"):
                assert token(other, address) == 200
            for address in ("198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"):
                assert token(first, address) == 200
            accounts = [origin["account"] for origin in LoginOrigin._get_collection().find()]
            assert sorted(accounts.count(account) for account in set(accounts)) == [2, 2]  # the other kept its two
            for account in (first, other):  # lock each account for every address it does not know
                for _ in range(MAX_FAILURES + 1):
                    token(account, ATTACKER, "wrong secret")
            # the first account knows its two newest addresses only; the other still knows its own two
            assert [token(first, address) for address in ("198.51.100.3", "198.51.100.4")] == [200, 200]
            assert [token(first, address) for address in ("198.51.100.1", "198.51.100.2")] == [429, 429]
            assert [token(other, address) for address in ("198.51.100.1", "198.51.100.2")] == [200, 200]
    finally:
        drop_database(settings)
