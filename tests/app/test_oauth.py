"""POST /oauth/token: RFC 6749 client credentials, its error format, revocation."""

from __future__ import annotations

import pytest

from app.models.facility import Facility, FacilityClient
from tests.conftest import encode_basic
from tests.helpers import create_facility_client

TOKEN = "/api/v1/oauth/token"


@pytest.fixture
def credentials(app):
    return create_facility_client("01001")


def test_basic_auth_gives_a_facility_token(client, credentials):
    client_id, secret = credentials
    response = client.post(TOKEN, data={"grant_type": "client_credentials"},
                           headers={"Authorization": encode_basic(client_id, secret)})
    assert response.status_code == 200, response.json
    assert response.json["token_type"] == "Bearer"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    me = client.get("/api/v1/facility/me",
                    headers={"Authorization": f"Bearer {response.json['access_token']}"})
    assert me.status_code == 200
    assert me.json["facility_code"] == "01001"
    assert FacilityClient.objects(client_id=client_id).first().last_used_at is not None


def test_form_credentials_work_too(client, credentials):
    client_id, secret = credentials
    response = client.post(TOKEN, data={"grant_type": "client_credentials",
                                        "client_id": client_id, "client_secret": secret})
    assert response.status_code == 200


def test_unknown_parameters_are_ignored(client, credentials):
    client_id, secret = credentials
    response = client.post(TOKEN, data={"grant_type": "client_credentials", "colour": "blue"},
                           headers={"Authorization": encode_basic(client_id, secret)})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "data, status, error",
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({}, 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "scope": "admin"}, 400, "invalid_scope"),
        ({"grant_type": "client_credentials", "client_id": "x" * 600}, 400, "invalid_request"),
        ({"grant_type": "client_credentials"}, 401, "invalid_client"),
        ({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
         401, "invalid_client"),
    ],
)
def test_rfc6749_errors(client, credentials, data, status, error):
    response = client.post(TOKEN, data=data)
    assert response.status_code == status
    assert response.json["error"] == error
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_wrong_secret_is_invalid_client(client, credentials):
    client_id, _ = credentials
    response = client.post(TOKEN, data={"grant_type": "client_credentials"},
                           headers={"Authorization": encode_basic(client_id, "wrong")})
    assert response.status_code == 401 and response.json["error"] == "invalid_client"


def test_two_authentication_methods_are_refused(client, credentials):
    client_id, secret = credentials
    response = client.post(TOKEN, data={"grant_type": "client_credentials", "client_id": client_id,
                                        "client_secret": secret},
                           headers={"Authorization": encode_basic(client_id, secret)})
    assert response.status_code == 400 and response.json["error"] == "invalid_request"


def test_json_body_is_415(client, credentials):
    response = client.post(TOKEN, json={"grant_type": "client_credentials"})
    assert response.status_code == 415


def test_revoked_client_and_inactive_facility_get_invalid_client(client, staff, credentials):
    client_id, secret = credentials
    basic = {"Authorization": encode_basic(client_id, secret)}
    token = client.post(TOKEN, data={"grant_type": "client_credentials"}, headers=basic)
    bearer = {"Authorization": f"Bearer {token.json['access_token']}"}
    revoke = client.delete(f"/api/v1/admin/facilities/01001/clients/{client_id}",
                           headers=staff.headers())
    assert revoke.status_code == 204
    # the token already issued stops working at once
    assert client.get("/api/v1/facility/me", headers=bearer).status_code == 401
    again = client.post(TOKEN, data={"grant_type": "client_credentials"}, headers=basic)
    assert again.status_code == 401 and again.json["error"] == "invalid_client"


def test_inactive_facility_disables_its_clients(client, credentials):
    client_id, secret = credentials
    basic = {"Authorization": encode_basic(client_id, secret)}
    token = client.post(TOKEN, data={"grant_type": "client_credentials"}, headers=basic)
    Facility.objects(code="01001").update_one(set__active=False)
    bearer = {"Authorization": f"Bearer {token.json['access_token']}"}
    assert client.get("/api/v1/facility/me", headers=bearer).status_code == 401
    again = client.post(TOKEN, data={"grant_type": "client_credentials"}, headers=basic)
    assert again.json["error"] == "invalid_client"


def test_repeated_failures_lock_the_client_id(mongodb_server, tmp_path):
    from app import create_app
    from tests.conftest import drop_database, make_settings

    settings = make_settings(mongodb_server, tmp_path, login_max_failures=2)
    app = create_app(settings)
    try:
        with app.app_context():
            client_id, secret = create_facility_client("01002")
            http = app.test_client()
            for _ in range(2):
                http.post(TOKEN, data={"grant_type": "client_credentials"},
                          headers={"Authorization": encode_basic(client_id, "bad")})
            locked = http.post(TOKEN, data={"grant_type": "client_credentials"},
                               headers={"Authorization": encode_basic(client_id, secret)})
            assert locked.status_code == 429
            assert int(locked.headers["Retry-After"]) > 0
    finally:
        drop_database(settings)
