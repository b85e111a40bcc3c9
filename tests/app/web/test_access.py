"""The route-role table: every route is in it, and every role gets exactly what it says."""

from __future__ import annotations

import re

import pytest

from app.web import access
from tests.helpers import CitizenActions, citizen_body

PATH_VALUES = {"code": "01001", "client_id": "no-such-client", "filename": "swagger-ui.css",
               "session_id": "no-such-session", "national_id": "001085999999", "source_id": "LK-1",
               "visit_id": "0" * 24, "immunization_id": "0" * 24, "share_id": "0" * 24,
               "uvci": "URN:UVCI:01:VN:NOSUCHPASSPORT%23A", "message_id": "0" * 24, "device_id": "0" * 24,
               "country": "XQ"}
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def url_map_routes(app) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - IGNORED_METHODS
    }


def concrete_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: PATH_VALUES[m.group(1)], rule)


def test_every_route_is_in_the_table(app):
    missing = sorted(route for route in url_map_routes(app) if access.roles_for(*route) is None)
    assert missing == []


def test_the_table_names_no_route_that_does_not_exist(app):
    assert sorted(set(access.ROUTE_ROLES) - url_map_routes(app)) == []


def test_every_role_in_the_table_is_known():
    for roles in access.ROUTE_ROLES.values():
        assert roles <= set(access.ROLES)


@pytest.fixture
def role_headers(app, client, staff) -> dict[str, dict[str, str]]:
    """Credentials of every role."""
    citizens = CitizenActions(client)
    citizen = citizens.enrol()
    registered = citizens.register(citizen_body(222222))
    enrolment = citizens.activate(citizen_body(222222)["national_id"],
                                  registered.json["activation_code"]).json["enrollment_token"]
    return {
        access.ANONYMOUS: {},
        access.SUPPORT: staff.headers("support"),
        access.ADMIN: staff.headers("admin"),
        access.FACILITY: citizens.facility_headers,
        access.CITIZEN: citizen.headers,
        access.ENROLLMENT: {"Authorization": f"Bearer {enrolment}"},
    }


def test_role_headers_cover_every_role(role_headers):
    assert set(role_headers) == set(access.ROLES)


def test_each_role_against_each_route(app, client, role_headers):
    mismatches = []
    # Signing out ends the citizen's token, so that route goes last.
    routes = sorted(url_map_routes(app), key=lambda route: (route[1].endswith("/logout"), route))
    for method, rule in routes:
        allowed = access.roles_for(method, rule)
        for role, headers in role_headers.items():
            kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
            if rule.endswith("/oauth/token"):
                kwargs = {"data": {"grant_type": "client_credentials"}}
            response = client.open(concrete_path(rule), method=method, headers=headers, **kwargs)
            refused = response.status_code in (401, 403)
            # Public routes ignore tokens; routes open to anonymous callers and some roles refuse
            # the tokens of other roles (send none instead).
            expected = role in allowed or allowed == access.PUBLIC
            if expected == refused:
                # oauth/token answers 401 invalid_client to anyone without client credentials
                if not (rule.endswith("/oauth/token") and response.status_code == 401):
                    mismatches.append((method, rule, role, response.status_code))
    assert mismatches == []
