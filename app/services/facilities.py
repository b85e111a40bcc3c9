"""Facilities and their API clients: registration, credentials, the client-credentials grant."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from mongoengine import NotUniqueError

from app.models.facility import Facility, FacilityClient
from app.security.attempts import AttemptLimiter
from app.security.lockout import LoginGuard
from app.security.passwords import PasswordHasher
from app.security.tokens import IssuedToken, TokenService, TokenType
from app.services import audit, paging
from app.services.audit import Actor, RequestContext
from app.services.errors import AlreadyExists, DomainError, LockedOut, NotFound


class InvalidClient(DomainError):
    """Client authentication failed (unknown, revoked or inactive client or facility)."""


@dataclass(frozen=True)
class NewClient:
    """A freshly issued client: the secret exists only in this object and the HTTP answer."""

    client: FacilityClient
    client_secret: str


def register_facility(
    ctx: RequestContext, code: str, name: str, province: str, level: str | None = None
) -> Facility:
    """Register a facility under its MA_CSKCB code."""
    facility = Facility(code=code, name=name, province=province, level=level, created_at=ctx.now)
    try:
        facility.save(force_insert=True)
    except NotUniqueError:
        audit.record(ctx, "facility.register", "failure", target_type="facility", target_id=code,
                     reason="duplicate code")
        raise AlreadyExists(f"facility {code} is already registered") from None
    audit.record(ctx, "facility.register", target_type="facility", target_id=code)
    return facility


def get_facility(code: str) -> Facility:
    """The facility with this code."""
    facility = Facility.objects(code=code).first()
    if facility is None:
        raise NotFound(f"no facility {code}")
    return facility


def issue_client(
    ctx: RequestContext, code: str, passwords: PasswordHasher, label: str | None = None
) -> NewClient:
    """Create API client credentials for a facility system; the secret is shown once."""
    facility = get_facility(code)
    client_id = f"{facility.code.lower()}-{secrets.token_hex(8)}"
    client_secret = secrets.token_urlsafe(32)
    client = FacilityClient(
        client_id=client_id,
        secret_hash=passwords.hash(client_secret),
        facility_code=facility.code,
        label=label,
        created_at=ctx.now,
        created_by=ctx.actor.id,
    )
    client.save(force_insert=True)
    audit.record(ctx, "facility_client.issue", target_type="facility_client", target_id=client_id,
                 details={"facility_code": facility.code})
    return NewClient(client, client_secret)


def revoke_client(ctx: RequestContext, code: str, client_id: str) -> None:
    """Deactivate a client: its tokens stop working at once (checked on every request)."""
    updated = FacilityClient.objects(
        client_id=client_id, facility_code=code, active=True
    ).update_one(set__active=False, set__revoked_at=ctx.now)
    if not updated:
        raise NotFound(f"no active client {client_id} for facility {code}")
    audit.record(ctx, "facility_client.revoke", target_type="facility_client", target_id=client_id,
                 details={"facility_code": code})


def client_credentials_grant(
    ctx: RequestContext,
    client_id: str,
    client_secret: str,
    *,
    passwords: PasswordHasher,
    tokens: TokenService,
    failures: LoginGuard,
    ip_attempts: AttemptLimiter,
) -> IssuedToken:
    """RFC 6749 section 4.4: exchange client credentials for a facility access token.

    Attempts are counted per address and per client id (see ``app.security.lockout``) before the
    secret is checked.
    """
    try:
        ip_attempts.hit(ctx.ip or "unknown")
        attempt = failures.attempt(client_id, ctx.ip, ctx.now)
    except LockedOut:
        audit.record(ctx, "oauth.token", "denied", target_type="facility_client",
                     target_id=client_id[:80], reason="locked out")
        raise
    client = FacilityClient.objects(client_id=client_id).first()
    secret_ok = passwords.verify(client.secret_hash if client else None, client_secret)
    facility = Facility.objects(code=client.facility_code).first() if client else None
    if not (client and secret_ok and client.active and facility and facility.active):
        audit.record(ctx, "oauth.token", "failure", target_type="facility_client",
                     target_id=client_id[:80])
        raise InvalidClient()
    failures.succeeded(attempt, ctx.now)
    FacilityClient.objects(client_id=client_id).update_one(set__last_used_at=ctx.now)
    ctx = ctx.acting_as(Actor("facility_client", client.client_id, client.label or client.client_id,
                              client.facility_code))
    audit.record(
        ctx, "oauth.token", target_type="facility_client", target_id=client_id,
        details={"facility_code": client.facility_code},
    )
    return tokens.issue(client_id, TokenType.FACILITY, ctx.now, facility=client.facility_code)


def list_facilities(after_code: str | None, limit: int) -> tuple[list[Facility], dict[str, str] | None]:
    """A page of facilities by code after ``after_code``, and the next page's cursor."""
    query = Facility.objects(code__gt=after_code) if after_code else Facility.objects
    return paging.by_key(query, "code", limit)


def list_clients(
    code: str, after_client_id: str | None, limit: int
) -> tuple[list[FacilityClient], dict[str, str] | None]:
    """A page of a facility's clients by client id, and the next page's cursor."""
    get_facility(code)
    query = FacilityClient.objects(facility_code=code)
    if after_client_id:
        query = query.filter(client_id__gt=after_client_id)
    return paging.by_key(query, "client_id", limit)
