"""schemathesis over every operation of the generated OpenAPI, with real staff and facility tokens.

No 500s, responses conform to the documented schemas, content types and status codes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from app import create_app
from tests.app.test_openapi import COMMITTED
from tests.conftest import drop_database, make_settings
from tests.helpers import StaffActions, create_facility_client, facility_token

SCHEME_ROLE = {"staffBearer": "admin", "facilityOAuth": "facility"}


@pytest.fixture(scope="module")
def fuzz_app(mongodb_server, tmp_path_factory) -> Iterator:
    settings_ = make_settings(mongodb_server, tmp_path_factory.mktemp("fuzz"),
                              rate_limit_default="100000 per minute",
                              rate_limit_auth_per_ip="100000 per minute")
    app = create_app(settings_)
    with app.app_context():
        actions = StaffActions(app, app.test_client())
        app.config["FUZZ_TOKENS"] = {
            "admin": actions.token("admin"),
            "facility": facility_token("01001"),
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


def auth_headers(operation, tokens: dict[str, str]) -> dict[str, str]:
    """A token of the first security scheme the operation documents, if any."""
    for requirement in operation.definition.raw.get("security", []):
        for scheme in requirement:
            return {"Authorization": f"Bearer {tokens[SCHEME_ROLE[scheme]]}"}
    return {}


@pytest.mark.parametrize("path, method", OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_operation_conforms_to_its_schema(api_schema, fuzz_app, path, method):
    operation = api_schema[path][method]
    headers = auth_headers(operation, fuzz_app.config["FUZZ_TOKENS"])
    # An opaque paging cursor that the API did not make is refused with 422 although any string
    # matches the documented type; everything else must accept schema-valid input.
    parameters = {parameter["name"] for parameter in operation.definition.raw.get("parameters", [])}
    excluded = [checks.positive_data_acceptance] if "cursor" in parameters else []

    @given(case=operation.as_strategy())
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck),
              derandomize=True, database=None)
    def check(case):
        with fuzz_app.app_context():
            case.call_and_validate(headers=headers, excluded_checks=excluded)

    check()
