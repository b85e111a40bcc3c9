"""Shares: scope, expiry, revocation, counting, audit naming the facility, rate limits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.models.notification import Notification
from app.models.records import Share
from app.runtime import runtime
from tests.helpers import assert_problem

V1 = "/api/v1"


def share(client, account, scope, hours=2):
    response = client.post(f"{V1}/me/shares", headers=account.headers,
                           json={"scope": scope, "expires_in_hours": hours})
    assert response.status_code == 201, response.json
    return response.json


def open_share(client, code, headers=None):
    return client.post(f"{V1}/shared-records", json={"code": code}, headers=headers or {})


def test_share_returns_only_its_scope(client, world):
    new = share(client, world["alice"], ["immunizations"])
    assert len(new["code"]) == 19 and new["scope"] == ["immunizations"]
    opened = open_share(client, new["code"])
    assert opened.status_code == 200
    body = opened.json
    assert body["patient"]["full_name"] == "Nguyễn Văn Nam"
    assert body["visits"] == [] and body["prescriptions"] == [] and len(body["immunizations"]) == 1
    assert "national_id" not in body["patient"]


def test_visits_scope_without_prescriptions_hides_them(client, world):
    body = open_share(client, share(client, world["alice"], ["visits"])["code"]).json
    assert len(body["visits"]) == 5  # the withdrawn one is not shared
    assert all(visit["prescriptions"] == [] for visit in body["visits"])
    body = open_share(client, share(client, world["alice"], ["visits", "prescriptions"])["code"]).json
    assert body["visits"][0]["prescriptions"] and len(body["prescriptions"]) == 5


def test_share_code_is_stored_only_as_a_hash_and_is_case_insensitive(client, world):
    new = share(client, world["alice"], ["visits"])
    assert new["code"] not in Share.objects.get(id=new["id"]).to_json()
    assert open_share(client, new["code"].lower().replace("-", "")).status_code == 200


def test_expired_revoked_and_unknown_codes_are_404(app, client, world):
    alice = world["alice"]
    expired = share(client, alice, ["visits"], hours=1)
    real_clock = runtime().clock
    runtime().clock = lambda: real_clock() + timedelta(hours=1, seconds=1)
    try:
        assert_problem(open_share(client, expired["code"]), 404)
    finally:
        runtime().clock = real_clock
    revoked = share(client, alice, ["visits"])
    assert client.delete(f"{V1}/me/shares/{revoked['id']}", headers=alice.headers).status_code == 204
    assert_problem(open_share(client, revoked["code"]), 404)
    assert_problem(open_share(client, "AAAA-BBBB-CCCC-DDDD"), 404)
    assert_problem(client.delete(f"{V1}/me/shares/{revoked['id']}", headers=alice.headers), 404)


def test_list_counts_openings_and_citizen_is_told(client, world):
    alice = world["alice"]
    new = share(client, alice, ["visits"])
    open_share(client, new["code"])
    open_share(client, new["code"], world["saigon"])
    listed = client.get(f"{V1}/me/shares", headers=alice.headers).json["items"]
    assert listed[0]["times_opened"] == 2 and listed[0]["active"] is True
    assert "code" not in listed[0]
    assert Notification.objects(kind="share_opened").count() == 2


@pytest.mark.parametrize("body", [{"scope": [], "expires_in_hours": 2},
                                  {"scope": ["everything"], "expires_in_hours": 2},
                                  {"scope": ["visits"], "expires_in_hours": 0},
                                  {"scope": ["visits"], "expires_in_hours": 73},
                                  {"scope": ["visits"]}, {"scope": "visits", "expires_in_hours": 2}])
def test_bad_share_requests_are_422(client, world, body):
    assert_problem(client.post(f"{V1}/me/shares", headers=world["alice"].headers, json=body), 422)


def test_guessing_codes_is_rate_limited_per_address(mongodb_server, tmp_path):
    from app import create_app
    from tests.conftest import drop_database, make_settings

    settings = make_settings(mongodb_server, tmp_path, rate_limit_share_per_ip="5 per minute")
    app = create_app(settings)
    try:
        with app.app_context():
            client = app.test_client()
            statuses = [open_share(client, f"AAAA-BBBB-CCCC-DDD{i}").status_code for i in range(6)]
            assert statuses == [404] * 5 + [429]
    finally:
        drop_database(settings)


def test_only_citizens_create_shares_and_staff_tokens_are_refused_on_open(client, world, staff):
    assert client.post(f"{V1}/me/shares", headers=world["hanoi"],
                       json={"scope": ["visits"], "expires_in_hours": 1}).status_code == 403
    code = share(client, world["alice"], ["visits"])["code"]
    assert open_share(client, code, staff.headers("support")).status_code == 403
