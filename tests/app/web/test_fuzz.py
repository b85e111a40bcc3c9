"""schemathesis over every operation of the generated OpenAPI, with real staff and facility tokens.

No 500s, responses conform to the documented schemas, content types and status codes.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator

import pytest
import schemathesis
from flask import current_app
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from app import create_app
from app.web import access
from tests.conftest import drop_database, make_settings
from tests.helpers import COMMITTED, CitizenActions, StaffActions, create_facility_client, facility_token

# An NDJSON upload is text: generated strings are sent as the body, line by line.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
schemathesis.serializer.alias("application/xml", "text/plain")
schemathesis.serializer.alias("text/xml", "text/plain")

# The role whose token each operation gets: the first role the access table allows.
ROLE_PREFERENCE = (access.ADMIN, access.SUPPORT, access.FACILITY, access.CITIZEN)


@pytest.fixture(scope="module")
def fuzz_app(mongodb_server, tmp_path_factory) -> Iterator:
    settings_ = make_settings(mongodb_server, tmp_path_factory.mktemp("fuzz"),
                              rate_limit_default="100000 per minute",
                              rate_limit_auth_per_ip="100000 per minute")
    app = create_app(settings_)
    with app.app_context():
        actions = StaffActions(app, app.test_client())
        citizens = CitizenActions(app.test_client())
        citizen = citizens.enrol()
        app.config["FUZZ_TOKENS"] = {
            access.ADMIN: lambda: actions.token("admin"),
            access.SUPPORT: lambda: actions.token("support"),
            access.FACILITY: lambda: facility_token(f"0{next(FACILITY_CODES)}"),
            # a fresh session per operation: fuzzing the logout route must not end the others
            access.CITIZEN: lambda: fresh_citizen_session(citizen.national_id),
        }
        create_facility_client("01002")
        yield app
    drop_database(settings_)


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app)


# One test per documented operation (ids from the committed document; the drift test keeps the
# committed document equal to what the code generates).
OPERATIONS = [
    (path, method)
    for path, item in json.loads(COMMITTED.read_text())["paths"].items()
    for method in item
    if method in ("get", "post", "put", "patch", "delete")
]


FACILITY_CODES = itertools.count(3001)

# Rules a JSON Schema cannot state: schema-valid input may still be refused there with a 422.
CROSS_FIELD_RULES = {
    ("post", "/api/v1/facility/citizens"): "the CCCD's digits must agree with date_of_birth and sex",
    ("post", "/api/v1/auth/activate"): "the password must not be a common one or contain the CCCD",
    ("put", "/api/v1/facility/visits/{source_id}"): "CCCD vs birth date; times not in the future",
    ("put", "/api/v1/facility/immunizations/{source_id}"): "CCCD vs birth date; times not in the future",
    ("post", "/api/v1/me/immunizations/{immunization_id}/reactions"): "onset not in the future",
    ("post", "/api/v1/facility/xml130"): "the text must be a GIAMDINHHS envelope",
    ("put", "/api/v1/admin/passport-rules/{country}"): "each rule's CertLogic, versions, dates and country",
    ("post", "/api/v1/passport/verify"): "the country of arrival must have a stored rule set",
}


def fresh_citizen_session(national_id: str) -> str:
    """A new session of the fuzzing citizen, opened by the production service."""
    from app.models.citizen import Citizen
    from app.runtime import runtime
    from app.services.sessions import start_session
    from app.web.auth import request_context

    with current_app.test_request_context():
        citizen = Citizen.objects.get(national_id=national_id)
        return start_session(request_context(), runtime().accounts, citizen, "fuzz", None).access_token


def auth_headers(path: str, method: str, tokens: dict) -> dict[str, str]:
    """A token of a role the access table allows on this operation (none for public ones)."""
    roles = access.roles_for(method.upper(), re.sub(r"\{(\w+)\}", r"<\1>", path)) or set()
    for role in ROLE_PREFERENCE:
        if role in roles:
            return {"Authorization": f"Bearer {tokens[role]()}"}
    return {}


@pytest.mark.parametrize("path, method", OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_operation_conforms_to_its_schema(api_schema, fuzz_app, path, method):
    operation = api_schema[path][method]
    with fuzz_app.app_context():
        headers = auth_headers(path, method, fuzz_app.config["FUZZ_TOKENS"])
    # An opaque paging cursor that the API did not make is refused with 422 although any string
    # matches the documented type; everything else must accept schema-valid input.
    parameters = {parameter["name"] for parameter in operation.definition.raw.get("parameters", [])}
    cross_field = (method, path) in CROSS_FIELD_RULES
    excluded = [checks.positive_data_acceptance] if "cursor" in parameters or cross_field else []

    @given(case=operation.as_strategy())
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck),
              derandomize=True, database=None)
    def check(case):
        with fuzz_app.app_context():
            case.call_and_validate(headers=headers, excluded_checks=excluded)

    check()
