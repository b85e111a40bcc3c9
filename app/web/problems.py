"""RFC 9457 problem documents for every error, and the one table from domain errors to HTTP."""

from __future__ import annotations

import logging
import time
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, g, json, request
from pymongo.errors import PyMongoError
from werkzeug.exceptions import HTTPException

from app.services import errors as domain

PROBLEM_MIMETYPE = "application/problem+json"
WWW_AUTHENTICATE = 'Bearer realm="hoso"'
log = logging.getLogger("hoso.errors")

# The one place where domain errors become HTTP: error class -> (status, problem slug, title).
PROBLEM_TABLE: dict[type[domain.DomainError], tuple[int, str, str]] = {
    domain.NotFound: (404, "not-found", "Not found"),
    domain.AlreadyExists: (409, "already-exists", "Already exists"),
    domain.Conflict: (409, "conflict", "Conflict"),
    domain.AuthenticationFailed: (401, "authentication-failed", "Authentication failed"),
    domain.LockedOut: (429, "too-many-attempts", "Too many attempts"),
    domain.Unavailable: (503, "service-unavailable", "Service unavailable"),
    domain.InvalidInput: (422, "validation-error", "Unprocessable Entity"),
}

# Problem slugs of plain HTTP errors.
HTTP_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "rate-limited",
    500: "internal-error",
    503: "service-unavailable",
}


def problem_type(slug: str) -> str:
    """The problem ``type`` URI reference for a slug (documented in the README)."""
    return f"/problems/{slug}"


def problem_response(
    status: int,
    *,
    slug: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build an ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": problem_type(slug or HTTP_SLUGS.get(status, "error")),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body["instance"] = request.path if request else None
    body["request_id"] = getattr(g, "request_id", None)
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 401 and "WWW-Authenticate" not in response.headers:
        response.headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    return response


def flatten_validation_messages(messages: Any) -> dict[str, Any]:
    """webargs nests messages by location (``{"json": {...}}``); clients want fields at the top."""
    if not isinstance(messages, dict):
        return {"_schema": messages}
    flat: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            flat.update(fields)
        else:
            flat[location] = fields
    return flat


def http_exception_response(error: HTTPException) -> Response:
    """A problem document for any werkzeug ``HTTPException`` (abort(), routing, webargs)."""
    status = error.code or 500
    headers: dict[str, str] = {}
    for name, value in (error.get_headers() or []):
        if name.lower() != "content-type":
            headers[name] = value
    data = getattr(error, "data", None) or {}
    errors = None
    detail = None
    if status == 422:
        errors = flatten_validation_messages(data.get("errors", data.get("messages", {})))
        detail = "The request has invalid fields; see errors."
    elif status == 400 and "messages" in data:
        detail = "The request body is not valid JSON."
    elif "message" in data:
        detail = str(data["message"])
    elif error.description and status < 500 and not _is_default_description(error):
        detail = error.description
    if status == 405 and getattr(error, "valid_methods", None):
        # flask-smorest's handler would drop this header; keep the methods the route allows.
        headers["Allow"] = ", ".join(sorted(error.valid_methods or []))
    if status == 429 and "Retry-After" not in headers:
        headers["Retry-After"] = str(_limiter_retry_after())
    slug = data.get("slug") if isinstance(data, dict) else None
    return problem_response(
        status, slug=slug, title=data.get("title"), detail=detail, errors=errors, headers=headers
    )


def _limiter_retry_after() -> int:
    """Seconds until flask-limiter's breached window resets."""
    limiter = current_app.extensions.get("limiter")
    limiter = next(iter(limiter)) if isinstance(limiter, set) and limiter else limiter
    current = getattr(limiter, "current_limit", None)
    if current is None:
        return 60
    return max(1, int(current.reset_at - time.time()))


def _is_default_description(error: HTTPException) -> bool:
    return error.description == type(error).description


def domain_error_response(error: domain.DomainError) -> Response:
    """A problem document for a domain error, by the table above (most specific class wins)."""
    for cls in type(error).__mro__:
        if cls in PROBLEM_TABLE:
            status, slug, title = PROBLEM_TABLE[cls]  # type: ignore[index]
            break
    else:  # pragma: no cover - every DomainError subclass maps through its base
        status, slug, title = 400, "bad-request", "Bad request"
    slug = getattr(error, "slug", None) or slug
    headers = dict(getattr(error, "headers", {}))
    if isinstance(error, domain.LockedOut):
        headers["Retry-After"] = str(error.retry_after)
    errors = getattr(error, "errors", None)
    return problem_response(status, slug=slug, title=title, detail=error.detail, headers=headers,
                            errors=errors)


def unexpected_error_response(error: Exception) -> Response:
    """A 500 (or 503 when the database is unreachable) without any internals."""
    if isinstance(error, PyMongoError):
        log.error("database error", exc_info=error)
        return problem_response(503, detail="The database is unavailable; try again shortly.",
                                headers={"Retry-After": "5"})
    log.error("unhandled error", exc_info=error)
    return problem_response(500, detail="An unexpected error occurred; quote the request_id.")


def init_app(app: Flask) -> None:
    """Register the error handlers that do not belong to flask-smorest's Api."""
    app.register_error_handler(domain.DomainError, domain_error_response)
    app.register_error_handler(PyMongoError, unexpected_error_response)
    app.register_error_handler(Exception, unexpected_error_response)


class OAuthError(Exception):
    """An RFC 6749 section 5.2 error of the token endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def oauth_error_response(error: OAuthError) -> Response:
    """RFC 6749 5.2 JSON; ``invalid_client`` is a 401 with a Basic challenge."""
    body = {"error": error.error, "error_description": error.description}
    response = Response(json.dumps(body), status=error.status, mimetype="application/json")
    response.headers["Pragma"] = "no-cache"
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="hoso", charset="UTF-8"'
    return response
