"""Citizen sign-in and sessions: password + TOTP (or a recovery code), rotating refresh tokens."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from bson import ObjectId

from app.models.citizen import Citizen
from app.models.session import SPENT_HISTORY, Session
from app.security.attempts import AttemptLimiter
from app.security.crypto import SecretBox
from app.security.lockout import LoginGuard
from app.security.passwords import PasswordHasher
from app.security.tokens import TokenService, TokenType
from app.services import audit, outbox
from app.services.audit import Actor, RequestContext
from app.services.errors import AuthenticationFailed, LockedOut, NotFound
from app.services.identity import citizen_by_national_id
from app.services.mfa import consume_recovery_code, consume_totp
from app.settings import Settings

LOGIN_FAILED = "national id, password or code not accepted"
REFRESH_FAILED = "The refresh token is not valid."
# Revoked session ids remembered on the citizen so their access tokens stop at once; an access
# token lives 15 minutes at most, so a short history is enough.
REVOKED_SESSION_HISTORY = 100


@dataclass(frozen=True)
class Accounts:
    """What the citizen-account services (sign-in, sessions, activation, re-authentication, support
    resets) are handed: the keys and hashers they use, the attempt limits they enforce, and settings.

    The web layer builds it from the app's runtime (``Runtime.accounts``); the services never look
    the runtime up themselves.
    """

    settings: Settings
    box: SecretBox
    passwords: PasswordHasher
    tokens: TokenService
    auth_ip_attempts: AttemptLimiter
    citizen_login_failures: LoginGuard
    activation_failures: LoginGuard


@dataclass(frozen=True)
class IssuedSession:
    """Tokens of a new or refreshed session (the refresh token exists in clear only here)."""

    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str


def refresh_token_hash(accounts: Accounts, token: str) -> str:
    """Refresh tokens are stored only as keyed hashes (of the whole token, its parts included)."""
    return accounts.box.keyed_hash(token, "refresh-token")


# A refresh token names its citizen and session so that the server reaches the one shard that holds
# them (sessions are sharded by citizen) before it hashes the token: ``<citizen id>.<family id>.<secret>``.
# Both ids are already known to the token's holder (the access token's ``sub`` and ``sid``); the
# 256-bit secret is what proves possession. Anything else, the older opaque tokens included, is not
# a refresh token: the same 401 as a wrong one.
_REFRESH_TOKEN = re.compile(r"([0-9a-f]{24})\.([0-9a-f]{32})\.([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class RefreshToken:
    """The parts of a refresh token, parsed before it is hashed."""

    citizen_id: ObjectId
    family_id: str


def new_refresh_token(citizen_id: ObjectId, family_id: str) -> str:
    """A new refresh token of this session: its citizen, its family and 256 random bits."""
    return f"{citizen_id}.{family_id}.{secrets.token_urlsafe(32)}"


def parse_refresh_token(token: str) -> RefreshToken | None:
    """The citizen and session a refresh token names, or None when it is not of the form."""
    match = _REFRESH_TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        return None
    return RefreshToken(ObjectId(match.group(1)), match.group(2))


def _access_token(accounts: Accounts, citizen: Citizen, family_id: str, now: datetime) -> tuple[str, int]:
    issued = accounts.tokens.issue(str(citizen.id), TokenType.CITIZEN, now, sid=family_id)
    return issued.token, issued.expires_in


def start_session(
    ctx: RequestContext,
    accounts: Accounts,
    citizen: Citizen,
    device_label: str | None,
    user_agent: str | None,
) -> IssuedSession:
    """Open a new refresh-token family for a device."""
    family_id = uuid.uuid4().hex
    refresh = new_refresh_token(citizen.id, family_id)
    session = Session(
        citizen_id=citizen.id, family_id=family_id, token_hash=refresh_token_hash(accounts, refresh),
        device_label=device_label, user_agent=(user_agent or "")[:300] or None,
        created_at=ctx.now, last_used_at=ctx.now,
    )
    session.save(force_insert=True)
    access, expires_in = _access_token(accounts, citizen, session.family_id, ctx.now)
    return IssuedSession(access, refresh, expires_in, session.family_id)


def login(
    ctx: RequestContext,
    accounts: Accounts,
    national_id: str,
    password: str,
    totp_code: str | None,
    recovery_code: str | None,
    device_label: str | None,
    user_agent: str | None,
    *,
    device_proof: str | None = None,
) -> IssuedSession:
    """Password plus a TOTP code or one recovery code. Every failure answers the same 401.

    Attempts are counted per address, per (national id, address) and, from addresses the account
    has not signed in from, per national id, before anything is checked (``app.security.lockout``);
    over a limit even correct credentials get 429 until its window has passed.
    """
    try:
        accounts.auth_ip_attempts.hit(ctx.ip or "unknown")
        device = _earlier_device(accounts, national_id, device_proof, ctx.now)
        attempt = accounts.citizen_login_failures.attempt(national_id, ctx.ip, ctx.now, device=device)
    except LockedOut:
        audit.record(ctx, "citizen.login", "denied", reason="too many attempts")
        raise
    citizen = citizen_by_national_id(national_id)
    password_ok = accounts.passwords.verify(citizen.password_hash if citizen else None, password)
    usable = bool(citizen and citizen.state == "active" and not citizen.locked and password_ok)
    second_factor_ok = False
    method = "totp" if totp_code else "recovery_code"
    if usable and citizen is not None:
        if totp_code:
            secret = accounts.box.decrypt(citizen.totp_secret_encrypted, citizen.totp_context())
            second_factor_ok = consume_totp(Citizen, citizen.id, secret, totp_code, ctx.now,
                                            filters={"locked": False},
                                            set__last_login_at=ctx.now)
        elif recovery_code:
            second_factor_ok = consume_recovery_code(Citizen, citizen.id, accounts.box, str(citizen.id),
                                                     recovery_code)
    if not (usable and second_factor_ok) or citizen is None:
        audit.record(ctx, "citizen.login", "failure", citizen_id=citizen.id if citizen else None,
                     details={"method": method})
        raise AuthenticationFailed(LOGIN_FAILED)
    accounts.citizen_login_failures.succeeded(attempt, ctx.now)
    ctx = ctx.acting_as(Actor("citizen", str(citizen.id), "citizen"))
    if method == "recovery_code":
        Citizen.objects(id=citizen.id).update_one(set__last_login_at=ctx.now)
    known_device = bool(device_label) and bool(
        Session.objects(citizen_id=citizen.id, device_label=device_label).count()
    )
    session = start_session(ctx, accounts, citizen, device_label, user_agent)
    audit.record(ctx, "citizen.login", citizen_id=citizen.id, target_type="session",
                 target_id=session.session_id,
                 details={"method": method, "new_device": not known_device})
    if not known_device:
        outbox.notify(ctx, citizen, "new_device_login", session.session_id)
    return session


def _earlier_device(accounts: Accounts, national_id: str, proof: str | None, now: datetime) -> str | None:
    """The session whose last refresh token is ``proof``, if it is this citizen's, began after the
    last reset (``tokens_valid_after``) and within ``HOSO_LOGIN_KNOWN_ADDRESS_DAYS``.

    Mobile devices change addresses (carrier NAT), so a device that signed in before proves itself
    with the refresh token it still holds, even of an ended session. A spent (rotated) token is no
    proof: someone else may hold the newer one.
    """
    parsed = parse_refresh_token(proof) if proof else None
    if proof is None or parsed is None:
        return None
    session = Session.objects(citizen_id=parsed.citizen_id, family_id=parsed.family_id,
                              token_hash=refresh_token_hash(accounts, proof)).only(
        "citizen_id", "family_id", "created_at").first()
    if session is None or session.created_at <= now - timedelta(days=accounts.settings.login_known_address_days):
        return None
    citizen = Citizen.objects(id=session.citizen_id, national_id=national_id).only("tokens_valid_after").first()
    if citizen is None or (citizen.tokens_valid_after and session.created_at <= citizen.tokens_valid_after):
        return None
    return str(session.family_id)


def refresh(ctx: RequestContext, accounts: Accounts, refresh_token: str) -> IssuedSession:
    """Rotate a refresh token (one atomic update). A spent token presented again revokes its family.

    The token names its citizen and session (``parse_refresh_token``): the rotation is one
    conditional ``update_one`` on that session (one shard), which only the holder of its current
    token wins.
    """
    parsed = parse_refresh_token(refresh_token)
    if parsed is None:
        audit.record(ctx, "citizen.refresh", "failure", reason="unknown or expired token")
        raise AuthenticationFailed(REFRESH_FAILED)
    presented = refresh_token_hash(accounts, refresh_token)
    new_token = new_refresh_token(parsed.citizen_id, parsed.family_id)
    settings = accounts.settings
    rotated = Session._get_collection().update_one(
        {
            "citizen_id": parsed.citizen_id,
            "family_id": parsed.family_id,
            "token_hash": presented,
            "revoked_at": None,
            "created_at": {"$gt": ctx.now - timedelta(days=settings.session_absolute_days)},
            "last_used_at": {"$gt": ctx.now - timedelta(days=settings.session_idle_days)},
        },
        {
            "$set": {"token_hash": refresh_token_hash(accounts, new_token), "last_used_at": ctx.now},
            "$push": {"spent_hashes": {"$each": [presented], "$slice": -SPENT_HISTORY}},
        },
    )
    if not rotated.matched_count:
        _detect_reuse(ctx, parsed, presented)
        raise AuthenticationFailed(REFRESH_FAILED)
    citizen = Citizen.objects(id=parsed.citizen_id).first()
    if citizen is None or citizen.locked or citizen.state != "active":
        revoke_sessions(ctx, parsed.citizen_id, "account unusable")
        raise AuthenticationFailed(REFRESH_FAILED)
    ctx = ctx.acting_as(Actor("citizen", str(citizen.id), "citizen"))
    access, expires_in = _access_token(accounts, citizen, parsed.family_id, ctx.now)
    audit.record(ctx, "citizen.refresh", citizen_id=citizen.id, target_type="session",
                 target_id=parsed.family_id)
    return IssuedSession(access, new_token, expires_in, parsed.family_id)


def _detect_reuse(ctx: RequestContext, parsed: RefreshToken, presented: str) -> None:
    """A spent token came back: someone holds a copy. End the whole family and say so."""
    family = Session.objects(citizen_id=parsed.citizen_id, family_id=parsed.family_id,
                             spent_hashes=presented).only("id", "citizen_id", "family_id").first()
    if family is None:
        audit.record(ctx, "citizen.refresh", "failure", reason="unknown or expired token")
        return
    revoked = Session.objects(citizen_id=family.citizen_id, id=family.id, revoked_at=None).update_one(
        set__revoked_at=ctx.now, set__revoked_reason="refresh token reuse"
    )
    _forget_access_tokens(family.citizen_id, [family.family_id])
    audit.record(ctx, "citizen.refresh_reuse", "denied", citizen_id=family.citizen_id,
                 target_type="session", target_id=family.family_id,
                 reason="spent refresh token presented again")
    citizen = Citizen.objects(id=family.citizen_id).first()
    if revoked and citizen is not None:
        outbox.notify(ctx, citizen, "refresh_reuse_detected", family.family_id)


def _forget_access_tokens(citizen_id: ObjectId, family_ids: list[str]) -> None:
    """Make the access tokens of these sessions stop at once (checked on every request)."""
    Citizen._get_collection().update_one(
        {"_id": citizen_id},
        {"$push": {"revoked_sessions": {"$each": family_ids, "$slice": -REVOKED_SESSION_HISTORY}}},
    )


def end_session(ctx: RequestContext, citizen_id: ObjectId, family_id: str, reason: str) -> None:
    """End one of the citizen's own sessions (logout, or from the session list); 404 if not theirs."""
    ended = Session.objects(citizen_id=citizen_id, family_id=family_id, revoked_at=None).update_one(
        set__revoked_at=ctx.now, set__revoked_reason=reason
    )
    if not ended:
        raise NotFound("No such session.")
    _forget_access_tokens(citizen_id, [family_id])
    audit.record(ctx, "citizen.session_end", citizen_id=citizen_id, target_type="session",
                 target_id=family_id, reason=reason)


def revoke_sessions(ctx: RequestContext, citizen_id: ObjectId, reason: str) -> int:
    """End every session of a citizen and every access token issued until now (reset, lock)."""
    count = Session.objects(citizen_id=citizen_id, revoked_at=None).update(
        set__revoked_at=ctx.now, set__revoked_reason=reason
    )
    Citizen.objects(id=citizen_id).update_one(set__tokens_valid_after=ctx.now)
    return int(count)


def active_sessions(accounts: Accounts, citizen_id: ObjectId, now: datetime) -> list[Session]:
    """The citizen's sessions that can still refresh, most recently used first."""
    return list(
        Session.objects(
            citizen_id=citizen_id, revoked_at=None,
            created_at__gt=now - timedelta(days=accounts.settings.session_absolute_days),
            last_used_at__gt=now - timedelta(days=accounts.settings.session_idle_days),
        ).order_by("-last_used_at").limit(100)
    )
