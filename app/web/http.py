"""Per-request plumbing: request ids, allowed body types, security headers, the access log."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, g, request

from app.web.logs import mask_identifiers
from app.web.problems import problem_response

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# The app's own limits, below gunicorn's (gunicorn.conf.py), so that the answer is a problem
# document with this app's headers: the request line, one header field ("Name: value"), fields.
MAX_REQUEST_LINE = 4094
MAX_HEADER_FIELD = 8190
MAX_HEADER_FIELDS = 100
JSON = "application/json"
access_log = logging.getLogger("hoso.access")
F = TypeVar("F", bound=Callable[..., Any])


def accepts(*mimetypes: str) -> Callable[[F], F]:
    """Declare the request body types a view method takes (default: ``application/json``)."""

    def mark(view: F) -> F:
        view._hoso_accepts = mimetypes  # type: ignore[attr-defined]
        return view

    return mark


def _accepted_types() -> tuple[str, ...]:
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    method = getattr(view_class, request.method.lower(), None) if view_class else view
    return getattr(method, "_hoso_accepts", (JSON,))


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", ""
    ).lower()


def assign_request_id() -> None:
    """Reuse a well-formed ``X-Request-ID`` from the caller, else make one."""
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if REQUEST_ID_PATTERN.match(incoming) else uuid.uuid4().hex
    g.started = time.perf_counter()


def _header_fields(environ: dict[str, Any]) -> list[tuple[str, str]]:
    fields = [(key[5:].replace("_", "-"), value) for key, value in environ.items() if key.startswith("HTTP_")]
    fields += [(key.replace("_", "-"), environ[key]) for key in ("CONTENT_TYPE", "CONTENT_LENGTH") if environ.get(key)]
    return fields


def check_request_size() -> Response | None:
    """Refuse an over-long request line (414) or header (431) before any other work."""
    environ = request.environ
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.full_path
    line = len(environ.get("REQUEST_METHOD", "")) + len(target) + len(environ.get("SERVER_PROTOCOL", "")) + 2
    if line > MAX_REQUEST_LINE:
        return problem_response(414, slug="uri-too-long",
                                detail=f"The request line may be at most {MAX_REQUEST_LINE} bytes.")
    fields = _header_fields(environ)
    if len(fields) > MAX_HEADER_FIELDS:
        return problem_response(431, slug="header-fields-too-large",
                                detail=f"Send at most {MAX_HEADER_FIELDS} header fields.")
    if any(len(name) + len(value) + 2 > MAX_HEADER_FIELD for name, value in fields):
        return problem_response(431, slug="header-fields-too-large",
                                detail=f"A header field may be at most {MAX_HEADER_FIELD} bytes.")
    return None


def check_body_type() -> Response | None:
    """Refuse a body whose Content-Type the route does not take (415)."""
    if request.url_rule is None or request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    if not _has_body():
        return None
    accepted = _accepted_types()
    if request.mimetype not in accepted:
        return problem_response(
            415, detail=f"Send the body as {' or '.join(accepted)}.",
            headers={"Accept-Post" if request.method == "POST" else "Accept": ", ".join(accepted)},
        )
    return None


def secure_headers(response: Response) -> Response:
    """Headers on every response; ``no-store`` on everything the API answers."""
    response.headers["X-Request-ID"] = g.get("request_id", "")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    if request.path.startswith("/api/docs"):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self' 'unsafe-inline'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        )
        response.headers.setdefault("Cache-Control", "no-cache")
    elif request.path == "/verify" or request.path.startswith("/verify/"):
        # The verifier page (app/resources/verifier) sets its own policy and caching on its files.
        response.headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        response.headers.setdefault("Cache-Control", "no-store")
    else:
        response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
        response.headers["Cache-Control"] = "no-store"
    response.headers.pop("Server", None)
    return response


def log_request(response: Response) -> Response:
    """One access-log line per request: no body, no query string, no credentials."""
    started = g.get("started")
    principal = g.get("principal")
    path = mask_identifiers(request.path)
    access_log.info(
        "%s %s %s",
        request.method,
        path,
        response.status_code,
        extra={
            "method": request.method,
            "path": path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "actor": principal.actor.id if principal else None,
            "remote_addr": request.remote_addr,
        },
    )
    return response
