"""The flask-smorest ``Api`` of HoSo: problem documents as the error schema, auth in the docs."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import marshmallow as ma
from apispec import BasePlugin
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from app.web import access
from app.web.problems import PROBLEM_MIMETYPE, http_exception_response

API_TITLE = "HoSo API"
API_VERSION = "1.0.0"


class ProblemSchema(ma.Schema):
    """RFC 9457 problem document."""

    type = ma.fields.String(metadata={"description": "Problem type (URI reference)"})
    title = ma.fields.String(metadata={"description": "Short summary of the problem type"})
    status = ma.fields.Integer(metadata={"description": "HTTP status code"})
    detail = ma.fields.String(metadata={"description": "Explanation of this occurrence"})
    instance = ma.fields.String(allow_none=True, metadata={"description": "Request path"})
    request_id = ma.fields.String(allow_none=True, metadata={"description": "Quote it to support"})
    errors = ma.fields.Dict(metadata={"description": "Per-field validation messages (422)"})


class AccessDocPlugin(BasePlugin):
    """Documents each operation's security and 401/403 answers from the route-role table."""

    def operation_helper(self, path=None, operations=None, **kwargs: Any) -> None:  # noqa: D401
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        for method, operation in operations.items():
            roles = access.roles_for(method.upper(), rule.rule)
            if roles is None:
                continue
            security = access.openapi_security(roles)
            operation["security"] = security
            responses = operation.setdefault("responses", {})

            def document(status: int, component: str, responses=responses) -> None:
                # flask-smorest keys its own responses by int, apispec's by str: check both.
                if status not in responses and str(status) not in responses:
                    responses[str(status)] = component

            if security and {} not in security:
                document(401, "UNAUTHORIZED")
                document(403, "FORBIDDEN")
            document(429, "TOO_MANY_REQUESTS")
            document(404, "NOT_FOUND")
            document(405, "METHOD_NOT_ALLOWED")
            document(503, "SERVICE_UNAVAILABLE")
            if method.upper() in ("POST", "PUT", "PATCH"):
                document(400, "BAD_REQUEST")
                document(413, "REQUEST_ENTITY_TOO_LARGE")
                document(415, "UNSUPPORTED_MEDIA_TYPE")


class HosoApi(Api):
    """Api whose every error, documented or raised, is an RFC 9457 problem document."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        from werkzeug.exceptions import HTTPException

        self._app.register_error_handler(HTTPException, http_exception_response)

    def _register_responses(self) -> None:
        """Document error responses as ``application/problem+json``."""
        for status in HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def problem(description: str) -> dict[str, Any]:
    """``alt_response`` keyword arguments of a documented problem answer."""
    return {"schema": ProblemSchema, "content_type": PROBLEM_MIMETYPE, "description": description}


def refine_spec(api: Api) -> None:
    """Add what marshmallow cannot say to the document: "exactly one of these fields"."""
    from app.resources.auth.schemas import LoginSchema, ReauthenticateSchema

    for name, schema in (("Login", LoginSchema), ("Reauthenticate", ReauthenticateSchema)):
        component = api.spec.components.schemas[name]
        component["oneOf"] = [
            {"required": list(fields), "not": {"required": list(others)}}
            for fields in schema.ONE_OF_REQUIRED
            for others in [[f for group in schema.ONE_OF_REQUIRED if group != fields for f in group]]
        ]


def build_api(app) -> HosoApi:  # type: ignore[no-untyped-def]
    """Create the Api for ``app`` with HoSo's spec options."""
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/api/docs/static/",
        API_SPEC_OPTIONS={
            "info": {
                "description": (
                    "HoSo: one lifetime health record per citizen, fed by hospitals and clinics, "
                    "read and shared by the citizen, with EU DCC vaccine passports. "
                    "Errors are RFC 9457 problem documents."
                ),
            },
            "servers": [{"url": "/"}],
            "components": {"securitySchemes": access.SECURITY_SCHEMES},
        },
    )
    return HosoApi(app, spec_kwargs={"extra_plugins": [AccessDocPlugin()]})
