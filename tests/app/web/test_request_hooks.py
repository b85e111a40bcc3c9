"""The request hooks: one ordered list in ``create_app``, the request id first."""

from __future__ import annotations

import mongoengine

from app import create_app
from app.web import auth, http
from tests.conftest import make_settings
from tests.helpers import free_port


def test_hooks_run_in_the_listed_order_request_id_first(app):
    before = app.before_request_funcs[None]
    assert before[0] is http.assign_request_id
    assert before.index(http.check_request_size) < before.index(auth.authenticate_request) \
        < before.index(http.check_body_type)
    # flask-limiter's check runs after authentication (its limits are keyed on the caller)
    assert getattr(before[-1], "__name__", "") == "_check_request_limit"
    # Flask runs after-request hooks last registered first: secure headers come last of all
    assert app.after_request_funcs[None][0] is http.secure_headers
    # and no blueprint registers hooks of its own
    assert all(not funcs for key, funcs in app.before_request_funcs.items() if key is not None)


def test_a_database_down_on_the_first_request_answers_503_with_its_request_id(mongodb_server, tmp_path):
    """No database listens on the port: the schema guard of the very first request fails (503),
    and the answer still carries the request id of that request, in its body and its header."""
    settings = make_settings(mongodb_server, tmp_path, mongodb_uri=f"mongodb://127.0.0.1:{free_port()}/down")
    application = create_app(settings)
    try:
        with application.app_context():
            client = application.test_client()
            response = client.get("/api/v1/staff/me")
            assert response.status_code == 503
            assert response.json["request_id"]
            assert response.json["request_id"] == response.headers["X-Request-ID"]
            chosen = client.get("/api/v1/staff/me", headers={"X-Request-ID": "caller-chosen-id-42"})
            assert chosen.status_code == 503
            assert chosen.json["request_id"] == chosen.headers["X-Request-ID"] == "caller-chosen-id-42"
    finally:
        mongoengine.disconnect(alias="default")
