"""Who may call what: the one table of every route and the roles allowed on it.

``app.web.auth`` enforces this table before any view runs (a route missing from it is refused), the
OpenAPI document is annotated from it, and ``tests/app/test_access.py`` walks Flask's URL map to
prove that every route is listed and that every role gets what the table says.
"""

from __future__ import annotations

from typing import Any

from app.services.ingest.kinds import kinds

ANONYMOUS = "anonymous"
SUPPORT = "support"
ADMIN = "admin"
FACILITY = "facility"
CITIZEN = "citizen"
ENROLLMENT = "enrollment"

ROLES = (ANONYMOUS, SUPPORT, ADMIN, FACILITY, CITIZEN, ENROLLMENT)
STAFF = frozenset({SUPPORT, ADMIN})
PUBLIC = frozenset({ANONYMOUS})

V1 = "/api/v1"

# (method, Flask rule) -> roles allowed. ANONYMOUS means no credentials are needed (and none are
# read, except where another role is listed too: then a token is optional and checked if sent).
ROUTE_ROLES: dict[tuple[str, str], frozenset[str]] = {
    # documentation
    ("GET", "/"): PUBLIC,  # a redirect to the documentation
    ("GET", "/api/openapi.json"): PUBLIC,
    ("GET", "/api/docs"): PUBLIC,
    ("GET", "/api/docs/static/<path:filename>"): PUBLIC,
    # public
    ("GET", f"{V1}/health"): PUBLIC,
    ("POST", f"{V1}/oauth/token"): PUBLIC,
    ("POST", f"{V1}/staff/login"): PUBLIC,
    ("POST", f"{V1}/auth/activate"): PUBLIC,
    ("POST", f"{V1}/auth/activate/confirm"): PUBLIC,  # the enrolment token travels in the body
    ("POST", f"{V1}/auth/login"): PUBLIC,
    ("POST", f"{V1}/auth/refresh"): PUBLIC,  # the refresh token travels in the body
    # citizens
    ("POST", f"{V1}/auth/logout"): frozenset({CITIZEN}),
    ("POST", f"{V1}/auth/reauthenticate"): frozenset({CITIZEN}),
    ("GET", f"{V1}/me/sessions"): frozenset({CITIZEN}),
    ("DELETE", f"{V1}/me/sessions/<session_id>"): frozenset({CITIZEN}),
    ("GET", f"{V1}/me"): frozenset({CITIZEN}),
    ("PATCH", f"{V1}/me"): frozenset({CITIZEN}),
    ("GET", f"{V1}/me/visits"): frozenset({CITIZEN}),
    ("GET", f"{V1}/me/visits/<visit_id>"): frozenset({CITIZEN}),
    ("GET", f"{V1}/me/immunizations"): frozenset({CITIZEN}),
    ("GET", f"{V1}/me/immunizations/<immunization_id>"): frozenset({CITIZEN}),
    ("POST", f"{V1}/me/immunizations/<immunization_id>/reactions"): frozenset({CITIZEN}),
    ("GET", f"{V1}/me/prescriptions"): frozenset({CITIZEN}),
    ("GET", f"{V1}/me/access-log"): frozenset({CITIZEN}),
    ("GET", f"{V1}/me/export"): frozenset({CITIZEN}),
    ("GET", f"{V1}/me/shares"): frozenset({CITIZEN}),
    ("POST", f"{V1}/me/shares"): frozenset({CITIZEN}),
    ("DELETE", f"{V1}/me/shares/<share_id>"): frozenset({CITIZEN}),
    ("GET", f"{V1}/me/notifications"): frozenset({CITIZEN}),
    ("POST", f"{V1}/me/notifications/<message_id>/read"): frozenset({CITIZEN}),
    ("POST", f"{V1}/me/devices"): frozenset({CITIZEN}),
    ("DELETE", f"{V1}/me/devices/<device_id>"): frozenset({CITIZEN}),
    ("GET", f"{V1}/me/passports"): frozenset({CITIZEN}),
    ("POST", f"{V1}/me/passports"): frozenset({CITIZEN}),
    ("GET", f"{V1}/me/passports/<path:uvci>/qr.png"): frozenset({CITIZEN}),
    ("GET", f"{V1}/me/passports/<path:uvci>/qr.svg"): frozenset({CITIZEN}),
    # passport verification, for anyone (border and venue staff, verifier apps)
    ("GET", f"{V1}/passport/trust-list"): PUBLIC,
    ("GET", f"{V1}/passport/revocations"): PUBLIC,
    ("POST", f"{V1}/passport/verify"): PUBLIC,
    # the EU DCC Gateway's trust list format and the national-backend API of the EU's verifier apps
    ("GET", f"{V1}/passport/dcc/trustList"): PUBLIC,
    ("GET", f"{V1}/passport/dcc/signercertificateStatus"): PUBLIC,
    ("GET", f"{V1}/passport/dcc/signercertificateUpdate"): PUBLIC,
    ("GET", f"{V1}/passport/rules"): PUBLIC,
    ("GET", f"{V1}/passport/rules/<country>"): PUBLIC,
    # the verifier web page for staff (static files: verification runs in the browser)
    ("GET", "/verify"): PUBLIC,
    ("GET", "/verify/<path:filename>"): PUBLIC,
    # a doctor with a share code; a facility token, when sent, is named in the access log
    ("POST", f"{V1}/shared-records"): frozenset({ANONYMOUS, FACILITY}),
    # staff
    ("GET", f"{V1}/staff/me"): STAFF,
    # support (account state only, never health data)
    ("GET", f"{V1}/support/citizens/<national_id>"): frozenset({SUPPORT}),
    ("POST", f"{V1}/support/citizens/<national_id>/access-reset"): frozenset({SUPPORT}),
    ("POST", f"{V1}/support/citizens/<national_id>/lock"): frozenset({SUPPORT}),
    ("POST", f"{V1}/support/citizens/<national_id>/unlock"): frozenset({SUPPORT}),
    # administration
    ("GET", f"{V1}/admin/facilities"): frozenset({ADMIN}),
    ("POST", f"{V1}/admin/facilities"): frozenset({ADMIN}),
    ("GET", f"{V1}/admin/facilities/<code>/clients"): frozenset({ADMIN}),
    ("POST", f"{V1}/admin/facilities/<code>/clients"): frozenset({ADMIN}),
    ("DELETE", f"{V1}/admin/facilities/<code>/clients/<client_id>"): frozenset({ADMIN}),
    ("POST", f"{V1}/admin/staff"): frozenset({ADMIN}),
    ("GET", f"{V1}/admin/audit"): frozenset({ADMIN}),
    ("POST", f"{V1}/admin/passports/<path:uvci>/revoke"): frozenset({ADMIN}),
    ("POST", f"{V1}/admin/signing-keys/rotate"): frozenset({ADMIN}),
    ("GET", f"{V1}/admin/passport-rules/<country>"): frozenset({ADMIN}),
    ("PUT", f"{V1}/admin/passport-rules/<country>"): frozenset({ADMIN}),
    ("GET", f"{V1}/admin/notifications"): frozenset({ADMIN}),
    # facility systems
    ("GET", f"{V1}/facility/me"): frozenset({FACILITY}),
    ("POST", f"{V1}/facility/citizens"): frozenset({FACILITY}),
    **{("PUT", f"{V1}/facility/{kind.plural}/<source_id>"): frozenset({FACILITY}) for kind in kinds()},
    ("POST", f"{V1}/facility/bulk"): frozenset({FACILITY}),
    ("POST", f"{V1}/facility/xml130"): frozenset({FACILITY}),
}

