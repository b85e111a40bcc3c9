"""Every error is an RFC 9457 problem document with the right status and headers."""

from __future__ import annotations

import pytest

from app.models.facility import Facility
from app.web import access
from tests.helpers import assert_problem


def test_unknown_route_is_404_problem(client):
    body = assert_problem(client.get("/api/v1/no-such-thing"), 404)
    assert body["type"] == "/problems/not-found"
    assert body["instance"] == "/api/v1/no-such-thing"


def test_wrong_method_is_405_with_allow_header(client):
    response = client.delete("/api/v1/health")
    assert_problem(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}


def test_trace_is_refused_with_405(client):
    response = client.open("/api/v1/staff/login", method="TRACE")
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_missing_token_is_401_with_challenge(client):
    response = client.get("/api/v1/admin/facilities")
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_garbage_token_is_401_invalid_token(client):
    response = client.get("/api/v1/admin/facilities", headers={"Authorization": "Bearer abc.def.ghi"})
    assert_problem(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_wrong_role_is_403(client, staff):
    assert_problem(client.get("/api/v1/admin/facilities", headers=staff.headers("support")), 403)


def test_malformed_json_is_400(client, staff):
    response = client.post(
        "/api/v1/admin/facilities", data="{not json", content_type="application/json",
        headers=staff.headers(),
    )
    body = assert_problem(response, 400)
    assert "JSON" in body["detail"]
    assert Facility.objects.count() == 0


def test_wrong_content_type_is_415(client, staff):
    response = client.post(
        "/api/v1/admin/facilities", data="code=01001", content_type="text/plain",
        headers=staff.headers(),
    )
    assert_problem(response, 415)
    assert Facility.objects.count() == 0


def test_oversized_body_is_413(client, staff):
    big = {"code": "01001", "name": "x" * (2 * 1024 * 1024), "province": "Hà Nội"}
    response = client.post("/api/v1/admin/facilities", json=big, headers=staff.headers())
    assert_problem(response, 413)
    assert Facility.objects.count() == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"code": "01001", "name": "A", "province": "B", "extra": 1}, "extra"),
        ({"code": {"$ne": ""}, "name": "A", "province": "B"}, "code"),
        ({"code": "01001", "name": {"$gt": ""}, "province": "B"}, "name"),
        ({"code": "0100", "name": "A", "province": "B"}, "code"),
        ({"code": "01001", "name": 12, "province": "B"}, "name"),
        ({"name": "A", "province": "B"}, "code"),
        ({"code": "01001", "name": "", "province": "B"}, "name"),
    ],
)
def test_invalid_fields_are_422_with_per_field_errors(client, staff, body, field):
    response = client.post("/api/v1/admin/facilities", json=body, headers=staff.headers())
    problem = assert_problem(response, 422)
    assert field in problem["errors"]
    assert Facility.objects.count() == 0


def test_json_array_body_is_422(client, staff):
    response = client.post("/api/v1/admin/facilities", json=[1, 2], headers=staff.headers())
    assert_problem(response, 422)


def test_duplicate_is_409(client, staff):
    headers = staff.headers()
    body = {"code": "01001", "name": "Bệnh viện Bạch Mai", "province": "Hà Nội"}
    assert client.post("/api/v1/admin/facilities", json=body, headers=headers).status_code == 201
    problem = assert_problem(client.post("/api/v1/admin/facilities", json=body, headers=headers), 409)
    assert problem["type"] == "/problems/already-exists"


def test_unexpected_exception_is_500_without_internals(app, client, monkeypatch):
    def explode():
        raise RuntimeError("secret internal detail")

    app.add_url_rule("/api/v1/explode", "explode", explode)
    monkeypatch.setitem(access.ROUTE_ROLES, ("GET", "/api/v1/explode"), access.PUBLIC)
    response = client.get("/api/v1/explode")
    body = assert_problem(response, 500)
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert body["request_id"]


def test_route_missing_from_access_table_is_refused(app, client):
    app.add_url_rule("/api/v1/forgotten", "forgotten", lambda: "should never run")
    assert_problem(client.get("/api/v1/forgotten"), 403)


def test_request_id_is_echoed_when_well_formed(client):
    response = client.get("/api/v1/health", headers={"X-Request-ID": "abcdef12-3456"})
    assert response.headers["X-Request-ID"] == "abcdef12-3456"
    response = client.get("/api/v1/health", headers={"X-Request-ID": "bad id <script>"})
    assert response.headers["X-Request-ID"] != "bad id <script>"


def test_security_headers_on_every_response(client, staff):
    for response in (
        client.get("/api/v1/health"),
        client.get("/api/v1/nothing"),
        client.get("/api/v1/staff/me", headers=staff.headers("support")),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        assert "Server" not in response.headers


def test_rate_limit_is_429_with_retry_after(mongodb_server, tmp_path):
    from app import create_app
    from tests.conftest import drop_database, make_settings

    settings = make_settings(mongodb_server, tmp_path, rate_limit_default="3 per minute")
    app = create_app(settings)
    try:
        with app.app_context():
            client = app.test_client()
            statuses = [client.post("/api/v1/staff/login", json={}).status_code for _ in range(3)]
            assert statuses == [422, 422, 422]
            response = client.post("/api/v1/staff/login", json={})
            assert_problem(response, 429)
            assert int(response.headers["Retry-After"]) > 0
            # the health probe is exempt
            assert client.get("/api/v1/health").status_code == 200
    finally:
        drop_database(settings)


def test_concurrent_hits_on_one_limit_are_counted_exactly(mongodb_server, tmp_path):
    """Hits batched by group commit still see 1, 2, ... n: a limit of n lets exactly n through."""
    import threading

    from app import create_app
    from app.runtime import runtime
    from tests.conftest import drop_database, make_settings

    settings = make_settings(mongodb_server, tmp_path)
    app = create_app(settings)
    try:
        with app.app_context():
            storage = runtime().limiter.storage
            counts: list[int] = []
            lock = threading.Lock()

            def hit() -> None:
                with app.app_context():
                    count = storage.incr("test:exact", 60)
                with lock:
                    counts.append(count)

            threads = [threading.Thread(target=hit) for _ in range(30)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert sorted(counts) == list(range(1, 31))
            assert storage.get("test:exact") == 30
    finally:
        drop_database(settings)
