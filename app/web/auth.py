"""Authentication and function-level authorization, enforced from ``app.web.access`` before views run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from types import MappingProxyType
from typing import Any

import bson
from bson import ObjectId
from bson.errors import InvalidId
from bson.raw_bson import RawBSONDocument
from flask import Response, current_app, g, request

from app.infra import db
from app.infra.batching import GroupCommit
from app.infra.recent_reads import RecentReads
from app.models.citizen import Citizen
from app.models.facility import Facility, FacilityClient
from app.models.staff import StaffUser
from app.security.tokens import InvalidToken, TokenType
from app.services.audit import ANONYMOUS_ACTOR, Actor, RequestContext
from app.web import access
from app.web.problems import WWW_AUTHENTICATE, problem_response


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of this request."""

    role: str
    actor: Actor
    document: Any = None  # the loaded StaffUser or FacilityClient
    claims: dict[str, Any] = field(default_factory=dict)
    # a citizen's stored fields: what authentication checked, and what hot paths read directly
    stored: Mapping[str, Any] | None = None

    @cached_property
    def subject(self) -> Any:
        """The caller's document (StaffUser, FacilityClient, Citizen), a citizen's built on first use.

        Building a mongoengine document was the largest cost of authenticating a citizen, and
        many routes only need the citizen's id.
        """
        if self.document is None and self.stored is not None:
            return Citizen._from_son(dict(self.stored))
        return self.document


ANONYMOUS = Principal(access.ANONYMOUS, ANONYMOUS_ACTOR)

# A function that loads the current subject of valid claims, or None when that subject may no
# longer act (disabled, revoked, tokens invalidated since the token was issued).
SubjectLoader = Callable[[dict[str, Any]], Principal | None]


def issued_before(claims: dict[str, Any], valid_after: datetime | None) -> bool:
    """True when the token was issued before its subject's ``tokens_valid_after``."""
    return valid_after is not None and float(claims["iat"]) < valid_after.timestamp()


def _load_staff(claims: dict[str, Any]) -> Principal | None:
    user = StaffUser.objects(username=claims["sub"]).first()
    if user is None or not user.active or issued_before(claims, user.tokens_valid_after):
        return None
    return Principal(user.role, Actor("staff", user.username, f"{user.role}:{user.username}"),
                     user, claims)


def _load_facility_client(claims: dict[str, Any]) -> Principal | None:
    client = FacilityClient.objects(client_id=claims["sub"], active=True).first()
    if client is None or client.facility_code != claims.get("facility"):
        return None
    if not Facility.objects(code=client.facility_code, active=True).count():
        return None
    actor = Actor("facility_client", client.client_id, client.label or client.client_id,
                  client.facility_code)
    return Principal(access.FACILITY, actor, client, claims)


def _find_citizens(ids: list[ObjectId]) -> list[bytes | None]:
    """The stored citizens of ``ids`` (BSON, so that each request decodes its own copy)."""
    collection = Citizen._get_collection()
    raw = collection.with_options(collection.codec_options.with_options(document_class=RawBSONDocument))
    found = {document["_id"]: document.raw for document in raw.find({"_id": {"$in": list(set(ids))}})}
    return [found.get(citizen_id) for citizen_id in ids]


# Requests of one app that authenticate at the same moment share one query, and a citizen so
# read serves this app's requests for CITIZEN_MAX_AGE: a revocation, lock or reset is seen at
# once by the app that made it and within CITIZEN_MAX_AGE by every other (app.infra.recent_reads).
CITIZEN_MAX_AGE = 0.1
CitizenReads = RecentReads[ObjectId, bytes | None]


def citizen_reads(write_watch: db.WriteWatch) -> CitizenReads:
    """The citizen principals' reads of one app (``Runtime.citizen_reads``): a group commit of
    concurrent reads, reused for ``CITIZEN_MAX_AGE`` and forgotten on every write to citizens
    sent on the app's connection."""
    batch: GroupCommit[ObjectId, bytes | None] = GroupCommit(_find_citizens)
    reads: CitizenReads = RecentReads(batch.submit, CITIZEN_MAX_AGE)
    write_watch.on_write(Citizen._get_collection_name(), reads.forget_all)
    return reads


def _load_citizen(claims: dict[str, Any]) -> Principal | None:
    try:
        citizen_id = ObjectId(claims["sub"])
    except (InvalidId, TypeError):
        return None
    from app.runtime import runtime

    stored = runtime().citizen_reads.get(citizen_id)
    if stored is None:
        return None
    fields = bson.decode(stored, Citizen._get_collection().codec_options)
    if (fields.get("state") != "active" or fields.get("locked")
            or issued_before(claims, fields.get("tokens_valid_after"))
            or claims.get("sid") in (fields.get("revoked_sessions") or [])):
        return None
    return Principal(access.CITIZEN, Actor("citizen", str(citizen_id), "citizen"), None, claims, fields)


# token type -> its loader: a constant table
SUBJECT_LOADERS: Mapping[str, SubjectLoader] = MappingProxyType({
    TokenType.STAFF: _load_staff,
    TokenType.FACILITY: _load_facility_client,
    TokenType.CITIZEN: _load_citizen,
})


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _unauthorized(detail: str, invalid_token: bool) -> Response:
    challenge = WWW_AUTHENTICATE + (', error="invalid_token"' if invalid_token else "")
    return problem_response(401, detail=detail, headers={"WWW-Authenticate": challenge})


def authenticate_request() -> Response | None:
    """Find the route's roles in the table, authenticate the caller, refuse what it may not do."""
    g.principal = ANONYMOUS
    rule = request.url_rule
    if rule is None or request.method == "OPTIONS":
        return None  # routing errors (404/405) and CORS pre-flight carry no credentials
    roles = access.roles_for(request.method, rule.rule)
    if roles is None:
        current_app.logger.error("route not in the access table: %s %s", request.method, rule.rule)
        return problem_response(403, detail="This route is not open to anyone.")
    if roles == access.PUBLIC:
        return None
    token = bearer_token()
    if token is None:
        if access.ANONYMOUS in roles:
            return None
        return _unauthorized("A bearer token is required.", invalid_token=False)
    from app.runtime import runtime

    try:
        claims = runtime().tokens.verify(token, TokenType.ALL)
    except InvalidToken:
        return _unauthorized("The bearer token is not valid.", invalid_token=True)
    loader = SUBJECT_LOADERS.get(claims["token_type"])
    principal = loader(claims) if loader else None
    if principal is None:
        return _unauthorized("The bearer token is no longer valid.", invalid_token=True)
    if principal.role not in roles:
        return problem_response(403, detail="Your role may not use this operation.")
    g.principal = principal
    return None


def current_principal() -> Principal:
    """The caller of the current request (anonymous when no token was needed)."""
    return g.get("principal", ANONYMOUS)  # type: ignore[no-any-return]


def request_context() -> RequestContext:
    """The audit and time context of the current request, handed to services."""
    from app.runtime import runtime

    rt = runtime()
    return RequestContext(
        actor=current_principal().actor,
        now=rt.now(),
        request_id=g.get("request_id"),
        ip=request.remote_addr,
        trail=rt.audit_trail,
    )