# OpenAPI security schemes; which one a role's token comes from.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "staffBearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Staff access token from POST /api/v1/staff/login (password + TOTP).",
    },
    "facilityOAuth": {
        "type": "oauth2",
        "description": "Facility client token (OAuth2 client credentials).",
        "flows": {"clientCredentials": {"tokenUrl": f"{V1}/oauth/token", "scopes": {}}},
    },
    "citizenBearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Citizen access token from POST /api/v1/auth/login.",
    },
    "enrollmentBearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Enrolment token from POST /api/v1/auth/activate (confirms TOTP only).",
    },
}
_SCHEME_OF_ROLE = {
    SUPPORT: "staffBearer",
    ADMIN: "staffBearer",
    FACILITY: "facilityOAuth",
    CITIZEN: "citizenBearer",
    ENROLLMENT: "enrollmentBearer",
}


def roles_for(method: str, rule: str) -> frozenset[str] | None:
    """Roles allowed on a route; HEAD follows GET; None when the route is not in the table."""
    if method == "HEAD":
        method = "GET"
    return ROUTE_ROLES.get((method, rule))


def openapi_security(roles: frozenset[str]) -> list[dict[str, list[str]]]:
    """The OpenAPI ``security`` list for a set of roles (``{}`` marks optional auth)."""
    schemes = sorted({_SCHEME_OF_ROLE[role] for role in roles if role != ANONYMOUS})
    security: list[dict[str, list[str]]] = [{name: []} for name in schemes]
    if ANONYMOUS in roles and security:
        security.append({})
    return security
